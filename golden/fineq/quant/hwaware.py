"""FineQ mode ``gptq-hw``: ``gptq-ord`` that also pays for temporal cycles, ``output error + lambda x cycles``.

The FineQ engine spends ``max(1, max |v|)`` temporal cycles on a vector ``v`` of ``ROWS`` = 64 levels (one output
row, one K tile; :func:`fineq.engine.cycles.vector_cycles`), and its accumulators, most of its power, are clocked
once per temporal cycle. A single level of magnitude 3 in a vector costs a third cycle for all 64 weights. This
mode chooses, for every vector, a cap ``c`` in {1, 2, 3} on its magnitudes before quantizing, by

    cost(c) = e(c) / E_row + lambda * c / T

with ``e(c)`` the vector's rounding error at cap ``c`` weighted by the input energy (``sum H_jj (w_j - s
clamp(round(w_j / s), -c, c))^2``, the diagonal of the output error, at the row's scale), ``E_row = sum H_jj
w_j^2`` the row's weighted energy and ``T`` the row's vectors; so ``lambda`` trades the relative output error
of a row against its mean temporal cycles per vector. Then ``gptq-ord`` quantizes with those caps: GPTQ's error
feedback spreads each capped weight's error over the columns not yet quantized, so the loss is less than
``e(c)`` says. ``lambda = 0`` keeps every vector's cap at 3 (``gptq-ord`` itself). The format, the codes and
the hardware are unchanged: the engine's early termination turns the smaller magnitudes into fewer cycles.

Written for this project; the cost is the quantizer's only new part (GPTQ: Frantar et al., ICLR 2023; the rest
is :mod:`fineq.quant.calibrated`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.quant.calibrated import quantize_calibrated

HW_MODE = "gptq-hw"
DEFAULT_LAMBDA = 0.02
VECTOR = 64  # the engine's ROWS: weights per vector, one K tile


def vector_caps(w: Any, s: Any, weight: Any, lam: float, rows: int = VECTOR) -> Any:
    """The cap of every weight ``[M, Kp]`` (constant over each vector of ``rows`` columns), by the cost above."""
    import torch

    if lam < 0:
        raise FineQError(f"lambda must be at least 0, got {lam}")
    m, kp = w.shape
    inv = torch.where(s > 0, 1.0 / torch.where(s > 0, s, 1.0), 0.0)
    r = torch.round(w * inv[:, None])
    energy = (w * w * weight[None, :]).sum(dim=1).clamp(min=1e-30)
    tiles = -(-kp // rows)
    caps = torch.full((m, kp), 3.0)
    for t in range(tiles):
        c0, c1 = t * rows, min(kp, (t + 1) * rows)
        cost = []
        for c in (1, 2, 3):
            d = w[:, c0:c1] - torch.clamp(r[:, c0:c1], -c, c) * s[:, None]
            cost.append((d * d * weight[None, c0:c1]).sum(dim=1) / energy + lam * c / tiles)
        best = torch.argmin(torch.stack(cost[::-1]), dim=0)  # ties: the larger cap (reversed order)
        caps[:, c0:c1] = (3 - best).to(torch.float32)[:, None]
    return caps


def quantize_hw(w: Any, hessian: Any, lam: float = DEFAULT_LAMBDA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(levels, codes, scales)`` of mode ``gptq-hw`` at ``lam``."""
    return quantize_calibrated(w, "gptq-ord", hessian, caps=lambda wt, s, weight: vector_caps(wt, s, weight, lam))
