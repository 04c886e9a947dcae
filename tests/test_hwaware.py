"""Mode gptq-hw (fineq.quant.hwaware): lambda 0 is gptq-ord, the caps follow the cost, larger lambda gives fewer
temporal cycles, and its matrices run bit- and cycle-exactly on the RTL engine (the format is unchanged)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fineq  # noqa: E402
from fineq.engine.config import EngineConfig  # noqa: E402
from fineq.engine.cycles import engine_cycles, level_stats, vector_cycles  # noqa: E402
from fineq.quant import registry  # noqa: E402
from fineq.quant.calibrated import hessian_from_inputs  # noqa: E402
from fineq.quant.gptq import output_error  # noqa: E402
from fineq.quant.hwaware import vector_caps  # noqa: E402
from fineq.synthetic import heavy_tailed  # noqa: E402


def _problem(m: int = 24, k: int = 192, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = heavy_tailed(m, k, seed=seed)
    x = torch.randn(768, k, generator=g) * torch.linspace(0.3, 2.0, k)
    return w, hessian_from_inputs(x.numpy())


def test_lambda_zero_is_gptq_ord():
    w, h = _problem()
    a, b = fineq.quantize(w, "gptq-ord", hessian=h), fineq.quantize(w, "gptq-hw", hessian=h, hw_lambda=0.0)
    assert np.array_equal(a.packed, b.packed) and np.array_equal(a.scales, b.scales) and b.mode == "gptq-hw"


def test_caps_follow_the_cost():
    """One row, one vector: a single weight at level 3 among zeros. Cap 3 costs no error; cap 2 costs
    H_jj * s^2 (one step) over E_row = H_jj * (3 s)^2, i.e. 1/9. So lambda = 0.1 keeps 3 (0.1 * 1 < 1/9) and
    lambda = 0.2 caps at 2; cap 1 costs 4/9 - lambda, below cap 2's only from lambda = 1/3 (with one vector, T = 1)."""
    w = torch.zeros(1, 64)
    w[0, 5] = 3.0
    s, weight = torch.ones(1), torch.ones(64)
    assert int(vector_caps(w, s, weight, 0.1)[0, 0]) == 3
    assert int(vector_caps(w, s, weight, 0.2)[0, 0]) == 2
    assert int(vector_caps(w, s, weight, 0.3)[0, 0]) == 2
    assert int(vector_caps(w, s, weight, 0.4)[0, 0]) == 1
    with pytest.raises(fineq.FineQError, match="lambda"):
        vector_caps(w, s, weight, -1.0)


def test_larger_lambda_fewer_cycles_more_error():
    w, h = _problem(seed=1)
    ht = torch.as_tensor(h)
    cyc, err = [], []
    for lam in (0.0, 0.02, 0.1, 1.0):
        q = fineq.quantize(w, "gptq-hw", hessian=h, hw_lambda=lam)
        cyc.append(level_stats([q.levels()])["cycles_per_vector"])
        err.append(output_error(torch.from_numpy(w), torch.from_numpy(q.dequantize()), ht))
    assert cyc[0] > cyc[1] > cyc[2] >= cyc[3] >= 1.0
    assert err[0] < err[2] < err[3]
    # a huge price of a cycle leaves every vector at one cycle (levels in -1..1)
    q = fineq.quantize(w, "gptq-hw", hessian=h, hw_lambda=100.0)
    assert np.abs(q.levels()).max() <= 1 and (vector_cycles(q.levels(), EngineConfig()) == 1).all()


def test_registry_traces_lambda():
    assert registry.get("fineq-gptq-hw").mode == "gptq-hw"
    q = registry.get("fineq-gptq-hw@0.05")
    assert q.calibrated and q.mode == "gptq-hw" and "0.05" in q.about
    w, h = _problem(m=8, k=96)
    r = q.fn(torch.from_numpy(w), h)
    assert np.array_equal(r.qmatrix.packed, fineq.quantize(w, "gptq-hw", hessian=h, hw_lambda=0.05).packed)
    for bad in ("fineq-gptq-hw@", "fineq-gptq-hw@-1", "fineq-gptq-hw@x", "fineq-gptq-hw@inf"):
        with pytest.raises(fineq.FineQError, match="lambda"):
            registry.get(bad)
    with pytest.raises(fineq.FineQError, match="hw_lambda"):
        fineq.quantize(w, "gptq-ord", hessian=h, hw_lambda=0.1)


@pytest.mark.rtl
def test_runs_bit_and_cycle_exactly_on_the_rtl(tmp_path, monkeypatch):
    """The engine (native Verilator harness, clock-gated as synthesized) computes a gptq-hw matrix's Y exactly, in
    the cycles the model predicts, which are fewer than gptq-ord's."""
    from fineq.hw import native

    monkeypatch.setenv("FINEQ_HW_CACHE", str(tmp_path / "hw"))
    cfg = EngineConfig(16, 8, 3)
    w, h = _problem(m=12, k=100, seed=2)
    x = np.random.default_rng(3).integers(-128, 128, (100, 8), dtype=np.int8)
    cycles = {}
    for lam in (0.0, 0.1):
        q = fineq.quantize(w, "gptq-hw", hessian=h, hw_lambda=lam)
        out = native.run_engine(q, x, cfg)
        assert np.array_equal(out.y, fineq.gemm(q, x))
        assert out.cycles == engine_cycles(q.levels(), cfg)["total"]
        cycles[lam] = out.cycles
    assert cycles[0.1] < cycles[0.0]
