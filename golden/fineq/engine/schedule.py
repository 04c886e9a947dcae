"""The GEMM engine's stream order, shared by the golden hardware-order path,
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

import numpy as np

from fineq.engine.config import EngineConfig, tiles
from fineq.format.codec import BLOCK_BYTES, BLOCK_WEIGHTS, decode_block


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
