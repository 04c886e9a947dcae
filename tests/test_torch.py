"""Torch tensors in, nn.Linear layers quantized and written back."""

import numpy as np
import torch

import fineq


def test_tensor_input_matches_numpy():
    w = torch.randn(6, 50, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(fineq.quantize(w).packed, fineq.quantize(w.numpy()).packed)
    wb = w.to(torch.bfloat16)
    assert np.array_equal(fineq.quantize(wb).packed, fineq.quantize(wb.float()).packed)


def test_integer_tensor_rejected():
    try:
        fineq.quantize(torch.ones(2, 3, dtype=torch.int32))
    except fineq.FineQError as e:
        assert "floating point" in str(e)
    else:
        raise AssertionError("int tensor accepted")


def test_quantize_model_writes_back():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.ReLU(), torch.nn.Linear(30, 10))
    x = torch.randn(4, 40)
    before = model(x)
    w0 = model[0].weight.detach().clone()
    qs = fineq.quantize_model(model)
    assert sorted(qs) == ["0", "2"]
    assert qs["0"].shape == (30, 40) and qs["2"].shape == (10, 30)
    assert torch.equal(model[0].weight, torch.from_numpy(qs["0"].dequantize()))
    assert not torch.equal(model[0].weight, w0)
    after = model(x)
    assert after.shape == before.shape and torch.isfinite(after).all()


def test_quantize_model_skip_patterns():
    model = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.Linear(30, 10))
    w1 = model[1].weight.detach().clone()
    qs = fineq.quantize_model(model, skip=(r"^1$",))
    assert list(qs) == ["0"] and torch.equal(model[1].weight, w1)
