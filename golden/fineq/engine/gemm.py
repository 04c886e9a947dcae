"""Exact integer GEMM ``Y = V @ X`` on decoded levels.

``V`` int8 ``[M, K]`` in -3..+3, ``X`` int8 ``[K, N]``. Every product is at most
``3 * 128 = 384`` in magnitude, so ``|Y| <= 384 * K``: int32 holds it for
``K <= 5,592,405`` and the engine accepts ``K <= 4,194,303`` (22-bit field).
With the power-of-two codebook (levels in {0, +-1, +-2, +-4}) a product is at most
``512``: ``|Y| <= 512 * 4,194,303 = 2,147,483,136 < 2^31``, still exact in int32.
The result is int64 ``[M, N]`` (exact for any K).

Two paths: :func:`gemm` (float64 BLAS on values that are all exact in float64,
since ``384 * K < 2**53``) and :func:`gemm_hw` (walks M chunks, K tiles, weight
vectors and temporal cycles in the accelerator's order; see
``docs/microarchitecture.md``). Tests hold them equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fineq.engine.config import EngineConfig, coding_for
from fineq.engine.schedule import act_rows, decode_beat, schedule, weight_beat
from fineq.errors import FineQError
from fineq.format.qmatrix import QuantizedMatrix

K_MAX = (1 << 22) - 1


def check_activations(q: QuantizedMatrix, x: Any) -> np.ndarray:
    """Validate activations for ``q``: int8 ``[K, N]``; raise FineQError naming the problem."""
    if not isinstance(q, QuantizedMatrix):
        raise FineQError(f"weights must be a fineq.QuantizedMatrix (from fineq.quantize or fineq.load), "
                         f"got {type(q).__name__}")
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise FineQError(f"activations must be int8, got dtype {x.dtype}")
    if x.ndim != 2:
        raise FineQError(f"activations must be 2-D [K, N], got shape {x.shape}")
    if x.shape[0] != q.shape[1]:
        raise FineQError(f"activations have K={x.shape[0]} rows, weights have K={q.shape[1]}")
    if x.shape[1] < 1:
        raise FineQError("activations have N=0 columns")
    return x


def gemm(q: QuantizedMatrix, x: Any) -> np.ndarray:
    """``Y = V @ X`` exactly, int64 ``[M, N]``."""
    x = check_activations(q, x)
    return int_gemm(q.levels(), x)


def group_gemm(q: QuantizedMatrix, x: Any) -> np.ndarray:
    """Every scale's integer partial sum, ``Y_g = V[:, g] @ X[g]`` over the columns ``g`` of each scale (one for a
    per-row matrix, one per group with group scales), exactly: int64 ``[G, M, N]``. What accumulators with a
    scale per group would hold before the scales are applied (docs/format.md "Group scales")."""
    x = check_activations(q, x)
    lv = q.levels()
    return np.stack([int_gemm(lv[:, g], x[g]) for g in q.group_slices()])


def int_gemm(levels: Any, x: Any) -> np.ndarray:
    """``Y = V @ X`` exactly for integer levels ``V [M, K]`` of any width (the MAC array's ``W_W``-bit weights) and
    int8 ``X [K, N]``: int64 ``[M, N]``. Float64 BLAS while every partial sum is exact (``max|V| * 128 * K <
    2^53``), else int64 arithmetic."""
    v, x = np.asarray(levels), np.asarray(x)
    if not np.issubdtype(v.dtype, np.integer) or x.dtype != np.int8:
        raise FineQError(f"int_gemm needs integer levels and int8 activations, got {v.dtype} and {x.dtype}")
    if v.ndim != 2 or x.ndim != 2 or v.shape[1] != x.shape[0]:
        raise FineQError(f"int_gemm shapes do not chain: levels {v.shape}, activations {x.shape}")
    top = int(np.abs(v.astype(np.int64)).max(initial=0))
    if top * 128 * max(1, v.shape[1]) < 2**53:
        return np.rint(v.astype(np.float64) @ x.astype(np.float64)).astype(np.int64)
    return v.astype(np.int64) @ x.astype(np.int64)


#: the power-of-two PE: a field magnitude 0..3 selects 0, x, 2x or 4x (a left shift by ``magnitude - 1``)
POW2_FACTOR = np.array([0, 1, 2, 4], dtype=np.int64)


def temporal_bits(mag: np.ndarray, coding: str = "thermometer") -> list[tuple[np.ndarray, int]]:
    """The cycles of one vector of field magnitudes (0..3, as the decoders give them): ``(what each row's PE passes,
    in units of its activation, int64; weight of the cycle's tree sum)``.

    Thermometer: cycle ``t`` passes ``t < |v|`` (0 or 1), weight 1, for ``max(1, max |v|)`` cycles. Binary: with
    some ``|v| >= 2``, bit 1 of ``|v|`` at weight 2 then bit 0 at weight 1; otherwise bit 0 alone. Power-of-two:
    one cycle, each PE passing 0, 1, 2 or 4 times its activation for magnitude 0, 1, 2, 3 (the ``pow2``
    codebook's levels).
    """
    top = int(mag.max()) if mag.size else 0
    m = np.asarray(mag, dtype=np.int64)
    if coding == "pow2":
        return [(POW2_FACTOR[m], 1)]
    if coding == "binary":
        lo = m & 1
        return [(m >> 1, 2), (lo, 1)] if top >= 2 else [(lo, 1)]
    return [((cyc < m).astype(np.int64), 1) for cyc in range(max(1, top))]


def gemm_hw(q: QuantizedMatrix, x: Any, cfg: EngineConfig | None = None) -> np.ndarray:
    """Hardware-order GEMM: the engine's loop nest, one temporal cycle at a time.

    Weight vectors are formed from weight beats exactly as the engine does
    (bit-level block decode, skip, mask; :mod:`fineq.engine`). For each vector
    ``v`` (``ROWS`` levels) the array runs the cycles of :func:`temporal_bits`
    (``cfg.coding``, which must run ``q``'s codebook: :func:`fineq.engine.config.coding_for`); on each cycle a PE
    outputs its activation where its bit is 1 and 0 elsewhere (the power-of-two PE: 0, 1, 2 or 4 times it), the
    column adder tree applies the signs (the binary coding's first cycle counts twice), and the
    column accumulator adds the tree over cycles and K tiles, keeping partial
    sums of the M chunk in the psum buffer between tiles.
    """
    x = check_activations(q, x)
    cfg = cfg or EngineConfig(coding=coding_for(q.codebook))
    coding_for(q.codebook, cfg.coding)
    m_total, k = q.shape
    n = x.shape[1]
    xi = x.astype(np.int64)
    y = np.zeros((m_total, n), dtype=np.int64)
    xt = np.zeros((cfg.rows, n), dtype=np.int64)
    for c0, _c1, t, m in schedule(m_total, k, cfg):
        if m == c0:  # activation preload of tile t (stale rows beyond K stay; their weights are 0)
            rws = act_rows(k, t, cfg)
            xt[: len(rws)] = xi[rws.start : rws.stop]
        vec = decode_beat(weight_beat(q.packed, m, t, cfg), t, k, cfg).astype(np.int64)
        mag, neg = np.abs(vec), vec < 0
        acc = y[m] if t else np.zeros(n, dtype=np.int64)
        for factor, weight in temporal_bits(mag, cfg.coding):
            out = factor[:, None] * xt
            acc = acc + weight * np.where(neg[:, None], -out, out).sum(axis=0)
        y[m] = acc
    return y
