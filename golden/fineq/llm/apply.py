"""A quantizer of :mod:`fineq.quant.registry` applied to a whole model.

Each method quantizes every linear of the decoder blocks
(:func:`fineq.llm.models.decoder_linears`: LLaMA's q, k, v, o, gate, up,
down; Phi-3's fused qkv and gate_up as one matrix each); embeddings, norms and
``lm_head`` stay as they are. Data-free methods see each weight alone.
Calibrated methods run layer by layer, as GPTQ does (``--true-sequential``):
calibration samples go through the decoder blocks one at a time, each block
called with the arguments the model itself gives that block (captured per
block: rotary embeddings, its own attention mask, e.g. Gemma's sliding-window
layers); inside a block the linears are quantized in groups in the order they
are used, a group being the linears that read the same input (found by running
the block: LLaMA's q/k/v, o, gate/up, down), each group's Hessian measured
with the groups before it already quantized; the block's quantized outputs are
the next block's inputs. Mode ``recon`` (:mod:`fineq.llm.recon`) then trains
each quantized block against the float block's outputs, so it also carries the
float model's inputs from block to block.
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.llm.models import decoder_layers, decoder_linears, linear_layer_index
from fineq.llm.recon import block_output, reconstruct_block
from fineq.llm.rotate import apply_transform
from fineq.llm.workdir import BlockStore
from fineq.progress import progress
from fineq.quant.gptq import HessianAccumulator
from fineq.quant.layer_rules import LayerRules
from fineq.quant.registry import Quantizer, for_mode
from fineq.quant.result import QResult

NO_RULES = LayerRules()


class _GroupDone(Exception):
    """Raised by a Hessian hook once every linear of the group has seen its input."""


def _skipped(name: str, skip: tuple[str, ...]) -> bool:
    return any(re.search(p, name) for p in skip)


def _set_weight(lin: Any, w: Any) -> None:
    import torch

    with torch.no_grad():
        lin.weight.copy_(w.to(lin.weight.dtype))


def apply(model: Any, method: Quantizer, calib: np.ndarray | None = None, skip: tuple[str, ...] = (),
          batch: int = 4, rules: LayerRules = NO_RULES, store: BlockStore | None = None) -> dict[str, QResult]:
    """Quantize ``model``'s decoder linears in place with ``method``; returns ``{name: QResult}``.

    ``calib``: int64 ``[n, seq]`` calibration token windows (calibrated methods).
    ``skip``: regular expressions; linears whose name matches one stay as they are.
    ``rules``: per-layer rules (:mod:`fineq.quant.layer_rules`): for a FineQ method, the first matching rule's mode
    quantizes that linear instead of the method's, or ``skip`` leaves it float; for other methods only ``skip``
    applies.
    A method with a ``transform`` (``+fold``, ``+rot``) first transforms the whole model in place
    (:mod:`fineq.llm.rotate`): embeddings, norms and ``lm_head`` change too.
    """
    if method.fn is None:
        return {}
    apply_transform(model, method.transform)
    lins = {n: m for n, m in decoder_linears(model).items() if not _skipped(n, skip) and not rules.skipped(n)}
    fns = {n: _rule_fn(method, rules, n) for n in lins}
    if not (method.calibrated or any(for_mode(m).calibrated for m in rules.modes if method.mode is not None)):
        out = {}
        for name, lin in progress(lins.items(), desc=method.name, total=len(lins), unit="linear"):
            r = fns[name](lin.weight.detach().float(), None)
            _set_weight(lin, r.weight)
            out[name] = r
        return out
    if calib is None or len(calib) == 0:
        raise FineQError(f"method {method.name} needs calibration text")
    if method.recon is not None:
        batch = method.recon.batch
    return _apply_sequential(model, method, calib, lins, batch, fns, store)


def _rule_fn(method: Quantizer, rules: LayerRules, name: str) -> Any:
    """The quantizer function of linear ``name``: its rule's FineQ mode's, for a FineQ method, else the method's."""
    mode = rules.decide(name) if method.mode is not None else None
    q = method if mode is None or mode == "skip" else for_mode(mode)
    fn = q.fn
    assert fn is not None
    # a data-free quantizer in a calibrated pass (the rules asked for one) gets no Hessian
    return fn if q.calibrated else (lambda w, _h, fn=fn: fn(w, None))


