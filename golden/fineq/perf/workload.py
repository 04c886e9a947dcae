"""A real GEMM workload: the first ``m`` rows of one linear of a real model, quantized with FineQ, and that
linear's real int8 inputs for ``n`` tokens of a real text.

Used by ``make synth`` (the switching activity of both arrays) so that power comes from the weights users
run, not from a synthetic distribution. The model may be anything ``fineq eval --model`` takes (``smollm2``,
a Hugging Face folder, a ``.gguf``), or a ``.fineq.safetensors`` from ``fineq quantize-model`` (its stored
levels, any mode; the activations come from its base model). A weights-only file (``.safetensors`` or a
torch state dict) has no model to run: its activations are then synthetic int8, and the description says so.
Activations are quantized per token (absmax int8, as :mod:`fineq.llm.int8path`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.format.qmatrix import QuantizedMatrix
from fineq.quant.registry import quantize

DEFAULT_LINEAR = "model.layers.15.mlp.up_proj"


@dataclass(frozen=True)
class Workload:
    q: QuantizedMatrix  # [m, K]
    x: np.ndarray  # int8 [K, n]
    description: str
    w: np.ndarray | None = None  # float32 [m, K]: the rows before quantization (other grids quantize them)


def _rows(q: QuantizedMatrix, m: int) -> QuantizedMatrix:
    m = min(m, q.shape[0])
    return dataclasses.replace(q, packed=np.array(q.packed[:m]), scales=np.array(q.scales[:m]), shape=(m, q.shape[1]))


def _named(mode: str, codebook: str) -> str:
    return mode if codebook == "int" else f"{mode} ({codebook} levels)"


def _activations(lm: Any, linear: str, n: int) -> tuple[np.ndarray, str]:
    import torch

    from fineq.llm import corpus
    from fineq.llm.capture import capture_inputs
    from fineq.llm.int8path import quantize_tokens
    from fineq.llm.models import linear_layer_index

    raw, desc = corpus.read_text(None)
    toks = corpus.tokenize(lm.tokenizer, raw)[:n]
    xf = capture_inputs(lm, linear_layer_index(linear), toks)[linear]
    xq, _ = quantize_tokens(torch.from_numpy(xf))
    return xq.numpy().T.copy().astype(np.int8), f"{lm.name} ({lm.reference}), inputs of {linear} for {n} tokens of {desc}"


def real_gemm(spec: str, linear: str = DEFAULT_LINEAR, m: int = 128, n: int = 64, mode: str = "paper",
              seed: int = 0, codebook: str = "int") -> Workload:
    """The workload described in the module docstring, quantized with ``mode`` to ``codebook``'s levels (both
    ignored for a ``.fineq.safetensors``, whose levels are stored)."""
    from fineq.llm.models import DEMO_MODEL, is_model_spec
    from fineq.llm.weights import is_model_file, load_weight_file

    if m < 1 or n < 1:
        raise FineQError(f"workload rows and tokens must be positive, got m={m}, n={n}")
    if is_model_file(spec):
        from fineq.llm.modelfile import read_model_file

        qms, meta = read_model_file(spec)
        if linear not in qms:
            raise FineQError(f"{spec} has no linear {linear} (it has e.g. {next(iter(qms))})")
        from fineq.llm.models import load

        q = _rows(qms[linear], m)
        x, desc = _activations(load(meta.get("base_model", DEMO_MODEL)), linear, n)
        return Workload(q, x, f"{Path(spec).name} (FineQ {meta.get('mode', '?')}): {linear}[:{q.shape[0]}]; {desc}",
                        q.dequantize())
    if is_model_spec(spec):
        from fineq.llm.models import load

        lm = load(spec)
        mods = dict(lm.model.named_modules())
        if linear not in mods:
            raise FineQError(f"{spec} has no linear {linear}")
        w = mods[linear].weight.detach().float().numpy()[:m]
        x, desc = _activations(lm, linear, n)
        return Workload(quantize(w, mode, codebook=codebook), x,
                        f"{linear}[:{w.shape[0]}] quantized with FineQ {_named(mode, codebook)}; {desc}", w)
    weights = load_weight_file(spec)
    key = linear if linear in weights else f"{linear}.weight"
    if key not in weights:
        raise FineQError(f"{spec} has no matrix {linear}")
    from fineq.synthetic import int8_activations

    w = weights[key][:m]
    x = int8_activations(w.shape[1], n, seed=seed)
    return Workload(quantize(w, mode, codebook=codebook), x,
                    f"{Path(spec).name}: {key}[:{w.shape[0]}] quantized with FineQ {_named(mode, codebook)}; "
                    f"synthetic uniform int8 activations (a weights-only file has no model to run)", w)
