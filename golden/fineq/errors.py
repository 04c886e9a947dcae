"""Exceptions raised by the fineq package. All derive from :class:`FineQError`."""

from __future__ import annotations


class FineQError(ValueError):
    """Base class: bad input to a fineq function (shape, dtype, value)."""


class QuantizationError(FineQError):
    """The weights cannot be quantized (NaN/Inf, float16 overflow of a scale)."""


class FormatError(FineQError):
    """A file or packed buffer is not a valid FineQ object (truncated, corrupt, foreign, unknown version)."""


class QuantizationWarning(UserWarning):
    """Quantization went through, but something the user should know happened (rows flushed to zero)."""
