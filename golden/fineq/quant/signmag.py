"""The MAC array's own weight grid: symmetric sign-magnitude integers of ``b`` bits, per row or per group.

The baseline MAC systolic array (``rtl/mac_pe.v``, parameter ``W_W``) multiplies an int8 activation by a
``W_W``-bit sign-magnitude weight: one sign bit and ``W_W - 1`` magnitude bits, so the levels are the
integers ``-(2^(b-1) - 1) .. 2^(b-1) - 1`` (3 bits: -3..3, FineQ's levels; 4 bits: -7..7; 8 bits:
-127..127). A quantizer on that grid is what the array runs bit-exactly, with no zero point:

* scale ``s = absmax / (2^(b-1) - 1)`` per row, or per group of ``group`` consecutive weights of a row,
  stored as float16; level ``clamp(round(w / s), -qmax, qmax)``; weight ``s * level``;
* RTN (``hessian=None``) or GPTQ's error feedback (:mod:`fineq.quant.gptq`, Frantar et al., ICLR 2023) on the
  same grid; for groups the parameters of each group are found on its columns after the updates from the
  groups before it (:func:`fineq.quant.baselines.gptq_grouped`);
* stored bits: ``b`` per weight plus a float16 scale per row or per group.

The asymmetric min/max baselines (``rtn4``, ``gptq3-g128``, ...) store a ``b``-bit code and a zero point; the
array as built does not subtract zero points, so their levels are not what it runs. These are.

Group scales cost the array a multiply per output and group in its accumulators (``docs/accuracy.md``,
``docs/performance.md``: costed there, not built).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.quant.baselines import FP16, gptq_grouped
from fineq.quant.gptq import gptq, scalar_unit
from fineq.quant.result import QResult

WIDTHS = (3, 4, 8)


def qmax(bits: int) -> int:
    """The largest magnitude of a ``bits``-bit sign-magnitude weight."""
    if bits < 2:
        raise FineQError(f"a sign-magnitude weight needs at least 2 bits, got {bits}")
    return 2 ** (bits - 1) - 1


@dataclass(frozen=True)
class SignMagMatrix:
    """Integer levels ``[M, K]`` (int16) and float16 scales ``[M, G]`` (G = 1 per row, or ceil(K / group))."""

    levels: np.ndarray
    scales: np.ndarray
    bits: int
    group: int | None

    @property
    def stored_bits(self) -> int:
        return int(self.levels.size * self.bits + self.scales.size * FP16)

    def dequantize(self) -> np.ndarray:
        k = self.levels.shape[1]
        s = self.scales.astype(np.float32)
        if self.group is not None:
            s = np.repeat(s, self.group, axis=1)[:, :k]
        return self.levels.astype(np.float32) * s


def _params(w: Any, bits: int) -> Any:
    import torch

    absmax = w.abs().max(dim=1).values
    absmax[absmax == 0] = 1
    return (absmax / qmax(bits)).to(torch.float16).to(torch.float32)


def _fake(col: Any, scale: Any, bits: int) -> Any:
    import torch

    n = qmax(bits)
    return torch.clamp(torch.round(col / scale[:, None]), -n, n) * scale[:, None]


def quantize_signmag(w: Any, bits: int, group: int | None = None, hessian: Any = None) -> SignMagMatrix:
    """``W`` (float ``[M, K]``) on the ``bits``-bit sign-magnitude grid; GPTQ when ``hessian`` is given."""
    import torch

    w = torch.as_tensor(w, dtype=torch.float32)
    m, k = w.shape
    g = k if group is None else group
    if g < 1:
        raise FineQError(f"group must be positive, got {group}")
    found: list[Any] = []  # every group's scales, in column order, as the quantizer found them

    def params(wg: Any) -> Any:
        found.append(_params(wg, bits))
        return found[-1]

    if hessian is None:
        q = torch.cat([_fake(w[:, g0:g0 + g], params(w[:, g0:g0 + g]), bits) for g0 in range(0, k, g)], dim=1)
    elif group is None:
        scale = params(w)
        q, _ = gptq(w, hessian, scalar_unit(lambda col, j: _fake(col[:, None], scale, bits)[:, 0]))
    else:
        q, _, _ = gptq_grouped(w, hessian, bits, group, k,
                                grid=(params, lambda col, s: _fake(col, s, bits)))
    scales = torch.stack(found, dim=1)
    levels = torch.round(q / torch.repeat_interleave(scales, g, dim=1)[:, :k])
    return SignMagMatrix(levels.numpy().astype(np.int16), scales.numpy().astype(np.float16), bits, group)


def signmag_method(w: Any, h: Any, bits: int, group: int | None = None) -> QResult:
    """The registry's entry: dequantized weight and stored bits, the integer matrix in ``info``."""
    import torch

    sm = quantize_signmag(w, bits, group, h)
    return QResult(torch.from_numpy(sm.dequantize()), sm.stored_bits, info={"signmag": sm})
