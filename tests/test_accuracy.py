"""Accuracy harness: model loading, corpus split, perplexity, every method on known cases, fineq eval."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from fineq.cli.main import main  # noqa: E402
from fineq.errors import FineQError  # noqa: E402
from fineq.llm import apply, corpus, models, ppl  # noqa: E402
from fineq.quant import baselines, registry  # noqa: E402
from fineq.quant.calibrated import CALIBRATED_MODES, hessian_from_inputs, quantize_calibrated  # noqa: E402
from fineq.quant.gptq import ScratchSpent, gptq, inverse_cholesky, output_error, scalar_unit  # noqa: E402
from fineq.quant.registry import quantize  # noqa: E402


def _layer(seed: int, m: int = 48, k: int = 96, n: int = 512):
    """A weight and correlated calibration inputs (a few strong, correlated channels), as LLM layers see."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_t(5, (m, k)) * 0.05).astype(np.float32)
    base = rng.standard_normal((n, 8))
    x = base @ rng.standard_normal((8, k)) + 0.3 * rng.standard_normal((n, k))
    x *= np.exp(rng.standard_normal(k))
    return torch.from_numpy(w), hessian_from_inputs(x)


# ---- per-matrix methods on known cases -------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gptq_output_error_below_rtn(seed):
    w, h = _layer(seed)
    e_rtn = output_error(w, baselines.rtn(w, 2).weight, h)
    e_gptq = output_error(w, baselines.gptq_method(w, h, 2).weight, h)
    assert e_gptq < e_rtn


def test_gptq_keeps_weights_already_on_the_grid():
    w, h = _layer(3)
    q = baselines.rtn(w, 2).weight  # on its own grid: GPTQ's rounding has nothing to do
    out = baselines.gptq_method(q, h, 2).weight
    assert torch.allclose(out, q, atol=1e-6)


def test_gptq_identity_hessian_is_rtn():
    """With H = I no error is propagated (U is diagonal): GPTQ equals round-to-nearest."""
    w, _ = _layer(4)
    h = torch.eye(w.shape[1], dtype=torch.float64)
    assert torch.allclose(baselines.gptq_method(w, h, 2).weight, baselines.rtn(w, 2).weight, atol=1e-6)


def test_gptq_unit6_equals_unit1_with_same_decisions():
    """Error feedback in units of 6 columns equals column-by-column feedback for the same rounding."""
    w, h = _layer(5)
    grid = 0.05

    def quant(col, j):
        return torch.round(col / grid) * grid

    q1, _ = gptq(w, h, scalar_unit(quant))

    def unit(w6, u6, col0):
        w6 = w6.clone()
        qs, es = torch.zeros_like(w6), torch.zeros_like(w6)
        for i in range(6):
            qs[:, i] = quant(w6[:, i], col0 + i)
            es[:, i] = (w6[:, i] - qs[:, i]) / u6[i, i]
            w6[:, i + 1:] -= es[:, i:i + 1] * u6[i, i + 1:]
        return qs, es

    q6, _ = gptq(w, h, unit, unit=6, blocksize=96)
    assert torch.allclose(q1, q6, atol=1e-5)


@pytest.mark.parametrize("symmetric", [True, False])
def test_owned_hessian_is_factored_in_place_to_the_same_bits(symmetric):
    """Both in-place ways (a symmetric H through its transpose, else through torch's copy) give the bits of the
    copying way."""
    w, h = _layer(6)
    if not symmetric:
        h[0, 1] += 1e-3 * h[0, 0]  # only the lower triangle is factored: the transpose would differ
        assert not torch.equal(inverse_cholesky(h.mT.contiguous())[0], inverse_cholesky(h)[0])
    assert torch.equal(h, h.mT) == symmetric
    u_ref, dead_ref = inverse_cholesky(h)
    scratch = h.clone()
    u, dead = inverse_cholesky(scratch, own=True)
    assert torch.equal(u, u_ref) and torch.equal(dead, dead_ref)
    assert scratch.numel() == 0  # consumed: its memory released


