"""Settings of the synthesis flow (every one an environment variable with a default) and its units.

LIBERTY     path to the Nangate45 liberty (.lib or .lib.gz); empty: library-free estimate
CLOCK_MHZ   clock for timing and power (400)
ROWS, COLS  the full array (64 x 64)
FLAT_ROWS, FLAT_COLS  the small array synthesized flat to cross-check the scaling (8 x 8)
SYNTH_BUILD reports and netlists (build/synth)
WEIGHTS     the workload simulated for switching activity: smollm2 (default), a Hugging Face folder, a
            .gguf, a .fineq.safetensors (stored levels, any mode), a weights-only .safetensors/.pt, or
            synthetic (fineq.synthetic.heavy_tailed, labelled as such)
WEIGHT_MODE FineQ mode that quantizes real weights (paper; ignored for a .fineq.safetensors); the power-of-two
            datapath's activity runs the same rows quantized with the same mode to the pow2 codebook
ACT_LINEAR  the linear whose first ACT_M rows and real inputs make the workload (model.layers.15.mlp.up_proj)
ACT_M, ACT_K, ACT_N   rows, K (synthetic only: real weights keep the matrix's K) and tokens (128, 256, 64)
ACT_SEED    seed of synthetic weights and activations (1)
MAC_WIDTHS  the MAC array at its own weights ("3 4 8"): units macsm<b>_*, each run on the same linear
            quantized on its own b-bit sign-magnitude grid (fineq.quant.signmag, RTN) for its activity
ACT_COLS    columns of the arrays simulated for activity (8): the ACT_N tokens run in tiles of ACT_COLS
            (a column's activity depends only on its own token); smaller simulators build much faster
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fineq.engine.config import mac_psum_w, sum_w

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
ACT_COLS = min(_int("ACT_COLS", 8), COLS)
WEIGHTS = os.environ.get("WEIGHTS", "").strip() or "smollm2"
WEIGHT_MODE = os.environ.get("WEIGHT_MODE", "").strip() or "paper"
ACT_LINEAR = os.environ.get("ACT_LINEAR", "").strip() or "model.layers.15.mlp.up_proj"
#: the MAC array's wider weight widths synthesized beside the 3-bit one (its FineQ-level baseline)
MAC_WIDTHS = tuple(int(v) for v in (os.environ.get("MAC_WIDTHS") or "3 4 8").split())


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
    """Every synthesized block. Suffixes: ``_nogate`` without clock gates (CLOCK_GATE=0), ``_nopipe`` also
    without the register after the adder tree (PIPE=0: the array as the paper describes it)."""
    r, c, fr, fc = ROWS, COLS, FLAT_ROWS, FLAT_COLS
    fsum = sum_w(r)
    psum = sum_w(r, coding="pow2")
    msum = mac_psum_w(r)
    out: dict[str, Unit] = {}
    # FineQ array = COLS x (column of ROWS PEs + adder tree + tree-sum register) + COLS x accumulator + 1 encoder
    for sfx, pipe, gate in [("", 1, 1), ("_nogate", 1, 0), ("_nopipe", 0, 0)]:
        out["fineq_col" + sfx] = Unit("fineq_pe_array", {"ROWS": r, "COLS": 1, "PIPE": pipe, "CLOCK_GATE": gate},
                                      "fineq_pe_array", {"ROWS": r, "COLS": 1, "SUM_W": fsum, "PIPE": pipe, "POW2": 0},
                                      count=c, design="fineq_pe_array")
    # _pow2: the power-of-two datapath (PEs passing x, 2x or 4x, POW2=1; encoder CODING=2; accumulators 2 bits
    # wider at their input), clock-gated: the pow2 codebook's array
    out["fineq_col_pow2"] = Unit("fineq_pe_array", {"ROWS": r, "COLS": 1, "PIPE": 1, "CLOCK_GATE": 1, "POW2": 1},
                                 "fineq_pe_array", {"ROWS": r, "COLS": 1, "SUM_W": psum, "PIPE": 1, "POW2": 1},
                                 count=c, design="fineq_pe_array_pow2")
    out["fineq_acc_pow2"] = Unit("fineq_accumulator", {"COLS": 1, "SUM_W": psum, "ACC_W": 32, "CLOCK_GATE": 1,
                                                       "SHIFT": 0},
                                 "fineq_accumulator", {"COLS": 1, "SUM_W": psum, "ACC_W": 32, "SHIFT": 0},
                                 count=c, design="fineq_pe_array_pow2")
    out["fineq_enc_pow2"] = Unit("fineq_temporal_encoder", {"ROWS": r, "CLOCK_GATE": 1, "CODING": 2},
                                 "fineq_temporal_encoder", {"ROWS": r, "CODING": 2}, count=1,
                                 design="fineq_pe_array_pow2")
    # _bin: the binary-weighted coding (encoder CODING=1, accumulator SHIFT=1), clock-gated
    for sfx, gate, bin_ in [("", 1, 0), ("_nogate", 0, 0), ("_bin", 1, 1)]:
        out["fineq_acc" + sfx] = Unit("fineq_accumulator",
                                      {"COLS": 1, "SUM_W": fsum, "ACC_W": 32, "CLOCK_GATE": gate, "SHIFT": bin_},
                                      "fineq_accumulator", {"COLS": 1, "SUM_W": fsum, "ACC_W": 32, "SHIFT": bin_},
                                      count=c, design="fineq_pe_array")
        out["fineq_enc" + sfx] = Unit("fineq_temporal_encoder", {"ROWS": r, "CLOCK_GATE": gate, "CODING": bin_},
                                      "fineq_temporal_encoder", {"ROWS": r, "CODING": bin_}, count=1,
                                      design="fineq_pe_array")
    for sfx, gate in [("", 1), ("_nogate", 0)]:
        # MAC systolic array = COLS x (column of ROWS MAC PEs) + COLS x accumulator
        out["mac_col" + sfx] = Unit("mac_systolic_array", {"ROWS": r, "COLS": 1, "CLOCK_GATE": gate},
                                    "mac_systolic_array", {"ROWS": r, "COLS": 1, "PSUM_W": msum, "W_W": 3},
                                    count=c, design="mac_systolic_array")
        out["mac_acc" + sfx] = Unit("fineq_accumulator", {"COLS": 1, "SUM_W": msum, "ACC_W": 32, "CLOCK_GATE": gate},
                                    "fineq_accumulator", {"COLS": 1, "SUM_W": msum, "ACC_W": 32, "SHIFT": 0},
                                    count=c, design="mac_systolic_array")
    # the MAC array at its own weights (W_W-bit sign-magnitude, fineq.quant.signmag), clock-gated. Its columns are
    # synthesized flat: OpenSTA 2.0.17 crashes (SIGSEGV in activity propagation) on the hierarchical 4-bit
    # column's netlist, and one flow for every width keeps them comparable (flat is ~12% smaller than the
    # hierarchical 3-bit column: it favours the MAC array; docs/synthesis.md)
    for w in MAC_WIDTHS:
        ps = mac_psum_w(r, w_w=w)
        out[f"macsm{w}_col"] = Unit("mac_systolic_array", {"ROWS": r, "COLS": 1, "CLOCK_GATE": 1, "W_W": w},
                                    "mac_systolic_array", {"ROWS": r, "COLS": 1, "PSUM_W": ps, "W_W": w},
                                    flatten=True, count=c, design=f"macsm{w}_systolic_array")
        out[f"macsm{w}_acc"] = Unit("fineq_accumulator", {"COLS": 1, "SUM_W": ps, "ACC_W": 32, "CLOCK_GATE": 1},
                                    "fineq_accumulator", {"COLS": 1, "SUM_W": ps, "ACC_W": 32, "SHIFT": 0},
                                    count=c, design=f"macsm{w}_systolic_array")
    # the weight decoders: one beat decoder = BPV cluster decoders
    out["fineq_dec"] = Unit("fineq_beat_decoder", {"ROWS": r}, "fineq_beat_decoder", {"ROWS": r},
                            count=1, design="fineq_decoders")
    # scaling cross-check: a small array flat against its column synthesized alone
    fsm = sum_w(fr)
    out["fineq_flat"] = Unit("fineq_pe_array", {"ROWS": fr, "COLS": fc}, "fineq_pe_array",
                             {"ROWS": fr, "COLS": fc, "SUM_W": fsm, "PIPE": 1, "POW2": 0}, flatten=True)
    out["fineq_col_small"] = Unit("fineq_pe_array", {"ROWS": fr, "COLS": 1}, "fineq_pe_array",
                                  {"ROWS": fr, "COLS": 1, "SUM_W": fsm, "PIPE": 1, "POW2": 0})
    out["mac_flat"] = Unit("mac_systolic_array", {"ROWS": fr, "COLS": fc}, "mac_systolic_array",
                           {"ROWS": fr, "COLS": fc, "PSUM_W": mac_psum_w(fr), "W_W": 3}, flatten=True)
    out["mac_col_small"] = Unit("mac_systolic_array", {"ROWS": fr, "COLS": 1}, "mac_systolic_array",
                                {"ROWS": fr, "COLS": 1, "PSUM_W": mac_psum_w(fr), "W_W": 3})
    return out


@dataclass(frozen=True)
class StaRun:
    """One OpenSTA run: a unit's netlist, the activity of its family, and the unit whose output feeds
    ``sum_i`` in the same cycle (the timing of that path is composed), if any."""

    unit: str
    family: str
    chain_from: str | None = None


STA_RUNS: dict[str, StaRun] = {
    "fineq_col": StaRun("fineq_col", "fineq_col"),
    "fineq_col_nogate": StaRun("fineq_col_nogate", "fineq_col"),
    "fineq_col_nopipe": StaRun("fineq_col_nopipe", "fineq_col"),
    # after the tree-sum register the accumulator's sum input starts at the clock edge
    "fineq_acc": StaRun("fineq_acc", "fineq_acc"),
    "fineq_acc_nogate": StaRun("fineq_acc_nogate", "fineq_acc"),
    # without it the path PE -> tree -> accumulator is one cycle
    "fineq_acc_nopipe": StaRun("fineq_acc_nogate", "fineq_acc", "fineq_col_nopipe"),
    "fineq_enc": StaRun("fineq_enc", "fineq_enc"),
    "fineq_enc_nogate": StaRun("fineq_enc_nogate", "fineq_enc"),
    "fineq_dec": StaRun("fineq_dec", "fineq_dec"),
    # the binary-weighted coding: the same column, its own encoder and accumulator, its own activity
    "fineq_col_bin": StaRun("fineq_col", "fineq_col_bin"),
    "fineq_acc_bin": StaRun("fineq_acc_bin", "fineq_acc_bin"),
    "fineq_enc_bin": StaRun("fineq_enc_bin", "fineq_enc_bin"),
    # the power-of-two datapath: its own column, encoder and accumulator, its own activity
    "fineq_col_pow2": StaRun("fineq_col_pow2", "fineq_col_pow2"),
    "fineq_acc_pow2": StaRun("fineq_acc_pow2", "fineq_acc_pow2"),
    "fineq_enc_pow2": StaRun("fineq_enc_pow2", "fineq_enc_pow2"),
    "mac_col": StaRun("mac_col", "mac_col"),
    "mac_col_nogate": StaRun("mac_col_nogate", "mac_col"),
    "mac_acc": StaRun("mac_acc", "mac_acc", "mac_col"),
    "mac_acc_nogate": StaRun("mac_acc_nogate", "mac_acc", "mac_col_nogate"),
    **{f"macsm{w}_col": StaRun(f"macsm{w}_col", f"macsm{w}_col") for w in MAC_WIDTHS},
    **{f"macsm{w}_acc": StaRun(f"macsm{w}_acc", f"macsm{w}_acc", f"macsm{w}_col") for w in MAC_WIDTHS},
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
