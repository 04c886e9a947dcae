"""fineq pareto: the energy of each configuration against a hand computation, the Pareto front, the choice at
equal accuracy, the group-scale cost, the JSON schema, and bad inputs (on a made-up eval JSON and synthesis
summary, so the figures are known)."""

from __future__ import annotations

import json

import pytest

from fineq.cli.main import main
from fineq.engine.config import EngineConfig
from fineq.engine.cycles import gemm_cycles, mac_cycle_split
from fineq.perf import memory, pareto

CLOCK = 400.0
ROWS = 64


def _summary(fineq_mw: float = 100.0, dec_mw: float = 10.0, mac: dict[int, float] | None = None) -> dict:
    mac = mac or {3: 300.0, 4: 400.0, 8: 800.0}
    units = {f"macsm{w}_col": {"sta": {"power_vcd": [0, 0, 0, mw * 0.9 / 64]}} for w, mw in mac.items()}
    return {"mode": "liberty", "clock_mhz": CLOCK, "array": [ROWS, 64],
            "designs": {"fineq_pe_array": {"power_mw": {"total": fineq_mw}, "area_mm2": 0.5},
                        "fineq_pe_array_binary": {"power_mw": {"total": 1.2 * fineq_mw}, "area_mm2": 0.52},
                        "fineq_decoders": {"power_mw": {"total": dec_mw}, "area_mm2": 0.1},
                        "mac_systolic_array": {"power_mw": {"total": 310.0}, "area_mm2": 1.4}},
            "mac_widths": {str(w): {"power_mw": {"total": mw}, "area_mm2": 1.0 + w / 10} for w, mw in mac.items()},
            "units": units}


def _row(method: str, seq: int, ppl: float, bits: float, **hw) -> dict:
    return {"method": method, "seq": seq, "ppl": ppl, "bits": bits, "windows": 1, "tokens": seq, **hw}


def _eval() -> dict:
    fq = {"cycles_per_vector": 2.5, "cycles_per_vector_by_linear": {"a": 2.0, "b": 3.0}, "nonzero_levels": 0.5,
          "cycles_per_vector_binary": 1.8, "cycles_per_vector_binary_by_linear": {"a": 1.5, "b": 2.0}}
    rows = []
    for s, scale in ((256, 1.0), (2048, 0.8)):
        rows += [_row("reference", s, 10 * scale, 16.0),
                 _row("fineq-gptq-ord", s, 30 * scale, 2.36, **fq),
                 _row("fineq-paper", s, 500 * scale, 2.36, **{**fq, "cycles_per_vector": 2.0,
                                                              "cycles_per_vector_by_linear": {"a": 2.0, "b": 2.0}}),
                 _row("gptq3-sm-g128", s, 28 * scale, 3.125, mac_weight_bits=3, group=128),
                 _row("gptq4-sm", s, 20 * scale, 4.06, mac_weight_bits=4, group=None),
                 _row("gptq8-sm", s, 10.1 * scale, 8.06, mac_weight_bits=8, group=None),
                 _row("gptq3", s, 25 * scale, 3.07)]
    return {"model": "tiny", "reference": "made up", "text": "none", "results": rows,
            "linears": {"a": {"m": 128, "k": 192, "count": 2}, "b": {"m": 64, "k": 256, "count": 1}}}


@pytest.fixture
def files(tmp_path):
    e, s = tmp_path / "eval.json", tmp_path / "summary.json"
    e.write_text(json.dumps(_eval()))
    s.write_text(json.dumps(_summary()))
    return e, s


def _doc(files):
    e, s = files
    return pareto.build(pareto.load_eval(e), pareto.load_power(s), [])


def _point(doc, name):
    return next(p for p in doc["points"] if p["name"] == name)


def test_fineq_energy_is_power_times_cycles(files):
    """FineQ: the cycle model with each linear type's own cycles per vector, times the array + decoder power."""
    doc = _doc(files)
    cfg = EngineConfig()
    n = 256
    def run(m: int, k: int, vec_cycles: int) -> int:
        split = gemm_cycles(m, k, n, vec_cycles, cfg)
        return sum(v for key, v in split.items() if key != "total")

    cyc = 2 * run(128, 192, round(2.0 * 128 * 3)) + run(64, 256, round(3.0 * 64 * 4))
    e = _point(doc, "FineQ gptq-ord")["by_seq"]["256"]
    assert e["cycles"] == cyc
    assert e["compute_j_per_token"] == pytest.approx(110e-3 * cyc / (CLOCK * 1e6) / n)
    mem = 2 * memory.energy_pj(memory.traffic(128, 192, n, cfg, 512 * 1024), 512 * 1024) \
        + memory.energy_pj(memory.traffic(64, 256, n, cfg, 512 * 1024), 512 * 1024)
    assert e["with_memory_j_per_token"] == pytest.approx(e["compute_j_per_token"] + mem * 1e-12 / n)


