"""What the accelerator computes: int8 activations, the integer GEMM on FineQ levels, scales after.

For a FineQ-quantized linear with row scales ``s_w [M]`` and levels ``V [M, K]``,
each token's input ``x [K]`` (divided first by the linear's per-input-channel
scale, if its mode stores one) is quantized to int8 with its own absmax scale
``s_x = max|x| / 127`` (``q = clip(rint(x / s_x), -127, 127)``), the integer
product ``V @ q`` is computed exactly by :func:`fineq.gemm` (the function the
RTL is checked against), and ``y = s_w * s_x * (V @ q)`` (+ bias). With group
scales (``s_w [M, G]``, the variant outside the spec) each group's integer
partial sum is scaled by its own scale: ``y = s_x * sum_g s_w[:, g] * (V_g @ q_g)``
(:func:`fineq.engine.gemm.group_gemm`; the RTL does not build that path).

Other methods have no integer datapath here; with ``--int8-activations`` they
get the same activation quantization with their dequantized float weights, so
all rows of the table see the same activations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from fineq.engine.gemm import gemm, group_gemm
from fineq.format.qmatrix import QuantizedMatrix
from fineq.quant.result import QResult

#: The integer GEMM of one linear: ``(linear name, levels, int8 activations [K, T]) -> int64 [M, T]``;
#: :func:`fineq.gemm` by default, the RTL engine with ``fineq eval --backend`` (:mod:`fineq.apps.rtl_model`).
GemmFn = Callable[[str, QuantizedMatrix, np.ndarray], np.ndarray]


def golden_gemm(name: str, q: QuantizedMatrix, x: np.ndarray) -> np.ndarray:
    return gemm(q, x)


def quantize_tokens(x: Any) -> tuple[Any, Any]:
    """Per-token absmax int8: ``(q int8 [T, K], s_x float32 [T])``."""
    import torch

    s = x.abs().amax(dim=1) / 127.0
    s = torch.where(s > 0, s, torch.ones_like(s))
    q = torch.clamp(torch.round(x / s[:, None]), -127, 127).to(torch.int8)
    return q, s


def _module() -> Any:
    import torch

    class Int8ActivationLinear(torch.nn.Module):
        """Wraps an ``nn.Linear``; the forward pass takes the W8-activation integer path."""

        def __init__(self, lin: Any, result: QResult, name: str = "", gemm_fn: GemmFn = golden_gemm) -> None:
            super().__init__()
            self.lin = lin
            self.name = name
            self.gemm_fn = gemm_fn
            self.q = result.qmatrix
            self.in_scale = None if result.in_scale is None else torch.from_numpy(
                np.asarray(result.in_scale, dtype=np.float32))
            self.s_w = None if self.q is None else torch.from_numpy(self.q.scales.astype(np.float32))

        def forward(self, x: Any) -> Any:
            shape = x.shape
            x2 = x.reshape(-1, shape[-1]).float()
            if self.in_scale is not None:
                x2 = x2 / self.in_scale
            xq, sx = quantize_tokens(x2)
            if self.q is not None and self.q.group is not None:
                acc = group_gemm(self.q, np.ascontiguousarray(xq.numpy().T))  # int64 [G, M, T]
                y = torch.from_numpy(np.einsum("gmt,mg->tm", acc.astype(np.float64),
                                               self.q.scales.astype(np.float64))).float() * sx[:, None]
            elif self.q is not None:
                acc = self.gemm_fn(self.name, self.q, np.ascontiguousarray(xq.numpy().T))  # int64 [M, T]
                y = torch.from_numpy(acc.T.astype(np.float64)).float() * sx[:, None] * self.s_w[None, :]
            else:
                y = (xq.float() @ self.lin.weight.float().T) * sx[:, None]
            if self.lin.bias is not None:
                y = y + self.lin.bias
            return y.reshape(*shape[:-1], -1).to(x.dtype)

    return Int8ActivationLinear


@contextmanager
def int8_activations(model: Any, results: dict[str, QResult], gemm_fn: GemmFn = golden_gemm) -> Iterator[None]:
    """Within the block, every linear named in ``results`` runs the int8 path, its integer GEMM by ``gemm_fn``;
    restored after."""
    cls = _module()
    swapped = []
    mods = dict(model.named_modules())
    try:
        for name, r in results.items():
            parent_name, _, child = name.rpartition(".")
            parent = mods[parent_name] if parent_name else model
            lin = getattr(parent, child)
            setattr(parent, child, cls(lin, r, name, gemm_fn))
            swapped.append((parent, child, lin))
        yield
    finally:
        for parent, child, lin in swapped:
            setattr(parent, child, lin)
