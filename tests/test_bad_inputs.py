"""A table of bad inputs through the CLI and the API.

For each CLI case: a non-zero exit status, exactly one line on stderr naming
the problem, no traceback, and no file created or changed in the work folder.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import fineq
from fineq.cli.main import main
from fineq.errors import FineQError, FormatError
from fineq.synthetic import heavy_tailed, int8_activations


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A folder with good and bad inputs; the tests run inside it."""
    monkeypatch.chdir(tmp_path)
    w = heavy_tailed(8, 48, seed=1)
    np.save("W.npy", w)
    np.save("X.npy", int8_activations(48, 5, seed=2))
    np.save("Xf.npy", np.ones((48, 5), dtype=np.float32))
    np.save("Xk.npy", int8_activations(40, 5, seed=2))
    np.save("Xc.npy", np.ones((10, 47), dtype=np.float32))
    np.save("W3.npy", np.ones((2, 3, 4), dtype=np.float32))
    np.save("Wi.npy", np.ones((4, 4), dtype=np.int32))
    wn = w.copy()
    wn[3, 5] = np.nan
    np.save("Wnan.npy", wn)
    np.save("Whuge.npy", np.full((2, 24), 1e6, dtype=np.float32))
    np.save("Wempty.npy", np.zeros((0, 5), dtype=np.float32))
    Path("junk.npy").write_bytes(b"\x00\x01garbage" * 10)
    Path("junk.fineq.npz").write_bytes(bytes(range(256)) * 4)
    Path("junk.gguf").write_bytes(b"GGUF" + b"\x00" * 60)
    Path("junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    q = fineq.quantize(w)
    fineq.save(q, "Q.fineq.npz")
    fineq.save(q, "exists.fineq.npz")
    data = Path("Q.fineq.npz").read_bytes()
    Path("trunc.fineq.npz").write_bytes(data[: len(data) // 2])
    np.savez("foreign.npz", a=np.zeros(3))
    fields = dict(np.load("Q.fineq.npz", allow_pickle=False))
    np.savez("strver.fineq.npz", **{**fields, "format_version": np.array("1")})
    np.savez("ver99.fineq.npz", **{**fields, "format_version": np.int64(99)})
    np.savez("v2nogroup.fineq.npz", **{**fields, "format_version": np.int64(2)})
    np.savez("groupshape.fineq.npz", **{**fields, "format_version": np.int64(2), "group": np.int64(8)})
    np.savez("v3nobook.fineq.npz", **{**fields, "format_version": np.int64(3)})
    np.savez("book99.fineq.npz", **{**fields, "format_version": np.int64(3), "codebook": np.array("pow3")})
    np.savez("v1book.fineq.npz", **{**fields, "codebook": np.array("pow2")})
    fineq.save(fineq.quantize(w, codebook="pow2"), "P.fineq.npz")
    Path("Y.npy").write_bytes(b"keep me")
    Path("bad.json").write_text("{not json")
    Path("dir").mkdir()
    Path("emptymodel").mkdir()
    _tampered_files(q)
    return tmp_path


class _Evil:
    """Unpickling this runs ``touch PWNED``: a file that must never appear."""

    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def _tampered_files(q) -> None:
    """Damaged .fineq.npz and .fineq.safetensors files, foreign JSON and a pickle that would run code."""
    import io
    import pickle
    import zipfile

    fields = dict(np.load("Q.fineq.npz", allow_pickle=False))
    nan = fields["scales"].copy()
    nan[1] = np.float16("nan")
    np.savez("nan.fineq.npz", **{**fields, "scales": nan})
    np.savez("huge.fineq.npz", **{**fields, "shape": np.array([10**9, 10**9], dtype=np.int64)})
    data = bytearray(Path("Q.fineq.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path("flip.fineq.npz").write_bytes(bytes(data))
    with zipfile.ZipFile("Q.fineq.npz") as src, zipfile.ZipFile("hugehdr.fineq.npz", "w") as dst:
        for n in src.namelist():  # packed.npy's header asks for 10 TB
            raw = src.read(n)
            if n == "packed.npy":
                buf = io.BytesIO()
                np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False,
                                                           "shape": (10**7, 10**6)})
                raw = buf.getvalue() + raw[128:]
            dst.writestr(n, raw)
    pytest.importorskip("safetensors")
    from safetensors.numpy import load_file, save_file

    from fineq.llm.modelfile import save_model

    lin = "model.layers.0.mlp.up_proj"
    save_model("mgood.fineq.safetensors", {lin: q}, "paper", "x")
    t = load_file("mgood.fineq.safetensors")
    meta = {"format": "fineq-model", "format_version": "1", "mode": "paper", "base_model": "x",
            "linears": json.dumps([lin])}
    bad_scales = t[f"{lin}.scales"].copy()
    bad_scales[0] = np.float16("nan")
    for name, tensors, md in [
        ("mnan", {**t, f"{lin}.scales": bad_scales}, meta),
        ("mshape", {**t, f"{lin}.shape": np.array([8, 4800])}, meta),
        ("mhuge", {**t, f"{lin}.shape": np.array([10**12, 10**12])}, meta),
        ("mlist", t, {**meta, "linears": json.dumps([lin, "model.layers.0.mlp.down_proj"])}),
        ("mlistjunk", t, {**meta, "linears": "{oops"}),
        ("mmode", t, {**meta, "mode": "bogus"}),
        ("mtransform", t, {**meta, "format_version": "2", "transform": "twist"}),
        ("mversion", t, {**meta, "format_version": "2"}),
        ("mgroupjson", t, {**meta, "format_version": "3", "linear_groups": "{oops"}),
        ("mgroupzero", t, {**meta, "format_version": "3", "linear_groups": json.dumps({lin: 0})}),
        ("mgroupstray", t, {**meta, "format_version": "3", "linear_groups": json.dumps({"nope": 8})}),
        ("mgroupshape", t, {**meta, "format_version": "3", "linear_groups": json.dumps({lin: 8})}),
        ("mgroupver", t, {**meta, "format_version": "3"}),
        ("mbookver", t, {**meta, "format_version": "4"}),
        ("mbook", t, {**meta, "format_version": "4", "codebook": "pow3"}),
        ("mbookint", t, {**meta, "format_version": "4", "codebook": "int"}),
        ("mbookv1", t, {**meta, "codebook": "pow2"}),
    ]:
        save_file(tensors, f"{name}.fineq.safetensors", metadata=md)
    raw = Path("mgood.fineq.safetensors").read_bytes()
    Path("mtrunc.fineq.safetensors").write_bytes(raw[:-50])
    Path("badeval.json").write_text(json.dumps({"results": "nope"}))
    Path("evil.bin").write_bytes(pickle.dumps(_Evil()))


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


CASES = [
    # quantize
    (["quantize", "missing.npy"], "does not exist"),
    (["quantize", "W.npy", "-o", "W.npy"], "also an input"),
    (["quantize", "W.npy", "-o", "exists.fineq.npz"], "exists; use --force"),
    (["quantize", "W.npy", "-o", "dir"], "is a directory"),
    (["quantize", "W.npy", "-o", "nodir/out.fineq.npz"], "folder nodir does not exist"),
    (["quantize", "junk.npy", "-o", "o.fineq.npz"], "not a readable .npy"),
    (["quantize", "W3.npy", "-o", "o.fineq.npz"], "2-D"),
    (["quantize", "Wi.npy", "-o", "o.fineq.npz"], "floating point"),
    (["quantize", "Wnan.npy", "-o", "o.fineq.npz"], "row 3 holds a non-finite"),
    (["quantize", "Whuge.npy", "-o", "o.fineq.npz"], "overflows float16"),
    (["quantize", "Wempty.npy", "-o", "o.fineq.npz"], "non-empty"),
    (["quantize", "W.npy", "-o", "o.fineq.npz", "--mode", "gptq"], "needs --calib"),
    (["quantize", "W.npy", "-o", "o.fineq.npz", "--calib", "Xc.npy"], "uses no --calib"),
    (["quantize", "W.npy", "-o", "o.fineq.npz", "--mode", "gptq", "--calib", "Xc.npy"], "expected float [n, K=48]"),
    (["quantize", "W.npy", "--mode", "bogus"], "invalid choice"),
    (["quantize", "W.npy", "-o", "o.fineq.npz", "--mode", "recon"], "invalid choice"),
    # info
    (["info", "W.npy"], "NumPy .npy array"),
    (["info", "junk.fineq.npz"], "not a zip archive"),
    (["info", "missing.fineq.npz"], "no such file"),
    (["info", "foreign.npz"], "no FINEQNPZ magic"),
    (["info", "strver.fineq.npz"], "format_version must be an integer"),
    (["info", "trunc.fineq.npz"], "truncated or corrupt"),
    (["info", "ver99.fineq.npz"], "version 99 is not supported"),
    (["info", "v2nogroup.fineq.npz"], "format version 2 and the group key disagree"),
    (["info", "groupshape.fineq.npz"], "scales must be float16 [8, 6]"),
    (["quantize", "W.npy", "-o", "o.fineq.npz", "--group", "0"], "group must be a positive whole number"),
    (["quantize", "W.npy", "-o", "o.fineq.npz", "--group", "8"], "group scales are built for modes gptq-ord"),
    (["quantize-model", "--model", "smollm2", "-o", "m3.fineq.safetensors", "--mode", "paper", "--group", "128"],
     "group scales are built for modes gptq-ord, recon, not 'paper'"),
    (["eval", "--model", "smollm2", "--methods", "fineq-gptq-ord-gx"], "the group after '-g' must be a whole"),
    (["eval", "--model", "smollm2", "--backend", "icarus", "--methods", "fineq-recon-g64"],
     "group scales are costed, not built in the RTL"),
    # the power-of-two codebook (the other variant outside the spec)
    (["info", "v3nobook.fineq.npz"], "format version 3 and the codebook key disagree"),
    (["info", "book99.fineq.npz"], "codebook must be one of pow2"),
    (["info", "v1book.fineq.npz"], "format version 1 and the codebook key disagree"),
    (["quantize", "W.npy", "-o", "o.fineq.npz", "--codebook", "pow3"], "invalid choice: 'pow3'"),
    (["quantize", "W.npy", "-o", "o.fineq.npz", "--mode", "gptq-hw", "--calib", "Xc.npy", "--codebook", "pow2"],
     "mode gptq-hw takes only the spec's codebook"),
    (["gemm", "P.fineq.npz", "X.npy", "--coding", "binary"], "run on the pow2 coding, not binary"),
    (["gemm", "Q.fineq.npz", "X.npy", "--coding", "pow2"], "run on the thermometer or binary coding, not pow2"),
    (["eval", "--model", "smollm2", "--methods", "fineq-gptq-hw@0.1-pow2"], "neither cycle-priced"),
    (["eval", "--model", "smollm2", "--methods", "fineq-recon-pow2-pow2"], "come once each"),
    (["eval", "--model", "smollm2", "--backend", "verilator", "--coding", "thermometer", "--methods",
      "fineq-paper-pow2"], "fineq-paper-pow2: the pow2 codebook's levels run on the pow2 coding, not thermometer"),
    (["perf", "--weights", "mbookver.fineq.safetensors"], "format version 4 and the codebook metadata disagree"),
    (["perf", "--weights", "mbook.fineq.safetensors"], "codebook 'pow3' is not one of pow2"),
    (["perf", "--weights", "mbookint.fineq.safetensors"], "codebook 'int' is not one of pow2"),
    (["perf", "--weights", "mbookv1.fineq.safetensors"], "format version 1 and the codebook metadata disagree"),
    # gemm
    (["gemm", "W.npy", "X.npy"], "NumPy .npy array"),
    (["gemm", "Q.fineq.npz", "Xf.npy"], "must be int8"),
    (["gemm", "Q.fineq.npz", "Xk.npy"], "K=40 rows"),
    (["gemm", "Q.fineq.npz", "missing.npy"], "does not exist"),
    (["gemm", "Q.fineq.npz", "X.npy", "--stall", "1.5"], "--stall must be in [0, 1)"),
    (["gemm", "Q.fineq.npz", "X.npy", "-o", "Q.fineq.npz"], "also an input"),
    (["gemm", "Q.fineq.npz", "X.npy", "-o", "Y.npy"], "exists; use --force"),
    (["gemm", "Q.fineq.npz", "X.npy", "-o", "dir"], "is a directory"),
    (["gemm", "Q.fineq.npz", "X.npy", "--rows", "0"], "--rows must be positive"),
    (["gemm", "Q.fineq.npz", "X.npy", "--jobs", "0"], "--jobs must be positive"),
    (["gemm", "Q.fineq.npz", "X.npy", "--backend", "nope"], "invalid choice"),
    # bench
    (["bench", "--m", "0"], "--m must be positive"),
    (["bench", "--repeat", "0"], "--repeat must be positive"),
    # perf
    (["perf", "--synth", "bad.json", "--seq", "32", "--model", "llama2-7b"], "not a make synth summary.json"),
    (["perf", "--chart", "x.xyz"], "use a .png"),
    (["perf", "--weights", "W.npy"], "expected .safetensors"),
    (["perf", "--weights", "junk.safetensors"], "not a readable safetensors"),
    (["perf", "--weights", "missing.safetensors"], "does not exist"),
    (["perf", "--seq", "0", "--model", "llama2-7b"], "must be positive"),
    (["perf", "--mode", "gptq"], "data-free"),
    (["perf", "--synthetic", "--weights", "junk.safetensors"], "does not take --weights"),
    (["perf", "--buffer-kb", "0", "--synthetic"], "--buffer-kb must be positive"),
    (["perf", "--weights", "junk.safetensors", "--mode", "gptq"], "data-free"),
    (["perf", "--json", "Y.npy"], "exists; use --force"),
    # eval and whole-model files
    (["eval"], "--model is required"),
    (["eval", "--model", "missingdir"], "does not exist"),
    (["eval", "--model", "emptymodel"], "no config.json"),
    (["eval", "--model", "junk.gguf"], "cannot be loaded"),
    (["eval", "--model", "smollm2", "--methods", "nope"], "unknown method"),
    (["eval", "--model", "smollm2", "--chart", "c.xyz"], "use a .png"),
    (["eval", "--model", "smollm2", "--json", "Y.npy"], "exists; use --force"),
    (["eval", "--model", "smollm2", "--methods", "fineq-recon@x"], "whole number"),
    (["eval", "--model", "smollm2", "--methods", "fineq-recon-hw@-1"], "lambda after '@'"),
    (["eval", "--model", "smollm2", "--calib-text", "missing.txt"], "text file missing.txt does not exist"),
    (["eval", "--model", "smollm2", "--text", "missing.txt"], "text file missing.txt does not exist"),
    # per-layer rules
    (["quantize-model", "--model", "smollm2", "-o", "o.fineq.safetensors", "--rule", "x"], "expected REGEX=MODE"),
    (["quantize-model", "--model", "smollm2", "-o", "o.fineq.safetensors", "--rule", "x=recon"], "whole-model mode"),
    (["eval", "--model", "smollm2", "--rules", "missing.txt"], "rules file missing.txt does not exist"),
    (["eval", "--model", "smollm2", "--rules", "junk.npy"], "rules file junk.npy holds NUL bytes"),
    (["perf", "--weights", "smollm2", "--seq", "32", "--rule", "(=paper"], "is not a regular expression"),
    # export
    (["export", "missing.fineq.safetensors", "--dequantized", "out"], "model file missing.fineq.safetensors does not"),
    (["export", "junk.safetensors", "--dequantized", "out"], "not a readable FineQ model file"),
    (["export", "junk.safetensors", "--dequantized", "nodir/out"], "output folder nodir does not exist"),
    (["export", "junk.safetensors", "--dequantized", "dir"], "output folder dir exists; use --force"),
    (["export", "junk.safetensors", "--dequantized", "W.npy", "--force"], "exists and is not a folder"),
    # eval through the RTL
    (["eval", "--model", "smollm2", "--cluster", "local:2"], "--cluster needs --backend verilator or icarus"),
    (["eval", "--model", "smollm2", "--backend", "verilator", "--methods", "reference"],
     "runs FineQ methods (fineq-*, or --quantized files); reference is not one"),
    (["eval", "--model", "smollm2", "--backend", "verilator", "--cluster", "nowhere"], "give local:N or a Dask"),
    (["eval", "--model", "smollm2", "--backend", "verilator", "--cluster", "local:0"], "positive number of workers"),
    (["eval", "--model", "smollm2", "--backend", "verilator", "--jobs", "0"], "--jobs must be positive"),
    (["eval", "--model", "smollm2", "--backend", "icarus", "--cols", "0"], "--cols must be positive"),
    (["eval", "--model", "smollm2", "--quantized", "missing.fineq.safetensors"], "does not exist"),
    (["eval", "--model", "smollm2", "--quantized", "junk.safetensors"], "not a readable FineQ model file"),
    (["eval", "--model", "smollm2", "--calib-text", "Y.npy", "--json", "Y.npy", "--force"], "also an input"),
    (["quantize-model", "--model", "smollm2", "-o", "m.fineq.safetensors", "--mode", "recon", "--calib-text",
      "missing.txt"], "text file missing.txt does not exist"),
    (["quantize-model", "--model", "smollm2", "-o", "Y.npy", "--calib-text", "Y.npy", "--force"], "also an input"),
    (["quantize-model", "--model", "missingdir", "-o", "m.fineq.safetensors"], "does not exist"),
    (["quantize-model", "--model", "smollm2", "-o", "Y.npy"], "exists; use --force"),
    (["quantize-model", "--model", "smollm2", "-o", "m.fineq.safetensors", "--mode", "bogus"], "FineQ mode must be one of"),
    # damaged and tampered files
    (["info", "nan.fineq.npz"], "nan.fineq.npz: scales must be finite"),
    (["info", "huge.fineq.npz"], "does not match matrix shape (1000000000, 1000000000)"),
    (["info", "hugehdr.fineq.npz"], "packed declares shape (10000000, 1000000)"),
    (["info", "flip.fineq.npz"], "truncated or corrupt"),
    (["gemm", "nan.fineq.npz", "X.npy"], "scales must be finite"),
    (["perf", "--weights", "mnan.fineq.safetensors"], "linear model.layers.0.mlp.up_proj: scales must be finite"),
    (["perf", "--weights", "mshape.fineq.safetensors"], "does not match matrix shape (8, 4800)"),
    (["perf", "--weights", "mhuge.fineq.safetensors"], "does not match matrix shape (1000000000000"),
    (["perf", "--weights", "mlist.fineq.safetensors"], "down_proj lacks packed, scales, shape"),
    (["perf", "--weights", "mlistjunk.fineq.safetensors"], "not a readable FineQ model file"),
    (["perf", "--weights", "mmode.fineq.safetensors"], "mode 'bogus' is not a FineQ mode"),
    (["perf", "--weights", "mtransform.fineq.safetensors"], "unknown model transform 'twist'"),
    (["perf", "--weights", "mversion.fineq.safetensors"], "transform metadata disagree"),
    (["perf", "--weights", "mgroupjson.fineq.safetensors"], "linear_groups is not JSON"),
    (["perf", "--weights", "mgroupzero.fineq.safetensors"], "linear_groups must map linear names to positive"),
    (["perf", "--weights", "mgroupstray.fineq.safetensors"], "linear_groups names nope"),
    (["perf", "--weights", "mgroupshape.fineq.safetensors"], "scales must be float16 [8, 6]"),
    (["perf", "--weights", "mgroupver.fineq.safetensors"], "linear_groups metadata disagree"),
    (["perf", "--weights", "mtrunc.fineq.safetensors"], "truncated or corrupt"),
    (["perf", "--weights", "evil.bin"], "a pickle that would need code to load; refused"),
    (["pareto", "--eval", "badeval.json", "--out", "p"], "badeval.json is not a fineq eval JSON"),
    (["pareto", "--eval", "bad.json", "--out", "p"], "bad.json is not a fineq eval JSON"),
    (["pareto", "--eval", "missing.json", "--out", "p"], "missing.json"),
    # transforms
    (["eval", "--model", "smollm2", "--methods", "fineq-paper+spin"], "comes fold, rot or rot:<seed>"),
    (["eval", "--model", "smollm2", "--methods", "reference+rot"], "follow a quantizing method"),
    (["quantize-model", "--model", "smollm2", "-o", "m2.fineq.safetensors", "--transform", "spin"],
     "unknown model transform 'spin'"),
    # the command line itself
    ([], "required"),
    (["info", "Q.fineq.npz", "--bogus"], "unrecognized arguments"),
]


@pytest.mark.parametrize("args,msg", CASES, ids=[" ".join(a) or "<none>" for a, _ in CASES])
def test_cli_bad_input(work, capsys, args, msg):
    if args[:1] == ["eval"] or args[:1] == ["quantize-model"] or "--weights" in args:
        pytest.importorskip("transformers")
    before = _snapshot(work)
    try:
        rc = main(args)
    except SystemExit as e:  # argparse
        rc = e.code
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc not in (0, None), (args, out, err)
    assert len(lines) == 1, err
    assert msg in lines[0], lines[0]
    assert "Traceback" not in err + out
    assert _snapshot(work) == before


# ---- bad model folders, GGUF files and texts (a tiny random LLaMA) ----------------------------------------

@pytest.fixture
def model_work(work, tiny_llama):
    """The work folder plus damaged copies of a tiny model folder, a GGUF of an unknown architecture and bad
    texts."""
    import pickle
    import shutil

    src, text = tiny_llama
    shutil.copy(text, "text.txt")
    shutil.copytree(src, "tiny")

    def copy(name: str) -> Path:
        return Path(shutil.copytree(src, name))

    (copy("badconfig") / "config.json").write_text("{not json")
    (copy("noweights") / "model.safetensors").unlink()
    d = copy("missingshard")
    (d / "model.safetensors").rename(d / "model-00001-of-00002.safetensors")
    from safetensors import safe_open

    with safe_open(str(d / "model-00001-of-00002.safetensors"), "np") as f:
        keys = list(f.keys())
    wm = {k: "model-00001-of-00002.safetensors" for k in keys} | {keys[0]: "model-00002-of-00002.safetensors"}
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wm}))
    (copy("badtok") / "tokenizer.json").write_text('{"version": "1.0", "model": 5}')
    d = copy("pickled")
    (d / "model.safetensors").unlink()
    (d / "pytorch_model.bin").write_bytes(pickle.dumps(_Evil()))
    gguf = pytest.importorskip("gguf")
    w = gguf.GGUFWriter("arch.gguf", "foo-arch")
    w.add_tensor("x", np.zeros(4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    Path("nul.txt").write_bytes(b"abc\x00def " * 100)
    Path("latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 100)
    Path("blank.txt").write_text("  \n\n")
    return work


_T = ["--text", "text.txt", "--seq", "32", "--calib-samples", "4", "--calib-seq", "32"]
MODEL_CASES = [
    (["eval", "--model", "badconfig", *_T], "config file at 'badconfig/config.json' is not a valid JSON"),
    (["eval", "--model", "noweights", *_T], "no file named model.safetensors"),
    (["eval", "--model", "missingshard", *_T], "model-00002-of-00002.safetensors"),
    (["eval", "--model", "badtok", *_T], "its tokenizer cannot be loaded"),
    (["eval", "--model", "pickled", *_T], "pickle that would need code to load; refused"),
    (["eval", "--model", "arch.gguf", *_T], "architecture foo-arch is not supported"),
    (["quantize-model", "--model", "pickled", "-o", "q.fineq.safetensors"], "pickle that would need code"),
    (["perf", "--weights", "pickled", "--seq", "32"], "pickle that would need code"),
    (["rtl-layer", "--model", "pickled", "--text", "text.txt"], "pickle that would need code"),
    (["eval", "--model", "tiny", "--text", "nul.txt"], "nul.txt holds NUL bytes: binary data"),
    (["eval", "--model", "tiny", "--text", "latin1.txt"], "latin1.txt is not UTF-8"),
    (["eval", "--model", "tiny", "--text", "blank.txt"], "blank.txt is empty"),
    (["eval", "--model", "tiny", "--text", "text.txt", "--calib-text", "nul.txt", "--methods", "fineq-gptq"],
     "binary data"),
    (["quantize-model", "--model", "tiny", "--mode", "gptq", "--calib-text", "latin1.txt", "-o", "q.fineq.safetensors"],
     "not UTF-8"),
    (["rtl-layer", "--model", "tiny", "--text", "nul.txt"], "binary data"),
    (["rtl-layer", "--model", "tiny", "--text", "text.txt", "--layer", "9"], "no decoder layer 9"),
    (["rtl-layer", "--model", "tiny", "--text", "text.txt", "--tokens", "0"], "--tokens must be positive"),
]


@pytest.mark.parametrize("args,msg", MODEL_CASES, ids=[" ".join(a) for a, _ in MODEL_CASES])
def test_cli_bad_model_input(model_work, capsys, args, msg):
    test_cli_bad_input(model_work, capsys, args, msg)
    assert not Path("PWNED").exists()  # no file that was read ran code


def test_cli_bad_input_table_is_large_enough():
    assert len(CASES) + len(MODEL_CASES) >= 90


# ---- the API -----------------------------------------------------------------------------------------

def test_api_bad_inputs(tmp_path):
    torch = pytest.importorskip("torch")
    q = fineq.quantize(heavy_tailed(4, 30, seed=0))
    x = int8_activations(30, 2)
    table = [
        (lambda: fineq.quantize(torch.empty(4, 8, device="meta")), FineQError, "meta tensor"),
        (lambda: fineq.quantize(torch.eye(4).to_sparse()), FineQError, "dense tensor"),
        (lambda: fineq.quantize([[1.0, 2.0]]), FineQError, "numpy array or torch tensor"),
        (lambda: fineq.quantize(np.ones((2, 3)), "bogus"), FineQError, "mode must be one of"),
        (lambda: fineq.gemm(np.ones((4, 30)), x), FineQError, "QuantizedMatrix"),
        (lambda: fineq.gemm(q, x.astype(np.int16)), FineQError, "int8"),
        (lambda: fineq.save(q, tmp_path), FineQError, "is a directory"),
        (lambda: fineq.load(tmp_path / "nope.fineq.npz"), FileNotFoundError, "no such file"),
        (lambda: fineq.load_model(tmp_path / "nope.fineq.safetensors"), FineQError, "does not exist"),
        (lambda: fineq.QuantizedMatrix(q.packed, q.scales, (4, 300)), FormatError, "does not match"),
        (lambda: fineq.QuantizedMatrix(q.packed, q.scales.astype(np.float32), q.shape), FormatError, "float16"),
    ]
    for fn, exc, msg in table:
        with pytest.raises(exc, match=msg):
            fn()
    assert list(tmp_path.iterdir()) == []


def test_quantized_matrix_is_immutable_and_comparable():
    w = heavy_tailed(6, 50, seed=3)
    src = fineq.quantize(w).packed.copy()
    q = fineq.QuantizedMatrix(src, fineq.quantize(w).scales, (6, 50))
    src[0, 0] ^= 0xFF  # the caller's array is copied: q does not change with it
    assert q == fineq.quantize(w) and q != fineq.quantize(w * 2) and (q == 5) is False
    lv = q.levels()
    for arr in (q.packed, q.scales, lv):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0
    with pytest.raises(TypeError):
        hash(q)


def test_scale_underflow_rows_are_zero_rows_with_a_warning(tmp_path, capsys):
    w = heavy_tailed(5, 48, seed=4)
    w[1] *= 1e-9
    w[3] *= 1e-9
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        q = fineq.quantize(w)
    assert [str(r.message) for r in rec if issubclass(r.category, fineq.QuantizationWarning)]
    msg = str(rec[0].message)
    assert "rows 1, 3" in msg
    assert q.scales[1] == 0 and q.scales[3] == 0 and not q.levels()[[1, 3]].any()
    assert q.levels()[[0, 2, 4]].any()
    np.save(tmp_path / "w.npy", w)
    assert main(["quantize", str(tmp_path / "w.npy"), "-o", str(tmp_path / "w.fineq.npz")]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "rows 1, 3" in err and "Traceback" not in err


def test_gemm_output_is_exactly_the_named_file(tmp_path, capsys):
    np.save(tmp_path / "X.npy", int8_activations(48, 3))
    q = fineq.quantize(heavy_tailed(4, 48, seed=5))
    fineq.save(q, tmp_path / "q.fineq.npz")
    out = tmp_path / "yy"
    assert main(["gemm", str(tmp_path / "q.fineq.npz"), str(tmp_path / "X.npy"), "-o", str(out)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["output"] == str(out) and out.is_file() and not (tmp_path / "yy.npy").exists()
    assert np.array_equal(np.load(out), fineq.gemm(q, np.load(tmp_path / "X.npy")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy", "q.fineq.npz", "yy"]


def test_version_and_help_text(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("fineq ")
    from fineq.cli.main import build_parser

    ap = build_parser()
    sub = next(a for a in ap._actions if a.dest == "cmd")
    for name, p in sub.choices.items():
        for act in p._actions:
            if act.dest != "help":
                assert act.help, f"fineq {name} {act.option_strings or act.dest} has no help text"
