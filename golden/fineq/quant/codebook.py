"""Rounding to a codebook's levels: the spec's integers (``int``: ``rint``, half to even), or the power-of-two
variant outside the spec (``pow2``: levels {0, +-1, +-2, +-4}; docs/format.md "Power-of-two levels").

``pow2`` rounds a magnitude ``a`` to the nearest of 0, 1, 2, 4: ``rint(a)`` (half to even, as the spec) up to 2,
and 4 above the midpoint 3; ``a = 3`` exactly goes to 2 (the lower level, decided here). Callers clip the result
to what a weight's code stores (1 in a 2-bit field; the codebook's largest level in a 3-bit one).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.format.codec import CODEBOOKS, SPEC_CODEBOOK, check_codebook, level_max

#: the modes that take another codebook (every FineQ mode but ``gptq-hw``, whose caps price temporal cycles the
#: power-of-two datapath does not spend)
NO_CODEBOOK_MODES = ("gptq-hw",)


def check_mode_codebook(codebook: Any, mode: str) -> str:
    """``codebook`` checked (FineQError naming the problem), and refused for a mode that takes only the spec's."""
    cb = check_codebook(SPEC_CODEBOOK if codebook is None else codebook)
    if cb != SPEC_CODEBOOK and mode in NO_CODEBOOK_MODES:
        raise FineQError(f"mode {mode} takes only the spec's codebook ({SPEC_CODEBOOK}), not {cb!r}")
    return cb


def _below_top(codebook: str) -> tuple[float, float]:
    """The codebook's second-largest magnitude (levels up to it are integers: ``rint``) and the midpoint between it
    and the largest (above it a magnitude rounds to the largest)."""
    mags = CODEBOOKS[codebook]
    return float(mags[2]), (mags[2] + mags[3]) / 2


def round_levels_torch(r: Any, codebook: str = SPEC_CODEBOOK) -> Any:
    """``r`` (a float torch tensor, in units of the scale) rounded to the nearest level of ``codebook``
    (unclipped for ``int``; at most the largest level otherwise)."""
    import torch

    if codebook == SPEC_CODEBOOK:
        return torch.round(r)
    a = r.abs()
    below, mid = _below_top(codebook)
    m = torch.where(a > mid, float(level_max(codebook)), torch.clamp(torch.round(a), max=below))
    return torch.sign(r) * m


def round_levels_np(r: np.ndarray, codebook: str = SPEC_CODEBOOK) -> np.ndarray:
    """:func:`round_levels_torch` for numpy float arrays (the data-free modes)."""
    if codebook == SPEC_CODEBOOK:
        return np.rint(r)
    a = np.abs(r)
    below, mid = _below_top(codebook)
    m = np.where(a > mid, np.float32(level_max(codebook)), np.minimum(np.rint(a), np.float32(below)))
    return (np.sign(r) * m).astype(r.dtype)