def test_owned_hessian_needing_extra_damping_gives_the_same_levels(monkeypatch):
    """A Hessian whose first damped factorization fails: the owned copy is spent (ScratchSpent), and gptq-ord
    retries with a fresh copy, giving the levels of a run that never owned it."""
    from fineq.quant import calibrated

    w, h = _layer(7)
    lam, mean = float(torch.linalg.eigvalsh(h).min()), float(torch.diag(h).mean())
    c = (lam + 0.015 * mean) / 1.015  # first try: lambda_min - c + d = -d / 2, second try +d / 2
    bad = h - c * torch.eye(h.shape[0], dtype=h.dtype)
    with pytest.raises(ScratchSpent):
        inverse_cholesky(bad.clone(), own=True)
    inverse_cholesky(bad)  # extra damping works when not owned
    got = quantize_calibrated(w, "gptq-ord", bad)
    plain = calibrated.gptq
    monkeypatch.setattr(calibrated, "gptq", lambda *a, own_h=False, **k: plain(*a, **k))
    want = quantize_calibrated(w, "gptq-ord", bad)
    assert all(np.array_equal(x, y) for x, y in zip(got, want, strict=True))


def test_padded_gather_is_padding_then_permuting():
    """gptq-ord's one gather of H equals zero-padding it to whole blocks and then permuting rows and columns."""
    from fineq.quant.calibrated import _padded_gather

    g = torch.Generator().manual_seed(3)
    x = torch.randn(50, 10, generator=g, dtype=torch.float64)
    h = x.T @ x
    perm = torch.randperm(12, generator=g)
    hp = torch.zeros((12, 12), dtype=torch.float64)
    hp[:10, :10] = h
    assert torch.equal(_padded_gather(h, perm), hp[perm][:, perm])
    assert torch.equal(_padded_gather(h, torch.arange(12)), hp)


@pytest.mark.parametrize("bits,k", [(2, 96), (3, 96), (2, 576)])
def test_rtn_bits_hand_computed(bits, k):
    w = torch.randn(10, k)
    r = baselines.rtn(w, bits)
    assert r.bits == 10 * k * bits + 10 * (16 + bits)
    levels = torch.unique(torch.round((r.weight - r.weight.min(dim=1, keepdim=True).values) * 1e4))
    assert len(torch.unique(r.weight[0])) <= 2**bits and len(levels) > 1


def test_uniform_symmetric_levels():
    w = torch.randn(6, 48)
    r = baselines.uniform(w, 2)
    s = 2 * w.abs().max(dim=1).values / 3
    lv = r.weight / s.to(torch.float16).float()[:, None]
    assert torch.allclose(lv, torch.round(lv), atol=1e-3)
    assert lv.min() >= -2 - 1e-3 and lv.max() <= 1 + 1e-3
    assert r.bits == 6 * 48 * 2 + 6 * 16


