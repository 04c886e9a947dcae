"""Decoder LLMs beyond LLaMA: tiny random-weight models built here from each architecture's ``transformers``
config (nothing downloaded), through the loader, the calibrated layer-by-layer pass, evaluation and the model file.

For each: the reference perplexity equals the model's own forward computed here; every ``nn.Linear`` of the
decoder blocks (found here by walking the modules) is quantized exactly once, fused ones (Phi-3's ``qkv_proj``
and ``gate_up_proj``) as one matrix; a calibrated mode runs; the saved model reloads to the same logits.
"""

from __future__ import annotations

import math
import string
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from fineq.cli.main import main  # noqa: E402
from fineq.errors import FineQError  # noqa: E402
from fineq.llm import models  # noqa: E402
from fineq.llm.apply import apply  # noqa: E402
from fineq.llm.modelfile import load_model, read_model_file  # noqa: E402
from fineq.llm.ppl import perplexity  # noqa: E402
from fineq.quant import registry  # noqa: E402

COMMON = {"vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
          "tie_word_embeddings": False}
ARCHS = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {"sliding_window": 16}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"head_dim": 16}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {"head_dim": 16, "sliding_window": 16,
                                                     "query_pre_attn_scalar": 16}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", {"head_dim": 16, "sliding_window": 16,
                                                         "query_pre_attn_scalar": 16}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {"pad_token_id": 0}),
}
TEXT = ("The quick brown fox jumps over the lazy dog; a stitch in time saves nine. " * 30)
SEQ = 48


