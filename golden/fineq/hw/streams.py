"""The engine's input streams as byte arrays, in the order the engine takes them.

The same loop nest as :mod:`fineq.engine.schedule` (``schedule``, ``act_rows``,
``weight_beat``), vectorized: for each chunk of ``PSUM_DEPTH`` rows of M and
each K tile ``t``, the activation beats are rows ``ROWS*t ..`` of X (one byte
per lane, lanes past N zero) and the weight beats are, for every row of the
chunk, the ``BPV`` blocks starting at block ``ROWS*t // 24`` (zeros past the
row). Tests hold these equal to the per-beat functions of :mod:`fineq.engine.schedule`.
"""

from __future__ import annotations

import numpy as np

from fineq.engine.config import EngineConfig, tiles
from fineq.format.codec import BLOCK_BYTES, BLOCK_WEIGHTS
from fineq.format.qmatrix import QuantizedMatrix


def act_stream(x: np.ndarray, k: int, m: int, cfg: EngineConfig) -> np.ndarray:
    """uint8 ``[beats, COLS]``: every activation beat of one engine run (X is int8 ``[K, N <= COLS]``)."""
    lanes = np.zeros((k, cfg.cols), dtype=np.int8)
    lanes[:, : x.shape[1]] = x
    per_chunk = lanes.view(np.uint8)  # the tiles of one chunk cover rows 0..K-1 once, in order
    return np.tile(per_chunk, (-(-m // cfg.psum_depth), 1))


def weight_stream(q: QuantizedMatrix, cfg: EngineConfig) -> np.ndarray:
    """uint8 ``[beats, BPV * 7]``: every weight beat of one engine run."""
    m, k = q.shape
    nb = q.packed.shape[1] // BLOCK_BYTES
    blocks = np.zeros((m, nb + cfg.bpv, BLOCK_BYTES), dtype=np.uint8)
    blocks[:, :nb] = q.packed.reshape(m, nb, BLOCK_BYTES)
    out = []
    for c0 in range(0, m, cfg.psum_depth):
        c1 = min(m, c0 + cfg.psum_depth)
        for t in range(tiles(k, cfg)):
            b0 = (cfg.rows * t) // BLOCK_WEIGHTS
            out.append(blocks[c0:c1, b0 : b0 + cfg.bpv].reshape(c1 - c0, cfg.bpv * BLOCK_BYTES))
    return np.ascontiguousarray(np.concatenate(out))
