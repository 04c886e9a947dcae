"""Run ``Y = V @ X`` on a backend: the golden model (with the cycle model) or the RTL.

N larger than the engine's COLS is tiled here, in the driver: each tile of
COLS columns is one engine run, and the cycle counts add up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .engine import EngineConfig, engine_cycles
from .errors import FineQError
from .gemm import check_activations, gemm
from .qmatrix import QuantizedMatrix

BACKENDS = ("golden", "icarus", "verilator")


def n_tiles(n: int, cols: int) -> list[tuple[int, int]]:
    return [(c, min(n, c + cols)) for c in range(0, n, cols)]


def run_gemm(
    q: QuantizedMatrix,
    x: Any,
    backend: str = "golden",
    seed: int = 0,
    rows: int = 64,
    cols: int = 64,
    psum_depth: int = 256,
    waves: bool = False,
    stall: float = 0.0,
) -> dict[str, Any]:
    """Return ``{"y": int64 [M, N], "cycles": int, "backend": str, "cycle_split": {...}, ...}``."""
    if waves and backend != "icarus":
        raise FineQError("--waves needs --backend icarus (the native Verilator harness runs without tracing)")
    if backend not in BACKENDS:
        raise FineQError(f"backend must be one of {BACKENDS}, got {backend!r}")
    cfg = EngineConfig(rows=rows, cols=cols, psum_depth=psum_depth)
    x = check_activations(q, x)
    tiles = n_tiles(x.shape[1], cols)
    split = engine_cycles(q.levels(), cfg)
    model_cycles = split["total"] * len(tiles)
    res: dict[str, Any] = {"backend": backend, "shape": [q.shape[0], q.shape[1], x.shape[1]],
                           "rows": rows, "cols": cols, "n_tiles": len(tiles)}
    if backend == "golden":
        res.update(y=gemm(q, x), cycles=model_cycles, cycle_split=split)
        return res
    from .progress import progress

    y = np.zeros((q.shape[0], x.shape[1]), dtype=np.int64)
    cycles = 0
    sim_seconds = 0.0
    build_seconds = 0.0
    extra: dict[str, Any] = {}
    for i, (c0, c1) in enumerate(progress(tiles, desc=f"RTL ({backend})", unit="engine run")):
        if backend == "verilator":
            from .hw.native import run_engine as native_run

            out = native_run(q, x[:, c0:c1], cfg, stall=stall, seed=seed + i)
        else:
            from .hw.icarus import run_engine as icarus_run

            vcd = f"fineq-gemm-tile{i}.vcd" if waves else None
            out = icarus_run(q, x[:, c0:c1], cfg, stall=stall, seed=seed + i, vcd=vcd)
            if vcd:
                extra.setdefault("waves", []).append(str(Path(vcd).resolve()))
        build_seconds += out["build_seconds"]
        y[:, c0:c1] = out["y"]
        cycles += out["cycles"]
        sim_seconds += out["sim_seconds"]
    res.update(y=y, cycles=cycles, model_cycles=model_cycles, stall=stall, sim_seconds=round(sim_seconds, 6),
               cycles_per_second=round(cycles / sim_seconds) if sim_seconds > 0 else None, **extra)
    res["build_seconds"] = round(build_seconds, 1)
    if stall == 0:
        res["cycles_match_model"] = cycles == model_cycles
    return res
