"""Group scales, the format variant outside the spec: one float16 scale per ``group`` consecutive weights of a row
instead of one per row (docs/format.md "Group scales"). The levels, pair codes and packed blocks are the spec's.

Only the GPTQ-ordered modes take it (``gptq-ord``, and ``recon``, which starts from it): each group's scale is
chosen before the error feedback runs, by the ``hdiag`` clip search on the group's own columns (fixed groups
before act-order, as GPTQ's ``static_groups`` option does, so act-order cannot move a column into another
group's scale), used for every column of the group in the error feedback, and refit afterwards to the levels
by least output error over the whole row (:func:`refit_group_scales`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fineq.errors import FineQError

#: the modes that take group scales (``recon`` starts from ``gptq-ord``)
GROUP_MODES = ("gptq-ord", "recon")


def check_group(group: Any, mode: str) -> int | None:
    """``group`` as a positive int (or None), or FineQError naming the problem."""
    if group is None:
        return None
    if isinstance(group, bool) or not isinstance(group, (int, np.integer)) or group < 1:
        raise FineQError(f"group must be a positive whole number of weights, got {group!r}")
    if mode not in GROUP_MODES:
        raise FineQError(f"group scales are built for modes {', '.join(GROUP_MODES)}, not {mode!r}")
    return int(group)


def column_groups(k: int, kp: int, group: int | None) -> np.ndarray:
    """The scale index of each of ``kp`` (padded) columns: ``col // group``, padding in the last group; all 0 for
    per-row scales."""
    if group is None:
        return np.zeros(kp, dtype=np.int64)
    n = -(-k // group)
    return np.minimum(np.arange(kp) // group, n - 1)


def refit_group_scales(w: Any, h: Any, levels: Any, s16: np.ndarray, group: int) -> tuple[np.ndarray, int]:
    """Per row, the float16 group scales of least output error for fixed levels.

    Row ``m`` has levels ``v`` split by group into ``v_g`` (zero outside group ``g``); its output error
    ``(w - sum_g s_g v_g)^T H (w - sum_g s_g v_g)`` is least where ``A s = b`` with ``A_gh = v_g^T H v_h`` and
    ``b_g = v_g^T H w``: one small ``G x G`` system per row (float64). A group with no non-zero level keeps its
    scale; a row whose system is singular or whose solution has a scale that is not a positive finite float16
    keeps all its scales. Returns the scales and the number of rows kept as they were.
    """
    import torch

    v = levels.to(torch.float64)
    wf = w.to(torch.float64)
    m, k = v.shape
    n = s16.shape[1]
    bounds = [(g * group, min((g + 1) * group, k)) for g in range(n)]
    wh = wf @ h
    a = torch.zeros((m, n, n), dtype=torch.float64)
    b = torch.zeros((m, n), dtype=torch.float64)
    for j, (c0, c1) in enumerate(bounds):
        t = v[:, c0:c1] @ h[c0:c1, :]  # [M, K]: (v_j H) of every row
        prod = v * t
        for i, (d0, d1) in enumerate(bounds):
            a[:, i, j] = prod[:, d0:d1].sum(dim=1)
        b[:, j] = (v[:, c0:c1] * wh[:, c0:c1]).sum(dim=1)
    s0 = torch.from_numpy(s16.astype(np.float64))
    empty = torch.diagonal(a, dim1=1, dim2=2) <= 0
    diag = torch.diagonal(a, dim1=1, dim2=2)
    diag[empty] = 1.0  # an empty group (or one on dead inputs): s_g = its own scale
    b[empty] = s0[empty]
    sol, info = torch.linalg.solve_ex(a, b)
    with np.errstate(over="ignore", invalid="ignore"):
        fit = sol.numpy().astype(np.float16)
    e = empty.numpy()
    fit[e] = s16[e]
    ok = (info.numpy() == 0) & np.all(np.isfinite(fit) & ((fit > 0) | e), axis=1)
    out = s16.copy()
    out[ok] = fit[ok]
    return out, int(m - ok.sum())
