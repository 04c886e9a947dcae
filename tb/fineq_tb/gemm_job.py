"""Run a GEMM through the engine's cocotb/pyuvm environment (a testbench-side job runner).

The job (the same job file as every backend, :mod:`fineq.hw.job`) goes to ``GemmFileTest`` (the same driver,
monitors and scoreboard as the regression), which writes back Y and the engine's cycle counter. Used by
``synth/activity.py`` (VCD switching activity) and ``sim/engine_bench.py`` (the
cocotb speed baseline); the product path is ``fineq.hw``. Logs go to
``build/gemm/<backend>-<config>-<random>/``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from fineq.engine.config import EngineConfig
from fineq.engine.cycles import engine_cycles
from fineq.errors import FineQError
from fineq.format.qmatrix import QuantizedMatrix
from fineq.hw.job import EngineRun, make_job

from . import runner

ROOT = runner.ROOT


def run_engine(q: QuantizedMatrix, x: np.ndarray, cfg: EngineConfig, backend: str, seed: int = 0,
               waves: bool = False, stall: float = 0.0, cxx_opt: str = "-O0",
               trace_depth: int | None = None) -> EngineRun:
    """One engine run (``x.shape[1] <= cfg.cols``) from the job file every backend reads (:mod:`fineq.hw.job`)."""
    from cocotb_tools.check_results import get_results

    job = make_job(q, x, cfg, engine_cycles(q.levels(), cfg)["total"], stall, seed)
    name = cfg.name
    (ROOT / "build" / "gemm").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{backend}-{name}-", dir=ROOT / "build" / "gemm"))
    jf, result = job.write(work / "job.bin"), work / "result.npz"
    xml = runner.run("fineq_gemm_engine", "test_fineq_gemm_engine", backend, cfg.params, name=name,
                     testcase="GemmFileTest", test_dir=work, cxx_opt=cxx_opt, log_file=work / "sim.log",
                     extra_env={"FINEQ_JOB": str(jf), "FINEQ_RESULT": str(result)}, trace_depth=trace_depth,
                     seed=seed, waves=waves or trace_depth is not None)
    ntests, nfail = get_results(Path(xml))
    if nfail or ntests != 1 or not result.exists():
        raise FineQError(f"the RTL run failed its scoreboard or did not finish; see {work / 'sim.log'}")
    with np.load(result) as z:
        y = z["y"][:, : x.shape[1]].astype(np.int64)
        cycles = int(z["cycles"])
    secs = _sim_seconds(Path(xml))
    return EngineRun(y, cycles, secs, cycles, extra={"log": str(work / "sim.log"), "work": str(work)})


def _sim_seconds(xml: Path) -> float:
    import xml.etree.ElementTree as ET

    for tc in ET.parse(xml).iter("testcase"):
        return float(tc.get("time", "nan"))
    return float("nan")
