"""Bit-level encoding and decoding of FineQ clusters and blocks.

This module is the explicit, scalar implementation of sections 4-6 of the
format contract (``shared/spec/fineq-format.md``; ``docs/format.md``). The
vectorized paths in :mod:`fineq.quantize` and :mod:`fineq.pack` use lookup
tables that are *built from these functions*, so one definition serves both.

Widths:
    level      int in -3..+3 (2-bit fields hold -1..+1); with the power-of-two codebook (a variant outside the
               spec, docs/format.md "Power-of-two levels") a 3-bit field's magnitude 3 stands for 4
    field level  what the fields hold, -3..+3 in every codebook (``VALUE_LUT`` / ``FIELD_LUT`` convert)
    2-bit field  bit 1 = sign, bit 0 = magnitude
    3-bit field  bit 2 = sign, bits 1:0 = magnitude
    cluster field F_j  6 bits
    block      7 bytes = 56-bit word ``b0 | D << 8``
"""

from __future__ import annotations

import numpy as np

from fineq.errors import FineQError

BLOCK_WEIGHTS = 24
BLOCK_BYTES = 7
BLOCK_BITS = 8 * BLOCK_BYTES  # 56: FINEQ_BLOCK_BITS in rtl/fineq_defs.vh
W_BITS = 3  # a decoded weight in the RTL: {sign, |w|[1:0]} (FINEQ_W_BITS)
ACT_BITS = 8  # int8 activations (FINEQ_ACT_W)
CLUSTER = 3
CLUSTERS_PER_BLOCK = 8
PAIRS_PER_BLOCK = 4
LEVEL_MAX = 3
OUTLIER_RATIO = 4
N_CODES = 4

#: The magnitude each 2-bit magnitude of a 3-bit field stands for, per codebook: the spec's integers, and the
#: power-of-two levels {0, 1, 2, 4} (a variant outside the spec: the same bits, another decode; a PE selects
#: x, 2x or 4x in one cycle). A 2-bit field's magnitudes 0, 1 mean 0, 1 in both.
CODEBOOKS: dict[str, tuple[int, int, int, int]] = {"int": (0, 1, 2, 3), "pow2": (0, 1, 2, 4)}
SPEC_CODEBOOK = "int"


def check_codebook(codebook: object) -> str:
    """``codebook`` if it names one of :data:`CODEBOOKS`, else FineQError naming them."""
    if not isinstance(codebook, str) or codebook not in CODEBOOKS:
        raise FineQError(f"codebook must be one of {', '.join(CODEBOOKS)}, got {codebook!r}")
    return codebook


def level_max(codebook: str = SPEC_CODEBOOK) -> int:
    """The largest level magnitude of ``codebook`` (3, or 4 for ``pow2``): the row scale is ``absmax / level_max``."""
    return CODEBOOKS[check_codebook(codebook)][-1]


def _value_luts() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """VALUE[cb][f + 3] -> the level a field level f in -3..3 stands for; FIELD[cb][v + 4] -> the field level of
    level v in -4..4 (127 where ``cb`` has no such level)."""
    value, field = {}, {}
    for cb, mags in CODEBOOKS.items():
        value[cb] = np.array([(-1 if f < 0 else 1) * mags[abs(f)] for f in range(-3, 4)], dtype=np.int8)
        fl = np.full(9, 127, dtype=np.int8)
        for f in range(-3, 4):
            fl[int(value[cb][f + 3]) + 4] = f
        field[cb] = fl
    return value, field


VALUE_LUT, FIELD_LUT = _value_luts()

#: For code c in 1..3, the position that is zeroed and the two kept positions.
ZEROED = {1: 0, 2: 1, 3: 2}
KEPT = {1: (1, 2), 2: (0, 2), 3: (0, 1)}


def sign_magnitude(level: int, width: int = W_BITS) -> int:
    """``level`` as a ``width``-bit sign-magnitude field ``{sign, |level|}`` (the RTL's weight format)."""
    top = (1 << (width - 1)) - 1
    if not -top <= level <= top:
        raise ValueError(f"level {level} does not fit a {width}-bit sign-magnitude field")
    return ((1 << (width - 1)) if level < 0 else 0) | abs(level)


def from_sign_magnitude(field: int, width: int = W_BITS) -> int:
    """The level of a ``width``-bit sign-magnitude field (negative zero is 0)."""
    mag = field & ((1 << (width - 1)) - 1)
    return -mag if (field >> (width - 1)) & 1 else mag


def encode_cluster(code: int, levels: tuple[int, int, int]) -> int:
    """Return the 6-bit field F of one cluster (spec section 6).

    Raises ValueError if the levels cannot be represented under ``code``
    (a 2-bit level outside -1..1, or a nonzero level at the zeroed position).
    """
    if code == 0:
        return sum(sign_magnitude(v, 2) << (2 * i) for i, v in enumerate(levels))
    if code not in KEPT:
        raise ValueError(f"code {code} is not in 0..3")
    if levels[ZEROED[code]] != 0:
        raise ValueError(f"code {code} zeroes position {ZEROED[code]}, level is {levels[ZEROED[code]]}")
    first, second = (levels[p] for p in KEPT[code])
    return sign_magnitude(first, 3) | (sign_magnitude(second, 3) << 3)


