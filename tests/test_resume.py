"""Long model jobs resumed from their work folders: quantize-model after an interrupt part-way gives the
uninterrupted file byte for byte; eval takes finished methods and calibrated blocks up again."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fineq.cli.main import main
from fineq.quant import registry


def _interrupt_after(monkeypatch, method: str, calls: int) -> None:
    """The quantizer of ``method`` raises KeyboardInterrupt (as Ctrl-C would) on its ``calls``-th matrix."""
    q = registry.QUANTIZERS[method]
    real = q.fn
    n = {"calls": 0}

    def fn(w, h):
        n["calls"] += 1
        if n["calls"] == calls:
            raise KeyboardInterrupt
        return real(w, h)

    monkeypatch.setitem(registry.QUANTIZERS, method, dataclasses.replace(q, fn=fn))


@pytest.mark.parametrize("mode", ["gptq-ord", "recon@2"])
def test_an_interrupted_quantize_model_resumes_to_the_same_bytes(tiny_llama, tmp_path, monkeypatch, capsys, mode):
    folder, text = tiny_llama
    base_mode = mode.split("@")[0]
    args = ["quantize-model", "--model", str(folder), "--mode", base_mode, "--text", str(text), "--calib-samples", "4",
            "--calib-seq", "32"]
    ref = tmp_path / "ref.fineq.safetensors"
    assert main([*args, "-o", str(ref)]) == 0
    assert not (tmp_path / "ref.fineq.safetensors.work").exists()  # complete: no work folder left
    out = tmp_path / "out.fineq.safetensors"
    key = registry.for_mode(base_mode).name
    with monkeypatch.context() as mp:
        _interrupt_after(mp, key, 9)  # block 0 has 7 linears: stopped inside block 1
        assert main([*args, "-o", str(out)]) == 130
    err = capsys.readouterr().err
    assert "kept 1 finished block(s)" in err and "the same command resumes" in err
    assert not out.exists() and len(list((tmp_path / "out.fineq.safetensors.work").glob("block-*"))) == 1
    assert main([*args, "-o", str(out)]) == 0
    assert "resuming: 1 finished block(s)" in capsys.readouterr().err
    assert out.read_bytes() == ref.read_bytes()


def test_eval_takes_finished_methods_and_blocks_up_again(tiny_llama, tmp_path, monkeypatch, capsys):
    folder, text = tiny_llama
    args = ["eval", "--model", str(folder), "--text", str(text), "--methods", "reference,fineq-paper,gptq,fineq-gptq-ord",
            "--seq", "32", "--max-windows", "2", "--calib-samples", "4", "--calib-seq", "32"]
    assert main([*args, "--json", str(tmp_path / "ref.json")]) == 0
    with monkeypatch.context() as mp:
        _interrupt_after(mp, "fineq-gptq-ord", 10)
        assert main([*args, "--json", str(tmp_path / "out.json")]) == 130
    err = capsys.readouterr().err
    assert "kept 3 finished method(s)" in err and "kept 1 finished block(s) of fineq-gptq-ord" in err
    assert main([*args, "--json", str(tmp_path / "out.json")]) == 0
    err = capsys.readouterr().err
    assert "[fineq-paper] taken from the work folder" in err and "[reference] taken from the work folder" in err
    ref = json.loads((tmp_path / "ref.json").read_text())["results"]
    got = json.loads((tmp_path / "out.json").read_text())["results"]
    strip = ("quant_seconds", "eval_seconds")
    assert [{k: v for k, v in r.items() if k not in strip} for r in got] == \
        [{k: v for k, v in r.items() if k not in strip} for r in ref]
    # another evaluation (another window count) does not take these records
    assert main([*args[:-4], "--max-windows", "1", "--calib-samples", "4", "--calib-seq", "32", "--json",
                 str(tmp_path / "out.json"), "--force"]) == 0
    assert "is for another computation; starting it afresh" in capsys.readouterr().err


def test_records_of_another_environment_are_not_taken(monkeypatch):
    """A work folder's fingerprint covers the environment (CPU, libraries): calibrated results made elsewhere may
    differ, so they are recomputed, not reused."""
    from fineq.llm import workdir

    base = workdir.fingerprint("eval", 1)
    assert workdir.fingerprint("eval", 1) == base
    env = workdir.environment()
    monkeypatch.setattr(workdir, "environment", lambda: {**env, "cpu": "another CPU"})
    assert workdir.fingerprint("eval", 1) != base


def test_a_saved_block_comes_back_as_memory_maps_of_its_record(tmp_path):
    """Block by block, finished blocks stay on disk: BlockStore.mapped gives the saved results with packed
    matrices equal to them but backed by the record's file (not owned), and a record that does not match is named."""
    import numpy as np
    import torch

    import fineq
    from fineq.llm.workdir import BlockStore
    from fineq.quant.result import QResult
    from fineq.synthetic import heavy_tailed

    qs = {n: fineq.quantize(heavy_tailed(m, k, seed=m)) for n, (m, k) in {"a": (6, 50), "b": (3, 24)}.items()}
    res = {n: QResult(torch.from_numpy(q.dequantize()), 2.3, q) for n, q in qs.items()}
    store = BlockStore(tmp_path / "w", "key")
    store.save(0, res)
    got = store.mapped(0, res)
    for n, q in qs.items():
        m = got[n].qmatrix
        assert m == q and m.mode == q.mode and not m.packed.flags.owndata and not m.packed.flags.writeable
        assert not np.shares_memory(m.packed, q.packed) and got[n].bits == 2.3
    store.save(1, {"a": res["b"], "b": res["a"]})  # the record of another block: shapes differ
    with pytest.raises(fineq.FormatError, match="a.packed has shape"):
        store.mapped(1, res)
