"""Cycle and energy model (fineq.perf): exact against the RTL, the CLI, real-weight files."""

import json

import numpy as np
import pytest
import torch

from fineq import quantize
from fineq.cli.main import main
from fineq.engine.config import EngineConfig
from fineq.engine.cycles import mac_cycle_split
from fineq.hw.run import run_gemm
from fineq.perf import layers as perf
from fineq.synthetic import heavy_tailed, int8_activations
from fineq_tb import runner


def _layer(q, cfg):
    return perf.layer_from_levels("w", q.levels(), 1, cfg)


@pytest.mark.rtl
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fineq_cycle_model_equals_rtl(seed):
    rng = np.random.default_rng(seed)
    m, k, n = int(rng.integers(1, 9)), int(rng.integers(1, 90)), int(rng.integers(1, 20))
    cfg = EngineConfig(16, 8, 3)
    q = quantize(heavy_tailed(m, k, seed=seed))
    x = int8_activations(k, n, seed=seed)
    sim = runner.simulators()[seed % len(runner.simulators())]
    res = run_gemm(q, x, sim, rows=16, cols=8, psum_depth=3)
    assert res["cycles"] == perf.fineq_cycles(_layer(q, cfg), n, cfg), (m, k, n, sim)


def test_golden_backend_reports_model_cycles():
    cfg = EngineConfig()
    q = quantize(heavy_tailed(70, 300, seed=4))
    x = int8_activations(300, 130, seed=5)
    res = run_gemm(q, x, "golden")
    assert res["cycles"] == perf.fineq_cycles(_layer(q, cfg), 130, cfg)
    assert res["n_tiles"] == 3


def test_mac_cycles_by_hand():
    # tiles = ceil(20/8) = 3; per run 20 + 3 * (3 + 8 + 4 - 1) = 62; N=5 over COLS=4: 2 runs
    cfg = EngineConfig(8, 4, 16)
    assert perf.mac_cycles(3, 20, 5, cfg) == 124
    assert mac_cycle_split(3, 20, 5, cfg) == {"preload": 40, "stream": 18, "drain": 66, "total": 124}


def test_fineq_split_matches_engine_model():
    from fineq.engine.cycles import engine_cycles

    cfg = EngineConfig(16, 8, 3)
    q = quantize(heavy_tailed(7, 100, seed=8))
    split = perf.fineq_cycle_split(_layer(q, cfg), 20, cfg)  # N = 20: 3 engine runs
    assert split == {k: 3 * v for k, v in engine_cycles(q.levels(), cfg).items()}


def _fake_summary(path):
    d = {"mode": "liberty", "clock_mhz": 400.0, "array": [64, 64], "designs": {
        "fineq_pe_array": {"power_mw": {"total": 40.0}}, "fineq_decoders": {"power_mw": {"total": 1.0}},
        "mac_systolic_array": {"power_mw": {"total": 100.0}}, "fineq_pe_array_binary": {"power_mw": {"total": 45.0}}}}
    path.write_text(json.dumps(d))


