"""``fineq gemm`` through the RTL backends: bit-exact, N tiled in the driver, cycles equal to the model."""

import json

import numpy as np
import pytest

from fineq.cli.main import main
from fineq.synthetic import heavy_tailed, int8_activations
from fineq_tb import runner


@pytest.mark.rtl
@pytest.mark.parametrize("sim", runner.simulators())
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_gemm_cli_rtl(tmp_path, capsys, sim, stall):
    w, x = tmp_path / "W.npy", tmp_path / "X.npy"
    np.save(w, heavy_tailed(7, 53, seed=5))
    np.save(x, int8_activations(53, 11, seed=6))  # N = 11 > COLS = 8: two engine runs
    q = tmp_path / "W.fineq.npz"
    assert main(["quantize", str(w), "-o", str(q)]) == 0
    y = tmp_path / "Y.npy"
    args = ["gemm", str(q), str(x), "-o", str(y), "--backend", sim, "--rows", "16", "--cols", "8",
            "--psum-depth", "3", "--stall", str(stall), "--seed", "11"]
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["bit_exact"] is True and res["n_tiles"] == 2
    if stall == 0:
        assert res["cycles_match_model"] is True and res["cycles"] == res["model_cycles"]
    else:
        assert res["cycles"] > res["model_cycles"]
    from fineq import gemm, load

    assert np.array_equal(np.load(y), gemm(load(q), np.load(x)))
