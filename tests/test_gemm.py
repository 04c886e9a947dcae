"""Integer GEMM: the fast path, the hardware-order path and plain int64 matmul agree."""

import numpy as np
import pytest
import torch

import fineq
from fineq.synthetic import heavy_tailed, int8_activations


@pytest.mark.parametrize(
    "m,k,n,rows,depth",
    [(1, 1, 1, 8, 4), (3, 23, 2, 8, 2), (5, 100, 7, 16, 3), (9, 200, 4, 64, 256), (4, 130, 3, 24, 1),
     (2, 72, 5, 40, 8)],
)
@pytest.mark.parametrize("coding", ["thermometer", "binary"])
def test_fast_equals_hw_order(m, k, n, rows, depth, coding):
    q = fineq.quantize(heavy_tailed(m, k, seed=m * k))
    x = int8_activations(k, n, seed=n)
    y = fineq.gemm(q, x)
    assert y.dtype == np.int64
    assert np.array_equal(y, q.levels().astype(np.int64) @ x.astype(np.int64))
    cfg = fineq.EngineConfig(rows=rows, cols=n, psum_depth=depth, coding=coding)
    assert np.array_equal(y, fineq.gemm_hw(q, x, cfg))


def test_temporal_codings():
    from fineq.engine.cycles import vector_length
    from fineq.engine.gemm import temporal_bits

    for u in range(4):  # every magnitude is rebuilt from its cycles, in the cycle count the model claims
        for coding in ("thermometer", "binary"):
            mag = np.array([u, 0, 1])
            cyc = temporal_bits(mag, coding)
            assert len(cyc) == vector_length(u, coding)
            assert (sum(w * b.astype(int) for b, w in cyc) == mag).all()
    assert [int(vector_length(u, "thermometer")) for u in range(4)] == [1, 1, 2, 3]
    assert [int(vector_length(u, "binary")) for u in range(4)] == [1, 1, 2, 2]
    with pytest.raises(fineq.FineQError, match="coding"):
        fineq.EngineConfig(coding="unary")


def test_extremes():
    lv = np.full((2, 48), 3, dtype=np.int8)
    lv[1] = -3
    codes = np.ones((2, 8), dtype=np.uint8)
    lv[:, 0::3] = 0  # code 1 zeroes position 0
    q = fineq.from_levels(lv, codes)
    x = np.full((48, 2), -128, dtype=np.int8)
    x[:, 1] = 127
    y = fineq.gemm(q, x)
    assert y.tolist() == [[-128 * 3 * 32, 127 * 3 * 32], [128 * 3 * 32, -127 * 3 * 32]]
    assert np.array_equal(y, fineq.gemm_hw(q, x, fineq.EngineConfig(rows=16)))


def test_torch_activations_accepted():
    q = fineq.quantize(heavy_tailed(3, 30))
    x = int8_activations(30, 2)
    assert np.array_equal(fineq.gemm(q, torch.from_numpy(x)), fineq.gemm(q, x))


@pytest.mark.parametrize(
    "x, msg",
    [
        (np.zeros((30, 2), dtype=np.int16), "int8"),
        (np.zeros((31, 2), dtype=np.int8), "K=31"),
        (np.zeros(30, dtype=np.int8), "2-D"),
    ],
)
def test_bad_activations(x, msg):
    q = fineq.quantize(heavy_tailed(3, 30))
    with pytest.raises(fineq.FineQError, match=msg):
        fineq.gemm(q, x)


def test_engine_config_checked():
    with pytest.raises(fineq.FineQError, match="multiple of 8"):
        fineq.EngineConfig(rows=12)
