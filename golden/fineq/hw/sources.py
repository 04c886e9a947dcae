"""Where the Verilog and the harness come from: package data (``fineq/hw/rtl``, the project's
``rtl/`` shipped inside the package) or an explicit ``rtl_dir``; nothing is looked up in a checkout."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..errors import FineQError


def rtl_dir() -> Path:
    return Path(str(files("fineq.hw") / "rtl"))


def rtl_sources(directory: Path | None = None) -> list[Path]:
    """Every Verilog file of the design (one module per file), sorted."""
    d = Path(directory) if directory is not None else rtl_dir()
    srcs = sorted(d.rglob("*.v"))
    if not srcs:
        raise FineQError(f"no Verilog files under {d} (is the package installed with its data?)")
    return srcs


def harness_source() -> Path:
    return Path(str(files("fineq.hw") / "harness.cpp"))


def testbench_source() -> Path:
    """The job-file Verilog testbench used with Icarus."""
    return Path(str(files("fineq.hw") / "fineq_engine_tb.v"))
