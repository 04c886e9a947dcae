"""Quantize the ``nn.Linear`` layers of a torch model (torch is an optional extra)."""

from __future__ import annotations

from typing import Any

from .qmatrix import QuantizedMatrix, quantize


def quantize_model(model: Any, mode: str = "paper", write_back: bool = True) -> dict[str, QuantizedMatrix]:
    """Quantize the weight of every ``nn.Linear`` in ``model``.

    Returns ``{module name: QuantizedMatrix}``. With ``write_back`` (default),
    each layer's weight is replaced in place by its dequantized value (same
    dtype and device), so the model can be evaluated as quantized with torch.
    """
    import torch

    out: dict[str, QuantizedMatrix] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            q = quantize(mod.weight.detach(), mode)
            out[name] = q
            if write_back:
                with torch.no_grad():
                    wq = torch.from_numpy(q.dequantize())
                    mod.weight.copy_(wq.to(mod.weight.dtype))
    return out
