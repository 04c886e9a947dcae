"""The power-of-two codebook, the variant outside the spec (docs/format.md "Power-of-two levels"): the same bits
read as levels {0, +-1, +-2, +-4}; its rounding, its quantizers (known answers: a matrix on its grid comes back
exactly), its files (old readers refuse them), its engine coding (one cycle per vector, Y bit for bit: the
hardware-order path and the RTL), the coding check that keeps the engine from misreading levels, the method names,
recon on a tiny model, and its point in fineq pareto."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fineq  # noqa: E402
from fineq.cli.main import main  # noqa: E402
from fineq.engine.config import EngineConfig, coding_for, codings_for, sum_w  # noqa: E402
from fineq.engine.cycles import engine_cycles, vector_length  # noqa: E402
from fineq.engine.gemm import gemm, gemm_hw, temporal_bits  # noqa: E402
from fineq.errors import FineQError, FormatError  # noqa: E402
from fineq.format.codec import FIELD_LUT, VALUE_LUT, level_max  # noqa: E402
from fineq.format.fileio import load, save  # noqa: E402
from fineq.format.pack import unpack  # noqa: E402
from fineq.format.qmatrix import QuantizedMatrix, from_levels  # noqa: E402
from fineq.quant import registry  # noqa: E402
from fineq.quant.calibrated import hessian_from_inputs  # noqa: E402
from fineq.quant.codebook import round_levels_np, round_levels_torch  # noqa: E402
from fineq.quant.rules import _nearest, quantize_arrays, quantize_reference  # noqa: E402
from fineq.synthetic import heavy_tailed, int8_activations  # noqa: E402

POW2 = "pow2"


def _on_grid(m: int = 6, k: int = 96, seed: int = 0, scale: float = 0.125):
    """A matrix the pow2 codebook holds exactly: random codes, levels inside each code's range (2-bit: -1..1;
    3-bit: 0, +-1, +-2, +-4), every row's absmax a 4 (so ``absmax / 4`` is its scale), scales a power of two."""
    rng = np.random.default_rng(seed)
    kp = -(-k // 24) * 24
    codes = rng.integers(1, 4, (m, kp // 6)).astype(np.uint8)
    codes[:, ::5] = 0
    lv = np.zeros((m, kp // 6, 6), dtype=np.int8)
    for r in range(m):
        for p in range(kp // 6):
            c = int(codes[r, p])
            lv[r, p] = rng.choice([-1, 0, 1] if c == 0 else [-4, -2, -1, 0, 1, 2, 4], 6)
            if c:
                lv[r, p, [c - 1, c + 2]] = 0
        p = int(np.flatnonzero(codes[r])[0])
        lv[r, p, 2 if codes[r, p] != 3 else 0] = 4
    return from_levels(lv.reshape(m, kp)[:, :k], codes, np.full(m, scale, dtype=np.float16), codebook=POW2)


def test_value_and_field_tables():
    assert VALUE_LUT[POW2].tolist() == [-4, -2, -1, 0, 1, 2, 4]
    assert VALUE_LUT["int"].tolist() == [-3, -2, -1, 0, 1, 2, 3]
    assert [int(FIELD_LUT[POW2][v + 4]) for v in (-4, -2, -1, 0, 1, 2, 4)] == [-3, -2, -1, 0, 1, 2, 3]
    assert FIELD_LUT[POW2][3 + 4] == 127 and FIELD_LUT["int"][4 + 4] == 127  # no 3 in pow2, no 4 in int
    assert level_max(POW2) == 4 and level_max("int") == 3


def test_same_bits_other_levels():
    """A pow2 matrix's bytes read as the spec's are its levels with every 4 a 3: the decode differs, not the bits."""
    q = _on_grid()
    as_int = QuantizedMatrix(q.packed, q.scales, q.shape)
    lv = q.levels()
    assert (np.abs(lv) == 4).any() and not (np.abs(lv) == 3).any()
    assert np.array_equal(as_int.levels(), np.where(np.abs(lv) == 4, np.sign(lv) * 3, lv))
    assert np.array_equal(unpack(q.packed, q.shape[1], POW2), lv)
    assert q != as_int and q.level_max == 4
    assert np.array_equal(q.dequantize(), lv.astype(np.float32) * np.float32(0.125))
    with pytest.raises(FineQError, match="level 3 is not in the pow2 codebook"):
        from_levels(np.array([[0, 3, 0] + [0] * 21]), np.array([[1, 0, 0, 0]]), codebook=POW2)
    with pytest.raises(FormatError, match="codebook must be one of int, pow2"):
        QuantizedMatrix(q.packed, q.scales, q.shape, codebook="pow3")


def test_rounding_known_answers():
    r = np.array([0.0, 0.49, 0.5, 0.51, 1.49, 1.5, 2.5, 2.51, 2.99, 3.0, 3.01, 3.5, 5.0, 100.0], dtype=np.float32)
    want = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 4, 4, 4, 4]
    for sign in (1, -1):
        assert round_levels_np(sign * r, POW2).tolist() == [sign * v for v in want]
        assert round_levels_torch(torch.from_numpy(sign * r), POW2).tolist() == [sign * v for v in want]
        assert [_nearest(np.float32(sign * v), 4) for v in r] == [sign * v for v in want]
    assert round_levels_np(r, "int").tolist() == np.rint(r).tolist()


def test_data_free_modes_fast_equals_literal_and_scale_is_absmax_over_4():
    w = heavy_tailed(9, 77, seed=5)
    for mode in ("paper", "search"):
        packed, scales = quantize_arrays(w, mode, codebook=POW2)
        ref_p, ref_s = quantize_reference(w, mode, codebook=POW2)
        assert np.array_equal(packed, ref_p) and np.array_equal(scales, ref_s)
        assert np.array_equal(scales, (np.abs(w).max(axis=1) / np.float32(4)).astype(np.float16))
        lv = QuantizedMatrix(packed, scales, w.shape, codebook=POW2).levels()
        assert set(np.unique(lv).tolist()) <= {-4, -2, -1, 0, 1, 2, 4} and (np.abs(lv) == 4).any()
    # the spec's codebook is unchanged by the codebook argument
    assert np.array_equal(quantize_arrays(w, "paper")[0], quantize_arrays(w, "paper", codebook="int")[0])


@pytest.mark.parametrize("mode", ["search", "hdiag", "gptq-ord"])
def test_a_matrix_on_the_grid_comes_back_exactly(mode):
    """Known answer: W = s * V with V pow2 levels under valid codes and s = absmax / 4 is quantized to V itself."""
    q = _on_grid()
    w = q.dequantize()
    x = np.random.default_rng(1).standard_normal((300, w.shape[1])) * np.linspace(0.3, 2.0, w.shape[1])
    h = None if mode == "search" else hessian_from_inputs(x)
    got = fineq.quantize(w, mode, hessian=h, codebook=POW2)
    assert got.codebook == POW2
    assert np.array_equal(got.levels(), q.levels())
    assert np.allclose(got.dequantize(), w, rtol=0, atol=1e-6)


def test_gptq_ord_pow2_is_near_the_int_grid_on_heavy_tails():
    """Not a tie: on heavy-tailed weights both codebooks give a small output error, within 2x of each other."""
    w = heavy_tailed(32, 192, seed=2)
    x = np.random.default_rng(3).standard_normal((400, 192))
    h = hessian_from_inputs(x)

    def err(q):
        d = (w - q.dequantize()).astype(np.float64)
        return float(np.einsum("mk,kj,mj->", d, h.numpy(), d) / np.einsum("mk,kj,mj->", w, h.numpy(), w))

    e_int, e_p2 = err(fineq.quantize(w, "gptq-ord", h)), err(fineq.quantize(w, "gptq-ord", h, codebook=POW2))
    assert 0 < e_p2 < 0.2 and 0 < e_int < 0.2 and 0.5 < e_p2 / e_int < 2.0


def test_files_keep_the_codebook_and_old_versions_refuse_it(tmp_path):
    q = _on_grid()
    p = save(q, tmp_path / "q.fineq.npz")
    back = load(p)
    assert back == q and back.codebook == POW2
    with np.load(p) as z:
        assert int(z["format_version"]) == 3 and str(z["codebook"]) == POW2
        members = {k: z[k] for k in z.files}
    for version, extra, needle in [(1, {}, "format version 1 and the codebook key disagree"),
                                   (3, {"codebook": np.array("int")}, "codebook must be one of pow2"),
                                   (3, {"codebook": np.array("pow3")}, "codebook must be one of pow2")]:
        bad = {**{k: v for k, v in members.items() if k != "codebook"}, **extra,
               "format_version": np.int64(version)}
        if version == 1:
            bad["codebook"] = members["codebook"]
        with open(tmp_path / "bad.fineq.npz", "wb") as fh:
            np.savez(fh, **bad)
        with pytest.raises(FormatError, match=needle):
            load(tmp_path / "bad.fineq.npz")
    no_key = {k: v for k, v in members.items() if k != "codebook"}
    with open(tmp_path / "nokey.fineq.npz", "wb") as fh:
        np.savez(fh, **no_key)
    with pytest.raises(FormatError, match="format version 3 and the codebook key disagree"):
        load(tmp_path / "nokey.fineq.npz")


def test_engine_coding_one_cycle_and_hardware_order():
    assert sum_w(64, coding="pow2") == sum_w(64) + 2 == 17
    assert codings_for(POW2) == ("pow2",) and codings_for("int") == ("thermometer", "binary")
    for u in range(4):  # a field magnitude becomes 0, 1, 2, 4 times the activation, in one cycle
        (factor, weight), = temporal_bits(np.array([u, 0, 1]), "pow2")
        assert factor.tolist() == [[0, 1, 2, 4][u], 0, 1] and weight == 1
        assert int(vector_length(u, "pow2")) == 1
    q = _on_grid(m=9, k=150, seed=4)
    x = int8_activations(150, 5, seed=6)
    y = gemm(q, x)
    assert np.array_equal(y, q.levels().astype(np.int64) @ x.astype(np.int64))
    for rows, depth in ((16, 4), (24, 2), (64, 256)):
        cfg = EngineConfig(rows, 5, depth, "pow2")
        assert np.array_equal(gemm_hw(q, x, cfg), y)
        assert engine_cycles(q.levels(), cfg)["temporal"] == 9 * -(-150 // rows)  # one cycle per vector
    assert np.array_equal(gemm_hw(q, x), y)  # the codebook's own coding by default
    with pytest.raises(FineQError, match="the pow2 codebook's levels run on the pow2 coding, not thermometer"):
        gemm_hw(q, x, EngineConfig(16, 5, 4))
    with pytest.raises(FineQError, match="the int codebook's levels run on the thermometer or binary coding"):
        coding_for("int", "pow2")


def test_extreme_sums_fit_int32():
    """|Y| <= 4 * 128 * K: every level 4 or -4 against -128 (the largest product) stays exact."""
    k = 48
    lv = np.zeros((2, k), dtype=np.int8)
    codes = np.ones((2, k // 6), dtype=np.uint8)
    lv[0, 1::3], lv[0, 2::3] = 4, 4
    lv[1] = -lv[0]
    q = from_levels(lv, codes, codebook=POW2)
    x = np.full((k, 2), -128, dtype=np.int8)
    y = gemm(q, x)
    assert y[:, 0].tolist() == [-128 * 4 * 32, 128 * 4 * 32]
    assert np.array_equal(gemm_hw(q, x, EngineConfig(16, 2, 4, "pow2")), y)


def test_method_names():
    assert {"fineq-paper-pow2", "fineq-gptq-ord-pow2", "fineq-recon-pow2"} <= set(registry.QUANTIZERS)
    q = registry.get("fineq-recon-pow2")
    assert q.codebook == POW2 and q.mode == "recon" and q.recon is not None and "outside the spec" in q.about
    g = registry.get("fineq-gptq-ord-pow2-g128")
    assert (g.codebook, g.group) == (POW2, 128) and registry.get("fineq-gptq-ord-g128-pow2").group == 128
    assert registry.get("fineq-hdiag-pow2").calibrated and not registry.get("fineq-paper-pow2").calibrated
    for bad, needle in [("fineq-gptq-hw@0.1-pow2", "neither cycle-priced"), ("fineq-recon-hw@0.2-pow2",
                        "neither cycle-priced"), ("fineq-recon-pow2-pow2", "come once each"),
                        ("gptq4-pow2", "unknown method")]:
        with pytest.raises(FineQError, match=needle):
            registry.get(bad)
    with pytest.raises(FineQError, match="mode gptq-hw takes only the spec's codebook"):
        registry.quantize(np.ones((2, 24), dtype=np.float32), "gptq-hw", hessian=np.eye(24), codebook=POW2)


def test_cli_quantize_info_and_coding_check(tmp_path, capsys):
    w = heavy_tailed(7, 60, seed=8)
    np.save(tmp_path / "W.npy", w)
    np.save(tmp_path / "X.npy", int8_activations(60, 3, seed=9))
    assert main(["quantize", str(tmp_path / "W.npy"), "-o", str(tmp_path / "W.fineq.npz"), "--codebook", POW2]) == 0
    assert main(["info", str(tmp_path / "W.fineq.npz")]) == 0
    out = capsys.readouterr().out
    assert "codebook         pow2 (a variant outside the spec)" in out and "levels -4..+4" in out
    assert main(["gemm", str(tmp_path / "W.fineq.npz"), str(tmp_path / "X.npy")]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["bit_exact"] and res["cycle_split"]["temporal"] == 7  # 7 rows, one 64-row tile: 1 cycle each
    assert main(["gemm", str(tmp_path / "W.fineq.npz"), str(tmp_path / "X.npy"), "--coding", "thermometer"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run on the pow2 coding, not thermometer" in err[0]


def _seed() -> int:
    seed = int(os.environ.get("SEED") or np.random.SeedSequence().entropy % (1 << 31))
    print(f"SEED={seed}")
    return seed


@pytest.mark.rtl
@pytest.mark.parametrize("backend", ["verilator", "icarus"])
def test_rtl_runs_pow2_bit_and_cycle_exact(backend, tmp_path, monkeypatch):
    """The power-of-two engine (CODING = 2) on both backends: the golden model's Y and one cycle per vector; the
    same bytes on the thermometer engine give the spec's reading instead (why the coding check exists)."""
    from fineq.hw.native import run_engine
    from fineq.hw.run import run_gemm

    monkeypatch.setenv("FINEQ_HW_CACHE", str(tmp_path / "cache"))
    seed = _seed()
    rng = np.random.default_rng(seed)
    m, k, n = int(rng.integers(3, 12)), int(rng.integers(40, 140)), int(rng.integers(1, 9))
    q = fineq.quantize(heavy_tailed(m, k, seed=seed), "paper", codebook=POW2)
    x = rng.integers(-128, 128, (k, n), dtype=np.int8)
    res = run_gemm(q, x, backend, rows=16, cols=8, psum_depth=4, seed=seed)
    assert np.array_equal(res["y"], gemm(q, x)) and res["cycles_match_model"]
    assert engine_cycles(q.levels(), EngineConfig(16, 8, 4, "pow2"))["temporal"] == m * -(-k // 16)
    if backend == "verilator":
        stalled = run_gemm(q, x, backend, rows=16, cols=8, psum_depth=4, stall=0.3, seed=seed + 1)
        assert np.array_equal(stalled["y"], gemm(q, x))
        as_int = QuantizedMatrix(q.packed, q.scales, q.shape)
        if (np.abs(q.levels()) == 4).any():
            misread = run_engine(as_int, x, EngineConfig(16, 8, 4))
            assert np.array_equal(misread.y, gemm(as_int, x)) and not np.array_equal(misread.y, gemm(q, x))


@pytest.fixture(scope="module")
def tiny_pow2(tiny_llama):
    """fineq-gptq-ord-pow2 and fineq-recon-pow2 on the tiny LLaMA."""
    from tiny_llm import apply_methods

    folder, text = tiny_llama
    return apply_methods(folder, text, ["fineq-gptq-ord-pow2", "fineq-recon-pow2"])


def test_recon_trains_pow2_levels_on_a_tiny_model(tiny_pow2):
    start, res = tiny_pow2["fineq-gptq-ord-pow2"], tiny_pow2["fineq-recon-pow2"]
    for n, r in res.items():
        q = r.qmatrix
        assert q.codebook == POW2 and q.mode == "recon"
        assert set(np.unique(q.levels()).tolist()) <= {-4, -2, -1, 0, 1, 2, 4}
        if ".layers.0." in n:  # block 0 starts from the same gptq-ord (later blocks see trained inputs)
            assert np.array_equal(q.codes(), start[n].qmatrix.codes())  # codes kept
        assert torch.equal(r.weight, torch.from_numpy(q.dequantize()))
    infos = [r.info for r in res.values()]
    assert all(i["recon_loss"] <= i["recon_loss_start"] for i in infos)
    assert any(i["recon_kept"] for i in infos)
    assert any(not np.array_equal(res[n].qmatrix.levels(), start[n].qmatrix.levels()) for n in res)


def test_quantize_model_pow2_file_reloads_to_its_eval(tiny_llama, tmp_path, capsys):
    """quantize-model --codebook pow2 writes format version 4 (codebook pow2); eval --quantized of it gives the
    perplexity of fineq-gptq-ord-pow2 computed directly, and the eval row says codebook pow2 and 1 cycle/vector."""
    from fineq.llm.modelfile import read_model_file

    folder, text = tiny_llama
    out = tmp_path / "p.fineq.safetensors"
    common = ["--calib-text", str(text), "--calib-samples", "4", "--calib-seq", "64"]
    assert main(["quantize-model", "--model", str(folder), "-o", str(out), "--mode", "gptq-ord", "--codebook", POW2,
                 *common]) == 0
    qms, meta = read_model_file(out)
    assert meta["format_version"] == "4" and meta["codebook"] == POW2
    assert all(q.codebook == POW2 for q in qms.values())
    js = tmp_path / "e.json"
    capsys.readouterr()
    assert main(["eval", "--model", str(folder), "--text", str(text), "--methods", "fineq-gptq-ord-pow2",
                 "--quantized", str(out), "--seq", "32", "--max-windows", "4", *common, "--json", str(js)]) == 0
    rows = json.loads(js.read_text())["results"]
    direct = next(r for r in rows if r["method"] == "fineq-gptq-ord-pow2")
    filed = next(r for r in rows if r["method"].startswith("file:"))
    assert filed["ppl"] == pytest.approx(direct["ppl"], rel=1e-9)
    assert direct["codebook"] == POW2 and direct["cycles_per_vector"] == 1.0
    assert "cycles_per_vector_binary" not in direct


def test_pareto_costs_pow2_on_its_own_datapath(tmp_path):
    from fineq.perf import pareto

    summ = {"mode": "liberty", "clock_mhz": 400.0, "array": [64, 64],
            "designs": {"fineq_pe_array": {"power_mw": {"total": 100.0}, "area_mm2": 0.5},
                        "fineq_pe_array_binary": {"power_mw": {"total": 120.0}, "area_mm2": 0.52},
                        "fineq_pe_array_pow2": {"power_mw": {"total": 130.0}, "area_mm2": 0.6},
                        "fineq_decoders": {"power_mw": {"total": 10.0}, "area_mm2": 0.1},
                        "mac_systolic_array": {"power_mw": {"total": 310.0}, "area_mm2": 1.4}},
            "mac_widths": {"4": {"power_mw": {"total": 400.0}, "area_mm2": 1.4}},
            "units": {"macsm4_col": {"sta": {"power_vcd": [0, 0, 0, 5.0]}}}}
    rows = []
    for s in (256,):
        rows += [{"method": "reference", "seq": s, "ppl": 10.0, "bits": 16.0},
                 {"method": "fineq-gptq-ord-pow2", "seq": s, "ppl": 30.0, "bits": 2.36, "codebook": POW2,
                  "cycles_per_vector": 1.0, "cycles_per_vector_by_linear": {"a": 1.0}},
                 {"method": "fineq-recon-pow2", "seq": s, "ppl": 19.0, "bits": 2.36, "codebook": POW2,
                  "cycles_per_vector": 1.0, "cycles_per_vector_by_linear": {"a": 1.0}},
                 {"method": "gptq4-sm", "seq": s, "ppl": 18.0, "bits": 4.02, "mac_weight_bits": 4, "group": None}]
    doc = {"model": "tiny", "reference": "made up", "text": "none", "results": rows,
           "linears": {"a": {"m": 128, "k": 192, "count": 2}}}
    power = pareto.Power(400.0, {"thermometer": 110.0, "binary": 130.0, "pow2": 140.0},
                         {"thermometer": 0.6, "binary": 0.62, "pow2": 0.7}, {4: 400.0}, {4: 1.4}, {4: 1.0},
                         310.0, 1.4, "made up")
    (tmp_path / "s.json").write_text(json.dumps(summ))
    assert pareto.load_power(tmp_path / "s.json").fineq_mw == power.fineq_mw
    out = pareto.build(doc, power, [])
    pts = [p for p in out["points"] if p["arch"] == "fineq"]
    assert [(p["name"], p["coding"], p["area_mm2"]) for p in pts] == [("FineQ gptq-ord-pow2", "pow2", 0.7),
                                                                      ("FineQ recon-pow2", "pow2", 0.7)]
    # equal energy (one cycle per vector both): the cheapest usable is the more accurate of the two
    assert {r["role"]: r["fineq"] for r in out["iso_accuracy"]} == {"most accurate": "FineQ recon-pow2",
                                                                    "cheapest usable": "FineQ recon-pow2"}
    pts = pts[1:]
    cfg = EngineConfig(coding="pow2")
    cycles = 2 * sum(v for key, v in fineq.engine.cycles.gemm_cycles(128, 192, 256, 128 * 3, cfg).items()
                     if key != "total")
    assert pts[0]["by_seq"]["256"]["cycles"] == cycles
    assert pts[0]["by_seq"]["256"]["compute_j"] == pytest.approx(140.0e-3 * cycles / 400e6)
    no_pow2 = {**summ, "designs": {k: v for k, v in summ["designs"].items() if k != "fineq_pe_array_pow2"}}
    (tmp_path / "s.json").write_text(json.dumps(no_pow2))
    with pytest.raises(FineQError, match="no FineQ array for the pow2 coding"):
        pareto.build(doc, pareto.load_power(tmp_path / "s.json"), [])
