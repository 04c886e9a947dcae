"""The baselines of the paper's Tables I and II, each on one weight matrix ``W [M, K]`` (torch, float32).

Every function returns a :class:`QResult`: the dequantized weight (what the
float evaluation uses) and the bits the method stores, counted in full (levels,
scales, zero points, indices, kept outliers), so ``bits / (M * K)`` is its
bits per weight. Storage assumptions are in ``docs/accuracy.md``.

* ``rtn(W, b)``: asymmetric min/max per output row, ``2^b`` levels; scale
  float16 and a ``b``-bit zero point per row (the paper's RTN; ``b = 3`` is the
  ``rtn3`` yardstick).
* ``uniform(W, b)``: symmetric per row, zero point fixed at ``2^(b-1)``
  (GPTQ's ``sym`` quantizer), levels ``-2^(b-1) .. 2^(b-1) - 1`` times
  ``2 absmax / (2^b - 1)``; float16 scale per row.
* ``gptq_minmax(W, H, b, group)``: GPTQ (see :mod:`fineq.quant.gptq`) with the RTN
  grid, per row or per group of columns (parameters found on the error-updated
  weights at the start of each group, as the reference does).
* ``owq(W, H, target_bits)``: Lee et al., "OWQ: Outlier-Aware Weight
  Quantization for Efficient Fine-Tuning and Inference of Large Language
  Models" (AAAI 2024; reference xvyaward/owq). Weak columns: the largest
  ``H_jj * ||W_j - RTN(W_j)||^2``; kept in float16 (with their GPTQ-compensated
  values) and moved to the end; the other columns GPTQ 2-bit in groups of 128.
  As many weak columns as fit in ``target_bits`` (2.25: Table I).
* ``pbllm(W, H)``: Shang et al., "PB-LLM: Partially Binarized Large Language
  Models" (ICLR 2024; reference hahnyuan/PB-LLM, ``gptq_pb``). Salient weights:
  the 10% largest ``w^2 / U_jj^2`` (GPTQ's OBS saliency) kept at 8 bits
  (per-row min/max); the rest binarized per row, ``mean + alpha * sign(w - mean)``
  with ``alpha = mean |w - mean|`` over the binarized weights; GPTQ error
  feedback over both. Stored: 1 bit per weight, 8 more per salient weight, a
  1-bit mask per weight (PB-LLM's 2.7 bits), plus per-row parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fineq.quant.gptq import gptq, inverse_cholesky, scalar_unit
from fineq.quant.result import QResult

FP16 = 16


def _minmax_params(w: Any, bits: int) -> tuple[Any, Any]:
    """GPTQ's asymmetric quantizer: range includes 0; ``scale = (max - min) / (2^b - 1)``, zero = round(-min/scale)."""
    import torch

    maxq = 2**bits - 1
    zeros = torch.zeros(w.shape[0], dtype=w.dtype)
    xmin = torch.minimum(w.min(dim=1).values, zeros)
    xmax = torch.maximum(w.max(dim=1).values, zeros)
    flat = (xmin == 0) & (xmax == 0)
    xmin[flat], xmax[flat] = -1, 1
    scale = ((xmax - xmin) / maxq).to(torch.float16).to(torch.float32)
    zero = torch.round(-xmin / scale)
    return scale, zero


def _fake_quant(w: Any, scale: Any, zero: Any, maxq: int) -> Any:
    import torch

    q = torch.clamp(torch.round(w / scale[:, None]) + zero[:, None], 0, maxq)
    return scale[:, None] * (q - zero[:, None])


def rtn(w: Any, bits: int = 2) -> QResult:
    m, k = w.shape
    scale, zero = _minmax_params(w, bits)
    return QResult(_fake_quant(w, scale, zero, 2**bits - 1), m * k * bits + m * (FP16 + bits))


