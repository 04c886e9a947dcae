"""The ``fineq`` command line."""

import json

import numpy as np

from fineq.cli.main import main
from fineq.synthetic import heavy_tailed, int8_activations


def test_quantize_info_gemm(tmp_path, capsys):
    w = tmp_path / "W.npy"
    np.save(w, heavy_tailed(6, 50, seed=1))
    out = tmp_path / "W.fineq.npz"
    assert main(["quantize", str(w), "-o", str(out), "--mode", "search"]) == 0
    assert out.exists()
    assert main(["info", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert d["shape"] == [6, 50] and sum(d["code_histogram"].values()) == 6 * 3 * 4
    assert main(["info", str(out)]) == 0
    assert "bits per weight" in capsys.readouterr().out
    x = tmp_path / "X.npy"
    np.save(x, int8_activations(50, 3))
    y = tmp_path / "Y.npy"
    assert main(["gemm", str(out), str(x), "-o", str(y)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["bit_exact"] is True and res["cycles"] > 0
    assert np.load(y).dtype == np.int32


def test_errors_are_clear(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([[1.0, np.nan]], dtype=np.float32))
    assert main(["quantize", str(bad)]) == 2
    assert "row 0" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing.npz")]) == 2
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 truncated")
    assert main(["info", str(junk)]) == 2
    assert "FineQ file" in capsys.readouterr().err
    w = tmp_path / "W.npy"
    np.save(w, heavy_tailed(2, 30))
    q = tmp_path / "W.fineq.npz"
    main(["quantize", str(w), "-o", str(q)])
    x = tmp_path / "X.npy"
    np.save(x, np.zeros((30, 2), dtype=np.float32))
    assert main(["gemm", str(q), str(x)]) == 2
    assert "int8" in capsys.readouterr().err
    np.save(x, np.zeros((29, 2), dtype=np.int8))
    assert main(["gemm", str(q), str(x)]) == 2
    assert "K=29" in capsys.readouterr().err


def test_quantize_calibrated_mode_cli(tmp_path, capsys):
    from fineq import load, quantize
    from fineq.quant.calibrated import hessian_from_inputs

    rng = np.random.default_rng(3)
    w, x = tmp_path / "W.npy", tmp_path / "Xc.npy"
    np.save(w, heavy_tailed(8, 48, seed=2))
    np.save(x, rng.standard_normal((200, 48)).astype(np.float32))
    out = tmp_path / "W.fineq.npz"
    assert main(["quantize", str(w), "-o", str(out), "--mode", "gptq"]) == 2
    assert "needs --calib" in capsys.readouterr().err
    assert main(["quantize", str(w), "-o", str(out), "--mode", "gptq", "--calib", str(x)]) == 0
    expect = quantize(np.load(w), "gptq", hessian=hessian_from_inputs(np.load(x)))
    assert load(out) == expect and load(out).mode == "gptq"
    assert main(["quantize", str(w), "-o", str(out), "--mode", "gptq", "--calib", str(x)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["quantize", str(w), "-o", str(w)]) == 2
    assert "also an input" in capsys.readouterr().err
