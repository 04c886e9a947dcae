"""A tiny randomly initialized LLaMA (2 layers, hidden 64) saved as a Hugging Face folder with a
character-level tokenizer, for fast tests of the model loader, calibration and evaluation."""

from __future__ import annotations

import string
from pathlib import Path

TEXT = (
    "The quick brown fox jumps over the lazy dog. A stitch in time saves nine. "
    "All that glitters is not gold; fortune favours the bold, and the early bird catches the worm. "
) * 12


def make_tiny_llama(folder: Path, seed: int = 0, hidden: int = 64, inter: int = 96, layers: int = 2) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = ["<unk>"] + list(string.printable)
    tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(chars)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    cfg = LlamaConfig(vocab_size=128, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def apply_methods(folder: Path, text: Path, names: list[str], samples: int = 8, seq: int = 64) -> dict:
    """``{method: {linear: QResult}}``: each of ``names`` applied to the tiny model in ``folder``, calibrated on
    ``samples x seq`` tokens of ``text``, every method from the model's own weights."""
    import torch

    from fineq.llm import corpus, models
    from fineq.llm.apply import apply
    from fineq.quant import registry

    lm = models.load(folder)
    calib = corpus.split(corpus.tokenize(lm.tokenizer, text.read_text()), samples, seq).calib
    orig = {n: lin.weight.detach().clone() for n, lin in models.decoder_linears(lm.model).items()}
    runs = {}
    for name in names:
        with torch.no_grad():
            for n, lin in models.decoder_linears(lm.model).items():
                lin.weight.copy_(orig[n])
        runs[name] = apply(lm.model, registry.get(name), calib)
    return runs
