"""The engine's cycle model, written once: exact cycles of a ``fineq_gemm_engine`` run with no stalls (equal to
the RTL's counter), temporal cycles per weight vector for each coding, PE utilization, and the hardware side of
quantized levels. Everything that counts FineQ cycles (``fineq.hw`` checks, ``fineq.perf``, ``fineq eval``'s
hardware columns) calls these."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from fineq.engine.config import EngineConfig

FILL_CYCLES = 3  # per pass: decode register, encoder load, accumulate stage (docs/microarchitecture.md)


def vector_length(max_mag: Any, coding: str = "thermometer") -> Any:
    """Temporal cycles of a vector whose largest magnitude is ``max_mag`` (scalar or array).

    Thermometer (the paper's): ``max(1, max |v|)``: 1, 1, 2, 3 for 0..3. Binary-weighted (variant,
    ``|v| = b0 + 2*b1``): 2 if some ``|v| >= 2``, else 1. Power-of-two (the variant that runs the ``pow2``
    codebook's levels 0, 1, 2, 4; a PE selects x, 2x or 4x): always 1. A vector whose magnitudes are all 0 still
    takes one cycle (the encoder emits an all-zero bitstream for it; see docs/microarchitecture.md).
    """
    if coding == "pow2":
        return np.ones(np.shape(max_mag), dtype=np.int64)
    if coding == "binary":
        return 1 + (np.asarray(max_mag) >= 2).astype(np.int64)
    return np.maximum(1, np.asarray(max_mag)).astype(np.int64)


def vector_cycles(levels: np.ndarray, cfg: EngineConfig) -> np.ndarray:
    """Temporal cycles of every weight vector ``[M, tiles]`` (:func:`vector_length` of its largest magnitude)."""
    m, k = levels.shape
    nt = -(-k // cfg.rows)
    pad = np.zeros((m, nt * cfg.rows), dtype=np.int8)
    pad[:, :k] = np.abs(levels)
    return vector_length(pad.reshape(m, nt, cfg.rows).max(axis=2), cfg.coding)


def run_cycles(m: int, k: int, temporal: int, cfg: EngineConfig) -> dict[str, int]:
    """Exact cycle count of one ``fineq_gemm_engine`` run (N <= COLS) with no stalls, given the run's
    ``temporal`` cycles (the sum of :func:`vector_cycles`).

    Per pass (M chunk x K tile): ``rows_t`` preload cycles (one activation row each), ``FILL_CYCLES`` = 3
    fill/drain cycles (weight beat -> decode register -> encoder, and the accumulate stage after the tree-sum
    register), then the temporal cycles of the chunk's vectors back to back; plus 1 final cycle to hand over
    the last output row. Returns the split and the total.
    """
    nchunks = -(-m // cfg.psum_depth)
    ntiles = -(-k // cfg.rows)
    parts = {"preload": nchunks * k, "decode": FILL_CYCLES * nchunks * ntiles, "temporal": int(temporal), "drain": 1}
    parts["total"] = sum(parts.values())
    return parts


def engine_cycles(levels: np.ndarray, cfg: EngineConfig) -> dict[str, int]:
    """Exact cycle count of one engine run (N <= COLS) on these levels: :func:`run_cycles`."""
    m, k = levels.shape
    return run_cycles(m, k, int(vector_cycles(levels, cfg).sum()), cfg)


def gemm_cycles(m: int, k: int, n: int, temporal: int, cfg: EngineConfig) -> dict[str, int]:
    """Cycles of ``Y[M, N] = V @ X`` on the engine: ``ceil(N / COLS)`` runs of :func:`run_cycles` (the driver
    tiles N by COLS), split as it is."""
    runs = -(-n // cfg.cols)
    split = {key: runs * v for key, v in run_cycles(m, k, temporal, cfg).items()}
    return split


def mac_cycle_split(m: int, k: int, n: int, cfg: EngineConfig) -> dict[str, int]:
    """The baseline MAC systolic array's cycles, as its testbench drives it: per K tile, ``rows_t`` preload
    cycles, ``M`` weight vectors one per cycle, and ``ROWS + COLS - 1`` cycles to drain the skew; N tiled by COLS.
    (The testbench checks every output at exactly the cycle this schedule gives.)"""
    runs = -(-n // cfg.cols)
    tiles = -(-k // cfg.rows)
    split = {"preload": runs * k, "stream": runs * tiles * m, "drain": runs * tiles * (cfg.rows + cfg.cols - 1)}
    split["total"] = sum(split.values())
    return split


def utilization(levels: np.ndarray, n: int, cfg: EngineConfig) -> dict[str, float]:
    """PE-array utilization of one engine run (``n <= COLS`` columns of X) with no stalls.

    ``useful``: PE-cycles in which a PE emits a 1-bit of a real weight for a real
    activation (``sum |v| * n``: the additions the GEMM needs), over all
    PE-cycles of the run (``cycles * ROWS * COLS``).
    ``temporal``: PE-cycles inside temporal cycles that hold a real (k, n)
    pair, whether the bit is 1 or 0, over all PE-cycles.
    """
    m, k = levels.shape
    total = engine_cycles(levels, cfg)["total"]
    all_pe = total * cfg.rows * cfg.cols
    useful = int(np.abs(levels).astype(np.int64).sum()) * n
    vc = vector_cycles(levels, cfg)  # [M, tiles]
    rows_t = np.minimum(cfg.rows, k - cfg.rows * np.arange(vc.shape[1]))
    temporal = int((vc * rows_t[None, :]).sum()) * n
    return {"useful": useful / all_pe, "temporal": temporal / all_pe, "cycles": total}


def level_stats(levels: Iterable[np.ndarray], cfg: EngineConfig | None = None) -> dict[str, float]:
    """Hardware side of a set of quantized matrices: share of non-zero levels, and the mean temporal
    cycles of a ``ROWS``-weight vector (``max(1, max |v|)``, what the engine spends on it). ``levels`` is read
    once, one matrix at a time (a generator keeps one matrix's levels in memory)."""
    cfg = cfg or EngineConfig()
    nz = n = cycles = vectors = 0
    for lv in levels:
        nz += int(np.count_nonzero(lv))
        n += int(lv.size)
        vc = vector_cycles(lv, cfg)
        cycles += int(vc.sum())
        vectors += int(vc.size)
    return {"nonzero_levels": nz / n, "cycles_per_vector": float(cycles / vectors)}
