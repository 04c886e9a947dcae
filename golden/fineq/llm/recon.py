"""Block-wise reconstruction of one decoder block (FineQ mode ``recon``; the method is in
:mod:`fineq.quant.recon`).

:func:`fineq.llm.apply.apply` quantizes a block's linears with ``gptq-ord`` as usual, then calls
:func:`reconstruct_block`: the block, run with its linears' trainable FineQ weights
(:class:`~fineq.quant.recon.LatentFineQ`) on the quantized model's own inputs to this block, is trained to
reproduce the *float* block's outputs on the float model's inputs (mean squared error), all seven linears
together. The block's other parameters (norms) are not trained.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from fineq.format.qmatrix import QuantizedMatrix, from_levels
from fineq.quant.hwaware import VECTOR
from fineq.quant.recon import RECON_MODE, LatentFineQ, ReconConfig, train
from fineq.quant.result import QResult


def plain(x: Any) -> Any:
    """A copy of ``x`` (tensors, tuples, lists, dicts of them) usable by autograd (inference-mode tensors are
    not)."""
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, tuple):
        return tuple(plain(v) for v in x)
    if isinstance(x, list):
        return [plain(v) for v in x]
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    return x


def block_output(out: Any) -> Any:
    """The hidden states a decoder block returns (a tensor, or the first element of a tuple)."""
    return out[0] if isinstance(out, tuple) else out


def _as_recon(q: QuantizedMatrix) -> QuantizedMatrix:
    return dataclasses.replace(q, mode=RECON_MODE)


def reconstruct_block(layer: Any, results: dict[str, QResult], lins: dict[str, Any], orig: dict[str, Any],
                      inputs: list[tuple[Any, dict[str, Any]]], targets: list[Any],
                      cfg: ReconConfig) -> dict[str, QResult]:
    """Train ``results`` (the block's ``gptq-ord`` matrices, by full linear name) so that ``layer`` on ``inputs``
    gives ``targets``; ``orig`` holds the float weights. Returns the new results (mode ``recon``; ``info``
    holds the block's loss before and after), or the old ones relabelled when training did not lower the loss.
    """
    import torch
    from torch.func import functional_call

    local = {id(m): n for n, m in layer.named_modules()}
    pname = {n: local[id(lins[n])] + ".weight" for n in results}
    vec = VECTOR if cfg.keep_vector_caps else None
    lats = {n: LatentFineQ(orig[n], r.qmatrix.levels(), r.qmatrix.codes(), r.qmatrix.scales, vec, r.qmatrix.group,
                           r.qmatrix.codebook) for n, r in results.items()}
    data = [(plain(hs), plain(kw), plain(y)) for (hs, kw), y in zip(inputs, targets, strict=True)]
    grads = [p.requires_grad for p in layer.parameters()]
    for p in layer.parameters():
        p.requires_grad_(False)

    def loss_of(b: int, weights: dict[str, Any]) -> Any:
        hs, kw, y = data[b]
        out = block_output(functional_call(layer, weights, (hs,), kw))
        return torch.mean((out - y) ** 2)

    def total(weights: dict[str, Any]) -> float:
        with torch.no_grad():
            return float(sum(float(loss_of(b, weights)) for b in range(len(data))) / max(1, len(data)))

    try:
        before = total({pname[n]: r.weight for n, r in results.items()})
        train(list(lats.values()), lambda b: loss_of(b, {pname[n]: lt.weight() for n, lt in lats.items()}),
              len(data), cfg)
        hard = {n: lt.hard_weight() for n, lt in lats.items()}
        after = total({pname[n]: w for n, w in hard.items()})
    finally:
        for p, g in zip(layer.parameters(), grads, strict=True):
            p.requires_grad_(g)
    info = {"recon_loss_start": before, "recon_loss": min(before, after), "recon_kept": after < before}
    out: dict[str, QResult] = {}
    for n, r in results.items():
        if after < before:
            lv, codes, s16 = lats[n].harden()
            q = _as_recon(from_levels(lv, codes, s16, r.qmatrix.group, r.qmatrix.codebook))
            w = torch.from_numpy(q.dequantize())
        else:
            q, w = _as_recon(r.qmatrix), r.weight
        out[n] = QResult(w, r.bits, qmatrix=q, in_scale=r.in_scale, info={**(r.info or {}), **info})
    return out


def block_loss_stats(results: dict[str, QResult]) -> dict[str, Any]:
    """Over a model's ``recon`` results: blocks, blocks whose training was kept, and the mean block loss at the
    start (``gptq-ord`` or ``gptq-hw``) and after training (empty for other methods)."""
    from fineq.llm.models import linear_layer_index

    blocks: dict[int, dict[str, Any]] = {}
    for n, r in results.items():
        if r.info and "recon_loss" in r.info:
            blocks[linear_layer_index(n)] = r.info
    if not blocks:
        return {}
    return {"recon_blocks": len(blocks), "recon_blocks_trained": sum(bool(i["recon_kept"]) for i in blocks.values()),
            "recon_loss_start": float(np.mean([i["recon_loss_start"] for i in blocks.values()])),
            "recon_loss": float(np.mean([i["recon_loss"] for i in blocks.values()]))}