def _layer_inputs(model: Any, calib: np.ndarray, batch: int) -> tuple[list[Any], list[list[dict[str, Any]]]]:
    """The hidden states entering decoder block 0 for each calibration batch, and for every block its keyword
    arguments per batch (what the model passes that block: they differ between blocks in some architectures)."""
    import torch

    layers = decoder_layers(model)
    hidden: list[Any] = []
    kwargs: list[list[dict[str, Any]]] = [[] for _ in layers]

    class _Stop(Exception):
        pass

    def hook(i: int, args: tuple[Any, ...], kw_in: dict[str, Any]) -> None:
        kw = dict(kw_in)
        hs = args[0] if args else kw.pop("hidden_states")
        if i == 0:
            hidden.append(hs.detach())
        kwargs[i].append({k: v for k, v in kw.items() if k not in ("hidden_states", "past_key_values", "use_cache",
                                                                     "past_key_value")})
        if len(args) > 1:
            raise FineQError(f"decoder block {i} takes {len(args)} positional arguments; only the hidden states "
                             "are expected positionally")
        if i == len(layers) - 1:
            raise _Stop

    hs = [layer.register_forward_pre_hook(lambda _m, a, k, i=i: hook(i, a, k), with_kwargs=True)
          for i, layer in enumerate(layers)]
    try:
        with torch.inference_mode():
            for b0 in range(0, len(calib), batch):
                try:
                    model(input_ids=torch.from_numpy(calib[b0 : b0 + batch]), use_cache=False)
                except _Stop:
                    pass
    finally:
        for h in hs:
            h.remove()
    return hidden, kwargs


def linear_groups(layer: Any, hs: Any, kw: dict[str, Any], lins: dict[str, Any]) -> list[list[str]]:
    """``lins`` (the block's linears) in groups that read the same input, in the order the block uses them."""
    import torch

    order: list[tuple[str, int]] = []
    seen: dict[int, int] = {}
    keep: list[Any] = []  # every input stays alive during the pass, so no two inputs share an address

    def hook(n: str, x: Any) -> None:
        keep.append(x)
        order.append((n, seen.setdefault(x.data_ptr(), len(seen))))

    hooks = [m.register_forward_pre_hook(lambda _m, a, n=n: hook(n, a[0])) for n, m in lins.items()]
    try:
        with torch.inference_mode():
            layer(hs, **kw)
    finally:
        for hk in hooks:
            hk.remove()
    groups: dict[int, list[str]] = {}
    for n, g in order:
        if n not in groups.setdefault(g, []):
            groups[g].append(n)
    missing = [n for n in lins if not any(n in g for g in groups.values())]
    if missing:
        raise FineQError(f"{missing[0]}: the decoder block never calls it; it cannot be calibrated")
    return list(groups.values())


def _group_hessians(layer: Any, inputs: list[tuple[Any, dict[str, Any]]], lins: dict[str, Any]) -> dict[str, Any]:
    """Run ``layer`` on every calibration batch and return each linear's ``H = 2 X X^T / n``.

    A batch stops as soon as every linear of the group has seen its input: the
    rest of the block is not needed for this group's Hessians.
    """
    import torch

    acc = {n: HessianAccumulator(m.in_features) for n, m in lins.items()}
    fired: set[str] = set()

    def hook(n: str, x: Any) -> None:
        acc[n].add(x)
        fired.add(n)
        if len(fired) == len(lins):
            raise _GroupDone

    hooks = [m.register_forward_hook(lambda _m, a, _o, n=n: hook(n, a[0])) for n, m in lins.items()]
    try:
        with torch.inference_mode():
            for hs, kw in inputs:
                fired.clear()
                try:
                    layer(hs, **kw)
                except _GroupDone:
                    pass
    finally:
        for hk in hooks:
            hk.remove()
    return {n: a.hessian() for n, a in acc.items()}