def test_perf_cli_synthetic_model(tmp_path, capsys):
    s = tmp_path / "summary.json"
    _fake_summary(s)
    png, js = tmp_path / "fig9.png", tmp_path / "perf.json"
    assert main(["perf", "--synthetic", "--model", "llama2-7b", "--seq", "32", "--seq", "256", "--synth", str(s),
                 "--chart", str(png), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out
    last = json.loads(out.strip().splitlines()[-1])
    key = "llama2-7b (SYNTHETIC weights)"
    eff, effm = last["efficiency"][key], last["efficiency_with_memory"][key]
    assert set(eff) == {"32", "256"} and all(v > 0 for v in eff.values())
    # memory adds the same energy to both arrays: the ratio moves toward 1 but keeps its side
    assert all(1 < effm[n] < eff[n] or eff[n] < effm[n] < 1 for n in eff)
    assert png.stat().st_size > 10_000
    data = json.loads(js.read_text())
    r = data["results"][key]["32"]
    # energy = P * cycles / f, from the summary's power figures
    t = r["total"]
    assert t["fineq_mj"] == pytest.approx(41.0e-3 * t["fineq_cycles"] / 400e6 * 1e3)
    assert t["mac_mj"] == pytest.approx(100.0e-3 * t["mac_cycles"] / 400e6 * 1e3)
    # the binary-weighted variant: its own power and cycles, never more cycles than the thermometer code
    assert t["fineq_binary_mj"] == pytest.approx(46.0e-3 * t["fineq_binary_cycles"] / 400e6 * 1e3)
    assert t["fineq_binary_cycles"] <= t["fineq_cycles"] and t["efficiency_binary"] == pytest.approx(
        t["mac_mj"] / t["fineq_binary_mj"])
    assert len(r["layers"]) == 7 and all(ly["count"] == 32 for ly in r["layers"])


def test_perf_without_synthesis_says_so(tmp_path, capsys):
    w = {"model.layers.0.self_attn.q_proj.weight": torch.randn(64, 48),
         "model.layers.0.mlp.down_proj.weight": torch.randn(48, 100), "model.norm.weight": torch.ones(48)}
    f = tmp_path / "w.pt"
    torch.save(w, f)
    assert main(["perf", "--weights", str(f), "--seq", "32", "--synth", str(tmp_path / "none.json")]) == 0
    out = capsys.readouterr().out
    assert "no synthesis report" in out and "L0 self_attn.q_proj" in out and "L0 mlp.down_proj" in out


def test_perf_safetensors_weights(tmp_path, capsys):
    from safetensors.torch import save_file

    f = tmp_path / "w.safetensors"
    save_file({"layers.0.mlp.up_proj.weight": torch.randn(96, 64).to(torch.bfloat16)}, str(f))
    s = tmp_path / "summary.json"
    _fake_summary(s)
    assert main(["perf", "--weights", str(f), "--seq", "64", "--synth", str(s), "--chart", str(tmp_path / "c.png")]) == 0
    assert "L0 mlp.up_proj" in capsys.readouterr().out


def test_perf_bad_inputs(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    assert main(["perf", "--weights", str(bad), "--seq", "32"]) == 2
    assert "not a readable" in capsys.readouterr().err
    empty = tmp_path / "empty.pt"
    torch.save({"x": torch.ones(3)}, empty)
    assert main(["perf", "--weights", str(empty), "--seq", "32"]) == 2
    assert "no decoder block matrices" in capsys.readouterr().err
    assert main(["perf", "--model", "llama2-7b", "--seq", "0"]) == 2


def test_scaled_layers_use_each_type_s_mean_cycles():
    cfg = EngineConfig()
    q = np.zeros((4, 64), dtype=np.int8)
    q[:2, 0] = 3  # half of the q_proj vectors take 3 cycles, half 1: mean 2
    up = np.zeros((2, 128), dtype=np.int8)
    up[:, 5] = 2  # up_proj: 2 cycles in the first K tile, 1 in the second: mean 1.5
    layers = {ly.name: ly for ly in perf.scaled_layers("llama2-7b", {"l.0.q_proj.weight": q, "l.0.up_proj.weight": up},
                                                         cfg)}
    cyc = {name: ly.vec_cycles["thermometer"] for name, ly in layers.items()}
    assert cyc["q_proj"] == 2 * 4096 * 64 and cyc["up_proj"] == 1.5 * 11008 * 64
    mean_all = (3 + 3 + 1 + 1 + 2 + 1 + 2 + 1) / 8  # k_proj is missing: the mean over every vector
    assert cyc["k_proj"] == round(mean_all * 4096 * 64)
    assert all(ly.count == 32 for ly in layers.values())


def test_memory_model():
    from fineq.perf import memory

    # Horowitz's points come back exactly, and the interpolation is monotone between them
    assert memory.sram_pj_per_byte(32 * 1024) * 8 == pytest.approx(20.0)
    assert memory.sram_pj_per_byte(1 << 20) * 8 == pytest.approx(100.0)
    assert 20 < memory.sram_pj_per_byte(512 * 1024) * 8 < 100
    cfg = EngineConfig()
    m, k = 100, 48  # 2 blocks per row: 14 bytes + 2 bytes of scale
    t = memory.traffic(m, k, 130, cfg, 1 << 20)  # fits: weights from DRAM once, 3 runs read them on chip
    wb, a, o = m * 16, k * 130, m * 130 * 4
    assert t.weights_fit and t.dram_bytes == wb + a + o and t.sram_bytes == wb + a + 3 * wb + a + o
    t2 = memory.traffic(m, k, 130, cfg, 1024)  # does not fit: weights from DRAM on every run
    assert not t2.weights_fit and t2.dram_bytes == 3 * wb + a + o
    e = memory.energy_pj(t, 1 << 20)
    assert e == pytest.approx(t.dram_bytes * 162.5 + t.sram_bytes * 12.5)


def test_real_workload_from_a_model_folder(tiny_llama, tmp_path):
    from transformers import LlamaForCausalLM

    from fineq.errors import FineQError
    from fineq.perf.workload import real_gemm

    folder, _ = tiny_llama
    lin = "model.layers.1.mlp.down_proj"
    w = real_gemm(str(folder), lin, m=16, n=8)
    assert w.q.shape == (16, 96) and w.x.shape == (96, 8) and w.x.dtype == np.int8
    # the weights are that linear's first rows; the activations its real inputs, absmax int8 per token
    ref = LlamaForCausalLM.from_pretrained(folder).model.layers[1].mlp.down_proj.weight.detach().float().numpy()
    assert np.array_equal(w.q.packed, quantize(ref[:16]).packed)
    assert (np.abs(w.x.astype(int)).max(axis=0) == 127).all() and "inputs of " + lin in w.description
    # a weights-only file has no model to run: synthetic activations, and the description says so
    from safetensors.numpy import save_file

    f = tmp_path / "w.safetensors"
    save_file({lin + ".weight": ref}, str(f))
    w2 = real_gemm(str(f), lin, m=4, n=3)
    assert w2.q.shape == (4, 96) and w2.x.shape == (96, 3) and "synthetic" in w2.description
    with pytest.raises(FineQError, match="no linear"):
        real_gemm(str(folder), "model.layers.9.mlp.down_proj", m=4, n=3)
