"""The engine on Icarus Verilog with a job-file testbench (``fineq_engine_tb.v``), the slow, event-driven
second simulator of ``fineq gemm --backend icarus``. Same job content and checks as :mod:`fineq.hw.native`."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import EngineConfig, engine_cycles
from ..errors import FineQError
from ..qmatrix import QuantizedMatrix
from .native import cache_dir
from .sources import rtl_sources, testbench_source
from .streams import act_stream, weight_stream


def build(cfg: EngineConfig, rtl_dir: str | os.PathLike[str] | None = None) -> tuple[Path, float]:
    """Compile (or reuse) the testbench for ``cfg``. Returns ``(vvp file, compile seconds; 0 if cached)``."""
    import hashlib

    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise FineQError("the icarus backend needs Icarus Verilog (apt-get install iverilog; scripts/setup.sh)")
    rdir = Path(rtl_dir) if rtl_dir is not None else None
    srcs = [testbench_source(), *rtl_sources(rdir)]
    h = hashlib.sha256(repr(cfg.params).encode())
    for p in srcs:
        h.update(p.read_bytes())
    out = cache_dir() / f"icarus-{cfg.name}-{h.hexdigest()[:16]}.vvp"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.is_file():
            return out, 0.0
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        os.close(fd)
        t0 = time.perf_counter()
        proc = subprocess.run(["iverilog", "-g2005", "-s", "fineq_engine_tb",
                               *[f"-Pfineq_engine_tb.{k}={v}" for k, v in cfg.params.items()],
                               "-o", tmp, *map(str, srcs)], capture_output=True, text=True)
        if proc.returncode != 0:
            Path(tmp).unlink(missing_ok=True)
            raise FineQError(f"iverilog failed: {' | '.join(proc.stderr.strip().splitlines()[-3:])}")
        os.replace(tmp, out)
        return out, time.perf_counter() - t0


def _hex_lines(beats: np.ndarray) -> str:
    """One hex word per beat, byte 0 in the low bits."""
    return "".join(bytes(row[::-1]).hex() + "\n" for row in beats)


def run_engine(q: QuantizedMatrix, x: np.ndarray, cfg: EngineConfig, stall: float = 0.0, seed: int = 0,
               rtl_dir: str | os.PathLike[str] | None = None, vcd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """One engine run (``x.shape[1] <= cfg.cols``) on Icarus; returns the same keys as the native harness.
    ``vcd``: dump the waves of the whole testbench to this file."""
    if x.shape[1] > cfg.cols:
        raise FineQError(f"N={x.shape[1]} exceeds COLS={cfg.cols}; tile N in the caller (fineq.run)")
    vvp, build_secs = build(cfg, rtl_dir)
    m = q.shape[0]
    act, wgt = act_stream(x, q.shape[1], m, cfg), weight_stream(q, cfg)
    limit = 20 * engine_cycles(q.levels(), cfg)["total"] + 2000
    if stall > 0:
        limit = int(limit / (1 - stall) ** 3) + 2000
    with tempfile.TemporaryDirectory(prefix="fineq-icarus-") as d:
        dp = Path(d)
        (dp / "act.hex").write_text(_hex_lines(act))
        (dp / "wgt.hex").write_text(_hex_lines(wgt))
        args = ["vvp", "-n", str(vvp), f"+act={dp / 'act.hex'}", f"+wgt={dp / 'wgt.hex'}", f"+out={dp / 'out.txt'}",
                f"+m={m}", f"+k={q.shape[1]}", f"+nact={len(act)}", f"+nwgt={len(wgt)}",
                f"+stall={int(round(100 * stall))}", f"+seed={seed + 1}", f"+limit={limit}"]
        if vcd is not None:
            args.append(f"+vcd={Path(vcd).resolve()}")
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, cwd=d)
        secs = time.perf_counter() - t0
        text = (dp / "out.txt").read_text() if (dp / "out.txt").is_file() else ""
        bad = [ln for ln in proc.stdout.splitlines() if ln.startswith("fineq_engine_tb:")]
        if proc.returncode != 0 or bad or "\nC " not in "\n" + text:
            msg = (bad or proc.stderr.strip().splitlines() or ["no result"])[-1]
            raise FineQError(f"the RTL run failed: {msg}")
    rows = [ln[2:] for ln in text.splitlines() if ln.startswith("R ")]
    cyc_line = next(ln for ln in text.splitlines() if ln.startswith("C "))
    cycles, sim_cycles = (int(v) for v in cyc_line.split()[1:3])
    y = np.zeros((m, cfg.cols), dtype=np.int64)
    for i, h in enumerate(rows):
        raw = bytes.fromhex(h.rjust(cfg.cols * 8, "0"))[::-1]
        y[i] = np.frombuffer(raw, dtype="<i4")
    return {"y": y[:, : x.shape[1]], "cycles": cycles, "sim_cycles": sim_cycles, "sim_seconds": secs,
            "cycles_per_second": sim_cycles / secs if secs > 0 else float("inf"), "build_seconds": build_secs}