def _apply_sequential(model: Any, method: Quantizer, calib: np.ndarray, lins: dict[str, Any],
                      batch: int, fns: dict[str, Any], store: BlockStore | None = None) -> dict[str, QResult]:
    import torch

    assert method.fn is not None
    layers = decoder_layers(model)
    hidden, block_kwargs = _layer_inputs(model, calib, batch)
    inputs = [(h, block_kwargs[0][b]) for b, h in enumerate(hidden)]
    out: dict[str, QResult] = {}
    by_layer: dict[int, dict[str, Any]] = {}
    for name, lin in lins.items():
        idx = linear_layer_index(name)
        by_layer.setdefault(idx, {})[name] = lin
    recon = method.recon
    fp_inputs = inputs  # mode recon: the float model's inputs to each block
    for i in progress(range(len(layers)), desc=method.name, unit="layer"):
        layer = layers[i]
        mine = by_layer.get(i, {})
        # this block's own arguments (attention mask, rotary embeddings) with the hidden states carried over
        inputs = [(h, block_kwargs[i][b]) for b, (h, _) in enumerate(inputs)]
        fp_inputs = [(h, block_kwargs[i][b]) for b, (h, _) in enumerate(fp_inputs)]
        if recon is not None:  # the float block's outputs and weights, before it is quantized
            orig = {n: lin.weight.detach().float().clone() for n, lin in mine.items()}
            with torch.inference_mode():
                targets = [block_output(layer(hs, **kw)) for hs, kw in fp_inputs]
        saved = store.load(i) if store is not None and mine else None
        if saved is not None and set(saved) == set(mine):  # finished by an earlier run: its levels, not redone
            for n, r in saved.items():
                _set_weight(mine[n], r.weight)
            out.update(saved)
            if recon is not None:
                fp_inputs = [(t, kw) for t, (_hs, kw) in zip(targets, fp_inputs, strict=True)]
            with torch.inference_mode():
                inputs = [(block_output(layer(hs, **kw)), kw) for hs, kw in inputs]
            continue
        done: dict[str, QResult] = {}
        for names in linear_groups(layer, *inputs[0], mine) if mine else []:
            hess = _group_hessians(layer, inputs, {n: mine[n] for n in names})
            for n in names:
                r = fns[n](mine[n].weight.detach().float(), hess[n])
                _set_weight(mine[n], r.weight)
                done[n] = r
        if recon is not None:
            if done:
                done = reconstruct_block(layer, done, mine, orig, inputs, targets, recon)
                for n, r in done.items():
                    _set_weight(mine[n], r.weight)
            fp_inputs = [(t, kw) for t, (_hs, kw) in zip(targets, fp_inputs, strict=True)]
        out.update(done)
        if store is not None and done:
            store.save(i, done)
        with torch.inference_mode():
            inputs = [(block_output(layer(hs, **kw)), kw) for hs, kw in inputs]
    return out


def bits_per_weight(results: dict[str, QResult], model: Any) -> float:
    """Average stored bits per weight over the decoder linears (16 for the reference)."""
    if not results:
        return 16.0
    n = sum(int(r.weight.numel()) for r in results.values())
    return sum(r.bits for r in results.values()) / n


def timed_apply(model: Any, method: Quantizer, calib: np.ndarray | None, skip: tuple[str, ...] = (),
                rules: LayerRules = NO_RULES, store: BlockStore | None = None) -> tuple[dict[str, QResult], float]:
    t0 = time.perf_counter()
    res = apply(model, method, calib, skip, rules=rules, store=store)
    return res, time.perf_counter() - t0
