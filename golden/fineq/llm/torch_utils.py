"""Quantize the ``nn.Linear`` layers of a torch model (torch is an optional extra)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fineq.format.qmatrix import QuantizedMatrix
from fineq.progress import progress
from fineq.quant.registry import quantize


def quantize_model(model: Any, mode: str = "paper", write_back: bool = True,
                   skip: Sequence[str] = ("lm_head",), codebook: str = "int") -> dict[str, QuantizedMatrix]:
    """Quantize the weight of every ``nn.Linear`` in ``model`` with a data-free mode (``paper``, ``search``), to the
    levels of ``codebook`` (``int``, the spec's, or ``pow2``, docs/format.md "Power-of-two levels").

    Returns ``{module name: QuantizedMatrix}``. With ``write_back`` (default),
    each layer's weight is **replaced in place** by its dequantized value (same
    dtype and device): the model itself becomes the quantized model, so keep a
    copy if you need the original. ``skip``: regular expressions of module names
    left as they are (default ``lm_head``: the output projection, often tied to
    the embeddings, which FineQ's evaluation leaves unquantized). Calibrated
    modes need activations: use ``fineq quantize-model`` or
    :func:`fineq.llm.apply.apply`. A progress bar shows on a terminal.
    """
    import torch

    lins = [(n, m) for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and not any(re.search(p, n) for p in skip)]
    out: dict[str, QuantizedMatrix] = {}
    for name, mod in progress(lins, desc="quantize_model", unit="linear"):
        q = quantize(mod.weight.detach(), mode, codebook=codebook)
        out[name] = q
        if write_back:
            with torch.no_grad():
                mod.weight.copy_(torch.from_numpy(q.dequantize()).to(mod.weight.dtype))
    return out
