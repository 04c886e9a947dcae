"""What a quantizer returns for one matrix, as the evaluation sees it (every FineQ mode and every baseline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class QResult:
    """A quantized matrix as the evaluation sees it."""

    weight: Any  # torch float32 [M, K], dequantized
    bits: float  # total stored bits
    qmatrix: Any = None  # fineq.QuantizedMatrix for FineQ modes
    in_scale: Any = None  # numpy float16 [K]: activations are divided by it before int8 (FineQ modes that scale)
    info: dict[str, Any] | None = None
