"""Packing levels and codes into 7-byte blocks and unpacking them (vectorized).

Both directions use the lookup tables built in :mod:`fineq.format.codec` from the
bit-level reference, so the fast path and the explicit path cannot disagree
unless the gathers are wrong, which the round-trip tests check.

Shapes: ``levels`` int8 ``[M, Kp]`` with ``Kp = 24 * nb``; ``codes`` uint8
``[M, 4 * nb]`` (pair codes); packed uint8 ``[M, 7 * nb]``. ``codebook`` (``"int"``, the spec's, or ``"pow2"``,
the variant outside the spec) says which level a field's magnitude stands for; the bits are the same.
"""

from __future__ import annotations

import numpy as np

from fineq.errors import FineQError, FormatError
from fineq.format.codec import (
    BLOCK_BYTES,
    BLOCK_WEIGHTS,
    DEC_LUT_FLAT,
    ENC_LUT_FLAT,
    FIELD_LUT,
    Q3_LUT_FLAT,
    SPEC_CODEBOOK,
    VALUE_LUT,
    check_codebook,
)


def n_blocks(k: int) -> int:
    """Blocks per row for ``k`` weights: ``ceil(k / 24)``."""
    return -(-k // BLOCK_WEIGHTS)


def field_levels(levels: np.ndarray, codebook: str = SPEC_CODEBOOK) -> np.ndarray:
    """The field levels (-3..3) of ``levels`` in ``codebook``; FineQError naming the first level it has not."""
    cb = check_codebook(codebook)
    lv = np.asarray(levels)
    if cb == SPEC_CODEBOOK:
        return lv
    bad = (lv < -4) | (lv > 4)
    f = FIELD_LUT[cb][np.clip(lv, -4, 4).astype(np.int64) + 4]
    bad |= f == 127
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise FineQError(f"row {r}, column {c}: level {int(lv[r, c])} is not in the {cb} codebook")
    return f


def pack_levels(levels: np.ndarray, codes: np.ndarray, codebook: str = SPEC_CODEBOOK) -> np.ndarray:
    """Pack int8 levels ``[M, 24*nb]`` of ``codebook`` under pair codes ``[M, 4*nb]`` into ``uint8 [M, 7*nb]``.

    Raises FineQError if a level cannot be represented under its code.
    """
    levels = field_levels(levels, codebook)
    m, kp = levels.shape
    if kp % BLOCK_WEIGHTS:
        raise FineQError(f"levels have {kp} columns, not a multiple of 24")
    nb = kp // BLOCK_WEIGHTS
    if codes.shape != (m, 4 * nb):
        raise FineQError(f"codes have shape {codes.shape}, expected {(m, 4 * nb)}")
    v = levels.reshape(m, nb * 8, 3).astype(np.int16)
    cl_code = np.repeat(codes.astype(np.int16), 2, axis=1)  # code of each cluster
    idx = cl_code * 343 + (v[..., 0] + 3) * 49 + (v[..., 1] + 3) * 7 + (v[..., 2] + 3)
    f = ENC_LUT_FLAT[idx].reshape(m, nb, 8)
    if (f == 0xFF).any():
        r, b, _ = np.argwhere(f == 0xFF)[0]
        raise FineQError(f"row {r}, block {b}: a level does not fit its cluster's code")
    return _fields_to_bytes(codes.reshape(m, nb, 4), f)


def pack_q3(q3: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Pack from 3-bit levels ``q3`` ``[M, 24*nb]`` and pair codes: each cluster's stored
    levels follow its code (``clip(q3, -1, 1)`` for code 0, the zeroed position
    dropped otherwise). This is the quantizer's fast path; one LUT gather."""
    m, kp = q3.shape
    nb = kp // BLOCK_WEIGHTS
    v = q3.reshape(m, nb * 8, 3).astype(np.int16)
    cl_code = np.repeat(codes.astype(np.int16), 2, axis=1)
    idx = cl_code * 343 + v[..., 0] * 49 + v[..., 1] * 7 + v[..., 2] + (3 * 49 + 3 * 7 + 3)
    f = Q3_LUT_FLAT[idx].reshape(m, nb, 8)
    return _fields_to_bytes(codes.reshape(m, nb, 4), f)


def _fields_to_bytes(codes: np.ndarray, f: np.ndarray) -> np.ndarray:
    m, nb, _ = f.shape
    out = np.empty((m, nb, BLOCK_BYTES), dtype=np.uint8)
    c = codes.astype(np.uint8)
    out[..., 0] = c[..., 0] | (c[..., 1] << 2) | (c[..., 2] << 4) | (c[..., 3] << 6)
    f32 = f.astype(np.uint32)
    for half in (0, 1):
        g = f32[..., 4 * half : 4 * half + 4]
        word = g[..., 0] | (g[..., 1] << 6) | (g[..., 2] << 12) | (g[..., 3] << 18)
        base = 1 + 3 * half
        out[..., base] = word & 0xFF
        out[..., base + 1] = (word >> 8) & 0xFF
        out[..., base + 2] = (word >> 16) & 0xFF
    return out.reshape(m, nb * BLOCK_BYTES)


def unpack_codes(packed: np.ndarray) -> np.ndarray:
    """Pair codes ``uint8 [M, 4*nb]`` of a packed matrix."""
    p = check_packed(packed)
    m = p.shape[0]
    b0 = p.reshape(m, -1, BLOCK_BYTES)[..., 0]
    return np.stack([(b0 >> (2 * i)) & 3 for i in range(4)], axis=-1).reshape(m, -1)


def unpack(packed: np.ndarray, k: int, codebook: str = SPEC_CODEBOOK) -> np.ndarray:
    """Decode ``uint8 [M, 7*ceil(k/24)]`` into int8 levels ``[M, k]`` of ``codebook`` (padding dropped)."""
    cb = check_codebook(codebook)
    p = check_packed(packed)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise FineQError(f"k must be a positive integer, got {k!r}")
    m, nbytes = p.shape
    nb = nbytes // BLOCK_BYTES
    if nb != n_blocks(int(k)):
        raise FormatError(f"packed rows hold {nb} blocks ({nbytes} bytes); k={k} needs {n_blocks(int(k))}")
    blk = p.reshape(m, nb, BLOCK_BYTES).astype(np.uint32)
    codes = np.stack([(blk[..., 0] >> (2 * i)) & 3 for i in range(4)], axis=-1)  # [m, nb, 4]
    cl_code = np.repeat(codes, 2, axis=-1)  # [m, nb, 8]
    f = np.empty((m, nb, 8), dtype=np.uint32)
    for half in (0, 1):
        base = 1 + 3 * half
        word = blk[..., base] | (blk[..., base + 1] << 8) | (blk[..., base + 2] << 16)
        for j in range(4):
            f[..., 4 * half + j] = (word >> (6 * j)) & 0x3F
    levels = DEC_LUT_FLAT[cl_code * 64 + f]  # [m, nb, 8, 3]
    out = levels.reshape(m, nb * BLOCK_WEIGHTS)[:, :k]
    return out.copy() if cb == SPEC_CODEBOOK else VALUE_LUT[cb][out.astype(np.int64) + 3]


def check_packed(packed: np.ndarray) -> np.ndarray:
    """Validate a packed matrix: 2-D uint8 with a whole number of blocks per row."""
    p = np.asarray(packed)
    if p.dtype != np.uint8:
        raise FineQError(f"packed data must be uint8, got {p.dtype}")
    if p.ndim != 2:
        raise FineQError(f"packed data must be 2-D [M, 7*nb], got shape {p.shape}")
    if p.shape[1] == 0 or p.shape[1] % BLOCK_BYTES:
        raise FormatError(f"packed rows have {p.shape[1]} bytes, not a positive multiple of 7")
    return p
