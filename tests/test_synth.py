"""make synth on a small array (a few minutes): the report exists, every netlist is proven, numbers are sane."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"ROWS": "8", "COLS": "4", "FLAT_ROWS": "4", "FLAT_COLS": "4", "ACT_M": "8", "ACT_K": "40", "ACT_N": "4",
         "ACT_COLS": "2"}


def run_synth(build: str, liberty: str) -> dict:
    env = dict(os.environ, **SMALL, SYNTH_BUILD=build, LIBERTY=liberty)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    res = subprocess.run(["bash", "synth/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return json.loads((ROOT / build / "summary.json").read_text())


@pytest.mark.synth
@pytest.mark.skipif(not os.environ.get("LIBERTY"), reason="needs LIBERTY (CI sets it); the library-free test runs")
def test_synth_small_with_liberty():
    s = run_synth("build/synth-test-lib", os.environ["LIBERTY"])
    assert s["mode"] == "liberty" and s["clock_mhz"] == 400
    for name in ("fineq_pe_array", "mac_systolic_array", "fineq_decoders"):
        d = s["designs"][name]
        assert d["netlists_proven"] is True
        assert d["area_um2"] > 100 and d["cells"] > 10 and d["area_mm2"] == pytest.approx(d["area_um2"] / 1e6)
        p = d["power_mw"]
        assert all(p[k] >= 0 for k in p) and p["total"] > 0
        assert p["total"] == pytest.approx(p["internal"] + p["switching"] + p["leakage"], rel=1e-6)
        assert 0 < d["fmax_mhz"] < 5000 and isinstance(d["slack_ns"], float)
    c = s["fineq_vs_mac"]
    assert -100 < c["area_reduction_pct"] < 100 and -100 < c["power_reduction_pct"] < 100
    b = s["fineq_power_breakdown"]["pct"]
    assert sum(b.values()) == pytest.approx(100) and all(v > 0 for v in b.values())
    for fam in ("fineq", "mac"):
        assert abs(s["flat_cross_check"][fam]["difference_pct"]) < 25
    assert all(u["proof"]["equal"] and u["proof"]["tests"] > 0 for u in s["units"].values())
    assert (ROOT / "build/synth-test-lib/summary.png").stat().st_size > 10_000
    assert "FineQ array vs MAC systolic array" in (ROOT / "build/synth-test-lib/summary.md").read_text()
    # the real workload (SmolLM2) by default, the synthetic one beside it
    assert "smollm2" in s["activity"] and "SYNTHETIC" in s["activity"] and not s["activity_synthetic"]
    assert "8 x 2 arrays, 2 runs of 2 tokens" in s["activity"]  # ACT_N tokens in ACT_COLS-wide runs, merged
    for name in ("fineq_pe_array_binary", "fineq_pe_array_pow2", "fineq_pe_array_nogate", "fineq_pe_array_nopipe",
                 "mac_systolic_array_nogate"):
        assert s["designs"][name]["netlists_proven"] is True and s["designs"][name]["power_mw"]["total"] > 0
    # the power-of-two datapath: wider leaves (more area), one cycle per vector (fewer cycles on the same rows)
    cod = s["codings"]
    assert set(cod) == {"thermometer", "binary", "pow2"}
    assert cod["pow2"]["cycles"] < cod["binary"]["cycles"] <= cod["thermometer"]["cycles"]
    for c in cod.values():  # the split adds up, and the accumulator-free bound is below the energy
        assert 0 < c["trees_mw"] and 0 < c["accumulators_mw"] and 0 < c["rest_mw"]
        assert abs(c["trees_mw"] + c["accumulators_mw"] + c["rest_mw"] - c["power_mw"]) < 1e-9
        assert 0 < c["energy_uj_free_accumulators"] < c["energy_uj"]
    assert s["designs"]["fineq_pe_array_pow2"]["area_mm2"] > s["designs"]["fineq_pe_array"]["area_mm2"]
    assert s["units"]["fineq_col_pow2"]["proof"]["tests"] > 0 and s["units"]["fineq_enc_pow2"]["proof"]["equal"]
    assert "power_mw_synthetic" in s["designs"]["fineq_pe_array"]
    # clock gates are in the gated netlists (and power sees them), not in the others
    units = s["units"]
    assert units["fineq_col"]["sta"]["clock_gates"] > 0 and units["mac_col"]["sta"]["clock_gates"] > 0
    assert units["fineq_col_nogate"]["sta"]["clock_gates"] == 0
    # gating registers that mostly hold saves power in both arrays; the tree-sum register adds slack
    ch = s["changes"]
    assert ch["clock gating (FineQ)"]["power_mw"] < 0 and ch["clock gating (MAC)"]["power_mw"] < 0
    assert ch["tree-sum register (FineQ)"]["slack_ns"][1] > ch["tree-sum register (FineQ)"]["slack_ns"][0]
    assert set(s["table_iii"]) == {"clock-gated (engine)", "no clock gating", "paper"}
    # the MAC array at its own weights: every width proven, wider weights cost area and power
    w = s["mac_widths"]
    assert set(w) == {"3", "4", "8"} and all(d["netlists_proven"] for d in w.values())
    assert w["3"]["area_mm2"] < w["4"]["area_mm2"] < w["8"]["area_mm2"]
    assert w["3"]["power_mw"]["total"] < w["8"]["power_mw"]["total"]
    assert units["macsm4_col"]["proof"]["tests"] > 0 and units["macsm8_col"]["sta"]["clock_gates"] > 0


@pytest.mark.synth
def test_synth_small_library_free():
    s = run_synth("build/synth-test-free", "")
    assert s["mode"] == "library-free" and s["liberty"] is None
    for d in s["designs"].values():
        assert d["transistors"] > 100 and d["area_um2"] is None and d["netlists_proven"] is True
    assert "library-free" in (ROOT / "build/synth-test-free/summary.md").read_text()
