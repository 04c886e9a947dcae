"""Function-preserving transforms of a LLaMA-style model applied before quantization.

* ``fold``: every RMSNorm gain folded into the linears that read the norm's
  output (``input_layernorm`` into q, k, v; ``post_attention_layernorm`` into
  gate, up; the final norm into ``lm_head``), the gains set to one. The model
  computes the same function (up to float rounding); the decoder linears'
  columns now carry the gains, so the quantizer sees the weights the
  activations really meet.
* ``rotate``: ``fold``, then the residual stream rotated by an orthogonal
  ``Q`` [d, d] merged into the weights, as QuaRot (Ashkboos et al., 2024,
  arXiv 2404.00456) and SpinQuant's R1 (Liu et al., 2024, arXiv 2405.16406)
  do: the embedding ``E <- E Q``; every linear reading the residual stream
  ``W <- W Q``; every linear writing it (``o_proj``, ``down_proj``)
  ``W <- Q^T W``; ``lm_head <- W Q``. RMSNorm with unit gain commutes with
  ``Q`` (``||x Q|| = ||x||``), so the function is unchanged and nothing is
  added at run time: the accelerator runs the rotated linears as any others.
  ``Q`` is a randomized Hadamard matrix ``diag(s) H / sqrt(d)`` (random signs
  ``s``) when ``d = 2^a 12^b`` (Sylvester and Paley's order 12, Kronecker
  products), else a random orthogonal matrix (QR of a Gaussian, signs fixed);
  both from a seeded numpy generator, so the same seed rebuilds the same
  ``Q`` anywhere (:func:`fineq.llm.modelfile.load_model` relies on it).
  Simplified from QuaRot: R1 only (no online Hadamard before ``down_proj``,
  no V/O head rotations); from SpinQuant: ``Q`` is not trained.

A tied ``lm_head`` is untied first (folding the final norm makes it differ
from the embedding). Only LLaMA-style blocks (RMSNorm with a multiplicative
gain, no biases on the residual writers) are supported; others are a
FineQError.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.llm.models import decoder_layers

TRANSFORMS = ("fold", "rotate")
DEFAULT_SEED = 0
_READERS = {"input_layernorm": ("self_attn", ("q_proj", "k_proj", "v_proj")),
            "post_attention_layernorm": ("mlp", ("gate_proj", "up_proj"))}
_WRITERS = (("self_attn", "o_proj"), ("mlp", "down_proj"))


def parse(spec: str) -> tuple[str, int]:
    """``"fold"``, ``"rotate"`` or ``"rotate:<seed>"`` -> ``(kind, seed)``; FineQError otherwise."""
    kind, _, tail = spec.partition(":")
    if kind not in TRANSFORMS or (tail and (kind != "rotate" or not tail.isdigit())):
        raise FineQError(f"unknown model transform {spec!r} (expected fold, rotate or rotate:<seed>)")
    return kind, int(tail) if tail else DEFAULT_SEED


def canonical(spec: str) -> str:
    """``spec`` written as stored (``fold`` or ``rotate:<seed>``); FineQError for an unknown one."""
    kind, seed = parse(spec)
    return kind if kind == "fold" else f"{kind}:{seed}"


def _sylvester(n: int) -> np.ndarray:
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def _paley12() -> np.ndarray:
    """A Hadamard matrix of order 12 (Paley's construction I, q = 11)."""
    q = 11
    squares = {(i * i) % q for i in range(1, q)}
    chi = np.array([0] + [1 if i in squares else -1 for i in range(1, q)], dtype=float)
    jac = np.array([[chi[(j - i) % q] for j in range(q)] for i in range(q)])  # Jacobsthal matrix
    s = np.zeros((q + 1, q + 1))
    s[0, 1:], s[1:, 0], s[1:, 1:] = 1, -1, jac
    return s + np.eye(q + 1)


def hadamard(d: int) -> np.ndarray | None:
    """A +-1 Hadamard matrix of order ``d = 2^a 12^b``, or None for other orders."""
    b, rest = 0, d
    while rest % 12 == 0:
        rest //= 12
        b += 1
    if rest < 1 or rest & (rest - 1):
        return None
    h = _sylvester(rest)
    for _ in range(b):
        h = np.kron(h, _paley12())
    return h


def orthogonal(d: int, seed: int) -> np.ndarray:
    """The rotation ``Q`` [d, d] (float64) of ``seed``: a randomized Hadamard matrix when one exists."""
    rng = np.random.default_rng(seed)
    h = hadamard(d)
    if h is not None:
        return rng.choice([-1.0, 1.0], size=d)[:, None] * h / math.sqrt(d)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))[None, :]


def _gain(norm: Any, where: str) -> Any:
    w = getattr(norm, "weight", None)
    if w is None or type(norm).__name__ not in ("LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm"):
        raise FineQError(f"{where}: {type(norm).__name__} is not a LLaMA-style RMSNorm (fold and rotate need one)")
    return w


def _untie(model: Any) -> None:
    import torch

    head, emb = model.get_output_embeddings(), model.get_input_embeddings()
    if head.weight is emb.weight or head.weight.data_ptr() == emb.weight.data_ptr():
        head.weight = torch.nn.Parameter(emb.weight.detach().clone())
    model.config.tie_word_embeddings = False
    if hasattr(model.config, "get_text_config"):
        model.config.get_text_config().tie_word_embeddings = False


def fold(model: Any) -> None:
    """Fold every RMSNorm gain into the linears after it (in place)."""
    import torch

    _untie(model)
    with torch.no_grad():
        for i, layer in enumerate(decoder_layers(model)):
            for norm_name, (block, projs) in _READERS.items():
                g = _gain(getattr(layer, norm_name), f"layer {i} {norm_name}")
                for p in projs:
                    lin = getattr(getattr(layer, block), p)
                    lin.weight.mul_(g.to(lin.weight.dtype)[None, :])
                g.fill_(1.0)
        g = _gain(model.model.norm, "final norm")
        head = model.get_output_embeddings()
        head.weight.mul_(g.to(head.weight.dtype)[None, :])
        g.fill_(1.0)


def rotate(model: Any, seed: int = DEFAULT_SEED) -> None:
    """``fold``, then rotate the residual stream by :func:`orthogonal` of ``seed`` (in place)."""
    import torch

    fold(model)
    emb = model.get_input_embeddings()
    q = torch.from_numpy(orthogonal(int(emb.weight.shape[1]), seed))

    def right(p: Any) -> None:  # W <- W Q
        p.copy_((p.double() @ q).to(p.dtype))

    def left(p: Any) -> None:  # W <- Q^T W
        p.copy_((q.T @ p.double()).to(p.dtype))

    with torch.no_grad():
        right(emb.weight)
        right(model.get_output_embeddings().weight)
        for i, layer in enumerate(decoder_layers(model)):
            for _norm, (block, projs) in _READERS.items():
                for p in projs:
                    right(getattr(getattr(layer, block), p).weight)
            for block, p in _WRITERS:
                lin = getattr(getattr(layer, block), p)
                if lin.bias is not None:
                    raise FineQError(f"layer {i} {block}.{p} has a bias (rotate supports bias-free residual writers)")
                left(lin.weight)


def apply_transform(model: Any, spec: str | None) -> None:
    """Apply ``spec`` (:func:`parse`; None: nothing) to ``model`` in place."""
    if spec is None:
        return
    kind, seed = parse(spec)
    if kind == "fold":
        fold(model)
    else:
        rotate(model, seed)
