"""The GEMM engine's stream formats, shared by the golden hardware-order path,
the cocotb drivers and ``fineq gemm`` (see ``docs/microarchitecture.md``).

Loop nest (the engine's sequencer and the driver agree on it)::

    for chunk in M chunks of PSUM_DEPTH rows:
        for t in K tiles of ROWS weights:
            activation beats: rows k = ROWS*t .. min(K, ROWS*(t+1)) - 1 of X
            for m in chunk:  one weight beat = BPV blocks of row m

A weight beat carries the ``BPV = ceil((ROWS + 16) / 24)`` consecutive blocks
of row ``m`` starting at block ``b0 = (ROWS*t) // 24``; the engine decodes all
of them and takes the ``ROWS`` weights starting at ``skip = ROWS*t - 24*b0``
(0, 8 or 16). Slots past the row's last block are sent as zeros. Weights at
``k >= K`` are masked to 0 by the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .codec import BLOCK_BYTES, BLOCK_WEIGHTS, decode_block
from .errors import FineQError

CODINGS = ("thermometer", "binary")  # CODING = 0, 1 of fineq_gemm_engine
FILL_CYCLES = 3  # per pass: decode register, encoder load, accumulate stage (docs/microarchitecture.md)


@dataclass(frozen=True)
class EngineConfig:
    """Engine parameters (the Verilog parameters of ``fineq_gemm_engine``)."""

    rows: int = 64
    cols: int = 64
    psum_depth: int = 256
    coding: str = "thermometer"

    def __post_init__(self) -> None:
        if self.rows < 8 or self.rows % 8:
            raise FineQError(f"ROWS must be a positive multiple of 8, got {self.rows}")
        if self.cols < 1:
            raise FineQError(f"COLS must be positive, got {self.cols}")
        if self.psum_depth < 1:
            raise FineQError(f"PSUM_DEPTH must be positive, got {self.psum_depth}")
        if self.coding not in CODINGS:
            raise FineQError(f"coding must be one of {', '.join(CODINGS)}, got {self.coding!r}")

    @property
    def params(self) -> dict[str, int]:
        """The Verilog parameters of ``fineq_gemm_engine`` for this configuration."""
        return {"ROWS": self.rows, "COLS": self.cols, "PSUM_DEPTH": self.psum_depth,
                "CODING": CODINGS.index(self.coding)}

    @property
    def name(self) -> str:
        return f"{self.rows}x{self.cols}d{self.psum_depth}" + ("b" if self.coding == "binary" else "")

    @property
    def bpv(self) -> int:
        """Blocks per weight beat."""
        return -(-(self.rows + 16) // BLOCK_WEIGHTS)


def tiles(k: int, cfg: EngineConfig) -> int:
    return -(-k // cfg.rows)


def beat_window(t: int, cfg: EngineConfig) -> tuple[int, int]:
    """First block and skip (weights) of K tile ``t``."""
    b0 = (cfg.rows * t) // BLOCK_WEIGHTS
    return b0, cfg.rows * t - BLOCK_WEIGHTS * b0


def weight_beat(packed: np.ndarray, m: int, t: int, cfg: EngineConfig) -> list[bytes]:
    """The BPV blocks (7 bytes each) of row ``m`` for K tile ``t``; zeros past the row."""
    nb = packed.shape[1] // BLOCK_BYTES
    b0, _ = beat_window(t, cfg)
    out = []
    for b in range(b0, b0 + cfg.bpv):
        if b < nb:
            out.append(bytes(packed[m, BLOCK_BYTES * b : BLOCK_BYTES * (b + 1)]))
        else:
            out.append(bytes(BLOCK_BYTES))
    return out


def decode_beat(blocks: list[bytes], t: int, k: int, cfg: EngineConfig) -> np.ndarray:
    """Weight vector ``int8 [ROWS]`` the engine forms from a beat (bit-level decode, skip, mask)."""
    _, skip = beat_window(t, cfg)
    lv: list[int] = []
    for blk in blocks:
        lv.extend(decode_block(blk))
    vec = np.array(lv[skip : skip + cfg.rows], dtype=np.int8)
    valid = k - cfg.rows * t
    if valid < cfg.rows:
        vec[valid:] = 0
    return vec


def schedule(m: int, k: int, cfg: EngineConfig) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(chunk_start, chunk_end, t, m)`` in weight-beat order."""
    for c0 in range(0, m, cfg.psum_depth):
        c1 = min(m, c0 + cfg.psum_depth)
        for t in range(tiles(k, cfg)):
            for row in range(c0, c1):
                yield c0, c1, t, row


def act_rows(k: int, t: int, cfg: EngineConfig) -> range:
    """The rows of X sent as activation beats before tile ``t``."""
    return range(cfg.rows * t, min(k, cfg.rows * (t + 1)))


def vector_length(max_mag: Any, coding: str = "thermometer") -> Any:
    """Temporal cycles of a vector whose largest magnitude is ``max_mag`` (scalar or array).

    Thermometer (the paper's): ``max(1, max |v|)``: 1, 1, 2, 3 for 0..3. Binary-weighted (variant,
    ``|v| = b0 + 2*b1``): 2 if some ``|v| >= 2``, else 1. A vector whose magnitudes are all 0 still
    takes one cycle (the encoder emits an all-zero bitstream for it; see docs/microarchitecture.md).
    """
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


def engine_cycles(levels: np.ndarray, cfg: EngineConfig) -> dict[str, int]:
    """Exact cycle count of one ``fineq_gemm_engine`` run (N <= COLS) with no stalls.

    Per pass (M chunk x K tile): ``rows_t`` preload cycles (one activation row
    each), ``FILL_CYCLES`` = 3 fill/drain cycles (weight beat -> decode register
    -> encoder, and the accumulate stage after the tree-sum register), then the
    temporal cycles of the chunk's vectors back to back; plus 1 final cycle to
    hand over the last output row. Returns the split and the total.
    """
    m, k = levels.shape
    nchunks = -(-m // cfg.psum_depth)
    ntiles = -(-k // cfg.rows)
    parts = {
        "preload": nchunks * k,
        "decode": FILL_CYCLES * nchunks * ntiles,
        "temporal": int(vector_cycles(levels, cfg).sum()),
        "drain": 1,
    }
    parts["total"] = sum(parts.values())
    return parts


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


def level_stats(levels: list[np.ndarray], cfg: EngineConfig | None = None) -> dict[str, float]:
    """Hardware side of a set of quantized matrices: share of non-zero levels, and the mean temporal
    cycles of a ``ROWS``-weight vector (``max(1, max |v|)``, what the engine spends on it)."""
    cfg = cfg or EngineConfig()
    nz = sum(int(np.count_nonzero(lv)) for lv in levels)
    n = sum(int(lv.size) for lv in levels)
    vc = [vector_cycles(lv, cfg) for lv in levels]
    return {"nonzero_levels": nz / n, "cycles_per_vector": float(sum(int(v.sum()) for v in vc) / sum(v.size for v in vc))}
