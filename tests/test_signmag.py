"""The MAC array's own grid (fineq.quant.signmag): known answers, GPTQ's reduction to RTN, bits, the registry."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fineq.quant import registry  # noqa: E402
from fineq.quant.signmag import qmax, quantize_signmag  # noqa: E402

SM = [n for n in registry.QUANTIZERS if "-sm" in n]


@pytest.mark.parametrize("bits", [3, 4, 8])
@pytest.mark.parametrize("group", [None, 32])
def test_weights_on_the_grid_round_trip(bits, group):
    """W = s * L with integer L in +-qmax, each row (group) reaching qmax: the levels and scales come back."""
    rng = np.random.default_rng(bits)
    m, k = 6, 96
    n = qmax(bits)
    lv = rng.integers(-n, n + 1, size=(m, k))
    g = k if group is None else group
    lv[:, ::g] = n  # every group reaches the largest level
    s = np.float16(2.0) ** rng.integers(-6, 0, size=(m, k // g)).astype(np.float16)
    w = lv * np.repeat(s.astype(np.float32), g, axis=1)
    sm = quantize_signmag(w, bits, group)
    assert np.array_equal(sm.levels, lv) and np.array_equal(sm.scales, s)
    assert np.array_equal(sm.dequantize(), w.astype(np.float32))


@pytest.mark.parametrize("bits,group", [(3, None), (4, 128), (8, None)])
def test_rtn_error_is_at_most_half_a_step(bits, group):
    w = torch.randn(16, 256, generator=torch.Generator().manual_seed(1))
    sm = quantize_signmag(w, bits, group)
    assert sm.levels.min() >= -qmax(bits) and sm.levels.max() <= qmax(bits)
    step = np.repeat(sm.scales.astype(np.float32), group or 256, axis=1)[:, :256]
    assert (np.abs(sm.dequantize() - w.numpy()) <= step / 2 + 1e-6).all()
    assert sm.stored_bits == 16 * 256 * bits + sm.scales.size * 16


@pytest.mark.parametrize("group", [None, 64])
def test_gptq_with_uncorrelated_inputs_is_rtn(group):
    """With H diagonal nothing is fed back (U is diagonal): GPTQ on the grid gives RTN's levels exactly."""
    w = torch.randn(8, 128, generator=torch.Generator().manual_seed(2))
    h = torch.diag(torch.rand(128, generator=torch.Generator().manual_seed(3)) + 0.5).to(torch.float64)
    a, b = quantize_signmag(w, 4, group), quantize_signmag(w, 4, group, hessian=h)
    assert np.array_equal(a.levels, b.levels) and np.array_equal(a.scales, b.scales)


def test_gptq_lowers_output_error_with_correlated_inputs():
    from fineq.quant.calibrated import hessian_from_inputs
    from fineq.quant.gptq import output_error

    g = torch.Generator().manual_seed(4)
    w = torch.randn(32, 128, generator=g)
    x = torch.randn(512, 8, generator=g) @ torch.randn(8, 128, generator=g) + 0.1 * torch.randn(512, 128, generator=g)
    h = hessian_from_inputs(x.numpy())
    rtn, gq = quantize_signmag(w, 3), quantize_signmag(w, 3, hessian=h)
    assert np.abs(gq.levels).max() <= 3
    assert output_error(w, torch.from_numpy(gq.dequantize()), h) < 0.8 * output_error(
        w, torch.from_numpy(rtn.dequantize()), h)


@pytest.mark.parametrize("name", SM)
def test_registry_entries(name):
    q = registry.get(name)
    bits = int(name[4] if name.startswith("gptq") else name[3])
    assert q.mode is None and q.calibrated == name.startswith("gptq")
    w = torch.randn(4, 256, generator=torch.Generator().manual_seed(5))
    h = torch.eye(256, dtype=torch.float64) if q.calibrated else None
    r = q.fn(w, h)
    sm = r.info["signmag"]
    assert sm.bits == bits and sm.group == (128 if name.endswith("-g128") else None)
    assert r.bits == sm.stored_bits and torch.equal(r.weight, torch.from_numpy(sm.dequantize()))


def test_eval_hardware_side_names_width_and_group():
    from fineq.llm.evaluate import hardware_side

    w = torch.randn(4, 256, generator=torch.Generator().manual_seed(6))
    r = registry.get("gptq4-sm-g128").fn(w, torch.eye(256, dtype=torch.float64))
    assert hardware_side({"x.q_proj": r}) == {"mac_weight_bits": 4, "group": 128}
    f = registry.get("fineq-paper").fn(w, None)
    hw = hardware_side({"model.layers.0.self_attn.q_proj": f, "model.layers.0.mlp.down_proj": f})
    assert set(hw["cycles_per_vector_by_linear"]) == {"q_proj", "down_proj"}
    assert hw["cycles_per_vector_by_linear"]["q_proj"] == hw["cycles_per_vector"]
    assert hardware_side({"x": registry.get("rtn4").fn(w, None)}) == {}