def test_owq_bits_and_weak_columns():
    w, h = _layer(6, m=64, k=576)
    r = baselines.owq(w, h, 2.25)
    n = r.info["weak_columns"]
    m, k = w.shape
    kq = k - n
    expect = m * kq * 2 + m * -(-kq // 128) * 18 + n * (m * 16 + 16)
    assert r.bits == expect and r.bits <= 2.25 * m * k
    assert (expect + m * 16 + 16) > 2.25 * m * k  # one more column would not fit
    assert n >= 1
    e_gptq = output_error(w, baselines.gptq_method(w, h, 2, 128).weight, h)
    assert output_error(w, r.weight, h) < e_gptq  # kept columns can only help


def test_pbllm_bits_and_salient_share():
    w, h = _layer(7, m=40, k=100)
    r = baselines.pbllm(w, h)
    m, k = w.shape
    n_sal = r.info["salient"]
    assert n_sal == round(0.1 * m * k)
    assert r.bits == (m * k - n_sal) + 8 * n_sal + m * k + m * (16 + 8 + 32)
    assert abs(r.bits / (m * k) - (2.7 + 56 / k)) < 1e-9
    assert output_error(w, r.weight, h) < output_error(w, baselines.rtn(w, 2).weight, h)


# ---- FineQ calibrated modes ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", CALIBRATED_MODES)
def test_fineq_calibrated_packed_bytes_decode_to_claimed_levels(mode):
    w, h = _layer(8, m=20, k=100)  # K not a multiple of 24: padding
    levels, codes, scales = quantize_calibrated(w.numpy(), mode, h)
    q = quantize(w.numpy(), mode, hessian=h)
    assert q.mode == mode and q.shape == (20, 100)
    assert np.array_equal(q.levels(), levels)
    assert np.array_equal(q.codes(), codes)
    assert np.array_equal(q.scales, scales)
    lv = q.levels()
    pair = np.zeros((20, 120), dtype=np.int8)
    pair[:, :100] = lv
    pair = pair.reshape(20, -1, 6)
    c = np.repeat(codes[:, :, None], 6, axis=2)
    assert (np.abs(pair[c == 0]) <= 1).all() and (np.abs(pair) <= 3).all()
    for code in (1, 2, 3):
        z = [code - 1, code + 2]
        assert (pair[:, :, z][codes == code] == 0).all()
    assert abs(q.bits_per_weight - (20 * 5 * 7 * 8 + 20 * 16) / 2000) < 1e-12


@pytest.mark.parametrize("seed", [0, 1])
def test_fineq_gptq_output_error_below_search(seed):
    w, h = _layer(seed, m=48, k=96)
    e_search = output_error(w, torch.from_numpy(quantize(w.numpy(), "search").dequantize()), h)
    for mode in ("gptq", "gptq-clip", "hdiag"):
        e = output_error(w, torch.from_numpy(quantize(w.numpy(), mode, hessian=h).dequantize()), h)
        assert e < e_search, mode


def test_fineq_calibrated_deterministic_and_checked():
    w, h = _layer(9, m=12, k=48)
    a = quantize(w.numpy(), "gptq", hessian=h)
    b = quantize(w.numpy(), "gptq", hessian=h.clone())
    assert a == b and a is not b
    assert np.array_equal(a.packed, b.packed)
    with pytest.raises(FineQError, match="needs calibration"):
        quantize(w.numpy(), "gptq")
    with pytest.raises(FineQError, match=r"\[48, 48\]"):
        quantize(w.numpy(), "gptq", hessian=np.eye(5))
    with pytest.raises(FineQError, match="takes no hessian"):
        quantize(w.numpy(), "paper", hessian=h)


@pytest.mark.rtl
@pytest.mark.parametrize("mode", CALIBRATED_MODES)
def test_fineq_calibrated_modes_bit_exact_on_rtl(mode):
    from fineq.hw.run import run_gemm

    w, h = _layer(10, m=9, k=40)
    q = quantize(w.numpy(), mode, hessian=h)
    x = np.random.default_rng(11).integers(-128, 128, (40, 5), dtype=np.int8)
    res = run_gemm(q, x, "icarus", rows=16, cols=8, psum_depth=4)
    from fineq import gemm

    assert np.array_equal(res["y"], gemm(q, x))
    assert res["cycles_match_model"] is True


# ---- corpus, perplexity, whole-model methods on a tiny LLaMA ---------------------------------------------

def test_default_corpus_is_prose_and_split_is_disjoint():
    text, desc = corpus.read_text(None)
    assert "Devil" in desc and len(text) > 300_000
    assert "AUCTIONEER, n." in text and "abcdefghijklmnopqrstuvwxyz" not in text
    toks = np.arange(1000)
    sp = corpus.split(toks, 4, 50)
    assert sp.calib.shape == (4, 50) and np.array_equal(sp.calib.reshape(-1), toks[:200])
    win = sp.windows(64, None)
    assert win.shape == (12, 64) and win[0, 0] == 200  # evaluation starts after calibration
    assert sp.windows(64, 3).shape == (3, 64)
    with pytest.raises(FineQError, match="fewer than one window"):
        sp.windows(5000, None)


def test_perplexity_matches_transformers_loss(tiny_llama):
    folder, text = tiny_llama
    lm = models.load(str(folder))
    toks = corpus.tokenize(lm.tokenizer, text.read_text())
    win = corpus.split(toks, 0, 1).windows(32, 5)
    r = ppl.perplexity(lm.model, win, batch_tokens=64)
    with torch.no_grad():
        losses = [float(lm.model(input_ids=torch.from_numpy(w[None]), labels=torch.from_numpy(w[None])).loss)
                  for w in win]
    assert r["windows"] == 5 and r["tokens"] == 160 and r["predicted"] == 155
    assert math.isclose(r["ppl"], math.exp(sum(losses) / len(losses)), rel_tol=1e-4)


@pytest.mark.parametrize("name", ["fineq-paper", "gptq", "fineq-gptq", "owq", "pbllm"])
def test_methods_quantize_only_decoder_linears(tiny_llama, name):
    folder, text = tiny_llama
    lm = models.load(str(folder))
    before = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    calib = corpus.split(corpus.tokenize(lm.tokenizer, text.read_text()), 4, 32).calib
    res = apply.apply(lm.model, registry.get(name), calib)
    lins = models.decoder_linears(lm.model)
    assert set(res) == set(lins) and len(lins) == 14
    for n, p in lm.model.named_parameters():
        changed = not torch.equal(p, before[n])
        assert changed == (n.removesuffix(".weight") in lins), n
    assert 1.5 < apply.bits_per_weight(res, lm.model) < 4  # K = 64: per-row parameters weigh a lot


def test_skip_leaves_matching_linears(tiny_llama):
    folder, _ = tiny_llama
    lm = models.load(str(folder))
    res = apply.apply(lm.model, registry.get("rtn"), None, skip=(r"\.mlp\.",))
    assert res and all(".self_attn." in n for n in res)


def test_int8_path_is_fineq_gemm(tiny_llama):
    from fineq import gemm
    from fineq.llm.int8path import int8_activations, quantize_tokens

    folder, _ = tiny_llama
    lm = models.load(str(folder))
    res = apply.apply(lm.model, registry.get("fineq-paper"))
    name = "model.layers.0.mlp.down_proj"
    lin = dict(lm.model.named_modules())[name]
    x = torch.randn(3, 7, lin.in_features)
    with int8_activations(lm.model, {name: res[name]}):
        y = dict(lm.model.named_modules())[name](x)
    assert dict(lm.model.named_modules())[name] is lin  # restored
    q = res[name].qmatrix
    xq, sx = quantize_tokens(x.reshape(-1, lin.in_features))
    expect = gemm(q, xq.numpy().T).T * sx.numpy()[:, None].astype(np.float64) * q.scales.astype(np.float32)[None]
    assert np.allclose(y.reshape(-1, lin.out_features).numpy(), expect, rtol=1e-5, atol=1e-6)
    yf = lin(x)
    assert torch.allclose(y, yf, atol=0.05 * float(yf.abs().max()))


def test_eval_cli_tiny(tiny_llama, tmp_path, capsys):
    folder, text = tiny_llama
    js, png = tmp_path / "r.json", tmp_path / "r.png"
    args = ["eval", "--model", str(folder), "--text", str(text), "--methods", "reference,fineq-paper,gptq,rtn",
            "--seq", "16", "32", "--max-windows", "3", "--calib-samples", "3", "--calib-seq", "32",
            "--int8-activations", "--json", str(js), "--chart", str(png)]
    assert main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    doc = json.loads(out[-1])
    assert {r["method"] for r in doc["results"]} == {"reference", "fineq-paper", "gptq", "rtn"}
    assert {r["seq"] for r in doc["results"]} == {16, 32} and len(doc["results"]) == 8
    assert all(r["ppl"] > 1 and r["ppl_int8"] > 1 for r in doc["results"])
    ref = [r for r in doc["results"] if r["method"] == "reference"][0]
    assert ref["bits"] == 16.0
    assert any(line.startswith("fineq-paper") for line in out)
    full = json.loads(js.read_text())
    assert full["calibration_tokens"] == 96 and png.stat().st_size > 1000
    assert full["environment"]["torch"] == torch.__version__ and full["environment"]["cpu"]
    assert main(args) == 2  # outputs exist: refused without --force
    assert "exists" in capsys.readouterr().err


def test_eval_list_methods(capsys):
    assert main(["eval", "--list-methods"]) == 0
    names = capsys.readouterr().out.split()
    assert names == list(registry.QUANTIZERS)
    for must in ("reference", "fineq-paper", "fineq-search", "rtn", "rtn3", "uniform", "gptq", "owq", "pbllm"):
        assert must in names


@pytest.mark.parametrize("args,msg", [
    (["--methods", "nope"], "unknown method"),
    (["--seq", "1"], "at least 2"),
    (["--methods", "rtn,rtn"], "twice"),
])
def test_eval_bad_arguments(tiny_llama, capsys, args, msg):
    folder, text = tiny_llama
    assert main(["eval", "--model", str(folder), "--text", str(text), *args]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_model_loader_errors(tmp_path):
    with pytest.raises(FineQError, match="does not exist"):
        models.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FineQError, match="no config.json"):
        models.load(tmp_path / "empty")
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"not a gguf")
    with pytest.raises(FineQError, match="cannot be loaded"):
        models.load(bad)


