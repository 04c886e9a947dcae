"""Group scales, the format variant outside the spec (fineq.quant.groups, docs/format.md "Group scales"): the
container counts and dequantizes them, the files keep them (and old readers refuse them), gptq-ord in groups
recovers a matrix that needs them exactly and reduces to gptq-ord with one group, the int8 path scales each
group's integer sum, recon trains them, and the RTL backend refuses them before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fineq.cli.main import main  # noqa: E402
from fineq.engine.gemm import gemm, group_gemm  # noqa: E402
from fineq.errors import FineQError, FormatError  # noqa: E402
from fineq.format.codec import ZEROED  # noqa: E402
from fineq.format.fileio import load, save  # noqa: E402
from fineq.format.qmatrix import QuantizedMatrix, from_levels  # noqa: E402
from fineq.quant import registry  # noqa: E402
from fineq.quant.calibrated import hessian_from_inputs  # noqa: E402
from fineq.quant.groups import refit_group_scales  # noqa: E402
from fineq.quant.result import QResult  # noqa: E402


def _grouped_problem(m: int = 8, k: int = 300, group: int = 64, seed: int = 0):
    """Levels of code 1 everywhere (valid FineQ levels), a +3 in every group of every row, and float16 group
    scales spread over 2^-4 .. 2^4: ``W = S * V`` exactly, which one scale per row cannot hold."""
    rng = np.random.default_rng(seed)
    kp = -(-k // 24) * 24
    lv = rng.integers(-3, 4, (m, kp)).astype(np.int8)
    lv[:, ZEROED[1] :: 3] = 0  # code 1 zeroes the first weight of every cluster of three
    lv[:, k:] = 0
    n = -(-k // group)
    for g in range(n):
        c = g * group + (1 if (g * group) % 3 == 0 else 0)
        c += 1 if c % 3 == 0 else 0
        lv[:, c] = 3  # not the first position of its cluster: stored by code 1
    scales = (2.0 ** rng.integers(-4, 5, (m, n))).astype(np.float16)
    q = from_levels(lv[:, :k], np.ones((m, kp // 6), dtype=np.uint8), scales, group)
    x = rng.standard_normal((400, k)) * rng.uniform(0.2, 2.0, k)
    return q, hessian_from_inputs(x)


def _out_err(w: np.ndarray, q: QuantizedMatrix, h) -> float:
    d = (w - q.dequantize()).astype(np.float64)
    return float(np.einsum("mk,kj,mj->", d, h.numpy(), d))


def test_container_counts_and_dequantizes_group_scales():
    q, _ = _grouped_problem()
    m, k = q.shape
    assert q.group == 64 and q.scales.shape == (m, 5)
    assert q.bits_per_weight == pytest.approx((q.packed.size * 8 + 16 * m * 5) / (m * k))
    cols = np.arange(k) // 64
    assert np.array_equal(q.dequantize(), q.levels() * q.scales.astype(np.float32)[:, cols])
    per_row = QuantizedMatrix(q.packed, q.scales[:, 0], q.shape)
    assert per_row != q and per_row.bits_per_weight < q.bits_per_weight
    with pytest.raises(FormatError, match=r"scales must be float16 \[8, 5\]"):
        QuantizedMatrix(q.packed, q.scales[:, :4], q.shape, group=64)
    with pytest.raises(FormatError, match="group must be a positive"):
        QuantizedMatrix(q.packed, q.scales, q.shape, group=0)


def test_npz_keeps_group_scales_and_marks_them(tmp_path):
    q, _ = _grouped_problem()
    p = save(q, tmp_path / "g.fineq.npz")
    back = load(p)
    assert back == q and back.group == 64
    with np.load(p) as z:
        assert int(z["format_version"]) == 2 and int(z["group"]) == 64
        parts = {k: z[k] for k in z.files}
    parts["format_version"] = np.int64(1)  # claims the per-row format while holding group scales
    bad = tmp_path / "bad.fineq.npz"
    np.savez(bad, **parts)
    with pytest.raises(FormatError, match="format version 1 and the group key disagree"):
        load(bad)
    row = QuantizedMatrix(q.packed, q.scales[:, 0], q.shape)
    with np.load(save(row, tmp_path / "r.fineq.npz")) as z:
        assert int(z["format_version"]) == 1 and "group" not in z.files


def test_gptq_ord_in_groups_recovers_a_grouped_matrix_exactly():
    """Every group's absmax / 3 is its true scale and every w / s an integer: the levels, the scales and the
    weights come back exactly; one scale per row cannot reach them."""
    q, h = _grouped_problem()
    w = q.dequantize()
    got = registry.quantize(w, "gptq-ord", h, group=64)
    assert got.group == 64
    assert np.array_equal(got.scales, q.scales)
    assert np.array_equal(got.dequantize(), w)
    assert _out_err(w, registry.quantize(w, "gptq-ord", h), h) > 0


def test_one_group_is_gptq_ord():
    """A group as long as the row holds the same levels and scales as the per-row mode."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((24, 200)) * np.exp(rng.standard_normal(200))).astype(np.float32)
    h = hessian_from_inputs(rng.standard_normal((300, 200)) * rng.uniform(0.1, 3.0, 200))
    a, b = registry.quantize(w, "gptq-ord", h), registry.quantize(w, "gptq-ord", h, group=200)
    assert np.array_equal(a.levels(), b.levels()) and np.array_equal(a.scales, b.scales[:, 0])


