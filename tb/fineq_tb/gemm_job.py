"""Run a GEMM through the engine's cocotb/pyuvm environment (a testbench-side job runner).

The job goes to ``GemmFileTest`` (the same driver, monitors and scoreboard as
the regression), which writes back Y and the engine's cycle counter. Used by
``synth/activity.py`` (VCD switching activity) and ``sim/engine_bench.py`` (the
cocotb speed baseline); the product path is ``fineq.hw``. Logs go to
``build/gemm/<backend>-<config>-<random>/``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fineq.engine import EngineConfig
from fineq.errors import FineQError
from fineq.qmatrix import QuantizedMatrix

from . import runner

ROOT = runner.ROOT


def run_engine(q: QuantizedMatrix, x: np.ndarray, cfg: EngineConfig, backend: str, seed: int = 0,
               waves: bool = False, stall: float = 0.0, cxx_opt: str = "-O0",
               trace_depth: int | None = None) -> dict[str, Any]:
    """One engine run (``x.shape[1] <= cfg.cols``). Returns ``{"y", "cycles", "sim_seconds"}``."""
    if x.shape[1] > cfg.cols:
        raise FineQError(f"N={x.shape[1]} exceeds COLS={cfg.cols}; tile N in the caller (fineq.run)")
    from cocotb_tools.check_results import get_results

    name = cfg.name
    (ROOT / "build" / "gemm").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{backend}-{name}-", dir=ROOT / "build" / "gemm"))
    job, result = work / "job.npz", work / "result.npz"
    np.savez(job, packed=q.packed, scales=q.scales, shape=np.array(q.shape), x=x, stall=np.float64(stall))
    result.unlink(missing_ok=True)
    env_save = {k: os.environ.get(k) for k in ("SEED", "WAVES")}
    os.environ["SEED"] = str(seed)
    os.environ["WAVES"] = "1" if (waves or trace_depth is not None) else "0"
    try:
        xml = runner.run("fineq_gemm_engine", "test_fineq_gemm_engine", backend,
                         cfg.params, name=name,
                         testcase="GemmFileTest", test_dir=work, cxx_opt=cxx_opt, log_file=work / "sim.log",
                         extra_env={"FINEQ_JOB": str(job), "FINEQ_RESULT": str(result)}, trace_depth=trace_depth)
    finally:
        for k, v in env_save.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    ntests, nfail = get_results(Path(xml))
    if nfail or ntests != 1 or not result.exists():
        raise FineQError(f"the RTL run failed its scoreboard or did not finish; see {work / 'sim.log'}")
    with np.load(result) as z:
        y = z["y"][:, : x.shape[1]].astype(np.int64)
        cycles = int(z["cycles"])
    return {"y": y, "cycles": cycles, "sim_seconds": _sim_seconds(Path(xml)), "log": str(work / "sim.log"),
            "work": str(work)}


def _sim_seconds(xml: Path) -> float:
    import xml.etree.ElementTree as ET

    for tc in ET.parse(xml).iter("testcase"):
        return float(tc.get("time", "nan"))
    return float("nan")
