"""Spec sections 2-4 and 7: scales, levels, code choice, both modes, against the literal reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fineq
from fineq.quant.rules import quantize_reference
from fineq.synthetic import heavy_tailed


def test_scale_is_float16_of_absmax_over_3():
    w = np.array([[3.0, -1.0, 0.5], [0.0, -6.0, 1.0], [1e-3, 0, 0]], dtype=np.float32)
    q = fineq.quantize(w)
    assert q.scales.dtype == np.float16
    assert q.scales.tolist() == [1.0, 2.0, float(np.float16(np.float32(1e-3) / np.float32(3)))]


def test_hand_worked_pair():
    # cluster 0 (0.1, 0.2, 3.0): outlier, argmin 0 -> candidate 1
    # cluster 1 (0.9, -1.2, 0.05): outlier, argmin 2 -> candidate 3; disagree -> least error
    # s = 1.0; errors: code0 4.1025, code1 0.9025, code2 1.5025, code3 10.0425 -> code 1
    # levels (0,0,3 | 0,-1,0); F0 = 000|011<<3 = 24, F1 = 101|000<<3 = 5
    # b0 = 0b01; D = 24 | 5<<6 = 0x158 -> 01 58 01 00 00 00 00
    w = np.zeros((1, 24), dtype=np.float32)
    w[0, :6] = [0.1, 0.2, 3.0, 0.9, -1.2, 0.05]
    q = fineq.quantize(w)
    assert q.packed.tobytes() == bytes([0x01, 0x58, 0x01, 0, 0, 0, 0])
    assert q.levels()[0, :6].tolist() == [0, 0, 3, 0, -1, 0]
    assert q.scales.tolist() == [1.0]


def test_agreeing_candidates_skip_the_error_rule():
    # both clusters have their smallest weight at position 1 and an outlier: code 2 in paper mode,
    # even though code 0 would have a smaller error here (search mode finds it).
    w = np.zeros((1, 24), dtype=np.float32)
    w[0, :6] = [1.0, 0.2, 0.9, 0.9, 0.2, 3.0]
    assert fineq.quantize(w, "paper").codes()[0, 0] == 2
    assert fineq.quantize(w, "search").codes()[0, 0] in (0, 1, 2, 3)
    p, _ = quantize_reference(w, "search")
    assert np.array_equal(fineq.quantize(w, "search").packed, p)


def test_no_outlier_gives_code_0_and_2bit_levels():
    w = np.full((2, 24), 0.5, dtype=np.float32)
    w[:, 0] = 1.5
    q = fineq.quantize(w)
    assert (q.codes() == 0).all()
    assert np.abs(q.levels()).max() <= 1


def test_ties_go_to_lowest_code():
    # every code gives the same error when the scale is 0 (a row of underflowing weights)
    w = np.zeros((1, 24), dtype=np.float32)
    w[0, :6] = [1e-9, 0, 0, 0, 1e-9, 0]
    q = fineq.quantize(w)
    assert q.scales[0] == 0
    assert q.codes()[0, 0] == 0
    assert (q.levels() == 0).all()


@pytest.mark.parametrize("mode", ["paper", "search"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (3, 23), (2, 24), (4, 25), (1, 100), (7, 48)])
def test_matches_reference(mode, shape):
    w = heavy_tailed(*shape, seed=sum(shape))
    p, s = quantize_reference(w, mode)
    q = fineq.quantize(w, mode)
    assert np.array_equal(q.packed, p) and np.array_equal(q.scales, s)
    assert q.packed.shape == (shape[0], 7 * (-(-shape[1] // 24)))


@pytest.mark.parametrize("mode", ["paper", "search"])
def test_adversarial_rows(mode):
    w = heavy_tailed(6, 50, seed=1)
    w[0] = 0  # all-zero row
    w[1, 7] = 1e4  # one huge outlier
    w[2] = -0.0  # negative zeros
    w[3] = 1.0  # constant row
    w[4, ::2] = 1e-30  # tiny values beside normal ones
    q = fineq.quantize(w, mode)
    p, s = quantize_reference(w, mode)
    assert np.array_equal(q.packed, p) and np.array_equal(q.scales, s)
    assert (q.levels()[0] == 0).all() and q.scales[0] == 0
    assert q.levels()[1, 7] == 3
    assert (q.levels()[2] == 0).all()
    assert (q.packed[2] == 0).all()  # quantizer writes sign 0 for zero magnitude


finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 60)), elements=finite),
    st.sampled_from(["paper", "search"]),
)
def test_property_matches_reference(w, mode):
    q = fineq.quantize(w, mode)
    p, s = quantize_reference(w, mode)
    assert np.array_equal(q.packed, p) and np.array_equal(q.scales, s)
    lv = q.levels()
    assert np.abs(lv).max() <= 3
    # every level is rint(w/s) clipped, or 0 (zeroed position / 2-bit clip)
    sc = q.scales.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(sc > 0, np.rint(w / np.where(sc > 0, sc, 1)), 0)
    assert ((lv == np.clip(r, -3, 3)) | (lv == np.clip(r, -1, 1)) | (lv == 0)).all()


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 60)), elements=finite))
def test_property_search_error_never_worse(w):
    """Search mode picks the least-error code per pair, so its total error is <= paper's (per pair)."""
    qp, qs = fineq.quantize(w, "paper"), fineq.quantize(w, "search")
    ep = ((qp.dequantize().astype(np.float64) - w) ** 2).sum()
    es = ((qs.dequantize().astype(np.float64) - w) ** 2).sum()
    assert es <= ep * (1 + 1e-9) + 1e-30


@pytest.mark.parametrize(
    "bad, msg",
    [
        (np.array([[1.0, np.nan]], dtype=np.float32), "row 0"),
        (np.array([[1.0, 2.0], [np.inf, 0]], dtype=np.float32), "row 1"),
        (np.array([[0.0, 0.0], [1.0, -3e5]], dtype=np.float32), "overflows float16"),
        (np.ones(5, dtype=np.float32), "2-D"),
        (np.ones((2, 2, 2), dtype=np.float32), "2-D"),
        (np.ones((2, 3), dtype=np.int32), "floating point"),
        (np.ones((0, 3), dtype=np.float32), "non-empty"),
        ([[1.0, 2.0]], "numpy array"),
    ],
)
def test_bad_input(bad, msg):
    with pytest.raises(fineq.FineQError, match=msg):
        fineq.quantize(bad)


def test_bad_mode():
    with pytest.raises(fineq.FineQError, match="mode"):
        fineq.quantize(np.ones((1, 3), dtype=np.float32), "fast")


def test_float64_input_is_converted_to_float32_first():
    w = heavy_tailed(3, 40, seed=3).astype(np.float64) * (1 + 1e-12)
    assert np.array_equal(fineq.quantize(w).packed, fineq.quantize(w.astype(np.float32)).packed)


def test_dequantize_and_bits():
    w = heavy_tailed(8, 4800, seed=2)
    q = fineq.quantize(w)
    assert q.dequantize().dtype == np.float32
    assert np.allclose(q.dequantize(), q.scales.astype(np.float32)[:, None] * q.levels())
    assert q.bits_per_weight == pytest.approx(7 * 8 / 24 + 16 / 4800)
    assert q.levels().dtype == np.int8 and q.levels().shape == (8, 4800)


def test_threads_and_chunks_do_not_change_bytes():
    from fineq.quant.rules import quantize_arrays

    w = heavy_tailed(300, 3000, seed=4)
    a = quantize_arrays(w, workers=1)
    b = quantize_arrays(w, workers=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