def test_group_scales_lower_the_output_error_where_magnitudes_vary():
    rng = np.random.default_rng(6)
    k = 384
    w = (rng.standard_normal((32, k)) * np.repeat(2.0 ** rng.integers(-3, 4, (32, k // 128)), 128, axis=1))
    w = w.astype(np.float32)
    h = hessian_from_inputs(rng.standard_normal((600, k)))
    e_row = _out_err(w, registry.quantize(w, "gptq-ord", h), h)
    e_grp = _out_err(w, registry.quantize(w, "gptq-ord", h, group=128), h)
    assert e_grp < 0.9 * e_row


def test_refit_is_the_least_squares_optimum():
    """For fixed levels, the refit scales solve each row's least-squares problem (checked against numpy's
    lstsq on the Cholesky-whitened system), to float16 rounding."""
    rng = np.random.default_rng(7)
    m, k, g = 5, 100, 32
    v = rng.integers(-3, 4, (m, k)).astype(np.float64)
    w = v * 0.1 + 0.02 * rng.standard_normal((m, k))
    x = rng.standard_normal((300, k))
    h = 2 * x.T @ x / 300
    s16, kept = refit_group_scales(torch.from_numpy(w), torch.from_numpy(h), torch.from_numpy(v),
                                   np.full((m, 4), 0.1, dtype=np.float16), g)
    assert kept == 0
    lc = np.linalg.cholesky(h)
    for r in range(m):
        basis = np.zeros((k, 4))
        for j in range(4):
            basis[j * g : (j + 1) * g, j] = v[r, j * g : (j + 1) * g]
        want, *_ = np.linalg.lstsq(lc.T @ basis, lc.T @ w[r], rcond=None)
        assert np.allclose(s16[r].astype(np.float64), want, rtol=2e-3)


def test_int8_path_scales_each_groups_integer_sum():
    """The int8 path of a grouped linear is ``s_x * sum_g s_g * (V_g @ q_g)``; the group sums add up to the
    whole GEMM."""
    from fineq.llm.int8path import int8_activations, quantize_tokens

    q, _ = _grouped_problem(m=8, k=300, group=64)
    rng = np.random.default_rng(8)
    x = torch.from_numpy(rng.standard_normal((5, 300)).astype(np.float32))
    xq, sx = quantize_tokens(x)
    xi = np.ascontiguousarray(xq.numpy().T)
    parts = group_gemm(q, xi)
    assert parts.shape == (5, 8, 5) and np.array_equal(parts.sum(axis=0), gemm(q, xi))
    lv, s = q.levels().astype(np.float64), q.scales.astype(np.float64)
    want = sum(s[:, j][:, None] * (lv[:, j * 64 : (j + 1) * 64] @ xi[j * 64 : (j + 1) * 64].astype(np.float64))
               for j in range(5)) * sx.numpy().astype(np.float64)[None, :]

    class Holder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(300, 8, bias=False)

    model = Holder()
    with int8_activations(model, {"lin": QResult(torch.from_numpy(q.dequantize()), 0.0, q)}):
        y = model.lin(x)
    assert np.allclose(y.detach().numpy(), want.T, rtol=1e-5, atol=1e-6)


def test_group_names_and_errors():
    assert {"fineq-gptq-ord-g128", "fineq-recon-g128"} <= set(registry.QUANTIZERS)
    q = registry.get("fineq-gptq-ord-g64")
    assert q.group == 64 and q.mode == "gptq-ord" and "outside the spec" in q.about
    assert registry.get("fineq-recon-g32").recon is not None
    with pytest.raises(FineQError, match="whole number at least 1"):
        registry.get("fineq-gptq-ord-g0")
    with pytest.raises(FineQError, match="group scales are built for modes gptq-ord, recon, not 'paper'"):
        registry.get("fineq-paper-g128")
    with pytest.raises(FineQError, match="unknown method"):
        registry.get("fineq-nomode-g128")
    with pytest.raises(FineQError, match="group scales are built for modes gptq-ord, recon"):
        registry.quantize(np.ones((2, 24), dtype=np.float32), "paper", group=8)


@pytest.fixture(scope="module")
def tiny_grouped(tiny_llama):
    """fineq-gptq-ord-g32 and fineq-recon-g32 on the tiny LLaMA (hidden 64, intermediate 96)."""
    from tiny_llm import apply_methods

    folder, text = tiny_llama
    return apply_methods(folder, text, ["fineq-gptq-ord-g32", "fineq-recon-g32"])


def test_recon_trains_group_scales_on_a_tiny_model(tiny_grouped):
    start, res = tiny_grouped["fineq-gptq-ord-g32"], tiny_grouped["fineq-recon-g32"]
    assert all(r.qmatrix.group == 32 and r.qmatrix.mode == "recon" for r in res.values())
    for r in res.values():
        m, k = r.qmatrix.shape
        assert r.qmatrix.scales.shape == (m, -(-k // 32))
        assert r.bits == pytest.approx(r.qmatrix.bits_per_weight * m * k)
        assert torch.equal(r.weight, torch.from_numpy(r.qmatrix.dequantize()))
    infos = [r.info for r in res.values()]
    assert all(i["recon_loss"] <= i["recon_loss_start"] for i in infos)
    assert any(not np.array_equal(res[n].qmatrix.scales, start[n].qmatrix.scales) for n in res)


def test_quantize_model_group_file_reloads_to_its_eval(tiny_llama, tmp_path, capsys):
    """quantize-model --group 32 writes format version 3 with every linear's group; eval --quantized of that
    file gives the perplexity of the method fineq-gptq-ord-g32 computed directly."""
    from fineq.llm.modelfile import read_model_file

    folder, text = tiny_llama
    out = tmp_path / "g.fineq.safetensors"
    common = ["--calib-text", str(text), "--calib-samples", "4", "--calib-seq", "64"]
    assert main(["quantize-model", "--model", str(folder), "-o", str(out), "--mode", "gptq-ord", "--group", "32",
                 *common]) == 0
    qms, meta = read_model_file(out)
    assert meta["format_version"] == "3" and set(json.loads(meta["linear_groups"])) == set(qms)
    assert all(q.group == 32 for q in qms.values())
    js = tmp_path / "e.json"
    capsys.readouterr()
    assert main(["eval", "--model", str(folder), "--text", str(text), "--methods", "fineq-gptq-ord-g32,rtn4-sm",
                 "--quantized", str(out), "--seq", "32", "--max-windows", "4", *common, "--json", str(js)]) == 0
    log = {ln.split("]")[0][1:]: ln for ln in capsys.readouterr().err.splitlines() if "bits/weight" in ln}
    assert "a float16 scale per 32 weights (outside the spec)" in log["fineq-gptq-ord-g32"]
    assert "scale per" not in log["rtn4-sm"]  # a per-row grid on the MAC array: no group note
    rows = json.loads(js.read_text())["results"]
    by = {r["method"]: r for r in rows}
    direct = by["fineq-gptq-ord-g32"]
    filed = next(r for r in rows if r["method"].startswith("file:"))
    assert filed["ppl"] == pytest.approx(direct["ppl"], rel=1e-9)
    assert direct["group"] == 32 and direct["bits"] > 2.4


def test_rtl_backend_refuses_group_scales_before_loading(capsys):
    assert main(["eval", "--model", "no-such-model", "--backend", "verilator", "--methods",
                 "fineq-gptq-ord-g128"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "group scales are costed, not built in the RTL" in err[0]
