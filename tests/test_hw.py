"""fineq.hw: stream formats, the native Verilator harness (bit- and cycle-exact), layering, installed use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fineq
from fineq.engine.config import EngineConfig
from fineq.engine.cycles import engine_cycles
from fineq.engine.schedule import act_rows, schedule, weight_beat
from fineq.hw.native import FORMS
from fineq.hw.streams import act_stream, weight_stream
from fineq.synthetic import heavy_tailed, int8_activations

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [EngineConfig(16, 8, 3), EngineConfig(8, 4, 5), EngineConfig(24, 6, 2)]


@pytest.fixture(scope="module", autouse=True)
def _hw_cache(tmp_path_factory):
    """Harness builds of this module go to one folder (shared by the tests, not by other runs)."""
    old = os.environ.get("FINEQ_HW_CACHE")
    os.environ["FINEQ_HW_CACHE"] = str(tmp_path_factory.mktemp("hw-cache"))
    yield
    if old is None:
        os.environ.pop("FINEQ_HW_CACHE", None)
    else:
        os.environ["FINEQ_HW_CACHE"] = old


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.rows}x{c.cols}d{c.psum_depth}")
@pytest.mark.parametrize("m,k,n", [(7, 53, 3), (11, 96, 4), (1, 5, 1)])
def test_streams_equal_the_per_beat_definition(cfg, m, k, n):
    q = fineq.quantize(heavy_tailed(m, k, seed=m + k))
    x = int8_activations(k, min(n, cfg.cols), seed=k)
    act, wgt = [], []
    for c0, _c1, t, row in schedule(m, k, cfg):
        if row == c0:
            for kk in act_rows(k, t, cfg):
                lane = np.zeros(cfg.cols, dtype=np.int8)
                lane[: x.shape[1]] = x[kk]
                act.append(lane.view(np.uint8))
        wgt.append(np.frombuffer(b"".join(weight_beat(q.packed, row, t, cfg)), dtype=np.uint8))
    assert np.array_equal(act_stream(x, k, m, cfg), np.array(act))
    assert np.array_equal(weight_stream(q, cfg), np.array(wgt))


def _seed() -> int:
    seed = int(os.environ.get("SEED") or np.random.SeedSequence().entropy % (1 << 31))
    print(f"SEED={seed}")
    return seed


@pytest.mark.rtl
@pytest.mark.parametrize("clock_gate", list(FORMS.values()), ids=list(FORMS))
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.rows}x{c.cols}d{c.psum_depth}")
def test_native_harness_bit_and_cycle_exact(cfg, clock_gate):
    """Both forms of the engine (the product path's CLOCK_GATE=1, exactly as synthesized, and CLOCK_GATE=0; one
    description) give the golden model's Y and cycles."""
    from functools import partial

    from fineq.hw import native

    run_engine = partial(native.run_engine, clock_gate=clock_gate)

    seed = _seed()
    rng = np.random.default_rng(seed)
    for trial in range(3):
        m, k = int(rng.integers(1, 20)), int(rng.integers(1, 120))
        n = int(rng.integers(1, cfg.cols + 1))
        q = fineq.quantize(heavy_tailed(m, k, seed=seed + trial))
        x = rng.integers(-128, 128, (k, n), dtype=np.int8)
        out = run_engine(q, x, cfg, seed=seed)
        assert np.array_equal(out.y, fineq.gemm(q, x)), (m, k, n)
        assert out.cycles == engine_cycles(q.levels(), cfg)["total"], (m, k, n)
        stalled = run_engine(q, x, cfg, stall=0.3, seed=seed + 1)
        assert np.array_equal(stalled.y, fineq.gemm(q, x))
        assert stalled.cycles >= out.cycles


@pytest.mark.rtl
def test_native_harness_check_catches_an_injected_error():
    """Flip one bit of one weight beat: the engine's Y no longer equals the golden model's."""
    from fineq.hw import native

    cfg = CONFIGS[0]
    q = fineq.quantize(heavy_tailed(6, 48, seed=1))
    x = int8_activations(48, 5, seed=2)
    packed = q.packed.copy()
    packed[2, 3] ^= 0x10  # a data bit of row 2
    bad = fineq.QuantizedMatrix(packed, q.scales, q.shape)
    out = native.run_engine(bad, x, cfg)
    ref = fineq.gemm(q, x)
    assert not np.array_equal(out.y, ref)
    assert np.array_equal(np.flatnonzero((out.y != ref).any(axis=1)), [2])
    assert np.array_equal(out.y, fineq.gemm(bad, x))


@pytest.mark.rtl
@pytest.mark.parametrize("jobs", [1, 2])
def test_gemm_cli_native_reports_speed(tmp_path, capsys, jobs):
    import json

    from fineq.cli.main import main

    np.save(tmp_path / "W.npy", heavy_tailed(9, 40, seed=3))
    np.save(tmp_path / "X.npy", int8_activations(40, 11, seed=4))
    assert main(["quantize", str(tmp_path / "W.npy"), "-o", str(tmp_path / "W.fineq.npz")]) == 0
    assert main(["gemm", str(tmp_path / "W.fineq.npz"), str(tmp_path / "X.npy"), "--backend", "verilator",
                 "--rows", "16", "--cols", "8", "--psum-depth", "4", "--jobs", str(jobs)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["bit_exact"] and res["cycles_match_model"] and res["n_tiles"] == 2 and res["jobs"] == jobs
    assert res["sim_seconds"] > 0 and res["cycles_per_second"] > 0


def test_package_never_imports_the_testbench():
    code = ("import sys, fineq, fineq.hw, fineq.hw.native, fineq.hw.streams, fineq.hw.run, fineq.cli.main; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('fineq_tb', 'tb', 'cocotb', 'pyuvm', 'synth')]; "
            "assert not bad, bad")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/", env=env)


@pytest.mark.rtl
@pytest.mark.slow
def test_installed_package_runs_the_rtl(tmp_path):
    """pip install --target (not editable, no checkout): a small GEMM through the native harness."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, cwd=tmp_path)
    assert (target / "fineq" / "hw" / "rtl" / "fineq_gemm_engine.v").is_file()
    code = (
        "import numpy as np, fineq\n"
        f"assert fineq.__file__.startswith({str(target)!r}), fineq.__file__\n"
        "from fineq.hw.run import run_gemm\n"
        "from fineq.synthetic import heavy_tailed, int8_activations\n"
        "q = fineq.quantize(heavy_tailed(5, 30, seed=1)); x = int8_activations(30, 3, seed=2)\n"
        "r = run_gemm(q, x, 'verilator', rows=8, cols=4, psum_depth=2)\n"
        "assert np.array_equal(r['y'], fineq.gemm(q, x)) and r['cycles_match_model']\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target), FINEQ_HW_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert out.stdout.strip().endswith("ok")


@pytest.mark.rtl
def test_rtl_layer_on_a_tiny_llama(tiny_llama, capsys):
    import json

    from fineq.cli.main import main

    folder, text = tiny_llama
    assert main(["rtl-layer", "--model", str(folder), "--text", str(text), "--layer", "1", "--tokens", "12",
                 "--rows", "16", "--cols", "8", "--psum-depth", "32"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(doc["linears"]) == 7 and doc["total"]["all_bit_exact"] and doc["total"]["all_cycles_match"]
    assert all(0 < r["rel_error_vs_float"] < 1 for r in doc["linears"])
    assert {r["linear"].rsplit(".", 1)[-1] for r in doc["linears"]} == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