def decode_cluster(code: int, field: int) -> tuple[int, int, int]:
    """Return the three levels of a cluster from its code and 6-bit field.

    Negative zero (sign 1, magnitude 0) decodes to 0.
    """
    field &= 0x3F
    if code == 0:
        return tuple(from_sign_magnitude((field >> (2 * i)) & 3, 2) for i in range(3))
    out = [0, 0, 0]
    p0, p1 = KEPT[code]
    out[p0] = from_sign_magnitude(field & 7, 3)
    out[p1] = from_sign_magnitude(field >> 3, 3)
    return (out[0], out[1], out[2])


def encode_block(codes: list[int] | tuple[int, ...], levels: list[int] | tuple[int, ...]) -> bytes:
    """Encode 4 pair codes and 24 levels into 7 bytes, bit by bit (spec section 6)."""
    if len(codes) != PAIRS_PER_BLOCK or len(levels) != BLOCK_WEIGHTS:
        raise ValueError("a block takes 4 codes and 24 levels")
    b0 = 0
    for p, c in enumerate(codes):
        b0 |= (c & 3) << (2 * p)
    d = 0
    for j in range(CLUSTERS_PER_BLOCK):
        f = encode_cluster(codes[j // 2], tuple(levels[3 * j : 3 * j + 3]))
        d |= f << (6 * j)
    return bytes([b0]) + d.to_bytes(6, "little")


def block_word(block: bytes) -> int:
    """The 56-bit word ``b0 | D << 8`` of a 7-byte block (the decoder's input bus)."""
    if len(block) != BLOCK_BYTES:
        raise ValueError(f"a block is 7 bytes, got {len(block)}")
    return int.from_bytes(bytes(block), "little")


def decode_word(word: int) -> list[int]:
    """Decode a 56-bit block word into 24 levels, reading bits as the decoder does."""
    levels: list[int] = []
    for j in range(CLUSTERS_PER_BLOCK):
        code = (word >> (2 * (j // 2))) & 3
        field = (word >> (6 * j + 8)) & 0x3F
        levels.extend(decode_cluster(code, field))
    return levels


def decode_block(block: bytes) -> list[int]:
    """Decode 7 bytes into 24 levels (spec sections 5-7)."""
    return decode_word(block_word(block))


def weights_bus(levels: list[int], width: int = W_BITS) -> int:
    """A bus of ``width``-bit sign-magnitude levels, level ``i`` at bits ``[width i +: width]`` (``width = 3``: the
    decoder's 72-bit output bus for 24 levels; the MAC array's weight input at its ``W_W``)."""
    return sum(sign_magnitude(int(v), width) << (width * i) for i, v in enumerate(levels))


def _build_luts() -> tuple[np.ndarray, np.ndarray]:
    """ENC[code, v0+3, v1+3, v2+3] -> field (0xFF if not encodable); DEC[code, field] -> levels."""
    enc = np.full((N_CODES, 7, 7, 7), 0xFF, dtype=np.uint8)
    for code in range(N_CODES):
        for v0 in range(-3, 4):
            for v1 in range(-3, 4):
                for v2 in range(-3, 4):
                    try:
                        enc[code, v0 + 3, v1 + 3, v2 + 3] = encode_cluster(code, (v0, v1, v2))
                    except ValueError:
                        pass
    dec = np.zeros((N_CODES, 64, 3), dtype=np.int8)
    for code in range(N_CODES):
        for field in range(64):
            dec[code, field] = decode_cluster(code, field)
    return enc, dec


ENC_LUT, DEC_LUT = _build_luts()
#: DEC_LUT flattened: index ``code * 64 + field`` -> three levels.
DEC_LUT_FLAT = DEC_LUT.reshape(N_CODES * 64, 3)
#: ENC_LUT flattened: index ``code * 343 + (v0+3)*49 + (v1+3)*7 + (v2+3)``.
ENC_LUT_FLAT = ENC_LUT.reshape(-1)


def stored_levels(code: int, q3: tuple[int, int, int]) -> tuple[int, int, int]:
    """Levels a cluster stores under ``code`` given its 3-bit levels (spec section 4)."""
    if code == 0:
        return tuple(max(-1, min(1, v)) for v in q3)  # type: ignore[return-value]
    out = list(q3)
    out[ZEROED[code]] = 0
    return (out[0], out[1], out[2])


def _build_q3_lut() -> np.ndarray:
    lut = np.zeros((N_CODES, 7, 7, 7), dtype=np.uint8)
    for code in range(N_CODES):
        for v0 in range(-3, 4):
            for v1 in range(-3, 4):
                for v2 in range(-3, 4):
                    lut[code, v0 + 3, v1 + 3, v2 + 3] = encode_cluster(code, stored_levels(code, (v0, v1, v2)))
    return lut


#: Q3_LUT[code, q3_0+3, q3_1+3, q3_2+3] -> field of the levels the code stores.
Q3_LUT_FLAT = _build_q3_lut().reshape(-1)
