"""GPTQ's error-feedback loop (Frantar et al., "GPTQ: Accurate Post-Training Quantization for
Generative Pre-trained Transformers", ICLR 2023; reference code IST-DASLab/gptq), written for
this project with a pluggable rounding step.

Given a layer's weight ``W [M, K]`` and the Hessian of its output error on
calibration inputs, ``H = 2 X X^T / n`` (``X [K, n]``), columns are quantized
left to right and each column's rounding error is spread over the columns not
yet quantized, weighted by the inverse Hessian:

* 1% damping: ``H += 0.01 * mean(diag H) * I``; dead inputs (``H_jj = 0``) get
  ``H_jj = 1`` and weight 0, as in the reference;
* ``U = chol(H^-1)^T`` (upper Cholesky factor of the inverse);
* column ``j``: ``q = round(w_j)``, ``e = (w_j - q) / U_jj``,
  ``w_{j+1:} -= e U_{j, j+1:}``;
* lazy batches: updates inside a block of ``blocksize`` columns are applied at
  once to the columns beyond it (``W[:, i2:] -= E U[i1:i2, i2:]``).

The rounding step handles a *unit* of ``u`` consecutive columns at once
(``u = 1`` for GPTQ; ``u = 6``, one pair of FineQ clusters, for FineQ's
calibrated mode, which picks the pair's code by the Hessian-weighted error).
Inside a unit the error feedback is applied column by column, exactly as if the
columns had been quantized one at a time with the unit's decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fineq.errors import FineQError

#: ``unit_quant(w [M, u], U [u, u], col0) -> (q [M, u], err [M, u])``; ``err`` already divided by ``U_jj``.
UnitQuant = Callable[[Any, Any, int], tuple[Any, Any]]


class HessianAccumulator:
    """Running ``H = 2/n * sum x x^T`` over calibration rows ``x`` (float64), as GPTQ's ``add_batch``."""

    def __init__(self, k: int, device: Any = "cpu") -> None:
        import torch

        self.sum = torch.zeros((k, k), dtype=torch.float64, device=device)
        self.n = 0

    def add(self, x: Any) -> None:
        x = x.detach().reshape(-1, x.shape[-1]).to(dtype=self.sum.dtype)
        self.sum.addmm_(x.T, x)
        self.n += x.shape[0]

    def hessian(self) -> Any:
        if self.n == 0:
            raise FineQError("no calibration rows reached this layer")
        return self.sum * (2.0 / self.n)

    def take(self) -> Any:
        """:meth:`hessian` made in the running sum's own memory (the same values, no second ``[K, K]``); the
        accumulator is done after it."""
        if self.n == 0:
            raise FineQError("no calibration rows reached this layer")
        h, self.sum = self.sum.mul_(2.0 / self.n), None
        return h


class ScratchSpent(FineQError):
    """An owned Hessian (``own=True``) needed extra damping after it was factored in place: it is spent, and the
    caller calls again with a fresh copy and ``own=False``."""


def inverse_cholesky(h: Any, percdamp: float = 0.01, own: bool = False) -> tuple[Any, Any]:
    """``(U, dead)``: upper Cholesky factor of the damped ``H^-1`` (float32) and the mask of dead inputs.

    ``own``: ``h`` (float64) is the caller's scratch copy. It is damped and factored in place and its memory is
    released when ``U`` is made (``h`` is left an empty tensor), so one ``[K, K]`` float64 is needed instead of
    two (K = 5632: 254 MB each). The factors are the same bits as with ``own=False``. If ``h`` needs extra
    damping (numerically indefinite) it is spent by the first try: :class:`ScratchSpent`.
    """
    import torch

    own = own and h.dtype == torch.float64
    h = h if own else h.to(torch.float64).clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    damp = percdamp * torch.mean(torch.diag(h))
    h.diagonal().add_(damp)
    if own:
        # LAPACK works in place on a column-major matrix; a symmetric H's transpose is H (the same bits) and is
        # one, with no temporary. Else torch factors a column-major copy and writes it back.
        chol = h.mT if torch.equal(h, h.mT) else h
        _, info = torch.linalg.cholesky_ex(chol, out=(chol, torch.empty((), dtype=torch.int32)))
        if int(info) != 0:
            raise ScratchSpent("the calibration Hessian needs extra damping: factor a fresh copy")
    else:
        for _ in range(6):  # extra damping if H is numerically indefinite
            chol, info = torch.linalg.cholesky_ex(h)
            if int(info) == 0:
                break
            h.diagonal().add_(damp)
        else:
            raise FineQError("the calibration Hessian is not positive definite even with extra damping")
        del h
    torch.cholesky_inverse(chol, out=chol)  # H^-1, over the factor (column-major: in place)
    torch.linalg.cholesky(chol, upper=True, out=chol)  # U, over H^-1
    u = chol.to(torch.float32, memory_format=torch.contiguous_format)
    if own:
        h.set_()  # the caller's scratch released now, not when its last reference goes
    return u, dead


def scalar_unit(quant: Callable[[Any, int], Any]) -> UnitQuant:
    """Wrap a per-column rounding ``quant(w [M], col) -> q [M]`` as a 1-column unit."""

    def unit(w: Any, u: Any, col: int) -> tuple[Any, Any]:
        q = quant(w[:, 0], col)
        return q[:, None], ((w[:, 0] - q) / u[0, 0])[:, None]

    return unit


def gptq(w: Any, h: Any, unit_quant: UnitQuant, unit: int = 1, blocksize: int = 128, percdamp: float = 0.01,
         ncols: int | None = None, own_h: bool = False) -> tuple[Any, Any]:
    """Quantize the first ``ncols`` (default all) columns of ``w`` with error feedback.

    Returns ``(Q, W')``: ``Q [M, ncols]`` the quantized columns and ``W' [M, K]``
    the weights after every update (columns past ``ncols`` keep their
    compensated values: OWQ keeps those in float16). ``own_h``: ``h`` is a float64 scratch copy the caller
    no longer needs; it is consumed (see :func:`inverse_cholesky`, which may raise :class:`ScratchSpent`).
    """
    import torch

    w = w.detach().to(torch.float32).clone()
    m, k = w.shape
    ncols = k if ncols is None else ncols
    if blocksize % unit or ncols % unit:
        raise FineQError(f"blocksize {blocksize} and columns {ncols} must be multiples of the unit {unit}")
    u, dead = inverse_cholesky(h, percdamp, own=own_h)
    w[:, dead] = 0
    q = torch.zeros((m, ncols), dtype=torch.float32)
    for i1 in range(0, ncols, blocksize):
        i2 = min(i1 + blocksize, ncols)
        w1 = w[:, i1:i2].clone()
        err1 = torch.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        for j in range(0, i2 - i1, unit):
            j2 = j + unit
            qj, ej = unit_quant(w1[:, j:j2], u1[j:j2, j:j2], i1 + j)
            q[:, i1 + j : i1 + j2] = qj
            err1[:, j:j2] = ej
            if j2 < i2 - i1:
                w1[:, j2:] -= ej @ u1[j:j2, j2:]
        w[:, i1:i2] = w1
        w[:, i2:] -= err1 @ u[i1:i2, i2:]
    return q, w


def output_error(w: Any, wq: Any, h: Any) -> float:
    """``tr((W - Wq) H (W - Wq)^T)``: the layer's summed squared output error on the calibration inputs."""
    import torch

    d = (w - wq).to(torch.float64)
    return float(torch.einsum("mk,kl,ml->", d, h.to(torch.float64), d))


def as_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy()
