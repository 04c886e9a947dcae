"""A whole model through the RTL (``fineq eval --backend``): bit-exact, cycle-exact, resumable, distributed.

A tiny random LLaMA (2 layers, 14 linears) runs every decoder linear's GEMM on
the engine; the perplexity must equal the golden integer path's exactly, the
cycles the cycle model's computed here from the quantized levels. The
scoreboard is shown to catch one corrupted element; the work folder to resume
to the identical result; the Dask path (a local cluster of two workers) to
give the same result as the local pool.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fineq.cli.main import main
from fineq.engine.config import EngineConfig
from fineq.engine.cycles import engine_cycles
from fineq.hw import run as hw_run
from fineq.hw.checked import Mismatch, check

SEQ, WINDOWS = 64, 3
FINEQ = [sys.executable, "-c", "import sys; from fineq.cli.main import main; sys.exit(main())"]


def _eval(tiny, tmp_path, *extra: str, out: str = "out.json", methods: str = "fineq-paper") -> dict:
    folder, text = tiny
    args = ["eval", "--model", str(folder), "--text", str(text), "--seq", str(SEQ), "--max-windows", str(WINDOWS),
            "--json", str(tmp_path / out), "--force", *extra]
    if methods:
        args += ["--methods", methods]
    assert main(args) == 0
    return json.loads((tmp_path / out).read_text())


def _expected_cycles(tiny) -> int:
    """The cycle model's count, from the levels quantized here: every decoder linear, every window."""
    import torch

    from fineq.llm.models import decoder_linears, load
    from fineq.quant.registry import quantize

    lm = load(str(tiny[0]))
    cfg = EngineConfig()
    with torch.no_grad():
        per_window = sum(engine_cycles(quantize(lin.weight.detach().float(), "paper").levels(), cfg)["total"]
                         * -(-SEQ // cfg.cols) for lin in decoder_linears(lm.model).values())
    return per_window * WINDOWS


@pytest.fixture(scope="module")
def rtl_run(tiny_llama, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rtl-model")
    doc = _eval(tiny_llama, tmp, "--backend", "verilator", "--jobs", "2")
    return tmp, doc


def test_a_tiny_model_through_the_rtl_is_the_golden_integer_path(tiny_llama, rtl_run):
    _, doc = rtl_run
    (row,) = doc["results"]
    assert doc["backend"] == "verilator"
    assert row["ppl_rtl"] == row["ppl_int8"]  # every GEMM bit-exact: the same floats after
    assert f"{row['ppl_rtl']:.3f}" == f"{row['ppl_int8']:.3f}"
    assert row["rtl_gemms"] == 14 * WINDOWS
    assert row["rtl_cycles"] == row["rtl_model_cycles"] == _expected_cycles(tiny_llama)
    assert row["rtl_cycles_per_token"] == row["rtl_cycles"] / (SEQ * WINDOWS)
    assert row["rtl_windows_resumed"] == 0


def test_the_work_folder_resumes_to_the_identical_result(tiny_llama, rtl_run, capsys):
    tmp, doc = rtl_run
    (row,) = doc["results"]
    records = sorted(Path(row["rtl_work"]).glob("window-*.json"))
    assert len(records) == WINDOWS
    for done in (tmp / "out.json.work").glob("method-*.json"):
        done.unlink()  # as if killed while the windows ran: the method is not finished
    records[0].unlink()  # ... before the first window finished
    records[1].write_text('{"nll": 1.0')  # and a damaged record
    again = _eval(tiny_llama, tmp, "--backend", "verilator", "--jobs", "2", "--work", str(tmp / "out.json.work"),
                  out="again.json")
    (row2,) = again["results"]
    assert row2["rtl_windows_resumed"] == WINDOWS - 2
    assert "is damaged" in capsys.readouterr().err
    for k in ("ppl_rtl", "ppl_int8", "rtl_cycles", "rtl_model_cycles", "rtl_gemms"):
        assert row2[k] == row[k], k


def test_the_scoreboard_names_the_first_differing_element():
    y = np.arange(12, dtype=np.int64).reshape(2, 6)
    res = {"y": y.copy(), "tile_cycles": [10, 10, 10], "tile_model_cycles": 10}
    check("L", res, y, cols=2)  # equal: no error
    res["y"][1, 3] += 1
    with pytest.raises(Mismatch, match=r"L: the RTL output differs from fineq.gemm in tile 1 \(tokens 2..3\): "
                                       r"Y\[1, 3\] = 10, golden 9"):
        check("L", res, y, cols=2)
    res = {"y": y.copy(), "tile_cycles": [10, 11, 10], "tile_model_cycles": 10}
    with pytest.raises(Mismatch, match="tile 1 .* took 11 cycles on the RTL, the cycle model says 10"):
        check("L", res, y, cols=2)


def test_an_injected_rtl_error_stops_the_run_naming_it(tiny_llama, tmp_path, monkeypatch, capsys):
    """One element of one engine run's output changed on the real path: the run stops, naming where."""
    real = hw_run.run_tile
    calls = {"n": 0}

    def corrupt(*a, **k):
        out = real(*a, **k)
        calls["n"] += 1
        if calls["n"] == 5:
            out.y[2, 7] += 1
        return out

    monkeypatch.setattr(hw_run, "run_tile", corrupt)
    folder, text = tiny_llama
    rc = main(["eval", "--model", str(folder), "--text", str(text), "--methods", "fineq-paper", "--seq", str(SEQ),
               "--max-windows", "1", "--backend", "verilator", "--jobs", "1", "--work", str(tmp_path / "w")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2
    assert "window 0, model.layers." in err and "differs from fineq.gemm in tile 0 (tokens 0..63): Y[2, 7]" in err
    assert not list((tmp_path / "w").rglob("window-*.json"))  # the window that failed is not kept


def test_a_dask_cluster_of_two_workers_gives_the_same_result(tiny_llama, rtl_run, tmp_path):
    pytest.importorskip("distributed")
    _, doc = rtl_run
    d = _eval(tiny_llama, tmp_path, "--backend", "verilator", "--cluster", "local:2")
    (row,), (ref,) = d["results"], doc["results"]
    assert "Dask LocalCluster of 2 workers" in row["rtl_engines"]
    for k in ("ppl_rtl", "rtl_cycles", "rtl_gemms"):
        assert row[k] == ref[k], k


def test_a_quantized_model_file_through_the_rtl(tiny_llama, rtl_run, tmp_path):
    """quantize-model's file (a calibrated mode, then paper) evaluated through the RTL: the paper file gives the
    fineq-paper row's numbers, the calibrated one its own golden integer path's."""
    folder, text = tiny_llama
    for mode in ("paper", "gptq-ord"):
        assert main(["quantize-model", "--model", str(folder), "--mode", mode, "--text", str(text), "--calib-samples",
                     "4", "--calib-seq", "32", "-o", str(tmp_path / f"{mode}.fineq.safetensors")]) == 0
    d = _eval(tiny_llama, tmp_path, "--backend", "verilator", "--quantized", str(tmp_path / "paper.fineq.safetensors"),
              "--quantized", str(tmp_path / "gptq-ord.fineq.safetensors"), methods="")
    rows = {r["method"]: r for r in d["results"]}
    paper, cal = rows["file:paper.fineq.safetensors"], rows["file:gptq-ord.fineq.safetensors"]
    (ref,) = rtl_run[1]["results"]
    assert paper["ppl_rtl"] == ref["ppl_rtl"] and paper["rtl_cycles"] == ref["rtl_cycles"]
    assert cal["ppl_rtl"] == cal["ppl_int8"] and cal["rtl_cycles"] == cal["rtl_model_cycles"]
    assert cal["ppl_rtl"] != paper["ppl_rtl"]


def test_an_interrupted_rtl_eval_keeps_its_windows_and_resumes(tiny_llama, tmp_path):
    """SIGINT part-way (8 windows, one engine run at a time): exit 130, the finished windows kept and named; the
    same command then gives the result of an uninterrupted run."""
    folder, text = tiny_llama
    args = ["eval", "--model", str(folder), "--text", str(text), "--methods", "fineq-paper", "--seq", "32",
            "--max-windows", "8", "--backend", "verilator", "--jobs", "1", "--json", "out.json"]
    err = tmp_path / "stderr.txt"
    with open(err, "w") as fh:
        p = subprocess.Popen([*FINEQ, *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=fh, env=dict(os.environ))
        work = tmp_path / "out.json.work"
        t0 = time.perf_counter()
        try:
            while not list(work.rglob("window-*.json")):
                assert p.poll() is None and time.perf_counter() - t0 < 300, err.read_text()
                time.sleep(0.02)
            p.send_signal(signal.SIGINT)
            rc = p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
    last = err.read_text().strip().splitlines()[-1]
    assert rc == 130, err.read_text()
    assert "stopped by SIGINT" in last and "finished window(s) of fineq-paper seq 32" in last
    kept = len(list(work.rglob("window-*.json")))
    assert 1 <= kept < 8 and not (tmp_path / "out.json").exists()
    assert main([*args, "--json", str(tmp_path / "out.json")]) == 0
    (row,) = json.loads((tmp_path / "out.json").read_text())["results"]
    assert row["rtl_windows_resumed"] == kept
    assert row["ppl_rtl"] == row["ppl_int8"] and row["rtl_cycles"] == row["rtl_model_cycles"]