# ---- whole-model artifacts ---------------------------------------------------------------------------

def test_quantize_model_file_roundtrip(tiny_llama, tmp_path, capsys):
    from fineq import load_model
    from fineq.llm.modelfile import read_model_file

    folder, text = tiny_llama
    out = tmp_path / "m.fineq.safetensors"
    assert main(["quantize-model", "--model", str(folder), "-o", str(out), "--mode", "gptq", "--text", str(text),
                 "--calib-samples", "2", "--calib-seq", "32"]) == 0
    assert "wrote" in capsys.readouterr().out
    qms, meta = read_model_file(out)
    assert meta["mode"] == "gptq" and len(qms) == 14
    lm = models.load(str(folder))
    toks = corpus.tokenize(lm.tokenizer, text.read_text())
    calib = corpus.split(toks, 2, 32).calib
    apply.apply(lm.model, registry.get("fineq-gptq"), calib)
    win = corpus.split(toks, 2, 32).windows(32, 4)
    in_memory = ppl.perplexity(lm.model, win)["ppl"]
    reloaded = load_model(out, str(folder))
    assert ppl.perplexity(reloaded, win)["ppl"] == in_memory
    for n, q in qms.items():
        assert torch.equal(dict(reloaded.named_modules())[n].weight, torch.from_numpy(q.dequantize()))
    # fineq perf reads the stored (calibrated) levels, not a re-quantization
    from fineq.engine.cycles import level_stats

    hw = level_stats([q.levels() for q in qms.values()])
    assert main(["perf", "--weights", str(out), "--seq", "32", "--synth", str(tmp_path / "none.json")]) == 0
    printed = capsys.readouterr().out
    assert f"FineQ gptq: 14 matrices, {100 * hw['nonzero_levels']:.1f}% non-zero levels" in printed
    assert f"{hw['cycles_per_vector']:.3f} temporal cycles" in printed
    assert main(["perf", "--weights", str(out), "--mode", "paper"]) == 2


