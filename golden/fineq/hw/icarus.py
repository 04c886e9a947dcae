"""The engine on Icarus Verilog with a job-file testbench (``fineq_engine_tb.v``), the slow, event-driven
second simulator of ``fineq gemm --backend icarus``. Same job content and checks as :mod:`fineq.hw.native`."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fineq.engine.config import EngineConfig
from fineq.errors import FineQError
from fineq.format.qmatrix import QuantizedMatrix
from fineq.hw import procs
from fineq.hw.job import EngineRun, Job, run_matrix
from fineq.hw.native import BUILD_TIMEOUT_S, cache_dir, cached, stamp
from fineq.hw.sources import design_files, include_dirs, rtl_sources, testbench_source


def build(cfg: EngineConfig, rtl_dir: str | os.PathLike[str] | None = None) -> tuple[Path, float]:
    """Compile (or reuse) the testbench for ``cfg``. Returns ``(vvp file, compile seconds; 0 if cached)``."""
    import hashlib

    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise FineQError("the icarus backend needs Icarus Verilog (apt-get install iverilog; scripts/setup.sh)")
    rdir = Path(rtl_dir) if rtl_dir is not None else None
    srcs = [testbench_source(), *rtl_sources(rdir)]
    incs = include_dirs(rdir)
    h = hashlib.sha256(repr(cfg.params).encode())
    for p in [testbench_source(), *design_files(rdir)]:
        h.update(p.read_bytes())
    out = cache_dir() / f"icarus-{cfg.name}-{h.hexdigest()[:16]}.vvp"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cached(out):
            return out, 0.0
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        os.close(fd)
        t0 = time.perf_counter()
        try:
            proc = procs.run(["iverilog", "-g2005", "-s", "fineq_engine_tb",
                              *[f"-Pfineq_engine_tb.{k}={v}" for k, v in cfg.params.items()],
                              *[f"-I{d}" for d in incs], "-o", tmp, *map(str, srcs)], "iverilog",
                             timeout=BUILD_TIMEOUT_S)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if proc.returncode != 0:
            Path(tmp).unlink(missing_ok=True)
            raise FineQError(f"iverilog failed: {' | '.join(proc.stderr.strip().splitlines()[-3:])}")
        stamp(Path(tmp))
        os.replace(f"{tmp}.sha256", f"{out}.sha256")
        os.replace(tmp, out)
        return out, time.perf_counter() - t0


def run_job(job: Job, rtl_dir: str | os.PathLike[str] | None = None,
            vcd: str | os.PathLike[str] | None = None) -> EngineRun:
    """Run one :class:`~fineq.hw.job.Job` on Icarus (the engine as synthesized, CLOCK_GATE=1). ``vcd``: dump the
    waves of the whole testbench to this file."""
    vvp, build_secs = build(job.cfg, rtl_dir)
    m, cols = job.m, job.cfg.cols
    with tempfile.TemporaryDirectory(prefix="fineq-icarus-") as d:
        dp = Path(d)
        jf = job.write(dp / "job.bin")
        args = ["vvp", "-n", str(vvp), f"+job={jf}", f"+out={dp / 'out.txt'}"]
        if vcd is not None:
            args.append(f"+vcd={Path(vcd).resolve()}")
        t0 = time.perf_counter()
        proc = procs.run(args, "the RTL run (Icarus)", cwd=d)
        secs = time.perf_counter() - t0
        text = (dp / "out.txt").read_text() if (dp / "out.txt").is_file() else ""
        bad = [ln for ln in proc.stdout.splitlines() if ln.startswith("fineq_engine_tb:")]
        if proc.returncode != 0 or bad or "\nC " not in "\n" + text:
            msg = (bad or proc.stderr.strip().splitlines() or ["no result"])[-1]
            raise FineQError(f"the RTL run failed: {msg}")
    rows = [ln[2:] for ln in text.splitlines() if ln.startswith("R ")]
    cyc_line = next(ln for ln in text.splitlines() if ln.startswith("C "))
    cycles, sim_cycles = (int(v) for v in cyc_line.split()[1:3])
    if len(rows) != m:
        raise FineQError(f"the RTL run failed: {len(rows)} output rows, expected {m}")
    y = np.zeros((m, cols), dtype=np.int64)
    for i, h in enumerate(rows):
        raw = bytes.fromhex(h.rjust(cols * 8, "0"))[::-1]
        y[i] = np.frombuffer(raw, dtype="<i4")
    extra: dict[str, object] = {"waves": str(Path(vcd).resolve())} if vcd is not None else {}
    return EngineRun(y, cycles, secs, sim_cycles, build_secs, extra)


def run_engine(q: QuantizedMatrix, x: np.ndarray, cfg: EngineConfig, stall: float = 0.0, seed: int = 0,
               model_cycles: int | None = None, **kw: Any) -> EngineRun:
    """One engine run (``x.shape[1] <= cfg.cols``) on the Icarus; ``kw`` as :func:`run_job`
    (:func:`fineq.hw.job.run_matrix`)."""
    return run_matrix(run_job, q, x, cfg, stall, seed, model_cycles, **kw)