def uniform(w: Any, bits: int = 2) -> QResult:
    import torch

    m, k = w.shape
    maxq = 2**bits - 1
    absmax = w.abs().max(dim=1).values
    absmax[absmax == 0] = 1
    scale = (2 * absmax / maxq).to(torch.float16).to(torch.float32)
    zero = torch.full_like(scale, (maxq + 1) // 2)
    return QResult(_fake_quant(w, scale, zero, maxq), m * k * bits + m * FP16)


def gptq_minmax(w: Any, h: Any, bits: int = 2, group: int | None = None, blocksize: int = 128,
                ncols: int | None = None) -> tuple[Any, Any, int]:
    """GPTQ with the min/max grid. Returns ``(Q [M, ncols], W' [M, K], number of parameter sets per row)``."""
    ncols = w.shape[1] if ncols is None else ncols
    if group is not None:
        return gptq_grouped(w, h, bits, group, ncols)
    maxq = 2**bits - 1
    scale, zero = _minmax_params(w[:, :ncols], bits)

    def quant(col: Any, j: int) -> Any:
        return _fake_quant(col[:, None], scale, zero, maxq)[:, 0]

    q, wf = gptq(w, h, scalar_unit(quant), blocksize=blocksize, ncols=ncols)
    return q, wf, 1


def gptq_grouped(w: Any, h: Any, bits: int, group: int, ncols: int,
                  grid: tuple[Callable[[Any], Any], Callable[[Any, Any], Any]] | None = None) -> tuple[Any, Any, int]:
    """GPTQ with per-group parameters: groups are processed as blocks, so each group's parameters are found
    on its columns after every update from the groups before it (the reference finds them on the global W
    at the group's first column; with ``blocksize == group`` the two agree). ``grid`` = ``(params(w) -> p,
    fake(w [M, 1], p) -> [M, 1])``; default the min/max grid of ``bits``."""
    import torch

    if grid is None:
        maxq = 2**bits - 1
        grid = (lambda wg: _minmax_params(wg, bits), lambda col, p: _fake_quant(col, p[0], p[1], maxq))
    params, fake = grid
    u, dead = inverse_cholesky(h)
    w = w.detach().to(torch.float32).clone()
    w[:, dead] = 0
    q = torch.zeros((w.shape[0], ncols), dtype=torch.float32)
    for g0 in range(0, ncols, group):
        g1 = min(g0 + group, ncols)
        p = params(w[:, g0:g1])
        w1 = w[:, g0:g1].clone()
        err1 = torch.zeros_like(w1)
        u1 = u[g0:g1, g0:g1]
        for j in range(g1 - g0):
            qj = fake(w1[:, j : j + 1], p)[:, 0]
            q[:, g0 + j] = qj
            e = (w1[:, j] - qj) / u1[j, j]
            err1[:, j] = e
            w1[:, j + 1 :] -= e[:, None] * u1[j, j + 1 :][None, :]
        w[:, g0:g1] = w1
        w[:, g1:] -= err1 @ u[g0:g1, g1:]
    return q, w, -(-ncols // group)


def gptq_method(w: Any, h: Any, bits: int = 2, group: int | None = None) -> QResult:
    m, k = w.shape
    q, _, nparams = gptq_minmax(w, h, bits, group)
    return QResult(q, m * k * bits + m * nparams * (FP16 + bits))


def owq(w: Any, h: Any, target_bits: float = 2.25, bits: int = 2, group: int = 128) -> QResult:
    import torch

    m, k = w.shape

    def stored(n_weak: int) -> float:
        kq = k - n_weak
        return m * kq * bits + m * -(-kq // group) * (FP16 + bits) + n_weak * (m * FP16 + FP16)

    n_weak = 0
    while n_weak < k - 1 and stored(n_weak + 1) <= target_bits * m * k:
        n_weak += 1
    diag = torch.diag(h).to(torch.float32)
    err = (w - rtn(w, bits).weight).pow(2).sum(dim=0)
    weak = torch.argsort(diag * err, descending=True)[:n_weak]
    keep = torch.ones(k, dtype=torch.bool)
    keep[weak] = False
    perm = torch.cat([torch.arange(k)[keep], weak])
    hp = h[perm][:, perm]
    q, wf, _ = gptq_minmax(w[:, perm], hp, bits, group, ncols=k - n_weak)
    full = torch.cat([q, wf[:, k - n_weak :].to(torch.float16).to(torch.float32)], dim=1)
    out = torch.empty_like(full)
    out[:, perm] = full
    return QResult(out, stored(n_weak), info={"weak_columns": int(n_weak)})


def pbllm(w: Any, h: Any, salient_frac: float = 0.1, high_bits: int = 8, blocksize: int = 128) -> QResult:
    import torch

    m, k = w.shape
    u, _ = inverse_cholesky(h)
    sal = w.pow(2) / torch.diag(u)[None, :].pow(2)
    n_sal = int(round(salient_frac * m * k))
    thresh = torch.kthvalue(sal.flatten(), m * k - n_sal).values if n_sal else torch.tensor(float("inf"))
    salient = sal > thresh
    low = ~salient
    hi_scale, hi_zero = _minmax_params(w, high_bits)
    cnt = low.sum(dim=1).clamp(min=1)
    mean = ((w * low).sum(dim=1) / cnt).to(torch.float16).to(torch.float32)
    alpha = (((w - mean[:, None]).abs() * low).sum(dim=1) / cnt).to(torch.float16).to(torch.float32)
    state = {"mask": low}

    def quant(col: Any, j: int) -> Any:
        hi = _fake_quant(col[:, None], hi_scale, hi_zero, 2**high_bits - 1)[:, 0]
        d = col - mean
        lo = mean + alpha * torch.where(d >= 0, 1.0, -1.0)
        return torch.where(state["mask"][:, j], lo, hi)

    q, _ = gptq(w, h, scalar_unit(quant), blocksize=blocksize)
    bits = (m * k - n_sal) * 1 + n_sal * high_bits + m * k * 1 + m * (FP16 + high_bits + 2 * FP16)
    return QResult(q, bits, info={"salient": n_sal})
