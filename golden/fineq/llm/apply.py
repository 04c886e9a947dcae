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
the next block's inputs. Each block runs on its compute device (``device``;
``"auto"`` spreads the blocks with accelerate's device map, :func:`fineq.llm.stream.block_devices`) and goes
back where it came from when done; with ``blocks`` (a :class:`fineq.llm.stream.BlockLoader`) a block's weights
are read from the checkpoint only for its turn and released after it, so one block is resident at a time.
Mode ``recon`` (:mod:`fineq.llm.recon`) then trains
each quantized block against the float block's outputs, so it also carries the
float model's inputs from block to block.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.llm.models import decoder_layers, decoder_linears, linear_layer_index
from fineq.llm.recon import block_output, reconstruct_block
from fineq.llm.rotate import apply_transform
from fineq.llm.stream import BlockLoader, block_devices
from fineq.llm.workdir import BlockStore
from fineq.progress import Meter, progress
from fineq.quant.gptq import HessianAccumulator
from fineq.quant.layer_rules import LayerRules
from fineq.quant.registry import Quantizer, for_mode, variant
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
          batch: int = 4, rules: LayerRules = NO_RULES, store: BlockStore | None = None, device: Any = "cpu",
          blocks: BlockLoader | None = None) -> dict[str, QResult]:
    """Quantize ``model``'s decoder linears in place with ``method``; returns ``{name: QResult}``.

    ``calib``: int64 ``[n, seq]`` calibration token windows (calibrated methods).
    ``skip``: regular expressions; linears whose name matches one stay as they are.
    ``rules``: per-layer rules (:mod:`fineq.quant.layer_rules`): for a FineQ method, the first matching rule's mode
    quantizes that linear instead of the method's, or ``skip`` leaves it float; for other methods only ``skip``
    applies.
    A method with a ``transform`` (``+fold``, ``+rot``) first transforms the whole model in place
    (:mod:`fineq.llm.rotate`): embeddings, norms and ``lm_head`` change too.
    ``device``: where each block is computed (a torch device, or ``"auto"``); ``blocks``: the loader of a model
    whose blocks are on the meta device (:mod:`fineq.llm.stream`): they are loaded for their turn and released
    after it, and the results' ``weight`` is then a meta tensor of the right shape (the levels are in
    ``qmatrix``; the model is not left usable).
    """
    if method.fn is None:
        return {}
    if blocks is not None and method.transform is not None:
        raise FineQError(f"method {method.name}: a model transform needs the whole model loaded, not block by block")
    apply_transform(model, method.transform)
    lins = {n: m for n, m in decoder_linears(model).items() if not _skipped(n, skip) and not rules.skipped(n)}
    fns = {n: _rule_fn(method, rules, n) for n in lins}
    devices = block_devices(model, device)
    if method.recon is not None and any(d.type != "cpu" for d in devices):
        raise FineQError(f"method {method.name} trains on the CPU only (--device cpu)")
    by_layer: dict[int, dict[str, Any]] = {}
    for name, lin in lins.items():
        by_layer.setdefault(linear_layer_index(name), {})[name] = lin
    if not (method.calibrated or any(for_mode(m).calibrated for m in rules.modes if method.mode is not None)):
        out = {}
        bar = Meter(len(lins), desc=method.name, unit="linear")
        for i, layer in enumerate(decoder_layers(model)):
            if i not in by_layer:
                continue
            with _resident(layer, i, devices[i], blocks):
                for name, lin in by_layer[i].items():
                    r = fns[name](lin.weight.detach().float().cpu(), None)
                    _set_weight(lin, r.weight)
                    out[name] = _kept(r, blocks)
                    bar.update(1)
        bar.close()
        return out
    if calib is None or len(calib) == 0:
        raise FineQError(f"method {method.name} needs calibration text")
    if method.recon is not None:
        batch = method.recon.batch
    return _apply_sequential(model, method, calib, by_layer, batch, fns, store, devices, blocks)


