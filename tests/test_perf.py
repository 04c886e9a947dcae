"""Cycle and energy model (fineq.perf): exact against the RTL, the CLI, real-weight files."""

import json

import numpy as np
import pytest
import torch

from fineq import perf, quantize
from fineq.cli import main
from fineq.engine import EngineConfig
from fineq.run import run_gemm
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
    assert perf.mac_cycle_split(3, 20, 5, cfg) == {"preload": 40, "stream": 18, "drain": 66, "total": 124}


def test_fineq_split_matches_engine_model():
    from fineq.engine import engine_cycles

    cfg = EngineConfig(16, 8, 3)
    q = quantize(heavy_tailed(7, 100, seed=8))
    split = perf.fineq_cycle_split(_layer(q, cfg), 20, cfg)  # N = 20: 3 engine runs
    assert split == {k: 3 * v for k, v in engine_cycles(q.levels(), cfg).items()}


def _fake_summary(path):
    d = {"mode": "liberty", "clock_mhz": 400.0, "array": [64, 64], "designs": {
        "fineq_pe_array": {"power_mw": {"total": 40.0}}, "fineq_decoders": {"power_mw": {"total": 1.0}},
        "mac_systolic_array": {"power_mw": {"total": 100.0}}}}
    path.write_text(json.dumps(d))


def test_perf_cli_synthetic_model(tmp_path, capsys):
    s = tmp_path / "summary.json"
    _fake_summary(s)
    png, js = tmp_path / "fig9.png", tmp_path / "perf.json"
    assert main(["perf", "--model", "llama2-7b", "--seq", "32", "--seq", "256", "--synth", str(s),
                 "--chart", str(png), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    last = json.loads(out.strip().splitlines()[-1])
    eff = last["efficiency"]["llama2-7b"]
    assert set(eff) == {"32", "256"} and all(v > 0 for v in eff.values())
    assert png.stat().st_size > 10_000
    data = json.loads(js.read_text())
    r = data["results"]["llama2-7b"]["32"]
    # energy = P * cycles / f, from the summary's power figures
    t = r["total"]
    assert t["fineq_mj"] == pytest.approx(41.0e-3 * t["fineq_cycles"] / 400e6 * 1e3)
    assert t["mac_mj"] == pytest.approx(100.0e-3 * t["mac_cycles"] / 400e6 * 1e3)
    assert len(r["layers"]) == 7 and all(ly["count"] == 32 for ly in r["layers"])


def test_perf_without_synthesis_says_so(tmp_path, capsys):
    w = {"model.layers.0.self_attn.q_proj.weight": torch.randn(64, 48),
         "model.layers.0.mlp.down_proj.weight": torch.randn(48, 100), "model.norm.weight": torch.ones(48)}
    f = tmp_path / "w.pt"
    torch.save(w, f)
    assert main(["perf", "--weights", str(f), "--seq", "32", "--synth", str(tmp_path / "none.json")]) == 0
    out = capsys.readouterr().out
    assert "no synthesis report" in out and "q_proj.weight" in out and "down_proj.weight" in out


def test_perf_safetensors_weights(tmp_path, capsys):
    from safetensors.torch import save_file

    f = tmp_path / "w.safetensors"
    save_file({"layers.0.mlp.up_proj.weight": torch.randn(96, 64).to(torch.bfloat16)}, str(f))
    s = tmp_path / "summary.json"
    _fake_summary(s)
    assert main(["perf", "--weights", str(f), "--seq", "64", "--synth", str(s), "--chart", str(tmp_path / "c.png")]) == 0
    assert "up_proj.weight" in capsys.readouterr().out


def test_perf_bad_inputs(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    assert main(["perf", "--weights", str(bad), "--seq", "32"]) == 2
    assert "not a readable" in capsys.readouterr().err
    empty = tmp_path / "empty.pt"
    torch.save({"x": torch.ones(3)}, empty)
    assert main(["perf", "--weights", str(empty), "--seq", "32"]) == 2
    assert "no *_proj.weight" in capsys.readouterr().err
    assert main(["perf", "--model", "llama2-7b", "--seq", "0"]) == 2
