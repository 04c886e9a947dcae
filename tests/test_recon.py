"""Mode recon (fineq.quant.recon, fineq.llm.recon): the STE training finds a known answer, keeps the codes and
the format, never loses to gptq-ord, lowers a tiny model's block errors, and its matrices run bit-exactly on the
RTL engine; --calib-text calibrates on one text and evaluates on another."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fineq  # noqa: E402
from fineq.cli.main import main  # noqa: E402
from fineq.errors import FineQError  # noqa: E402
from fineq.format.qmatrix import from_levels  # noqa: E402
from fineq.quant import registry  # noqa: E402
from fineq.quant.calibrated import hessian_from_inputs  # noqa: E402
from fineq.quant.recon import LatentFineQ, ReconConfig, train  # noqa: E402
from fineq.synthetic import heavy_tailed  # noqa: E402


def _problem(m: int = 16, k: int = 96, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = heavy_tailed(m, k, seed=seed)
    x = torch.randn(512, k, generator=g) * torch.linspace(0.3, 2.0, k)
    return w, hessian_from_inputs(x.numpy())


def _on_grid(m: int = 6, k: int = 48, seed: int = 3):
    """A matrix FineQ represents exactly: random codes, levels inside each code's range, scales 0.25."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (m, k // 6)).astype(np.uint8)
    lv = np.zeros((m, k // 6, 6), dtype=np.int8)
    for r in range(m):
        for p in range(k // 6):
            c = codes[r, p]
            lim = 1 if c == 0 else 3
            lv[r, p] = rng.integers(-lim, lim + 1, 6)
            if c:
                lv[r, p, [c - 1, c + 2]] = 0
    q = from_levels(lv.reshape(m, k), codes, np.full(m, 0.25, dtype=np.float16))
    return q


def test_ste_training_recovers_a_known_answer():
    """Start one level off in a third of the allowed positions; on the weight error (H = I) the training must
    walk every latent back to the true level, and leave the scale at 0.25."""
    q = _on_grid()
    true = q.levels()
    w = torch.from_numpy(q.dequantize())
    wrong = true.copy()
    rng = np.random.default_rng(4)
    lim = np.where(np.repeat(q.codes(), 6, axis=1) == 0, 1, 3)
    allowed = np.ones_like(true, dtype=bool)
    for r in range(true.shape[0]):
        for p in range(true.shape[1] // 6):
            c = q.codes()[r, p]
            if c:
                allowed[r, [6 * p + c - 1, 6 * p + c + 2]] = False
    flip = allowed & (rng.random(true.shape) < 0.33)
    step = np.where(true < lim, 1, -1)
    wrong[flip] = (true + step)[flip]
    assert (wrong != true).sum() > 20
    lat = LatentFineQ(w, wrong, q.codes(), q.scales)
    assert np.array_equal(lat.harden()[0], wrong)  # the start is exactly the given levels

    def loss(_b: int):
        d = w - lat.weight()
        return (d * d).sum()

    train([lat], loss, 1, ReconConfig(epochs=300, lr_level=2e-2, lr_scale=1e-3))
    lv, codes, s16 = lat.harden()
    assert np.array_equal(lv, true)
    assert np.array_equal(codes, q.codes())
    assert np.allclose(s16.astype(np.float32), 0.25, rtol=2e-3)


def test_recon_needs_a_model_and_is_checked(capsys):
    w, h = _problem()
    with pytest.raises(FineQError, match="whole decoder blocks"):
        fineq.quantize(w, "recon", hessian=h)
    with pytest.raises(SystemExit) as e:  # not a matrix mode
        main(["quantize", "--mode", "recon", "w.npy", "-o", "q.fineq.npz"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(FineQError, match="epochs"):
        ReconConfig(epochs=-1)
    with pytest.raises(FineQError, match="whole number"):
        registry.get("fineq-recon@x")
    assert registry.get("fineq-recon@3").recon.epochs == 3
    assert registry.get("fineq-recon").recon == ReconConfig() and "fineq-recon" in registry.QUANTIZERS


@pytest.fixture(scope="module")
def tiny_runs(tiny_llama):
    """gptq-ord, recon, and recon with learning rates 0 on the tiny LLaMA; logits error against the float model."""
    from fineq.llm import corpus, models
    from fineq.llm.apply import apply

    folder, text = tiny_llama
    lm = models.load(folder)
    toks = corpus.tokenize(lm.tokenizer, text.read_text())
    calib = corpus.split(toks, 8, 64).calib
    ids = torch.from_numpy(calib)
    with torch.no_grad():
        ref = lm.model(input_ids=ids).logits
    orig = {n: lin.weight.detach().clone() for n, lin in models.decoder_linears(lm.model).items()}
    frozen = registry.Quantizer("recon-frozen", True, registry.get("fineq-recon").fn, "recon", "lr 0",
                                recon=ReconConfig(lr_level=0.0, lr_scale=0.0))
    runs = {}
    for method in (registry.get("fineq-gptq-ord"), registry.get("fineq-recon@8"), frozen,
                   registry.get("fineq-gptq-hw@0.1"), registry.get("fineq-recon-hw@0.1")):
        with torch.no_grad():
            for n, lin in models.decoder_linears(lm.model).items():
                lin.weight.copy_(orig[n])
        res = apply(lm.model, method, calib)
        with torch.no_grad():
            runs[method.name] = (res, float(((lm.model(input_ids=ids).logits - ref) ** 2).mean()))
    return orig, runs


def test_recon_on_a_tiny_model_lowers_block_error(tiny_runs):
    """Every decoder linear quantized once in mode recon, each block's loss no higher than gptq-ord's and lower
    in at least one, block 0 keeping gptq-ord's codes, and the logits closer to the float model's."""
    orig, runs = tiny_runs
    base, e_base = runs["fineq-gptq-ord"]
    res, e = runs["fineq-recon@8"]
    assert set(res) == set(orig) == set(base)
    assert all(r.qmatrix.mode == "recon" for r in res.values())
    infos = [r.info for r in res.values()]
    assert all(i["recon_loss"] <= i["recon_loss_start"] for i in infos)
    assert any(i["recon_loss"] < 0.95 * i["recon_loss_start"] for i in infos)
    assert e < e_base
    for n in res:
        if ".layers.0." in n:  # the same inputs as gptq-ord's block 0: the same codes, other levels
            assert np.array_equal(res[n].qmatrix.codes(), base[n].qmatrix.codes())
        assert torch.equal(res[n].weight, torch.from_numpy(res[n].qmatrix.dequantize()))
    assert any(not np.array_equal(res[n].qmatrix.levels(), base[n].qmatrix.levels()) for n in res if ".layers.0." in n)


def test_recon_that_does_not_train_is_gptq_ord(tiny_runs):
    """Learning rates 0: training moves nothing, so every block keeps gptq-ord's matrices exactly."""
    _orig, runs = tiny_runs
    base, e_base = runs["fineq-gptq-ord"]
    res, e = runs["recon-frozen"]
    for n in base:
        assert base[n].qmatrix == res[n].qmatrix and res[n].qmatrix.mode == "recon"
        assert res[n].info["recon_kept"] is False
    assert e == pytest.approx(e_base, rel=1e-6)


def test_calib_text_calibrates_on_another_text(tiny_llama, tmp_path, capsys):
    folder, text = tiny_llama
    cal = tmp_path / "cal.txt"
    cal.write_text("Calibration prose, not the evaluation text at all. " * 40)
    js = tmp_path / "r.json"
    args = ["eval", "--model", str(folder), "--text", str(text), "--calib-text", str(cal), "--methods",
            "reference,fineq-gptq-ord", "--seq", "32", "--calib-samples", "4", "--calib-seq", "64",
            "--json", str(js)]
    assert main(args) == 0
    doc = json.loads(js.read_text())
    assert doc["calibration_tokens"] == 256 and doc["calibration_text"] == str(cal)
    # all of --text is evaluated: as many windows as the whole text holds
    n = len(text.read_text()) // 32
    assert {r["windows"] for r in doc["results"]} == {min(n, 16384 // 32)}
    capsys.readouterr()
    short = tmp_path / "short.txt"
    short.write_text("too short")
    assert main(["eval", "--model", str(folder), "--text", str(text), "--calib-text", str(short), "--methods",
                 "fineq-gptq-ord", "--seq", "32", "--calib-samples", "4", "--calib-seq", "64"]) == 2
    err = capsys.readouterr().err
    assert "calibration text" in err and "too few" in err and "Traceback" not in err


def _vector_max(levels: np.ndarray, rows: int = 64) -> np.ndarray:
    m, k = levels.shape
    pad = np.zeros((m, -(-k // rows) * rows), dtype=np.int8)
    pad[:, :k] = np.abs(levels)
    return np.maximum(pad.reshape(m, -1, rows).max(axis=2), 1)


def test_recon_hw_never_raises_a_vectors_cycles(tiny_runs):
    """fineq-recon-hw@L starts each block from gptq-hw@L and keeps every 64-weight vector's largest magnitude
    (its temporal cycles) at most the start's: on block 0 (the same inputs as a gptq-hw run) vector by vector."""
    _orig, runs = tiny_runs
    hw, _ = runs["fineq-gptq-hw@0.1"]
    res, _ = runs["fineq-recon-hw@0.1"]
    assert all(r.qmatrix.mode == "recon" for r in res.values())
    trained = 0
    for n in res:
        if ".layers.0." in n:
            a, b = hw[n].qmatrix.levels(), res[n].qmatrix.levels()
            assert (_vector_max(b) <= _vector_max(a)).all(), n
            assert np.array_equal(res[n].qmatrix.codes(), hw[n].qmatrix.codes())
            trained += int(not res[n].qmatrix == hw[n].qmatrix)
    assert trained > 0
    with pytest.raises(FineQError, match="lambda"):
        registry.get("fineq-recon-hw@-1")


@pytest.mark.rtl
def test_recon_matrices_bit_exact_on_rtl(tiny_runs):
    from fineq import gemm
    from fineq.hw.run import run_gemm

    res, _ = tiny_runs[1]["fineq-recon@8"]
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"):
        q = res[name].qmatrix
        x = np.random.default_rng(12).integers(-128, 128, (q.shape[1], 5), dtype=np.int8)
        out = run_gemm(q, x, "icarus", rows=16, cols=8, psum_depth=4)
        assert np.array_equal(out["y"], gemm(q, x)), name
        assert out["cycles_match_model"] is True


def test_quantize_model_recon_with_calib_text(tiny_llama, tmp_path, capsys):
    """quantize-model --mode recon --calib-text: every linear stored once in mode recon, the log names the blocks
    trained, and the file reloads to the packed matrices."""
    from fineq import load_model
    from fineq.llm.modelfile import read_model_file

    folder, text = tiny_llama
    out = tmp_path / "r.fineq.safetensors"
    assert main(["quantize-model", "--model", str(folder), "-o", str(out), "--mode", "recon", "--calib-text",
                 str(text), "--calib-samples", "4", "--calib-seq", "64"]) == 0
    printed = capsys.readouterr().out
    assert "mode recon" in printed and "of 2 blocks trained" in printed
    qms, meta = read_model_file(out)
    assert meta["mode"] == "recon" and len(qms) == 14 and all(q.mode == "recon" for q in qms.values())
    model = load_model(out, str(folder))
    for n, q in qms.items():
        assert torch.equal(dict(model.named_modules())[n].weight, torch.from_numpy(q.dequantize()))
