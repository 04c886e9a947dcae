"""Where the Verilog and the harness come from: package data (``fineq/hw/rtl``, the project's ``rtl/`` shipped
inside the package) or an explicit ``rtl_dir``; nothing is looked up in a checkout.

The design's files are those of ``rtl/files.f``, the RTL's one file list, in its order; its folder is the include
folder (``fineq_defs.vh``). Every consumer (the native harness, Icarus, the cocotb testbenches, synthesis, lint)
takes its files from :func:`rtl_sources` or reads that list.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fineq.errors import FineQError

FILE_LIST = "files.f"
HEADER = "fineq_defs.vh"


def rtl_dir() -> Path:
    return Path(str(files("fineq.hw") / "rtl"))


def rtl_sources(directory: Path | None = None) -> list[Path]:
    """Every Verilog file of the design (one module per file), in the order of ``files.f``."""
    d = Path(directory) if directory is not None else rtl_dir()
    flist = d / FILE_LIST
    if not flist.is_file():
        raise FineQError(f"no {FILE_LIST} in {d} (is the package installed with its data?)")
    srcs = []
    for line in flist.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            p = d / line
            if not p.is_file():
                raise FineQError(f"{flist}: lists {line}, which does not exist")
            srcs.append(p)
    return srcs


def include_dirs(directory: Path | None = None) -> list[Path]:
    """The include folders of the design (the folder of ``files.f`` and ``fineq_defs.vh``)."""
    return [Path(directory) if directory is not None else rtl_dir()]


def design_files(directory: Path | None = None) -> list[Path]:
    """Every file a build of the design depends on: the sources of ``files.f`` and the header. Simulator caches
    key their builds by these files' contents."""
    return [*rtl_sources(directory), *(d / HEADER for d in include_dirs(directory))]


def harness_source() -> Path:
    return Path(str(files("fineq.hw") / "harness.cpp"))


def testbench_source() -> Path:
    """The job-file Verilog testbench used with Icarus."""
    return Path(str(files("fineq.hw") / "fineq_engine_tb.v"))
