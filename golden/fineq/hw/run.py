"""Run ``Y = V @ X`` on a backend: the golden model (with the cycle model) or the RTL.

N larger than the engine's COLS is tiled here, in the driver: each tile of
COLS columns is one engine run, and the cycle counts add up. The runs are
independent simulations; ``jobs`` of them run at once (one per core by
default), each a complete engine run from reset to ``done_o``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import numpy as np

from fineq.engine.config import EngineConfig, coding_for
from fineq.engine.cycles import engine_cycles
from fineq.engine.gemm import check_activations, gemm
from fineq.errors import FineQError
from fineq.format.qmatrix import QuantizedMatrix
from fineq.hw.job import EngineRun
from fineq.hw.procs import worker_pool

BACKENDS = ("golden", "icarus", "verilator")
#: Simulation speed of the 64x64 engine through fineq.hw, measured (Verilator: ``make measure``; Icarus: a
#: 128 x 256 x 16 GEMM), for estimates; scaled by 4096 / (ROWS * COLS) for other arrays.
RTL_CYCLES_PER_SECOND = {"verilator": 150_000, "icarus": 6}


def cycles_per_second(backend: str, cfg: EngineConfig) -> float:
    """The estimate's simulation speed of one simulator process for ``cfg``'s array."""
    return RTL_CYCLES_PER_SECOND[backend] * 4096 / (cfg.rows * cfg.cols)


def n_tiles(n: int, cols: int) -> list[tuple[int, int]]:
    return [(c, min(n, c + cols)) for c in range(0, n, cols)]


def run_tile(backend: str, q: QuantizedMatrix, x: np.ndarray, cfg: EngineConfig, stall: float, seed: int,
             model_cycles: int, vcd: str | None = None) -> EngineRun:
    """One engine run (``x.shape[1] <= cfg.cols``) on an RTL backend: a module-level function, so that a
    distributed engine's worker can be sent it by reference (:mod:`fineq.hw.cluster`)."""
    if backend == "verilator":
        from fineq.hw.native import run_engine
    elif backend == "icarus":
        from fineq.hw.icarus import run_engine
    else:
        raise FineQError(f"run_tile runs an RTL backend (icarus, verilator), not {backend!r}")
    kw = {} if vcd is None else {"vcd": vcd}
    return run_engine(q, x, cfg, stall=stall, seed=seed, model_cycles=model_cycles, **kw)


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
    jobs: int | None = None,
    coding: str | None = None,
    announce: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Return ``{"y": int64 [M, N], "cycles": int, "backend": str, "cycle_split": {...}, ...}``; the cycle model
    runs once here (its count also sets every run's watchdog).

    RTL backends add ``sim_seconds`` (summed over engine runs), ``cycles_per_second`` (one simulator's
    speed), ``wall_seconds`` and ``jobs`` (engine runs simulated at once; default: one per core).
    ``announce(model_cycles, engine_runs)`` is called before the RTL runs start (``fineq gemm``'s estimate).
    ``coding``: the engine's datapath; None: the default for ``q``'s codebook (thermometer for the spec's levels,
    pow2 for the power-of-two ones); a coding that would misread ``q``'s levels is a FineQError.
    ``executor`` (a ``concurrent.futures.Executor``: a local pool or a distributed engine's, see
    :mod:`fineq.hw.cluster`) runs the engine runs instead of a pool of ``jobs`` made here; ``tile_cycles``
    lists each run's cycles."""
    if waves and backend != "icarus":
        raise FineQError("--waves needs --backend icarus (the native Verilator harness runs without tracing)")
    if backend not in BACKENDS:
        raise FineQError(f"backend must be one of {BACKENDS}, got {backend!r}")
    x = check_activations(q, x)
    cfg = EngineConfig(rows=rows, cols=cols, psum_depth=psum_depth, coding=coding_for(q.codebook, coding))
    tiles = n_tiles(x.shape[1], cols)
    split = engine_cycles(q.levels(), cfg)
    model_cycles = split["total"] * len(tiles)
    res: dict[str, Any] = {"backend": backend, "shape": [q.shape[0], q.shape[1], x.shape[1]],
                           "rows": rows, "cols": cols, "n_tiles": len(tiles)}
    if backend == "golden":
        # the cycle model's count is the golden backend's (the same fields as an RTL run's, no simulation)
        res.update(y=gemm(q, x), cycles=model_cycles, model_cycles=model_cycles, cycle_split=split, sim_seconds=0.0,
                   cycles_per_second=None, tile_cycles=[split["total"]] * len(tiles), tile_model_cycles=split["total"])
        return res
    from fineq.progress import progress

    if announce is not None:
        announce(model_cycles, len(tiles))
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tiles)))
    if jobs > 1 and waves:
        jobs = 1  # one VCD at a time
    if backend == "verilator":  # build (or find) the simulator once, before the runs share it
        from fineq.hw.native import build

        build_seconds = build(cfg)[1]
    else:
        build_seconds = 0.0

    n = len(tiles)
    # the arguments of each run, as values (a distributed engine sends them to its workers; no closure)
    args = ([backend] * n, [q] * n, [np.ascontiguousarray(x[:, c0:c1]) for c0, c1 in tiles], [cfg] * n,
            [stall] * n, [seed + i for i in range(n)], [split["total"]] * n,
            [f"fineq-gemm-tile{i}.vcd" if waves else None for i in range(n)])
    y = np.zeros((q.shape[0], x.shape[1]), dtype=np.int64)
    cycles = 0
    sim_seconds = 0.0
    extra: dict[str, Any] = {}
    t0 = time.perf_counter()
    tile_cycles = []
    with contextlib.ExitStack() as stack:
        if executor is None:  # each run is a simulator process: threads only wait; killed on failure
            executor = stack.enter_context(worker_pool(jobs))
        outs = executor.map(run_tile, *args)
        if show_progress:
            outs = progress(outs, total=len(tiles), desc=f"RTL ({backend})", unit="engine run")
        for (c0, c1), out in zip(tiles, outs, strict=True):
            tile_cycles.append(out.cycles)
            build_seconds += out.build_seconds
            y[:, c0:c1] = out.y
            cycles += out.cycles
            sim_seconds += out.sim_seconds
            if "waves" in out.extra:
                extra.setdefault("waves", []).append(out.extra["waves"])
    extra["wall_seconds"] = round(time.perf_counter() - t0, 3)
    extra["jobs"] = jobs
    res.update(y=y, cycles=cycles, model_cycles=model_cycles, tile_cycles=tile_cycles, stall=stall,
               sim_seconds=round(sim_seconds, 6),
               cycles_per_second=round(cycles / sim_seconds) if sim_seconds > 0 else None, **extra)
    res["build_seconds"] = round(build_seconds, 1)
    res["tile_model_cycles"] = split["total"]
    if stall == 0:
        res["cycles_match_model"] = cycles == model_cycles
    return res