def _make(arch: str, folder: Path) -> Path:
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tm
    from transformers import PreTrainedTokenizerFast

    cfg_name, model_name, extra = ARCHS[arch]
    cfg = getattr(transformers, cfg_name)(**{**COMMON, **extra})
    torch.manual_seed(0)
    model = getattr(transformers, model_name)(cfg).eval()
    with torch.no_grad():  # a little less random than the init: norms away from their defaults
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    folder.mkdir(parents=True)
    model.save_pretrained(folder)
    chars = ["<unk>"] + list(string.printable)
    tok = Tokenizer(tm.WordLevel({c: i for i, c in enumerate(chars)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(folder)
    (folder.parent / "text.txt").write_text(TEXT)
    return folder


def _block_linears(model) -> set[str]:
    """Every nn.Linear under the decoder blocks, found independently of the package."""
    return {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in f".{n}"}


@pytest.fixture(scope="module", params=list(ARCHS))
def tiny(request, tmp_path_factory):
    return request.param, _make(request.param, tmp_path_factory.mktemp(request.param) / "model")


def _windows(lm) -> np.ndarray:
    from fineq.llm import corpus

    toks = corpus.tokenize(lm.tokenizer, TEXT)
    return toks[: 3 * SEQ].reshape(3, SEQ).astype(np.int64)


def test_reference_perplexity_is_the_models_own_forward(tiny):
    arch, folder = tiny
    lm = models.load(str(folder))
    w = _windows(lm)
    got = perplexity(lm.model, w)["ppl"]
    with torch.no_grad():
        out = lm.model(input_ids=torch.from_numpy(w)).logits
        nll = torch.nn.functional.cross_entropy(out[:, :-1].reshape(-1, out.shape[-1]).float(),
                                                torch.from_numpy(w[:, 1:]).reshape(-1), reduction="mean")
    assert got == pytest.approx(math.exp(float(nll)), rel=1e-5), arch


def test_every_decoder_linear_is_quantized_exactly_once(tiny):
    arch, folder = tiny
    lm = models.load(str(folder))
    found = _block_linears(lm.model)
    assert set(models.decoder_linears(lm.model)) == found
    if arch == "phi3":
        assert {n.rsplit(".", 1)[-1] for n in found} == {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}
    calls: list[str] = []
    m = registry.get("fineq-paper")
    real = m.fn

    def counting(w, h):
        calls.append(tuple(w.shape))
        return real(w, h)

    import dataclasses

    res = apply(lm.model, dataclasses.replace(m, fn=counting))
    assert set(res) == found and len(calls) == len(found)
    for n, r in res.items():  # the model now holds each linear's dequantized FineQ weight
        lin = dict(lm.model.named_modules())[n]
        assert torch.equal(lin.weight.detach().float(), torch.from_numpy(r.qmatrix.dequantize()).float())


def test_a_calibrated_mode_runs_and_the_saved_model_reloads(tiny, tmp_path):
    arch, folder = tiny
    out = tmp_path / "q.fineq.safetensors"
    assert main(["quantize-model", "--model", str(folder), "--mode", "gptq-ord", "--text",
                 str(folder.parent / "text.txt"), "--calib-samples", "4", "--calib-seq", "32", "-o", str(out)]) == 0
    qms, meta = read_model_file(out)
    lm = models.load(str(folder))
    assert set(qms) == _block_linears(lm.model) and meta["mode"] == "gptq-ord"
    w = torch.from_numpy(_windows(lm))
    with torch.no_grad():
        ref = lm.model(input_ids=w).logits
        mods = dict(lm.model.named_modules())
        for n, q in qms.items():
            mods[n].weight.copy_(torch.from_numpy(q.dequantize()))
        want = lm.model(input_ids=w).logits
        got = load_model(out).eval()(input_ids=w).logits
    assert torch.equal(got, want)
    assert not torch.allclose(got, ref)  # the quantization changed something


def test_eval_runs_a_calibrated_mode(tiny, tmp_path):
    arch, folder = tiny
    assert main(["eval", "--model", str(folder), "--text", str(folder.parent / "text.txt"), "--methods",
                 "reference,fineq-gptq-ord", "--seq", "32", "--max-windows", "2", "--calib-samples", "4",
                 "--calib-seq", "32", "--json", str(tmp_path / "e.json")]) == 0
    import json

    rows = {r["method"]: r for r in json.loads((tmp_path / "e.json").read_text())["results"]}
    assert math.isfinite(rows["fineq-gptq-ord"]["ppl"]) and rows["fineq-gptq-ord"]["bits"] < 3


def test_a_block_matrix_that_is_not_a_linear_is_named():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=64, n_positions=64))
    # its blocks (transformer.h) are found by num_hidden_layers; their Conv1D matrices are named, not skipped
    with pytest.raises(FineQError, match=r"transformer\.h\.0\.attn\.c_attn is a Conv1D holding a matrix"):
        models.decoder_linears(model)


def test_each_block_gets_its_own_arguments(tiny):
    """The calibration pass calls block i with what the model gives block i (Gemma's sliding-window layers get
    their own mask): blocks run one by one from the captured inputs reproduce the model's hidden states."""
    from fineq.llm.apply import _layer_inputs
    from fineq.llm.recon import block_output

    arch, folder = tiny
    lm = models.load(str(folder))
    w = np.concatenate([_windows(lm)] * 2, axis=1)[:, :96]  # longer than the sliding windows (16)
    hidden, kwargs = _layer_inputs(lm.model, w, batch=3)
    with torch.no_grad():
        want = lm.model(input_ids=torch.from_numpy(w), output_hidden_states=True).hidden_states
        h = hidden[0]
        assert torch.equal(h, want[0])
        layers = models.decoder_layers(lm.model)
        for i, layer in enumerate(layers):
            h = block_output(layer(h, **kwargs[i][0]))
            got = lm.model.model.norm(h) if i == len(layers) - 1 else h
            torch.testing.assert_close(got, want[i + 1], rtol=1e-5, atol=1e-5, msg=f"{arch} block {i}")


def test_perf_and_rtl_layer_take_each_architecture(tiny, tmp_path, capsys):
    """perf --weights finds every block matrix of the folder (fused ones as one); rtl-layer runs layer 0's linears
    (the golden backend here; tests/test_rtl_model.py runs the RTL)."""
    import json

    arch, folder = tiny
    lm = models.load(str(folder))
    shapes = {n: tuple(m.weight.shape) for n, m in models.decoder_linears(lm.model).items()}
    out = tmp_path / "perf.json"
    assert main(["perf", "--weights", str(folder), "--seq", "32", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    text = json.dumps(doc)
    for n in shapes:
        assert n.rsplit(".", 1)[-1] in text, (arch, n)
    capsys.readouterr()
    assert main(["rtl-layer", "--model", str(folder), "--text", str(folder.parent / "text.txt"), "--backend",
                 "golden", "--tokens", "16"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {r["linear"] for r in line["linears"]} == {n for n in shapes if models.linear_layer_index(n) == 0}


@pytest.mark.parametrize("spec", ["fold", "rotate:0"])
def test_transforms_keep_the_function_or_name_the_norm(tiny, spec):
    """+fold / +rot on LLaMA-style blocks (LLaMA, Mistral, Qwen2, Qwen3) leave the logits as they were; on others
    (Gemma's 1 + gain norms, Phi-3's fused readers) they are an error naming the norm."""
    from fineq.llm.rotate import apply_transform

    arch, folder = tiny
    lm = models.load(str(folder))
    w = torch.from_numpy(_windows(lm))
    with torch.no_grad():
        ref = lm.model(input_ids=w).logits
        if arch in ("gemma2", "gemma3", "phi3"):
            with pytest.raises(FineQError, match="is not a LLaMA-style RMSNorm"):
                apply_transform(lm.model, spec)
            return
        apply_transform(lm.model, spec)
        torch.testing.assert_close(lm.model(input_ids=w).logits, ref, rtol=1e-4, atol=1e-4)


def test_export_writes_a_folder_transformers_loads_and_generate_works(tiny, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    arch, folder = tiny
    q = tmp_path / "q.fineq.safetensors"
    assert main(["quantize-model", "--model", str(folder), "--mode", "paper", "-o", str(q)]) == 0
    out = tmp_path / "hf"
    assert main(["export", str(q), "--dequantized", str(out)]) == 0
    assert main(["export", str(q), "--dequantized", str(out)]) == 2  # exists: refused without --force
    plain = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    AutoTokenizer.from_pretrained(out, local_files_only=True)
    ours = load_model(q).eval()
    lm = models.load(str(folder))
    w = torch.from_numpy(_windows(lm))
    with torch.no_grad():
        assert torch.equal(plain(input_ids=w).logits, ours(input_ids=w).logits)
        gen = ours.generate(w[:1, :8], max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert gen.shape == (1, 12)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hf.")]  # no temporary folder left


def _quantize(folder: Path, out: Path, mode: str, *extra: str) -> bytes:
    args = ["quantize-model", "--model", str(folder), "--mode", mode, "-o", str(out), *extra]
    if registry.get(f"fineq-{mode}").calibrated:
        args += ["--text", str(folder.parent / "text.txt"), "--calib-samples", "4", "--calib-seq", "32"]
    assert main(args) == 0
    return out.read_bytes()


def test_block_by_block_gives_the_whole_models_file(tiny, tmp_path, monkeypatch):
    """quantize-model reads a safetensors folder one decoder block at a time (never two resident, the others on the
    meta device) and writes the very bytes of the whole-model pass."""
    from fineq.llm import stream
    from fineq.llm.workdir import BlockStore

    arch, folder = tiny
    resident: list[int] = []
    real_load = stream.BlockLoader.load

    def load(self, i, device):
        real_load(self, i, device)
        layers = models.decoder_layers(self.model)
        resident.append(sum(any(p.device.type != "meta" for p in b.parameters()) for b in layers))

    real_mapped = BlockStore.mapped
    mapped: list[int] = []

    def on_disk(self, i, results):  # finished blocks: their packed matrices memory-mapped from the work folder
        out = real_mapped(self, i, results)
        mapped.append(sum(not r.qmatrix.packed.flags.owndata for r in out.values()))
        return out

    monkeypatch.setattr(stream.BlockLoader, "load", load)
    monkeypatch.setattr(BlockStore, "mapped", on_disk)
    whole = _quantize(folder, tmp_path / "whole.fineq.safetensors", "gptq-ord", "--whole")
    assert resident == [] and mapped == []
    streamed = _quantize(folder, tmp_path / "streamed.fineq.safetensors", "gptq-ord")
    assert resident == [1] * COMMON["num_hidden_layers"], arch
    assert len(mapped) == COMMON["num_hidden_layers"] and sum(mapped) == len(_block_linears(models.load(str(folder)).model))
    assert streamed == whole, arch


def test_sharded_bf16_checkpoints_stream_and_others_load_whole(tmp_path, capsys):
    """A sharded bfloat16 checkpoint streams (the blocks read as float32, as the whole-model loader gives them);
    a data-free mode and --device auto give the same file; a pytorch_model.bin folder is loaded whole; a device
    the machine lacks is one clear line."""
    from fineq.llm.stream import block_devices, load_streamed

    folder = _make("llama", tmp_path / "src")
    sharded = tmp_path / "sharded"
    m = models.load(str(folder)).model.to(torch.bfloat16)
    m.save_pretrained(sharded, max_shard_size="40KB")
    models.load(str(folder)).tokenizer.save_pretrained(sharded)
    assert (sharded / "model.safetensors.index.json").is_file()
    (tmp_path / "text.txt").write_text(TEXT)
    whole, lm = models.load(str(sharded)), load_streamed(str(sharded))
    assert lm.blocks is not None
    assert all(p.device.type == "meta" for p in models.decoder_layers(lm.model).parameters())
    assert block_devices(lm.model, "auto") == [torch.device("cpu")] * COMMON["num_hidden_layers"]
    for i in range(COMMON["num_hidden_layers"]):
        lm.blocks.load(i, "cpu")
    w = torch.from_numpy(_windows(whole))
    with torch.no_grad():
        assert torch.equal(lm.model(input_ids=w).logits, whole.model(input_ids=w).logits)
    for mode in ("paper", "gptq-ord"):
        ref = _quantize(sharded, tmp_path / f"{mode}-whole.fineq.safetensors", mode, "--whole")
        assert _quantize(sharded, tmp_path / f"{mode}.fineq.safetensors", mode, "--device", "auto") == ref
    binary = tmp_path / "bin"
    whole.model.config.save_pretrained(binary)
    whole.tokenizer.save_pretrained(binary)
    torch.save(whole.model.state_dict(), binary / "pytorch_model.bin")  # plain tensors: weights_only loads them
    assert (binary / "pytorch_model.bin").is_file()
    lm = load_streamed(str(binary))
    assert lm.blocks is None and all(p.device.type == "cpu" for p in lm.model.parameters())
    capsys.readouterr()
    bad = "cuda" if not torch.cuda.is_available() else "cuda:99"
    assert main(["quantize-model", "--model", str(sharded), "--mode", "paper", "--device", bad,
                 "-o", str(tmp_path / "x.fineq.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"device {bad}" in err[0], err
    assert main(["quantize-model", "--model", str(sharded), "--mode", "paper", "--device", "tpu",
                 "-o", str(tmp_path / "x.fineq.safetensors")]) == 2
    assert "tpu" in capsys.readouterr().err