@contextmanager
def _resident(layer: Any, i: int, device: Any, blocks: BlockLoader | None) -> Iterator[None]:
    """Block ``i`` on ``device`` for the body: loaded from the checkpoint (and released after) with ``blocks``,
    else moved there and back."""
    import torch

    if blocks is not None:
        blocks.load(i, device)
        try:
            yield
        finally:
            blocks.release(i)
        return
    home = next((p.device for p in layer.parameters()), torch.device("cpu"))
    if home != device:
        layer.to(device)
    try:
        yield
    finally:
        if home != device:
            layer.to(home)


def _kept(r: QResult, blocks: BlockLoader | None) -> QResult:
    """What the pass keeps of a result: all of it, or (block by block) its packed matrix only, the float weight as
    a meta tensor and no cached levels (a whole model's float weights or levels would not fit)."""
    if blocks is None:
        return r
    if r.qmatrix is not None:
        r.qmatrix.forget_levels()
    return dataclasses.replace(r, weight=r.weight.to("meta"))


def _to(x: Any, device: Any) -> Any:
    """``x`` (tensors, tuples, lists, dicts of them) on ``device``."""
    import torch

    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, (tuple, list)):
        return type(x)(_to(v, device) for v in x)
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    return x


def _rule_fn(method: Quantizer, rules: LayerRules, name: str) -> Any:
    """The quantizer function of linear ``name``: its rule's FineQ mode's (to the method's codebook: one engine
    runs the model), for a FineQ method, else the method's."""
    mode = rules.decide(name) if method.mode is not None else None
    q = method if mode is None or mode == "skip" else for_mode(mode)
    if q is not method and method.codebook != q.codebook:
        q = variant(q, codebook=method.codebook)
    fn = q.fn
    assert fn is not None
    # a data-free quantizer in a calibrated pass (the rules asked for one) gets no Hessian
    return fn if q.calibrated else (lambda w, _h, fn=fn: fn(w, None))


def _layer_inputs(model: Any, calib: np.ndarray, batch: int) -> tuple[list[Any], list[list[dict[str, Any]]]]:
    """The hidden states entering decoder block 0 for each calibration batch, and for every block its keyword
    arguments per batch (what the model passes that block: they differ between blocks in some architectures).

    The model's forward runs with every block's own forward replaced by the identity: the arguments a block gets
    do not depend on the blocks before it, so no block computes here (and blocks on the meta device may be
    passed)."""
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
    for layer in layers:
        layer.forward = _identity
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
        for layer in layers:
            del layer.forward  # the class's own forward again
    return hidden, kwargs


def _identity(*args: Any, **kw: Any) -> Any:
    return args[0] if args else kw["hidden_states"]


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


def _group_hessians(layer: Any, inputs: list[tuple[Any, dict[str, Any]]], lins: dict[str, Any],
                    device: Any = "cpu") -> dict[str, Any]:
    """Run ``layer`` on every calibration batch and return each linear's ``H = 2 X X^T / n``.

    A batch stops as soon as every linear of the group has seen its input: the
    rest of the block is not needed for this group's Hessians.
    """
    import torch

    acc = {n: HessianAccumulator(m.in_features, device) for n, m in lins.items()}
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
    return {n: a.take().cpu() for n, a in acc.items()}


