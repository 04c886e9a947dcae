"""Spec sections 5-6: fields, clusters and blocks, with bytes worked out by hand."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fineq.format import codec
from fineq.format.pack import pack_levels, unpack, unpack_codes

# Worked block (docs/format.md walks through the same one):
# pair 0 code 0: clusters (1,-1,0) (0,0,1)   F0 = 01|11<<2|00<<4 = 13, F1 = 00|00|01<<4 = 16
# pair 1 code 1: clusters (0,3,-2) (0,-1,0)  F2 = 011|110<<3 = 51,      F3 = 101|000<<3 = 5
# pair 2 code 2: clusters (-3,0,1) (2,0,2)   F4 = 111|001<<3 = 15,      F5 = 010|010<<3 = 18
# pair 3 code 3: clusters (1,1,0) (-1,3,0)   F6 = 001|001<<3 = 9,       F7 = 101|011<<3 = 29
# b0 = 0 | 1<<2 | 2<<4 | 3<<6 = 0xE4
# D[23:0]  = 13 | 16<<6 | 51<<12 | 5<<18 = 0x17340D -> b1..b3 = 0D 34 17
# D[47:24] = 15 | 18<<6 | 9<<12 | 29<<18 = 0x74948F -> b4..b6 = 8F 94 74
HAND_CODES = [0, 1, 2, 3]
HAND_LEVELS = [1, -1, 0, 0, 0, 1, 0, 3, -2, 0, -1, 0, -3, 0, 1, 2, 0, 2, 1, 1, 0, -1, 3, 0]
HAND_BYTES = bytes([0xE4, 0x0D, 0x34, 0x17, 0x8F, 0x94, 0x74])


def test_fields_2bit_and_3bit():
    assert [codec.encode_cluster(0, (v, 0, 0)) for v in (-1, 0, 1)] == [0b11, 0b00, 0b01]
    assert codec.encode_cluster(0, (0, 1, 0)) == 0b0100
    assert codec.encode_cluster(0, (0, 0, -1)) == 0b110000
    assert [codec.encode_cluster(1, (0, v, 0)) for v in (-3, -2, -1, 0, 1, 2, 3)] == [7, 6, 5, 0, 1, 2, 3]
    assert codec.encode_cluster(1, (0, 0, -3)) == 7 << 3


def test_hand_block_encode_decode():
    assert codec.encode_block(HAND_CODES, HAND_LEVELS) == HAND_BYTES
    assert codec.decode_block(HAND_BYTES) == HAND_LEVELS


def test_hand_block_vectorized():
    lv = np.array([HAND_LEVELS], dtype=np.int8)
    packed = pack_levels(lv, np.array([HAND_CODES], dtype=np.uint8))
    assert packed.tobytes() == HAND_BYTES
    assert unpack(packed, 24).tolist() == [HAND_LEVELS]
    assert unpack_codes(packed).tolist() == [HAND_CODES]


def test_block_word_layout():
    word = codec.block_word(HAND_BYTES)
    assert word & 0xFF == 0xE4  # index byte is block[7:0]
    assert (word >> 8) & 0x3F == 13  # cluster 0 is block[13:8]
    assert (word >> (6 * 7 + 8)) & 0x3F == 29  # cluster 7 is block[55:50]


def test_negative_zero_reads_as_zero():
    # code 0: all three 2-bit fields '10' (sign 1, magnitude 0); code 1: 3-bit '100' twice
    assert codec.decode_cluster(0, 0b101010) == (0, 0, 0)
    assert codec.decode_cluster(1, 0b100100) == (0, 0, 0)
    # pair 0 code 0 (clusters 0, 1 = 101010), pair 1 code 1 (clusters 2, 3 = 100100), the rest code 0 / zero
    d = 0b101010 | 0b101010 << 6 | 0b100100 << 12 | 0b100100 << 18
    blk = bytes([0b0100]) + d.to_bytes(6, "little")
    assert codec.decode_block(blk) == [0] * 24
    assert unpack(np.frombuffer(blk, dtype=np.uint8)[None, :], 24).tolist() == [[0] * 24]


def test_encode_rejects_unrepresentable():
    with pytest.raises(ValueError):
        codec.encode_cluster(0, (2, 0, 0))
    with pytest.raises(ValueError):
        codec.encode_cluster(2, (1, 1, 1))
    with pytest.raises(ValueError):
        codec.encode_cluster(4, (0, 0, 0))


def test_widened_bus():
    # 2-bit fields widen to {sign, 1'b0, mag}: -1 -> 0b101, 1 -> 0b001
    assert codec.weights_bus([-1, 1] + [0] * 22) == 0b001101
    assert codec.weights_bus([0] * 23 + [-3]) == 0b111 << 69


def test_luts_match_reference_exhaustively():
    for code in range(4):
        for field in range(64):
            assert tuple(codec.DEC_LUT[code, field]) == codec.decode_cluster(code, field)


@given(st.binary(min_size=7, max_size=7 * 12))
def test_unpack_matches_bit_level_decode(raw):
    n = len(raw) // 7
    raw = raw[: 7 * n]
    packed = np.frombuffer(raw, dtype=np.uint8).reshape(1, -1)
    want = [v for b in range(n) for v in codec.decode_block(raw[7 * b : 7 * b + 7])]
    assert unpack(packed, 24 * n).tolist() == [want]


@st.composite
def codes_and_levels(draw):
    m = draw(st.integers(1, 3))
    nb = draw(st.integers(1, 4))
    codes = np.array(draw(st.lists(st.integers(0, 3), min_size=4 * nb * m, max_size=4 * nb * m)), dtype=np.uint8)
    codes = codes.reshape(m, 4 * nb)
    lv = np.zeros((m, 24 * nb), dtype=np.int8)
    for r in range(m):
        for c in range(8 * nb):
            code = int(codes[r, c // 2])
            for i in range(3):
                if code == 0:
                    lv[r, 3 * c + i] = draw(st.integers(-1, 1))
                elif i != code - 1:
                    lv[r, 3 * c + i] = draw(st.integers(-3, 3))
    return codes, lv


@given(codes_and_levels())
def test_pack_unpack_round_trip(cl):
    codes, lv = cl
    packed = pack_levels(lv, codes)
    assert np.array_equal(unpack(packed, lv.shape[1]), lv)
    assert np.array_equal(unpack_codes(packed), codes)
    for r in range(lv.shape[0]):
        for b in range(lv.shape[1] // 24):
            ref = codec.encode_block(codes[r, 4 * b : 4 * b + 4].tolist(), lv[r, 24 * b : 24 * b + 24].tolist())
            assert packed[r, 7 * b : 7 * b + 7].tobytes() == ref