def test_binary_coding_is_its_own_point(files):
    """The binary-weighted coding: its own cycles per vector and its own power, FineQ's accuracy and bytes."""
    doc = _doc(files)
    cfg = EngineConfig(coding="binary")
    n = 256

    def run(m: int, k: int, vec_cycles: int) -> int:
        split = gemm_cycles(m, k, n, vec_cycles, cfg)
        return sum(v for key, v in split.items() if key != "total")

    cyc = 2 * run(128, 192, round(1.5 * 128 * 3)) + run(64, 256, round(2.0 * 64 * 4))
    b, t = _point(doc, "FineQ gptq-ord binary"), _point(doc, "FineQ gptq-ord")
    assert b["coding"] == "binary" and b["ppl"] == t["ppl"] and b["area_mm2"] == pytest.approx(0.62)
    e = b["by_seq"]["256"]
    assert e["cycles"] == cyc
    assert e["compute_j_per_token"] == pytest.approx((120e-3 + 10e-3) * cyc / (CLOCK * 1e6) / n)
    assert e["memory_j"] == pytest.approx(t["by_seq"]["256"]["memory_j"])


def test_mac_energy_at_its_own_width_and_bytes(files):
    doc = _doc(files)
    cfg = EngineConfig()
    n = 2048
    cyc = 2 * mac_cycle_split(128, 192, n, cfg)["total"] + mac_cycle_split(64, 256, n, cfg)["total"]
    e = _point(doc, "MAC 4b gptq4-sm")["by_seq"]["2048"]
    assert e["cycles"] == cyc and e["group_scale_j"] == 0
    assert e["compute_j_per_token"] == pytest.approx(400e-3 * cyc / (CLOCK * 1e6) / n)
    assert memory.signmag_weight_bytes(128, 192, 4) == 128 * 192 // 2 + 2 * 128
    assert memory.signmag_weight_bytes(64, 256, 3, 128) == 64 * 256 * 3 // 8 + 2 * 64 * 2
    # the 3-bit array fed FineQ's levels: its own power (make synth's mac_systolic_array), FineQ's bytes
    fed = _point(doc, "MAC 3b on FineQ gptq-ord weights")["by_seq"]["2048"]
    assert fed["memory_j"] < e["memory_j"]
    assert fed["compute_j_per_token"] == pytest.approx(310e-3 * cyc / (CLOCK * 1e6) / n)


def test_group_scales_are_costed(files):
    """One scale multiply per output, group and token, each priced by group_scale_pj."""
    doc = _doc(files)
    p = pareto.load_power(files[1])
    e = _point(doc, "MAC 3b gptq3-sm-g128")["by_seq"]["256"]
    ops = 256 * (2 * 128 * 2 + 64 * 2)
    assert e["group_scale_j"] == pytest.approx(ops * pareto.group_scale_pj(p, ROWS, 3) * 1e-12)
    # the estimate: the 8-bit PE's energy per cycle scaled by 17 x 16 / (8 x 8)
    pe8 = 800.0 * 0.9 * 1e-3 / (64 * 64) / (CLOCK * 1e6) * 1e12
    assert pareto.group_scale_pj(p, ROWS, 3) == pytest.approx(pe8 * 17 * 16 / 64)


def test_fineq_group_scales_are_costed_like_the_mac_arrays(tmp_path, files):
    """A FineQ mode with group scales (the variant outside the spec) pays the same scale multiply per output,
    group and token as a 3-bit MAC grid with groups, and its scales' bytes; its cycles are the per-row mode's."""
    doc = _eval()
    for r in list(doc["results"]):
        if r["method"] == "fineq-gptq-ord":
            doc["results"].append({**r, "method": "fineq-gptq-ord-g128", "group": 128, "bits": 2.48})
    e = tmp_path / "g.json"
    e.write_text(json.dumps(doc))
    p = pareto.load_power(files[1])
    out = pareto.build(pareto.load_eval(e), p, [])
    row, grp = (_point(out, n)["by_seq"]["256"] for n in ("FineQ gptq-ord", "FineQ gptq-ord-g128"))
    ops = 256 * (2 * 128 * 2 + 64 * 2)
    assert grp["cycles"] == row["cycles"] and row["group_scale_j"] == 0
    assert grp["group_scale_j"] == pytest.approx(ops * pareto.group_scale_pj(p, ROWS, 3) * 1e-12)
    assert grp["compute_j"] == pytest.approx(row["compute_j"] + grp["group_scale_j"])
    assert grp["memory_j"] > row["memory_j"]
    assert memory.fineq_weight_bytes(128, 192, 128) - memory.fineq_weight_bytes(128, 192) == 2 * 128 * (2 - 1)
    fed_row, fed_grp = (_point(out, f"MAC 3b on FineQ {n} weights")["by_seq"]["256"]
                        for n in ("gptq-ord", "gptq-ord-g128"))
    assert fed_grp["group_scale_j"] == pytest.approx(grp["group_scale_j"]) and fed_row["group_scale_j"] == 0
    assert fed_grp["memory_j"] == pytest.approx(grp["memory_j"]) and fed_grp["memory_j"] > fed_row["memory_j"]