def _apply_sequential(model: Any, method: Quantizer, calib: np.ndarray, by_layer: dict[int, dict[str, Any]],
                      batch: int, fns: dict[str, Any], store: BlockStore | None, devices: list[Any],
                      blocks: BlockLoader | None) -> dict[str, QResult]:
    assert method.fn is not None
    layers = decoder_layers(model)
    hidden, block_kwargs = _layer_inputs(model, calib, batch)
    inputs: list[tuple[Any, dict[str, Any]]] = [(h, {}) for h in hidden]
    out: dict[str, QResult] = {}
    recon = method.recon
    fp_inputs = inputs  # mode recon: the float model's inputs to each block
    for i in progress(range(len(layers)), desc=method.name, unit="layer"):
        layer, dev = layers[i], devices[i]
        mine = by_layer.get(i, {})
        # this block's own arguments (attention mask, rotary embeddings) with the hidden states carried over, on
        # the block's device
        inputs = [(h.to(dev), _to(block_kwargs[i][b], dev)) for b, (h, _) in enumerate(inputs)]
        fp_inputs = [(h.to(dev), _to(block_kwargs[i][b], dev)) for b, (h, _) in enumerate(fp_inputs)]
        with _resident(layer, i, dev, blocks):
            inputs, fp_inputs, done = _block(layer, i, mine, inputs, fp_inputs, fns, store, recon, blocks)
        out.update({n: _kept(r, blocks) for n, r in done.items()})
    return out


def _block(layer: Any, i: int, mine: dict[str, Any], inputs: list[tuple[Any, dict[str, Any]]],
           fp_inputs: list[tuple[Any, dict[str, Any]]], fns: dict[str, Any], store: BlockStore | None,
           recon: Any, blocks: BlockLoader | None) -> tuple[list[tuple[Any, dict[str, Any]]],
                                                           list[tuple[Any, dict[str, Any]]], dict[str, QResult]]:
    """Quantize block ``i`` (resident on its device); returns the next block's inputs (quantized model's, float
    model's) and the block's results."""
    import torch

    if recon is not None:  # the float block's outputs and weights, before it is quantized
        orig = {n: lin.weight.detach().float().clone() for n, lin in mine.items()}
        with torch.inference_mode():
            targets = [block_output(layer(hs, **kw)) for hs, kw in fp_inputs]
    saved = store.load(i) if store is not None and mine else None
    if saved is not None and set(saved) == set(mine):  # finished by an earlier run: its levels, not redone
        done = saved
        for n, r in saved.items():
            _set_weight(mine[n], r.weight)
    else:
        done = {}
        for names in linear_groups(layer, *inputs[0], mine) if mine else []:
            hess = _group_hessians(layer, inputs, {n: mine[n] for n in names}, inputs[0][0].device)
            for n in names:
                r = fns[n](mine[n].weight.detach().float().cpu(), hess[n])
                _set_weight(mine[n], r.weight)
                done[n] = r if recon is not None else _kept(r, blocks)  # recon still needs the float weight
        if recon is not None and done:
            done = reconstruct_block(layer, done, mine, orig, inputs, targets, recon)
            for n, r in done.items():
                _set_weight(mine[n], r.weight)
        if store is not None and done:
            store.save(i, done)
    if store is not None and blocks is not None and done:  # a big model: its finished blocks stay on disk
        done = store.mapped(i, done)
    if recon is not None:
        fp_inputs = [(t, kw) for t, (_hs, kw) in zip(targets, fp_inputs, strict=True)]
    with torch.inference_mode():
        inputs = [(block_output(layer(hs, **kw)), kw) for hs, kw in inputs]
    return inputs, fp_inputs, done


def bits_per_weight(results: dict[str, QResult], model: Any) -> float:
    """Average stored bits per weight over the decoder linears (16 for the reference)."""
    if not results:
        return 16.0
    n = sum(int(r.weight.numel()) for r in results.values())
    return sum(r.bits for r in results.values()) / n


def timed_apply(model: Any, method: Quantizer, calib: np.ndarray | None, skip: tuple[str, ...] = (),
                rules: LayerRules = NO_RULES, store: BlockStore | None = None, device: Any = "cpu",
                blocks: BlockLoader | None = None) -> tuple[dict[str, QResult], float]:
    t0 = time.perf_counter()
    res = apply(model, method, calib, skip, rules=rules, store=store, device=device, blocks=blocks)
    return res, time.perf_counter() - t0
