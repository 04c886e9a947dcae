"""The one parameter in which the simulated and the synthesized RTL differ, CLOCK_GATE, changes no bit and no cycle.

Every module routes CLOCK_GATE only to fineq_en_reg (checked below from the sources), so the design is equal
with CLOCK_GATE = 0 and 1 if fineq_en_reg is. That is proven formally with Yosys: both forms are turned into
one-clock logic (clk2fflogic: the clock an ordinary input, the clock gate's latch a register), put side by side
in an equivalence miter, and proven equal in every reachable state by temporal induction (``sat -tempinduct``).
A mutant whose enable is dropped must fail the same proof. (Induction over a whole PE array does not converge in
minutes with Yosys 0.23's SAT; the compositional argument covers it, and tests/test_hw.py and tb/ run both forms
against the golden model.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fineq.hw.sources import rtl_sources

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "rtl"

pytestmark = pytest.mark.synth


def _proof(tmp: Path, en_reg: Path, width: int = 4) -> subprocess.CompletedProcess:
    cg = RTL / "fineq_clock_gate.v"
    forms = ""
    for name, gate, src in (("gated", 1, RTL / "fineq_en_reg.v"), ("plain", 0, en_reg)):
        forms += (f"read_verilog -I{RTL} {cg} {src}\nchparam -set WIDTH {width} -set CLOCK_GATE {gate} fineq_en_reg\n"
                  f"hierarchy -top fineq_en_reg\nproc\nflatten\nopt_clean\nrename fineq_en_reg {name}\n"
                  f"design -stash {name}\n")
    script = forms + """design -copy-from gated -as gated gated
design -copy-from plain -as plain plain
clk2fflogic
opt_clean
miter -equiv -flatten -make_assert plain gated miter
hierarchy -top miter
sat -verify -tempinduct -prove-asserts -set-init-zero -seq 1 -maxsteps 20 miter
"""
    (tmp / "eq.ys").write_text(script)
    return subprocess.run(["yosys", "-q", str(tmp / "eq.ys")], capture_output=True, text=True, timeout=300)


@pytest.fixture(autouse=True)
def _yosys():
    if shutil.which("yosys") is None:
        pytest.skip("needs Yosys")


def test_clock_gated_register_equals_the_enabled_register(tmp_path):
    res = _proof(tmp_path, RTL / "fineq_en_reg.v")
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_proof_catches_a_dropped_enable(tmp_path):
    text = (RTL / "fineq_en_reg.v").read_text()
    mutant = text.replace("wire [WIDTH-1:0] q_d = en_i ? d_i : q_q;", "wire [WIDTH-1:0] q_d = d_i;")
    assert mutant != text
    (tmp_path / "fineq_en_reg.v").write_text(mutant)
    res = _proof(tmp_path, tmp_path / "fineq_en_reg.v")
    assert res.returncode != 0 and "proof did fail" in (res.stdout + res.stderr)


def test_clock_gate_reaches_only_fineq_en_reg():
    """Outside fineq_en_reg, CLOCK_GATE is declared, checked, and passed down as .CLOCK_GATE(CLOCK_GATE), nothing
    else: no module behaves differently with it except through fineq_en_reg."""
    for p in rtl_sources(RTL):
        if p.stem == "fineq_en_reg":
            continue
        for line in p.read_text().splitlines():
            code = line.split("//", 1)[0]
            if "CLOCK_GATE" not in code:
                continue
            ok = (re.search(r"parameter integer CLOCK_GATE\s*=", code)
                  or re.search(r"\.CLOCK_GATE\(CLOCK_GATE\)", code)
                  or re.search(r"CLOCK_GATE != 0 && CLOCK_GATE != 1|\$error|, CLOCK_GATE\)", code))
            assert ok, f"{p.name}: {line.strip()}"
