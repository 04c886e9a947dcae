"""FineQ modes that use calibration data, all producing the spec's packed format unchanged.

A mode may choose the float16 row scale, the code of each pair and the level
of each weight (spec sections 4-6 hold as they are: code 0 stores levels in
-1..+1, codes 1-3 zero one position per cluster and store the others in
-3..+3). What they optimize is the layer's *output* error on calibration
inputs ``X``, through ``H = 2 X X^T / n``, instead of the weight error:

``hdiag``
    Per row, the scale ``alpha * absmax / 3`` for ``alpha`` on a grid
    (1.0, 0.95, ... 0.6) and every pair's code, chosen by the error weighted
    by the input energy ``sum_k H_kk (w_k - s q_k)^2`` (the diagonal of the
    output error). No error feedback. Cost: ``9 x`` a search-mode quantization.
``gptq``
    GPTQ's error feedback (Frantar et al. 2022, :mod:`fineq.quant.gptq`) with
    FineQ's codebook as the rounding step: the six columns of one cluster pair
    are one unit; for each of the four codes the pair is quantized column by
    column with in-pair error feedback, and the code with the least
    Hessian-weighted error ``sum_i e_i^2`` (``e_i = (w_i - q_i) / U_ii``) wins
    (ties: lowest code). Its error is then spread over the columns not yet
    quantized. Scale: the spec's ``absmax / 3``.
``gptq-clip``
    ``gptq`` with the row scale chosen first as in ``hdiag``.
``gptq-ord``
    ``gptq-clip`` plus two more levers: pairs are quantized in order of
    decreasing input energy ``sum H_jj`` over their six columns (GPTQ's
    "act-order", applied to whole pairs so the packed layout is unchanged),
    and afterwards each row's scale is refit to the levels by least output
    error, ``s = v^T H w / v^T H v`` (rounded to float16).

Levels are ``clip(rint(w' / s))`` of the error-updated weight ``w'``; with no
calibration signal (``H = 0``) ``gptq`` reduces to mode ``search`` up to the
tie rule.

``gptq-ord`` also takes ``group``: a float16 scale per ``group`` weights of a
row instead of per row (the format variant outside the spec,
:mod:`fineq.quant.groups`). Every mode takes ``codebook``: ``pow2`` (the other
variant outside the spec) rounds to the levels {0, +-1, +-2, +-4}
(:mod:`fineq.quant.codebook`) and its scales are ``absmax / 4``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.format.codec import BLOCK_WEIGHTS, CLUSTER, SPEC_CODEBOOK, ZEROED, level_max
from fineq.format.pack import n_blocks
from fineq.quant.codebook import check_mode_codebook, round_levels_torch
from fineq.quant.gptq import ScratchSpent, gptq
from fineq.quant.groups import check_group, column_groups, refit_group_scales

CALIBRATED_MODES = ("hdiag", "gptq", "gptq-clip", "gptq-ord")
CLIP_GRID = tuple(round(1.0 - 0.05 * i, 2) for i in range(9))
# Zeroed positions of the six weights of a pair, per code (spec section 4).
_ZERO = np.array([[False] * 6] + [[i % CLUSTER == ZEROED[c] for i in range(6)] for c in (1, 2, 3)])


def _lim(codebook: str) -> np.ndarray:
    """The largest magnitude each code stores: 1 in its 2-bit fields (code 0), the codebook's largest otherwise."""
    return np.array([1] + [level_max(codebook)] * 3, dtype=np.float32)


def code_limits(codes: np.ndarray, k: int, codebook: str = SPEC_CODEBOOK) -> tuple[np.ndarray, np.ndarray]:
    """Per weight of ``[M, K]``, from the pair codes ``[M, P]``: the largest magnitude its code stores (float32)
    and whether its code stores it at all (bool; spec section 4)."""
    cd = np.asarray(codes, dtype=np.int64)
    m = cd.shape[0]
    return np.repeat(_lim(codebook)[cd], 6, axis=1)[:, :k].copy(), ~(_ZERO[cd].reshape(m, -1)[:, :k])


def as_hessian(h: Any, k: int) -> Any:
    """A ``[K, K]`` float64 torch tensor from numpy or torch, or FineQError."""
    import torch

    if isinstance(h, np.ndarray):
        h = torch.from_numpy(h)
    if not isinstance(h, torch.Tensor):
        raise FineQError(f"hessian must be a numpy array or torch tensor, got {type(h).__name__}")
    if tuple(h.shape) != (k, k):
        raise FineQError(f"hessian must be [{k}, {k}] for K={k}, got {tuple(h.shape)}")
    h = h.detach().to("cpu", torch.float64)
    if not torch.isfinite(h).all():
        raise FineQError("hessian holds NaN or Inf")
    return h