def test_front_and_equal_accuracy(files):
    doc = _doc(files)
    w = "tiny layers"
    assert doc["workloads"] == [w]
    for r in (r for r in doc["iso_accuracy"] if r["seq"] == 256):
        fq = _point(doc, r["fineq"])["by_seq"]["256"]
        # gptq-ord in both codings is the most accurate; paper mode is 50x the reference: not usable. Both roles
        # pick the cheaper coding of gptq-ord
        both = [_point(doc, n) for n in ("FineQ gptq-ord", "FineQ gptq-ord binary")]
        assert r["fineq"] == min(both, key=lambda p: p["by_seq"]["256"]["with_memory_j_per_token"])["name"]
        # candidates not worse than 30: gptq3-sm-g128 (28), gptq4-sm (20), gptq8-sm (10.1); never MAC on FineQ
        # levels, never the asymmetric gptq3 (no point)
        cands = [_point(doc, n) for n in ("MAC 3b gptq3-sm-g128", "MAC 4b gptq4-sm", "MAC 8b gptq8-sm")]
        best = min(cands, key=lambda p: p["by_seq"]["256"]["with_memory_j_per_token"])
        assert r["mac"] == best["name"]
        assert r["ratio_with_memory"] == pytest.approx(best["by_seq"]["256"]["with_memory_j_per_token"]
                                                       / fq["with_memory_j_per_token"])
    names = doc["fronts"][w]["256"]["compute_j_per_token"]
    pts = [_point(doc, n) for n in names]
    e = [p["by_seq"]["256"]["compute_j_per_token"] for p in pts]
    assert e == sorted(e) and [p["ppl"]["256"] for p in pts] == sorted((p["ppl"]["256"] for p in pts), reverse=True)
    on = set(names)
    for p in doc["points"]:  # every point off the front is dominated by one on it
        if p["name"] not in on:
            assert any(q["by_seq"]["256"]["compute_j_per_token"] <= p["by_seq"]["256"]["compute_j_per_token"]
                       and q["ppl"]["256"] <= p["ppl"]["256"] for q in pts)
    assert doc["not_on_either_array"] == ["gptq3"]
    # every usable FineQ configuration on the front has its equal-accuracy line, once (beside the two roles)
    for s in ("256", "2048"):
        usable = {p["name"] for p in doc["points"] if p["arch"] == "fineq" and p["ppl"][s] <= 10 * doc["reference_ppl"][s]}
        rows = [r for r in doc["iso_accuracy"] if r["seq"] == int(s)]
        roles = {r["fineq"] for r in rows if r["role"] != "on the front"}
        front = [r["fineq"] for r in rows if r["role"] == "on the front"]
        on = set(doc["fronts"][w][s]["with_memory_j_per_token"]) & usable
        assert set(front) == on - roles and len(front) == len(set(front))


def test_no_mac_as_accurate_is_said(files, tmp_path):
    d = _eval()
    for r in d["results"]:
        if r["method"].endswith("-sm") or r["method"].endswith("-g128"):
            r["ppl"] *= 10
    (tmp_path / "e2.json").write_text(json.dumps(d))
    doc = pareto.build(pareto.load_eval(tmp_path / "e2.json"), pareto.load_power(files[1]), [])
    r = next(r for r in doc["iso_accuracy"] if r["role"] == "most accurate")
    assert r["mac"] is None and r["ratio_compute"] is None and "no MAC" in r["note"]


def test_cli_writes_schema(files, tmp_path, capsys):
    e, s = files
    out = tmp_path / "out"
    assert main(["pareto", "--eval", str(e), "--synth", str(s), "--out", str(out)]) == 0
    doc = json.loads((out / "pareto.json").read_text())
    assert (out / "pareto.png").stat().st_size > 0 and (out / "pareto.md").is_file()
    assert doc["workloads"] == ["tiny layers", "llama2-7b"]
    for p in doc["points"]:
        assert {"name", "arch", "bits", "ppl", "energy_j_per_token", "workload"} <= set(p)
        assert p["arch"] in ("fineq", "mac") and set(p["ppl"]) == {"256", "2048"}
        assert set(p["energy_j_per_token"]) == {"compute", "with_memory"}
    for r in doc["iso_accuracy"]:
        assert {"fineq", "mac", "seq", "workload", "ratio_compute", "ratio_with_memory"} <= set(r)
    text = capsys.readouterr().out
    assert "at equal accuracy" in text and "not run on either array" in text


