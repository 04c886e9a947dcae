"""FineQ quantizer: float weights ``[M, K]`` -> packed blocks + float16 scales.

Numerics (spec sections 2-4, decided points in ``docs/format.md``):

* Input is converted to float32 first (float64 / float16 / bfloat16 accepted).
* ``s16 = float16(float32(absmax) / 3)``, ``s = float32(s16)``; ``r = w / s`` in float32.
* Levels: ``q2 = clip(rint(r), -1, 1)``, ``q3 = clip(rint(r), -3, 3)``.
* Pair code (mode ``paper``): outlier candidates, agreement, else least squared
  error over the pair's six weights in float64, summed left to right in weight
  order (position 0..5), ties to the lowest code. Mode ``search``: always the
  least-error rule.
* A row whose ``s16`` is 0 gets level 0 everywhere; the codes still follow the
  rule above (with ``s = 0``, every code has the same error, so code 0 wins
  unless both clusters' candidates agree).

Two paths give identical bytes: :func:`quantize_arrays` (vectorized, chunked
over rows, threaded) and :func:`quantize_reference` (a literal loop per pair).

Both take ``codebook``: ``pow2`` (the variant outside the spec, docs/format.md "Power-of-two levels") divides
``absmax`` by 4 and rounds ``q3`` to {0, +-1, +-2, +-4} (:mod:`fineq.quant.codebook`); everything else is the
rule above.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from fineq.errors import FineQError, QuantizationError
from fineq.format.codec import (
    BLOCK_WEIGHTS,
    FIELD_LUT,
    LEVEL_MAX,
    OUTLIER_RATIO,
    SPEC_CODEBOOK,
    ZEROED,
    check_codebook,
    encode_block,
    level_max,
)
from fineq.format.pack import field_levels, n_blocks, pack_q3
from fineq.quant.codebook import round_levels_np

MODES = ("paper", "search")
_CHUNK_ELEMS = 1 << 19


def as_float_matrix(w: Any) -> np.ndarray:
    """Convert a numpy array or torch tensor to a float32 ``[M, K]`` array, or raise FineQError."""
    if type(w).__module__.startswith("torch"):
        import torch

        if not isinstance(w, torch.Tensor):
            raise FineQError(f"expected a torch.Tensor, got {type(w).__name__}")
        if not w.is_floating_point():
            raise FineQError(f"weights must be floating point, got torch dtype {w.dtype}")
        if w.is_meta:
            raise FineQError("weights are a meta tensor (no data); load the model's weights first")
        if w.layout != torch.strided:
            raise FineQError(f"weights must be a dense tensor, got layout {w.layout}; call .to_dense() first")
        w = w.detach().to("cpu", torch.float32).numpy()
    if not isinstance(w, np.ndarray):
        raise FineQError(f"weights must be a numpy array or torch tensor, got {type(w).__name__}")
    if w.dtype.kind != "f":
        raise FineQError(f"weights must be floating point, got dtype {w.dtype}")
    if w.ndim != 2:
        raise FineQError(f"weights must be 2-D [M, K], got shape {w.shape}")
    if w.shape[0] == 0 or w.shape[1] == 0:
        raise FineQError(f"weights must be non-empty, got shape {w.shape}")
    return np.asarray(w, dtype=np.float32)


def row_scales(w: np.ndarray, row0: int = 0, absw: np.ndarray | None = None,
               top: float = LEVEL_MAX) -> tuple[np.ndarray, np.ndarray]:
    """Per-row float16 scale ``absmax / top`` (``top`` = the codebook's largest level, 3 for the spec's; float32
    division) and its float32 value; raises QuantizationError naming the row."""
    absmax = np.max(np.abs(w) if absw is None else absw, axis=1)
    bad = ~np.isfinite(absmax)
    if bad.any():
        r = int(np.argmax(bad))
        raise QuantizationError(f"row {row0 + r} holds a non-finite weight (NaN or Inf)")
    with np.errstate(over="ignore"):
        s16 = (absmax / np.float32(top)).astype(np.float16)
    over = np.isinf(s16)
    if over.any():
        r = int(np.argmax(over))
        raise QuantizationError(
            f"row {row0 + r}: scale absmax/{int(top)} = {float(absmax[r]) / float(top):.6g} overflows float16 "
            "(max 65504)"
        )
    return s16, s16.astype(np.float32)


def _level3(w: np.ndarray, s: np.ndarray, codebook: str = SPEC_CODEBOOK) -> np.ndarray:
    """``q3 = clip(rint(w / s), -3, 3)`` as int8 (0 in rows whose scale is 0; ``pow2``: rounded to its levels,
    clipped to +-4). ``q2 = clip(q3, -1, 1)``."""
    zero = s == 0
    r = w / np.where(zero, np.float32(1), s)[:, None]
    if zero.any():
        r[zero] = 0
    if codebook == SPEC_CODEBOOK:
        np.rint(r, out=r)
    else:
        r = round_levels_np(r, codebook)
    top = level_max(codebook)
    np.clip(r, -top, top, out=r)
    return r.astype(np.int8)


def _candidates(a: np.ndarray) -> np.ndarray:
    """Candidate code per cluster ``[R, C]`` from ``|w|`` ``[R, Kp]`` (float32)."""
    a = a.reshape(a.shape[0], -1, 3)
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    m12 = np.minimum(a1, a2)
    mn = np.minimum(a0, m12)
    mx = np.maximum(np.maximum(a0, a1), a2)
    outlier = mx > np.float32(OUTLIER_RATIO) * mn
    idx = np.where(a0 <= m12, np.uint8(1), np.where(a1 <= a2, np.uint8(2), np.uint8(3)))
    return np.where(outlier, idx, np.uint8(0))


def _pair_codes(w6: np.ndarray, s: np.ndarray, q3: np.ndarray) -> np.ndarray:
    """Least-squared-error code of each pair (spec 4, step 3).

    ``w6`` float32 ``[S, 6]``, ``s`` float32 ``[S]``, ``q3`` int8 ``[S, 6]``.
    The error of a code is summed in float64 left to right over positions 0..5;
    ties go to the lowest code.
    """
    wd = np.ascontiguousarray(w6.T, dtype=np.float64)  # [6, S]
    q3t = np.ascontiguousarray(q3.T)
    sd = s.astype(np.float64)
    d3 = wd - q3t * sd
    d3 *= d3
    d0 = wd - np.clip(q3t, -1, 1) * sd
    d0 *= d0
    z = wd * wd

    def total(terms: list[np.ndarray]) -> np.ndarray:
        acc = terms[0] + terms[1]
        for t in terms[2:]:
            acc += t
        return acc

    best = total([d0[i] for i in range(6)])
    code = np.zeros(w6.shape[0], dtype=np.uint8)
    for c, zp in ZEROED.items():
        err = total([z[i] if i % 3 == zp else d3[i] for i in range(6)])
        better = err < best
        code[better] = c
        np.minimum(best, err, out=best)
    return code


def _quantize_rows(w: np.ndarray, mode: str, row0: int, codebook: str) -> tuple[np.ndarray, np.ndarray]:
    """Quantize rows of a float32 matrix already padded to a multiple of 24 columns."""
    rows, kp = w.shape
    a = np.abs(w)
    s16, s = row_scales(w, row0, a, np.float32(level_max(codebook)))
    q3 = _level3(w, s, codebook)
    npairs = kp // 6
    if mode == "paper":
        cand = _candidates(a).reshape(rows, npairs, 2)
        codes = cand[..., 0].copy()
        sel = np.flatnonzero(cand[..., 0] != cand[..., 1])
    else:
        codes = np.zeros((rows, npairs), dtype=np.uint8)
        sel = np.arange(rows * npairs)
    if sel.size:
        codes.reshape(-1)[sel] = _pair_codes(
            w.reshape(-1, 6)[sel], s[sel // npairs], q3.reshape(-1, 6)[sel]
        )
    return pack_q3(field_levels(q3, codebook), codes), s16


def quantize_arrays(w: Any, mode: str = "paper", workers: int | None = None,
                    codebook: str = SPEC_CODEBOOK) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized quantizer. Returns ``(packed uint8 [M, 7*nb], scales float16 [M])``.

    Rows are processed in chunks of about 512 Ki weights on ``workers`` threads
    (default: all cores), so peak memory stays a small multiple of one chunk
    beyond the input and output.
    """
    if mode not in MODES:
        raise FineQError(f"mode must be one of {MODES}, got {mode!r}")
    codebook = check_codebook(codebook)
    w = as_float_matrix(w)
    m, k = w.shape
    nb = n_blocks(k)
    kp = nb * BLOCK_WEIGHTS
    packed = np.empty((m, 7 * nb), dtype=np.uint8)
    scales = np.empty(m, dtype=np.float16)
    step = max(1, _CHUNK_ELEMS // kp)

    def work(r0: int) -> None:
        r1 = min(m, r0 + step)
        blk = w[r0:r1]
        if kp != k or not blk.flags.c_contiguous:
            pad = np.zeros((r1 - r0, kp), dtype=np.float32)
            pad[:, :k] = blk
            blk = pad
        packed[r0:r1], scales[r0:r1] = _quantize_rows(blk, mode, r0, codebook)

    starts = range(0, m, step)
    nworkers = workers or os.cpu_count() or 1
    if nworkers == 1 or len(starts) == 1:
        for r0 in starts:
            work(r0)
    else:
        with ThreadPoolExecutor(nworkers) as pool:
            for fut in [pool.submit(work, r0) for r0 in starts]:
                fut.result()
    warn_flushed_rows(w, scales)
    return packed, scales


def warn_flushed_rows(w: np.ndarray, scales: np.ndarray) -> None:
    """Warn (QuantizationWarning) about rows with non-zero weights whose float16 scale underflowed to 0.

    Such rows (``max |w| / 3`` below float16's smallest subnormal, ~6e-8) are
    stored as the spec stores zero rows: scale 0, every level 0. See docs/format.md.
    """
    import warnings

    from fineq.errors import QuantizationWarning

    zero = np.flatnonzero(scales == 0)
    if zero.size == 0:
        return
    flushed = [int(r) for r in zero if np.any(w[r] != 0)]
    if flushed:
        shown = ", ".join(map(str, flushed[:8])) + (f" and {len(flushed) - 8} more" if len(flushed) > 8 else "")
        warnings.warn(f"{len(flushed)} row(s) have weights too small for a float16 scale (max|w|/3 underflows to 0): "
                      f"rows {shown} are stored as zero rows", QuantizationWarning, stacklevel=3)


def quantize_reference(w: Any, mode: str = "paper", codebook: str = SPEC_CODEBOOK) -> tuple[np.ndarray, np.ndarray]:
    """Literal, per-pair implementation of spec sections 2-6 (slow; for tests); ``pow2``: one magnitude at a time
    to the nearest of 0, 1, 2, 4 (ties: the lower, but 1.5 -> 2 and 0.5 -> 0 as ``rint``)."""
    if mode not in MODES:
        raise FineQError(f"mode must be one of {MODES}, got {mode!r}")
    codebook = check_codebook(codebook)
    top = level_max(codebook)
    w = as_float_matrix(w)
    m, k = w.shape
    nb = n_blocks(k)
    packed = np.zeros((m, 7 * nb), dtype=np.uint8)
    scales = np.zeros(m, dtype=np.float16)
    for row in range(m):
        wr = np.zeros(nb * BLOCK_WEIGHTS, dtype=np.float32)
        wr[:k] = w[row]
        s16, s = row_scales(wr[None, :], row, top=np.float32(top))
        scales[row] = s16[0]
        sv = np.float32(s[0])
        out = bytearray()
        for b in range(nb):
            codes: list[int] = []
            levels: list[int] = []
            for p in range(4):
                six = wr[b * 24 + 6 * p : b * 24 + 6 * p + 6]
                q2 = [0] * 6
                q3 = [0] * 6
                if sv != 0:
                    for i in range(6):
                        r = np.float32(six[i]) / sv
                        q2[i] = int(np.clip(np.rint(r), -1, 1))
                        q3[i] = int(np.clip(np.rint(r), -3, 3)) if codebook == SPEC_CODEBOOK else _nearest(r, top)

                def cand(a: np.ndarray) -> int:
                    if max(a) > np.float32(OUTLIER_RATIO) * min(a):
                        return 1 + int(np.argmin(a))
                    return 0

                def lv(code: int, q2: list[int] = q2, q3: list[int] = q3) -> list[int]:
                    if code == 0:
                        return list(q2)
                    q = list(q3)
                    q[ZEROED[code]] = 0
                    q[ZEROED[code] + 3] = 0
                    return q

                c0, c1 = cand(np.abs(six[:3])), cand(np.abs(six[3:]))
                if mode == "paper" and c0 == c1:
                    code = c0
                else:
                    best = None
                    for c in range(4):
                        err = 0.0
                        for i, q in enumerate(lv(c)):
                            err += (float(six[i]) - float(sv) * q) ** 2
                        if best is None or err < best[0]:
                            best = (err, c)
                    assert best is not None
                    code = best[1]
                codes.append(code)
                levels.extend(lv(code))
            out += encode_block(codes, [int(FIELD_LUT[codebook][v + 4]) for v in levels])
        packed[row] = np.frombuffer(bytes(out), dtype=np.uint8)
    return packed, scales


def _nearest(r: np.float32, top: int) -> int:
    """The power-of-two level nearest ``r``, one comparison at a time (the literal path of ``pow2``)."""
    a = abs(float(r))
    mag = 0 if a <= 0.5 else 1 if a < 1.5 else 2 if a <= 3.0 else top
    return -mag if r < 0 else mag


__all__ = ["MODES", "quantize_arrays", "quantize_reference", "as_float_matrix", "row_scales"]