def test_model_file_rejects_bad_files(tiny_llama, tmp_path):
    from fineq.errors import FormatError
    from fineq.llm.modelfile import read_model_file, save_model

    folder, _ = tiny_llama
    lm = models.load(str(folder))
    res = apply.apply(lm.model, registry.get("fineq-paper"))
    good = save_model(tmp_path / "g.fineq.safetensors", {n: r.qmatrix for n, r in res.items()}, "paper", "tiny")
    data = good.read_bytes()
    (tmp_path / "trunc.fineq.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.fineq.safetensors").write_bytes(b"\x00" * 64)
    from safetensors.numpy import save_file

    save_file({"a": np.zeros(3)}, str(tmp_path / "foreign.safetensors"))
    for name, msg in [("trunc.fineq.safetensors", "truncated or corrupt"), ("junk.fineq.safetensors", "corrupt"),
                      ("foreign.safetensors", "not a FineQ model file")]:
        with pytest.raises(FormatError, match=msg):
            read_model_file(tmp_path / name)
    other = models.load(str(folder))
    with torch.no_grad():
        other.model.model.layers[0].mlp.down_proj.weight = torch.nn.Parameter(torch.zeros(64, 95))
    from fineq import load_model

    with pytest.raises(FormatError, match="in the model"):
        load_model(good, other.model)


# ---- the real model ------------------------------------------------------------------------------

@pytest.mark.slow
def test_smollm2_smoke(capsys):
    """The installed SmolLM2 (dequantized Q4_1 reference): a few short windows, reference vs FineQ."""
    assert main(["eval", "--model", "smollm2", "--methods", "reference,fineq-paper", "--seq", "64",
                 "--max-windows", "4"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ref, fq = doc["results"]
    assert doc["model"] == "smollm2" and "Q4_1" in doc["reference"]
    assert 5 < ref["ppl"] < 200 and fq["ppl"] > ref["ppl"]
    assert 2.3 < fq["bits"] < 2.4
