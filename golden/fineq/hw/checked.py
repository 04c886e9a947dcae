"""An RTL GEMM checked as it runs: the engine's output against :func:`fineq.gemm`, bit for bit, and each
engine run's cycles against the cycle model. A difference stops the caller with one message naming the
GEMM, the tile and the first differing element (the scoreboard of ``fineq eval --backend``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fineq.engine.config import EngineConfig
from fineq.engine.gemm import gemm
from fineq.errors import FineQError
from fineq.format.qmatrix import QuantizedMatrix
from fineq.hw.cluster import Engines
from fineq.hw.run import n_tiles, run_gemm


class Mismatch(FineQError):
    """The RTL and the golden model disagree."""


def check(name: str, res: dict[str, Any], ref: np.ndarray, cols: int) -> None:
    """Raise :class:`Mismatch` at the first tile whose output or cycle count differs."""
    y = res["y"]
    for i, (c0, c1) in enumerate(n_tiles(ref.shape[1], cols)):
        got, want = y[:, c0:c1], ref[:, c0:c1]
        if not np.array_equal(got, want):
            r, c = (int(v) for v in np.argwhere(got != want)[0])
            raise Mismatch(f"{name}: the RTL output differs from fineq.gemm in tile {i} (tokens {c0}..{c1 - 1}): "
                           f"Y[{r}, {c0 + c}] = {int(got[r, c])}, golden {int(want[r, c])}")
        if res["tile_cycles"][i] != res["tile_model_cycles"]:
            raise Mismatch(f"{name}: tile {i} (tokens {c0}..{c1 - 1}) took {res['tile_cycles'][i]:,} cycles on the "
                           f"RTL, the cycle model says {res['tile_model_cycles']:,}")


def checked_gemm(name: str, q: QuantizedMatrix, x: np.ndarray, backend: str, cfg: EngineConfig,
                 engines: Engines) -> dict[str, Any]:
    """``run_gemm`` on ``engines``, then :func:`check`; returns run_gemm's result."""
    res = run_gemm(q, x, backend, rows=cfg.rows, cols=cfg.cols, psum_depth=cfg.psum_depth, coding=cfg.coding,
                   executor=engines.executor, show_progress=False)
    check(name, res, gemm(q, x), cfg.cols)
    return res
