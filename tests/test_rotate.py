"""Function-preserving model transforms (fineq.llm.rotate): norm folding and the residual rotation, the '+fold' /
'+rot' method suffixes, and quantize-model --transform files."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest

from fineq.cli.main import main
from fineq.errors import FineQError, FormatError
from fineq.llm import rotate
from fineq.quant import registry


@pytest.mark.parametrize("d", [1, 2, 12, 48, 64, 144, 576])
def test_hadamard_orders_are_hadamard(d):
    h = rotate.hadamard(d)
    assert h is not None and set(np.unique(h)) <= {-1.0, 1.0}
    assert np.array_equal(h @ h.T, d * np.eye(d))


@pytest.mark.parametrize("d", [10, 20, 960])
def test_other_orders_get_a_random_orthogonal_matrix(d):
    assert rotate.hadamard(d) is None
    q = rotate.orthogonal(d, 3)
    assert np.allclose(q @ q.T, np.eye(d), atol=1e-12)
    assert np.array_equal(q, rotate.orthogonal(d, 3)) and not np.allclose(q, rotate.orthogonal(d, 4))


def _tiny(tied: bool):
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tied)
    m = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # gains far from one, so that a wrong fold shows
        for n, p in m.named_parameters():
            if "norm" in n:
                p.copy_(0.3 + 2 * torch.rand_like(p))
    return m, torch.randint(0, 100, (2, 24))


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("spec", ["fold", "rotate", "rotate:7"])
def test_transforms_preserve_the_function(tied, spec):
    m, ids = _tiny(tied)
    ref = m(ids).logits.detach()
    t = copy.deepcopy(m)
    rotate.apply_transform(t, spec)
    out = t(ids).logits.detach()
    assert float((out - ref).abs().max()) < 1e-4 * float(ref.abs().max())
    lay = t.model.layers[0]
    assert float(lay.input_layernorm.weight.detach().min()) == 1.0 == float(t.model.norm.weight.detach().max())
    moved = float((lay.self_attn.q_proj.weight - m.model.layers[0].self_attn.q_proj.weight).detach().abs().max())
    assert moved > 1e-3  # the linears did change
    if spec.startswith("rotate"):  # the embedding is rotated, not just rescaled
        e0, e1 = m.model.embed_tokens.weight.detach(), t.model.embed_tokens.weight.detach()
        assert np.allclose(e1.norm(dim=1).numpy(), e0.norm(dim=1).numpy(), rtol=1e-5)
        assert float((e1 - e0).abs().max()) > 1e-2


def test_a_wrong_rotation_would_show():
    """The check above can fail: rotating the readers but not the writers changes the logits."""
    torch = pytest.importorskip("torch")
    m, ids = _tiny(False)
    ref = m(ids).logits.detach()
    rotate.rotate(m, 0)
    q = torch.from_numpy(rotate.orthogonal(48, 0))
    with torch.no_grad():
        lin = m.model.layers[1].mlp.down_proj
        lin.weight.copy_((q @ lin.weight.double()).float())  # undo Q^T on one writer
    assert float((m(ids).logits.detach() - ref).abs().max()) > 1e-2


def test_spec_parsing():
    assert rotate.canonical("rotate") == "rotate:0" and rotate.canonical("fold") == "fold"
    for bad in ("spin", "fold:1", "rotate:x", "rotate:-1", ""):
        with pytest.raises(FineQError, match="unknown model transform"):
            rotate.parse(bad)


def test_method_suffixes():
    q = registry.get("fineq-gptq-ord+rot")
    assert q.transform == "rotate:0" and q.mode == "gptq-ord" and q.calibrated
    assert registry.get("gptq4-sm+rot:3").transform == "rotate:3"
    assert registry.get("fineq-paper+fold").transform == "fold"
    assert registry.get("fineq-recon-hw@0.1+rot").recon is not None
    for bad, msg in [("reference+rot", "follow a quantizing method"), ("fineq-paper+rot+rot", "follow a quantizing"),
                     ("fineq-paper+spin", "comes fold, rot"), ("fineq-paper+fold:2", "comes fold, rot"),
                     ("nope+rot", "unknown method")]:
        with pytest.raises(FineQError, match=msg):
            registry.get(bad)


def test_eval_and_quantize_model_with_rotation(tiny_llama, tmp_path, capsys):
    """+rot in eval leaves the other methods' model untouched; quantize-model --transform stores the transform,
    and load_model rebuilds exactly the evaluated model."""
    torch = pytest.importorskip("torch")
    import fineq
    from fineq.llm import corpus, models
    from fineq.llm.apply import apply
    from fineq.llm.modelfile import read_model_file

    folder, text = tiny_llama
    js = tmp_path / "e.json"
    common = ["--model", str(folder), "--text", str(text), "--seq", "32", "--calib-samples", "4", "--calib-seq", "32"]
    assert main(["eval", *common, "--methods", "reference,fineq-gptq-ord+rot",
                 "--json", str(js)]) == 0
    rows = {r["method"]: r for r in json.loads(js.read_text())["results"]}
    assert set(rows) == {"reference", "fineq-gptq-ord+rot"}
    js2 = tmp_path / "e2.json"
    assert main(["eval", *common, "--methods", "fineq-gptq-ord+rot,reference", "--json", str(js2)]) == 0
    rows2 = {r["method"]: r for r in json.loads(js2.read_text())["results"]}
    assert rows2["reference"]["ppl"] == rows["reference"]["ppl"]  # the copy took the rotation, not the model
    assert rows2["fineq-gptq-ord+rot"]["ppl"] == rows["fineq-gptq-ord+rot"]["ppl"]

    out = tmp_path / "r.fineq.safetensors"
    assert main(["quantize-model", "--model", str(folder), "--mode", "gptq-ord", "--transform", "rotate:2",
                 "--calib-text", str(text), "--calib-samples", "4", "--calib-seq", "32", "-o", str(out)]) == 0
    cap = capsys.readouterr()
    assert "transform rotate:2" in cap.out + cap.err
    _qms, meta = read_model_file(out)
    assert meta["transform"] == "rotate:2" and meta["format_version"] == "2"
    lm = models.load(folder)
    calib = corpus.split(corpus.tokenize(lm.tokenizer, text.read_text()), 4, 32).calib
    apply(lm.model, dataclasses.replace(registry.for_mode("gptq-ord"), transform="rotate:2"), calib)
    ids = torch.from_numpy(calib[:1])
    loaded = fineq.load_model(out)
    assert torch.equal(loaded(ids).logits, lm.model(ids).logits)
    plain = models.load(folder).model
    assert not torch.allclose(loaded.model.embed_tokens.weight, plain.model.embed_tokens.weight)


def test_transform_metadata_is_checked(tiny_llama, tmp_path):
    pytest.importorskip("safetensors")
    from safetensors.numpy import load_file, save_file

    import fineq
    from fineq.llm.modelfile import read_model_file, save_model

    q = fineq.quantize(np.ones((4, 48), dtype=np.float32))
    good = save_model(tmp_path / "g.fineq.safetensors", {"model.layers.0.mlp.up_proj": q}, "paper", "x", "fold")
    _, meta = read_model_file(good)
    tensors = load_file(str(good))
    for change, msg in [({"transform": "spin"}, "unknown model transform"),
                        ({"format_version": "1"}, "disagree"),
                        ({"format_version": "3"}, "linear_groups metadata disagree"),
                        ({"format_version": "4"}, "codebook metadata disagree"),
                        ({"format_version": "5"}, "not supported")]:
        bad = tmp_path / "b.fineq.safetensors"
        save_file(tensors, str(bad), metadata={**meta, **change})
        with pytest.raises(FormatError, match=msg):
            read_model_file(bad)
    with pytest.raises(FineQError, match="unknown model transform"):
        save_model(tmp_path / "n.fineq.safetensors", {"a": q}, "paper", "x", "twist")
    assert not (tmp_path / "n.fineq.safetensors").exists()