def hessian_from_inputs(x: Any) -> Any:
    """``H = 2 X^T X / n`` from calibration inputs ``x [n, K]`` (rows are the layer's input vectors)."""
    import torch

    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(torch.float64)
    if xt.ndim != 2 or xt.shape[0] < 1:
        raise FineQError(f"calibration inputs must be 2-D [n, K] with n >= 1, got shape {tuple(xt.shape)}")
    return 2.0 * xt.T @ xt / xt.shape[0]


def _pad(w: Any) -> Any:
    """``w`` zero-padded to whole blocks of K."""
    import torch

    m, k = w.shape
    kp = n_blocks(k) * BLOCK_WEIGHTS
    if kp == k:
        return w
    wp = torch.zeros((m, kp), dtype=w.dtype)
    wp[:, :k] = w
    return wp


def _padded_gather(h: Any, perm: Any) -> Any:
    """``H`` zero-padded to ``len(perm)`` inputs and permuted (``Hp[perm][:, perm]``), in one gather: no padded
    copy and no ``[K, K]`` intermediate."""
    k = h.shape[0]
    src = perm.clamp(max=k - 1)  # a padded input reads any entry, then is zeroed
    out = h[src[:, None], src[None, :]]
    pad = perm >= k
    if bool(pad.any()):
        out[pad, :] = 0
        out[:, pad] = 0
    return out


