"""One engine run as data: the :class:`Job` every backend runs (the native Verilator harness, the Icarus
testbench and the cocotb environment all read the same job file) and the :class:`EngineRun` every backend returns.

Job file (little-endian; ``harness.cpp``, ``fineq_engine_tb.v`` and the engine's cocotb testbench read it)::

    char[8] "FQJOB001"; u32 rows, cols, bpv, m, k, n_act, n_wgt, seed; f64 stall; u64 max_cycles
    n_act activation beats of cols bytes (lane c = X[k, c], int8)
    n_wgt weight beats of bpv * 7 bytes (block b at bytes 7b..7b+6, the spec's byte order)

The streams are those of :mod:`fineq.hw.streams`. ``max_cycles`` is the watchdog: a run that has not finished
by then is an error, never a result.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fineq.engine.config import EngineConfig
from fineq.engine.cycles import engine_cycles
from fineq.errors import FineQError
from fineq.format.codec import BLOCK_BYTES
from fineq.format.qmatrix import QuantizedMatrix
from fineq.hw.streams import act_stream, weight_stream

MAGIC = b"FQJOB001"
_HEAD = struct.Struct("<8s8IdQ")


def watchdog(model_cycles: int, stall: float) -> int:
    """The cycle limit of a run whose stall-free cycle count is ``model_cycles``: 20x, plus margin for stalls."""
    limit = 20 * model_cycles + 2000
    if stall > 0:
        limit = int(limit / (1 - stall) ** 3) + 2000
    return limit


@dataclass(frozen=True)
class Job:
    """One engine run (``N <= COLS``): the configuration, the two input streams, stalls and the watchdog."""

    cfg: EngineConfig
    m: int
    k: int
    act: np.ndarray  # uint8 [n_act, COLS]
    wgt: np.ndarray  # uint8 [n_wgt, BPV * 7]
    max_cycles: int  # the watchdog (:func:`watchdog` of the cycle model's count)
    stall: float = 0.0
    seed: int = 0

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        with open(path, "wb") as f:
            f.write(_HEAD.pack(MAGIC, self.cfg.rows, self.cfg.cols, self.cfg.bpv, self.m, self.k, len(self.act),
                               len(self.wgt), self.seed & 0xFFFFFFFF, self.stall, self.max_cycles))
            f.write(np.ascontiguousarray(self.act, dtype=np.uint8).tobytes())
            f.write(np.ascontiguousarray(self.wgt, dtype=np.uint8).tobytes())
        return path


def make_job(q: QuantizedMatrix, x: np.ndarray, cfg: EngineConfig, model_cycles: int, stall: float = 0.0,
             seed: int = 0) -> Job:
    """The job of ``Y = V @ X`` for one engine run; ``model_cycles`` from the caller (computed once per GEMM)."""
    if x.shape[1] > cfg.cols:
        raise FineQError(f"N={x.shape[1]} exceeds COLS={cfg.cols}; tile N in the caller (fineq.hw.run)")
    m, k = q.shape
    return Job(cfg, m, k, act_stream(x, k, m, cfg), weight_stream(q, cfg), watchdog(model_cycles, stall), stall, seed)


def read_job(path: str | Path, coding: str = "thermometer", psum_depth: int | None = None) -> Job:
    """A job file read back (the cocotb environment runs it). ``psum_depth`` and ``coding`` are not in the file:
    the runner builds the engine with them."""
    data = Path(path).read_bytes()
    if len(data) < _HEAD.size or data[:8] != MAGIC:
        raise FineQError(f"{path}: not a FineQ job file")
    _, rows, cols, bpv, m, k, n_act, n_wgt, seed, stall, max_cycles = _HEAD.unpack_from(data)
    cfg = EngineConfig(rows, cols, psum_depth or 256, coding)
    if bpv != cfg.bpv:
        raise FineQError(f"{path}: BPV {bpv} does not match ROWS {rows}")
    end = _HEAD.size + n_act * cols + n_wgt * bpv * BLOCK_BYTES
    if len(data) != end:
        raise FineQError(f"{path}: {len(data)} bytes, expected {end}")
    act = np.frombuffer(data, np.uint8, n_act * cols, _HEAD.size).reshape(n_act, cols)
    wgt = np.frombuffer(data, np.uint8, n_wgt * bpv * BLOCK_BYTES, _HEAD.size + n_act * cols).reshape(n_wgt, -1)
    return Job(cfg, m, k, act, wgt, max_cycles, stall, seed)


@dataclass
class EngineRun:
    """What one engine run on any backend returns."""

    y: np.ndarray  # int64 [M, N]
    cycles: int  # the engine's cycle counter (cycles_o)
    sim_seconds: float  # simulation time of the run
    sim_cycles: int = 0  # clock cycles simulated (reset and start included)
    build_seconds: float = 0.0  # simulator build of this run (0: cached)
    extra: dict[str, object] = field(default_factory=dict)  # backend-specific (waves file, log folder)

    @property
    def cycles_per_second(self) -> float:
        return self.sim_cycles / self.sim_seconds if self.sim_seconds > 0 else float("inf")


def run_matrix(run_job: Callable[..., EngineRun], q: QuantizedMatrix, x: np.ndarray, cfg: EngineConfig,
               stall: float = 0.0, seed: int = 0, model_cycles: int | None = None, **kw: object) -> EngineRun:
    """One engine run of ``Y = V @ X`` (``x.shape[1] <= cfg.cols``) on a backend's ``run_job``: the job made,
    run, and Y cut to N columns. ``model_cycles`` (the cycle model's count; computed here if not given) sets the
    watchdog; ``kw`` goes to ``run_job``."""
    if model_cycles is None:
        model_cycles = engine_cycles(q.levels(), cfg)["total"]
    out = run_job(make_job(q, x, cfg, model_cycles, stall, seed), **kw)
    out.y = out.y[:, : x.shape[1]]
    return out