@pytest.mark.parametrize("what,edit,needle", [
    ("eval", lambda d: d.pop("linears"), "no layer shapes"),
    ("eval", lambda d: d.update(results="x"), "not a fineq eval JSON"),
    ("eval", lambda d: d.update(results=[r for r in d["results"] if "sm" not in r["method"]]), "MAC-grid method"),
    ("synth", lambda d: d.update(mode="library-free"), "library-free"),
    ("synth", lambda d: d.pop("designs"), "not a make synth summary"),
    ("synth", lambda d: d["mac_widths"].pop("8"), "no MAC array at [8]-bit"),
])
def test_bad_inputs(files, tmp_path, capsys, what, edit, needle):
    e, s = files
    target = e if what == "eval" else s
    d = json.loads(target.read_text())
    edit(d)
    target.write_text(json.dumps(d))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["pareto", "--eval", str(e), "--synth", str(s), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_missing_files(tmp_path, capsys):
    assert main(["pareto", "--eval", str(tmp_path / "none.json"), "--synth", str(tmp_path / "s.json"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "no such eval JSON" in capsys.readouterr().err


def test_evals_of_the_same_windows_merge(files, tmp_path):
    e, s = files
    d = _eval()
    extra = [dict(r, method="fineq-gptq-hw@0.05", ppl=r["ppl"] * 1.2, cycles_per_vector=1.5,
                  cycles_per_vector_by_linear={"a": 1.5, "b": 1.5})
             for r in d["results"] if r["method"] == "fineq-gptq-ord"]
    ref = [r for r in d["results"] if r["method"] == "reference"]
    (tmp_path / "e2.json").write_text(json.dumps(dict(d, results=ref + extra)))
    doc = pareto.build(pareto.load_evals([e, tmp_path / "e2.json"]), pareto.load_power(s), [])
    assert _point(doc, "FineQ gptq-hw@0.05")["by_seq"]["256"]["cycles"] < _point(doc, "FineQ gptq-ord")["by_seq"][
        "256"]["cycles"]
    (tmp_path / "e3.json").write_text(json.dumps(dict(d, results=[dict(r, ppl=r["ppl"] + 1) for r in ref])))
    with pytest.raises(pareto.FineQError, match="not the same windows"):
        pareto.load_evals([e, tmp_path / "e3.json"])
    with pytest.raises(pareto.FineQError, match="also in an earlier"):
        pareto.load_evals([e, e])


def test_evals_from_other_environments_are_noted(files, tmp_path, capsys):
    """Merged evals from different environments (or with none recorded) get a note naming the difference; the same
    environment, none; fineq eval records its own."""
    from fineq.version import environment

    e, s = files
    d = _eval()
    env = environment()
    assert {"fineq", "cpu", "cpu_flags", "numpy", "torch"} <= set(env) and env["fineq"]
    ref = [r for r in d["results"] if r["method"] == "reference"]
    same, other = tmp_path / "a.json", tmp_path / "b.json"
    same.write_text(json.dumps(dict(d, environment=env)))
    (tmp_path / "a2.json").write_text(json.dumps(dict(d, results=ref, environment=env)))
    other.write_text(json.dumps(dict(d, results=ref, environment={**env, "cpu": "another CPU"})))
    assert pareto.environment_notes(pareto.load_evals([same, tmp_path / "a2.json"])) == []
    notes = pareto.environment_notes(pareto.load_evals([same, other]))
    assert len(notes) == 1 and "b.json" in notes[0] and "another CPU" in notes[0]
    notes = pareto.environment_notes(pareto.load_evals([e, other]))
    assert len(notes) == 1 and "eval.json" in notes[0] and "no environment" in notes[0]
    assert main(["pareto", "--eval", str(same), "--eval", str(other), "--synth", str(s),
                 "--out", str(tmp_path / "out")]) == 0
    assert "another CPU" in capsys.readouterr().err
    doc = json.loads((tmp_path / "out" / "pareto.json").read_text())
    assert [x["cpu"] for x in doc["environments"]] == [env["cpu"], "another CPU"]


def test_outputs_get_plain_file_permissions(tmp_path):
    """Atomic outputs are readable as a plain open would leave them (not mkstemp's owner-only mode)."""
    import os

    from fineq.outputs import write_text_atomic

    old = os.umask(0o022)
    try:
        p = write_text_atomic(tmp_path / "x.json", "{}")
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == 0o644