def _pair_levels(w: Any, s: Any, weight: Any, codebook: str) -> tuple[Any, Any, Any]:
    """Levels of every code for all pairs and their weighted errors.

    ``w [M, Kp]``, ``s [M]`` (or ``[M, Kp]``, a scale per weight), ``weight [Kp]`` -> levels ``[4, M, P, 6]``,
    errors ``[4, M, P]``.
    """
    import torch

    m, kp = w.shape
    inv = torch.where(s > 0, 1.0 / torch.where(s > 0, s, 1.0), 0.0)
    r = (w * (inv if s.ndim == 2 else inv[:, None])).reshape(m, kp // 6, 6)
    rr = round_levels_torch(r, codebook)
    lv = torch.stack([torch.clamp(rr, -float(lim), float(lim)) for lim in _lim(codebook)])
    lv[torch.from_numpy(_ZERO)[:, None, None, :].expand_as(lv)] = 0
    d = w.reshape(1, m, kp // 6, 6) - lv * (s.reshape(1, m, kp // 6, 6) if s.ndim == 2 else s[None, :, None, None])
    err = (d * d * weight.reshape(1, 1, kp // 6, 6)).sum(dim=3)
    return lv, err


#: rows per call of :func:`_pair_levels` (its [4, rows, Kp] float32 temporaries: 46 MB each at Kp = 5632)
RTN_ROWS = 512


def _best_rtn(w: Any, s: Any, weight: Any, codebook: str = SPEC_CODEBOOK) -> tuple[Any, Any, Any]:
    """Per pair, the code with the least weighted error (ties: lowest). Returns levels, codes, pair errors
    ``[M, P]``. Rows are independent: they go ``RTN_ROWS`` at a time."""
    import torch

    if w.shape[0] > RTN_ROWS:
        parts = [_best_rtn(w[i : i + RTN_ROWS], s[i : i + RTN_ROWS], weight, codebook)
                 for i in range(0, w.shape[0], RTN_ROWS)]
        return tuple(torch.cat(t) for t in zip(*parts, strict=True))  # type: ignore[return-value]
    lv, err = _pair_levels(w, s, weight, codebook)
    codes = torch.zeros(err.shape[1:], dtype=torch.int64)
    best = err[0].clone()
    for c in (1, 2, 3):  # strict '<': ties keep the lowest code
        better = err[c] < best
        codes[better] = c
        best = torch.minimum(best, err[c])
    levels = torch.gather(lv, 0, codes[None, :, :, None].expand(1, *lv.shape[1:])).squeeze(0)
    return levels.reshape(w.shape), codes, torch.gather(err, 0, codes[None]).squeeze(0)


def _scales(w: Any, weight: Any, clip: bool, gcol: Any = None, codebook: str = SPEC_CODEBOOK) -> np.ndarray:
    """float16 row scales: the spec's ``absmax / 3`` (``absmax / 4`` for ``pow2``), or the best of ``CLIP_GRID``
    by weighted error. With ``gcol`` (the group of each column, :func:`fineq.quant.groups.column_groups`): float16
    ``[M, G]``, every group's ``absmax / 3`` times its own best ``CLIP_GRID`` factor, a pair's error counted in the
    group of its first column."""
    import torch

    from fineq.quant.rules import row_scales

    m = w.shape[0]
    if gcol is None:
        absmax = w.abs().max(dim=1).values.numpy()
    else:
        n = int(gcol.max()) + 1
        absmax = torch.zeros((m, n), dtype=w.dtype).scatter_reduce(
            1, gcol[None, :].expand(m, -1), w.abs(), "amax").numpy()
    top = np.float32(level_max(codebook))
    s16, _ = row_scales(absmax.reshape(m, -1), top=top)  # checks every row (names it)
    if gcol is not None:
        s16 = (absmax / top).astype(np.float16)  # no overflow: the row's largest did not
    if not clip:
        return s16
    best_err = None
    best = s16.copy()
    for a in CLIP_GRID:
        cand = (absmax * np.float32(a) / top).astype(np.float16)
        sc = torch.from_numpy(cand.astype(np.float32))
        _, _, err = _best_rtn(w, sc if gcol is None else sc[:, gcol], weight, codebook)
        if gcol is None:
            e = err.sum(dim=1).numpy()
        else:
            e = torch.zeros((m, absmax.shape[1]), dtype=err.dtype).index_add_(1, gcol[::6], err).numpy()
        if best_err is None:
            best_err = e
        else:
            better = e < best_err
            best[better] = cand[better]
            best_err = np.minimum(best_err, e)
    return best


#: ``caps(w [M, Kp], s [M], weight [Kp]) -> int [M, Kp]``: a largest magnitude per weight, applied in the rounding
#: of the GPTQ modes (:mod:`fineq.quant.hwaware` caps whole engine vectors so they need fewer temporal cycles)
Caps = Callable[[Any, Any, Any], Any]


def quantize_calibrated(w: Any, mode: str, hessian: Any, caps: Caps | None = None,
                        group: int | None = None,
                        codebook: str = SPEC_CODEBOOK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(levels int8 [M, K], codes uint8 [M, 4 nb], scales float16 [M])`` of a calibrated mode; ``caps`` (GPTQ
    modes) limits each weight's magnitude further, on top of its code's limit; ``group`` (``gptq-ord``): scales
    ``float16 [M, ceil(K/group)]``, one per ``group`` weights of a row; ``codebook``: the levels rounded to
    (``pow2``: {0, +-1, +-2, +-4}, the variant outside the spec; not with ``caps``)."""
    import torch

    from fineq.quant.rules import as_float_matrix

    if mode not in CALIBRATED_MODES:
        raise FineQError(f"calibrated mode must be one of {CALIBRATED_MODES}, got {mode!r}")
    wn = as_float_matrix(w)
    m, k = wn.shape
    h = as_hessian(hessian, k)
    order = mode == "gptq-ord"
    wt = _pad(torch.from_numpy(np.ascontiguousarray(wn)))
    kp = wt.shape[1]
    # H padded to whole blocks (padded inputs are dead: row and column 0); gptq-ord pads and permutes it in one
    # gather below, with no padded copy beside it (K = 5632: 254 MB each)
    ht = h if kp == k or order else _padded_gather(h, torch.arange(kp))
    diag = torch.zeros(kp, dtype=h.dtype)  # of the padded H
    diag[:k] = torch.diagonal(h)
    weight = diag.to(torch.float32)
    from fineq.quant.rules import warn_flushed_rows

    group = check_group(group, mode)
    codebook = check_mode_codebook(codebook, mode)
    if caps is not None and codebook != SPEC_CODEBOOK:
        raise FineQError("magnitude caps (mode gptq-hw) take only the spec's codebook")
    if group is None:
        s16 = _scales(wt, weight, clip=mode != "gptq", codebook=codebook)
        warn_flushed_rows(wn, s16)
        sg16 = s16[:, None]
    else:  # each group's scale from its own columns, before the error feedback (fixed groups)
        sg16 = _scales(wt, weight, clip=True, gcol=torch.from_numpy(column_groups(k, kp, group)), codebook=codebook)
        for j, c in enumerate(range(0, k, group)):
            warn_flushed_rows(wn[:, c : c + group], sg16[:, j])
        s16 = sg16[:, 0]  # the caps' (gptq-hw's) view; gptq-hw takes no group
    gcol = torch.from_numpy(column_groups(k, kp, group))  # the scale of each padded column
    sg = torch.from_numpy(sg16.astype(np.float32))
    s = sg[:, 0]
    cap = None if caps is None else torch.as_tensor(caps(wt, s, weight), dtype=torch.float32)
    if mode == "hdiag":
        if cap is not None:
            raise FineQError("mode hdiag takes no magnitude caps (the GPTQ modes do)")
        levels, codes, _ = _best_rtn(wt, s, weight, codebook)
        return levels[:, :k].to(torch.int8).numpy(), codes.to(torch.uint8).numpy(), s16
    perm = None
    if order:
        pairs = torch.argsort(diag.reshape(-1, 6).sum(dim=1), descending=True, stable=True)
        perm = (pairs[:, None] * 6 + torch.arange(6)[None, :]).reshape(-1)
        wt, ht = wt[:, perm], _padded_gather(h, perm)
        cap = None if cap is None else cap[:, perm]
        gcol = gcol[perm]
    levels = torch.zeros((m, kp), dtype=torch.int8)
    codes = torch.zeros((m, kp // 6), dtype=torch.uint8)
    ginv = torch.where(sg > 0, 1.0 / torch.where(sg > 0, sg, 1.0), 0.0)
    zero = torch.from_numpy(_ZERO)
    lim = torch.from_numpy(_lim(codebook))[:, None]
    rows = torch.arange(m)

    def unit(w6: Any, u6: Any, col0: int) -> tuple[Any, Any]:
        wc = w6.unsqueeze(0).repeat(4, 1, 1)  # [4 codes, M, 6]
        lv = torch.zeros_like(wc)
        e = torch.zeros_like(wc)
        cost = torch.zeros((4, m))
        gs = gcol[col0 : col0 + 6]
        for i in range(6):
            s, inv = sg[:, gs[i]], ginv[:, gs[i]]
            r = round_levels_torch(wc[:, :, i] * inv, codebook)
            li = lim if cap is None else torch.minimum(lim, cap[None, :, col0 + i])
            r = torch.maximum(torch.minimum(r, li), -li)
            r[zero[:, i]] = 0
            ei = (wc[:, :, i] - r * s) / u6[i, i]
            cost += ei * ei
            if i < 5:
                wc[:, :, i + 1 :] -= ei[:, :, None] * u6[i, i + 1 :]
            lv[:, :, i], e[:, :, i] = r, ei
        best = torch.argmin(cost, dim=0)
        lvb = lv[best, rows]
        levels[:, col0 : col0 + 6] = lvb.to(torch.int8)
        codes[:, col0 // 6] = best.to(torch.uint8)
        return lvb * sg[:, gs], e[best, rows]

    try:  # gptq-ord's ht is its own permuted copy: gptq consumes it
        gptq(wt, ht, unit, unit=6, blocksize=120, own_h=order)
    except ScratchSpent:  # it needed extra damping: again with a copy gptq does not consume
        del ht
        gptq(wt, _padded_gather(h, perm), unit, unit=6, blocksize=120)
    if perm is not None:
        inv_perm = torch.argsort(perm)
        levels = levels[:, inv_perm]
        codes = codes[:, torch.argsort(pairs)]
        wk = torch.from_numpy(np.ascontiguousarray(wn))
        if group is None:
            s16 = _refit_scales(wk, h, levels[:, :k], s16)
        else:
            s16, _ = refit_group_scales(wk, h, levels[:, :k], sg16, group)
    return levels[:, :k].numpy(), codes.numpy(), s16


def _refit_scales(w: Any, h: Any, levels: Any, s16: np.ndarray) -> np.ndarray:
    """Per row, the float16 scale of least output error for fixed levels: ``v^T H w / v^T H v``."""
    import torch

    v = levels.to(torch.float64)
    hv = v @ h
    num = (hv * w.to(torch.float64)).sum(dim=1)
    den = (hv * v).sum(dim=1)
    ok = (den > 0) & (num > 0)
    out = s16.copy()
    with np.errstate(over="ignore"):
        fit = (num[ok] / den[ok]).numpy().astype(np.float16)
    good = np.isfinite(fit) & (fit > 0)
    idx = np.flatnonzero(ok.numpy())[good]
    out[idx] = fit[good]
    return out
