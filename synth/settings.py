"""Settings of the synthesis flow (every one an environment variable with a default) and its units.

LIBERTY     path to the Nangate45 liberty (.lib or .lib.gz); empty: library-free estimate
CLOCK_MHZ   clock for timing and power (400)
ROWS, COLS  the full array (64 x 64)
FLAT_ROWS, FLAT_COLS  the small array synthesized flat to cross-check the scaling (8 x 8)
SYNTH_BUILD reports and netlists (build/synth)
ACT_M, ACT_K, ACT_N   GEMM workload simulated for switching activity (128, 256, 64)
ACT_SEED    seed of that workload (1)
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


LIBERTY = os.environ.get("LIBERTY", "").strip()
CLOCK_MHZ = float(os.environ.get("CLOCK_MHZ") or 400)
PERIOD_NS = 1000.0 / CLOCK_MHZ
ROWS, COLS = _int("ROWS", 64), _int("COLS", 64)
FLAT_ROWS, FLAT_COLS = _int("FLAT_ROWS", 8), _int("FLAT_COLS", 8)
BUILD = (ROOT / os.environ.get("SYNTH_BUILD", "build/synth")).resolve()
ACT_M, ACT_K, ACT_N = _int("ACT_M", 128), _int("ACT_K", 256), _int("ACT_N", 64)
ACT_SEED = _int("ACT_SEED", 1)


def clog2(n: int) -> int:
    return max(1, math.ceil(math.log2(n)))


@dataclass
class Unit:
    """One synthesized block: a Verilog top with parameters, and the testbench that proves its netlist."""

    top: str
    params: dict[str, int]
    tb: str  # testbench folder and module: tb/<tb>/test_<tb>.py
    tb_params: dict[str, int] = field(default_factory=dict)  # parameters the testbench reads
    flatten: bool = False
    count: int = 1  # instances in the full design
    design: str = ""  # full design it belongs to

    @property
    def testcases(self) -> list[str] | None:
        """The cocotb tests that prove the netlist (None: all of the testbench's tests)."""
        if self.tb == "mac_systolic_array":
            return ["mac_random_gemms", "mac_scoreboard_catches_injected_error"]
        return None


def units() -> dict[str, Unit]:
    r, c, fr, fc = ROWS, COLS, FLAT_ROWS, FLAT_COLS
    fsum = 8 + 1 + clog2(r)
    msum = 8 + 2 + clog2(r)
    return {
        # FineQ array = COLS x (column of ROWS PEs + adder tree) + COLS x accumulator + 1 encoder
        "fineq_col": Unit("fineq_pe_array", {"ROWS": r, "COLS": 1}, "fineq_pe_array",
                          {"ROWS": r, "COLS": 1, "SUM_W": fsum}, count=c, design="fineq_pe_array"),
        "fineq_acc": Unit("fineq_accumulator", {"COLS": 1, "SUM_W": fsum, "ACC_W": 32}, "fineq_accumulator",
                          {"COLS": 1, "SUM_W": fsum, "ACC_W": 32}, count=c, design="fineq_pe_array"),
        "fineq_enc": Unit("fineq_temporal_encoder", {"ROWS": r}, "fineq_temporal_encoder", {"ROWS": r},
                          count=1, design="fineq_pe_array"),
        # the weight decoders: one beat decoder = BPV cluster decoders
        "fineq_dec": Unit("fineq_beat_decoder", {"ROWS": r}, "fineq_beat_decoder", {"ROWS": r},
                          count=1, design="fineq_decoders"),
        # MAC systolic array = COLS x (column of ROWS MAC PEs) + COLS x accumulator
        "mac_col": Unit("mac_systolic_array", {"ROWS": r, "COLS": 1}, "mac_systolic_array",
                        {"ROWS": r, "COLS": 1, "PSUM_W": msum}, count=c, design="mac_systolic_array"),
        "mac_acc": Unit("fineq_accumulator", {"COLS": 1, "SUM_W": msum, "ACC_W": 32}, "fineq_accumulator",
                        {"COLS": 1, "SUM_W": msum, "ACC_W": 32}, count=c, design="mac_systolic_array"),
        # scaling cross-check: a small array flat against its column synthesized alone
        "fineq_flat": Unit("fineq_pe_array", {"ROWS": fr, "COLS": fc}, "fineq_pe_array",
                           {"ROWS": fr, "COLS": fc, "SUM_W": 8 + 1 + clog2(fr)}, flatten=True),
        "fineq_col_small": Unit("fineq_pe_array", {"ROWS": fr, "COLS": 1}, "fineq_pe_array",
                                {"ROWS": fr, "COLS": 1, "SUM_W": 8 + 1 + clog2(fr)}),
        "mac_flat": Unit("mac_systolic_array", {"ROWS": fr, "COLS": fc}, "mac_systolic_array",
                         {"ROWS": fr, "COLS": fc, "PSUM_W": 8 + 2 + clog2(fr)}, flatten=True),
        "mac_col_small": Unit("mac_systolic_array", {"ROWS": fr, "COLS": 1}, "mac_systolic_array",
                              {"ROWS": fr, "COLS": 1, "PSUM_W": 8 + 2 + clog2(fr)}),
    }


def liberty_plain() -> Path | None:
    """The liberty uncompressed into the build folder (Yosys 0.23 reads it uncompressed), or None."""
    if not LIBERTY:
        return None
    src = Path(LIBERTY).expanduser()
    if not src.is_file():
        raise SystemExit(f"LIBERTY={LIBERTY}: no such file (unset LIBERTY for the library-free estimate)")
    BUILD.mkdir(parents=True, exist_ok=True)
    dst = BUILD / "liberty.lib"
    if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
        opener = gzip.open if src.suffix == ".gz" else open
        with opener(src, "rb") as fi, open(dst, "wb") as fo:
            shutil.copyfileobj(fi, fo)
    return dst


def unit_dir(name: str) -> Path:
    d = BUILD / name
    d.mkdir(parents=True, exist_ok=True)
    return d
