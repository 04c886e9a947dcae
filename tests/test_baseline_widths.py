"""The baselines at the MAC array's own widths (4 and 8 bits, and 3 and 4 bits in groups of 128): in the registry,
their stored bits counted in full, and their errors on cases with a known answer."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from fineq.quant import registry  # noqa: E402
from fineq.quant.calibrated import hessian_from_inputs  # noqa: E402
from fineq.quant.gptq import output_error  # noqa: E402

NEW = ["rtn4", "rtn8", "gptq3-g128", "gptq4", "gptq4-g128", "gptq8"]


def _problem(m: int = 48, k: int = 256, n: int = 512, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(m, k, generator=g)
    x = torch.randn(n, k, generator=g) * torch.linspace(0.2, 3.0, k)  # columns of unequal importance
    return w, hessian_from_inputs(x.numpy())


@pytest.mark.parametrize("name", NEW)
def test_in_the_registry(name):
    q = registry.get(name)
    assert q.mode is None and q.fn is not None and q.calibrated == name.startswith("gptq")


@pytest.mark.parametrize("name,bits", [("rtn4", 4 + 20 / 256), ("rtn8", 8 + 24 / 256), ("gptq4", 4 + 20 / 256),
                                       ("gptq8", 8 + 24 / 256), ("gptq3-g128", 3 + 2 * 19 / 256),
                                       ("gptq4-g128", 4 + 2 * 20 / 256)])
def test_bits_counted(name, bits):
    """Levels, plus a float16 scale and a b-bit zero point per row (per group of 128 for g128)."""
    w, h = _problem()
    r = registry.get(name).fn(w, h if registry.get(name).calibrated else None)
    assert r.bits / w.numel() == pytest.approx(bits)


def test_rtn8_error_is_rounding_error():
    """Round to nearest on a 255-step grid per row: the error of a weight inside the grid is at most half a step, at
    the row's ends (the zero point is rounded) at most one step, and on average a quarter of a step (rounding
    error is uniform on [-step/2, step/2])."""
    w, _ = _problem()
    r = registry.get("rtn8").fn(w, None)
    step = (torch.maximum(w.max(1).values, torch.zeros(1)) - torch.minimum(w.min(1).values, torch.zeros(1))) / 255
    rel = (r.weight - w).abs() / step[:, None]
    assert (rel <= 1.01).all()
    assert (rel <= 0.505).float().mean() > 0.99
    assert 0.22 < float(rel.mean()) < 0.28


def test_more_bits_and_groups_lower_the_output_error():
    """GPTQ's output error ||(W - Q) X||: 3-bit > 3-bit g128 > 4-bit g128, 3-bit > 4-bit > 8-bit, and RTN 4-bit above
    GPTQ 4-bit (error feedback with the Hessian of correlated, unequal inputs)."""
    w, h = _problem()
    err = {n: output_error(w, registry.get(n).fn(w, h if registry.get(n).calibrated else None).weight, h)
           for n in ["gptq3", "gptq3-g128", "gptq4", "gptq4-g128", "gptq8", "rtn4"]}
    assert err["gptq3"] > err["gptq3-g128"] > err["gptq4-g128"]
    assert err["gptq3"] > err["gptq4"] > err["gptq8"]
    assert err["rtn4"] > err["gptq4"]
    assert err["gptq8"] < 1e-3 * err["gptq3"]
