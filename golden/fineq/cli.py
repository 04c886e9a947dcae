"""Command line: ``fineq quantize | info | bench | gemm | perf | demo``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import numpy as np

from .calibrated import CALIBRATED_MODES
from .errors import FineQError, QuantizationWarning
from .fileio import load, save
from .qmatrix import QuantizedMatrix, quantize
from .quantize import MODES


def _load_npy(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise FineQError(f"{what} file {path} does not exist")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise FineQError(f"{what} file {path} is not a readable .npy array: {e}") from e


def info_dict(q: QuantizedMatrix) -> dict[str, object]:
    """Shape, bits per weight, code histogram and outlier share of a quantized matrix."""
    codes = q.codes()
    hist = np.bincount(codes.reshape(-1), minlength=4)
    lv = q.levels()
    lhist = np.bincount((lv.reshape(-1).astype(np.int16) + 3), minlength=7)
    return {
        "shape": list(q.shape),
        "mode": q.mode,
        "blocks_per_row": q.n_blocks,
        "bits_per_weight": round(q.bits_per_weight, 4),
        "bits_per_weight_packed_only": round(q.packed.size * 8 / (q.shape[0] * q.shape[1]), 4),
        "code_histogram": {f"{c:02b}": int(hist[c]) for c in range(4)},
        "outlier_pair_share": float(hist[1:].sum() / hist.sum()),
        "level_histogram": {str(v): int(lhist[v + 3]) for v in range(-3, 4)},
        "scale_range": [float(q.scales.min()), float(q.scales.max())],
    }


def cmd_quantize(a: argparse.Namespace) -> int:
    from .calibrated import CALIBRATED_MODES, hessian_from_inputs
    from .outputs import check_output

    out = Path(a.output or Path(a.weights).with_suffix(".fineq.npz"))
    check_output(out, force=a.force, inputs=[a.weights, a.calib])
    w = _load_npy(a.weights, "weight")
    h = None
    if a.mode in CALIBRATED_MODES:
        if not a.calib:
            raise FineQError(f"mode {a.mode} needs --calib X.npy: float [n, K] inputs of the layer")
        x = _load_npy(a.calib, "calibration")
        if x.ndim != 2 or x.dtype.kind != "f" or (w.ndim == 2 and x.shape[1] != w.shape[1]):
            raise FineQError(f"calibration file {a.calib}: expected float [n, K={w.shape[-1]}], got {x.dtype} {x.shape}")
        h = hessian_from_inputs(x)
    elif a.calib:
        raise FineQError(f"mode {a.mode} uses no --calib (calibrated modes: {', '.join(CALIBRATED_MODES)})")
    q = quantize(w, a.mode, hessian=h)
    save(q, out)
    d = info_dict(q)
    err = float(np.sqrt(np.mean((q.dequantize() - w.astype(np.float32)) ** 2)))
    print(f"wrote {out}: {q.shape[0]}x{q.shape[1]}, {d['bits_per_weight']} bits/weight, "
          f"{100 * float(d['outlier_pair_share']):.1f}% pairs with outliers, RMS error {err:.4g}")
    return 0


def cmd_info(a: argparse.Namespace) -> int:
    q = load(a.file)
    d = info_dict(q)
    if a.json:
        print(json.dumps(d))
        return 0
    print(f"file             {a.file}")
    print(f"shape            {d['shape'][0]} x {d['shape'][1]}  ({d['blocks_per_row']} blocks/row)")
    print(f"mode             {d['mode']}")
    print(f"bits per weight  {d['bits_per_weight']} (packed only: {d['bits_per_weight_packed_only']})")
    tot = sum(d["code_histogram"].values())  # type: ignore[union-attr]
    for code, n in d["code_histogram"].items():  # type: ignore[union-attr]
        print(f"code {code}          {n:>12d}  {100 * n / tot:5.1f}%")
    print(f"pairs w/ outlier {100 * float(d['outlier_pair_share']):.1f}%")
    print(f"levels -3..+3    {list(d['level_histogram'].values())}")  # type: ignore[union-attr]
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from . import bench

    for name in ("m", "k", "repeat"):
        if getattr(a, name) < 1:
            raise FineQError(f"--{name} must be positive, got {getattr(a, name)}")
    print(bench.report(bench.run(a.m, a.k, a.mode, a.repeat)))
    return 0


def cmd_gemm(a: argparse.Namespace) -> int:
    from .gemm import check_activations, gemm
    from .outputs import atomic_path, check_output
    from .run import run_gemm

    if a.output:
        check_output(a.output, force=a.force, inputs=[a.weights, a.activations])
    q = load(a.weights)
    x = check_activations(q, _load_npy(a.activations, "activation"))
    if not 0 <= a.stall < 1:
        raise FineQError(f"--stall must be in [0, 1), got {a.stall}")
    check_engine_options(a)
    if a.backend != "golden":
        from .engine import EngineConfig, engine_cycles

        runs = -(-x.shape[1] // a.cols)
        cyc = engine_cycles(q.levels(), EngineConfig(a.rows, a.cols, a.psum_depth, a.coding))["total"] * runs
        rate = max(1, round(RTL_CYCLES_PER_SECOND[a.backend] * 4096 / (a.rows * a.cols)))
        jobs = max(1, min(a.jobs or os.cpu_count() or 1, runs))
        print(f"fineq gemm: {runs} engine run(s), {cyc:,} cycles; about {cyc / rate / jobs:,.0f} s at ~{rate:,} "
              f"cycles/s per simulator on {a.backend}, {jobs} at once (plus the simulator build)",
              file=sys.stderr, flush=True)
    res = run_gemm(q, x, a.backend, seed=a.seed, rows=a.rows, cols=a.cols, psum_depth=a.psum_depth,
                   waves=a.waves, stall=a.stall, jobs=a.jobs, coding=a.coding)
    y = res.pop("y")
    ref = gemm(q, x)
    res["bit_exact"] = bool(np.array_equal(y, ref))
    if a.output:
        with atomic_path(a.output) as tmp, open(tmp, "wb") as fh:
            np.save(fh, y.astype(np.int32) if np.abs(y).max(initial=0) < 2**31 else y)
        res["output"] = str(a.output)
    print(json.dumps(res))
    return 0 if res["bit_exact"] else 1


def cmd_demo(a: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(a.backend)


def cmd_eval(a: argparse.Namespace) -> int:
    from .evaluate import cli

    return cli(a)


def cmd_quantize_model(a: argparse.Namespace) -> int:
    from .modelfile import quantize_model_file

    return quantize_model_file(a)


def cmd_rtl_layer(a: argparse.Namespace) -> int:
    from .hw.layer import cli_rtl_layer

    check_engine_options(a)
    return cli_rtl_layer(a)


def cmd_perf(a: argparse.Namespace) -> int:
    from .perf import cli_perf

    return cli_perf(a)


#: Simulation speed of the 64x64 engine through fineq.hw, measured (Verilator: ``make measure``; Icarus: a
#: 128 x 256 x 16 GEMM), for estimates; scaled by 4096 / (ROWS * COLS) for other arrays.
RTL_CYCLES_PER_SECOND = {"verilator": 150_000, "icarus": 6}


def _engine_options(p: argparse.ArgumentParser, backend: str, backend_help: str, jobs_help: str) -> None:
    """The RTL engine's options, shared by gemm and rtl-layer (checked by :func:`check_engine_options`)."""
    p.add_argument("--backend", choices=("golden", "icarus", "verilator"), default=backend, help=backend_help)
    p.add_argument("--rows", type=int, default=64, help="engine ROWS, the K tile (default 64)")
    p.add_argument("--cols", type=int, default=64, help="engine COLS, the N tile (default 64)")
    p.add_argument("--psum-depth", type=int, default=256, help="engine PSUM_DEPTH, rows of M per chunk (default 256)")
    p.add_argument("--coding", choices=("thermometer", "binary"), default="thermometer",
                   help="temporal coding: the paper's thermometer (default) or the binary-weighted variant")
    p.add_argument("--jobs", type=int, help=jobs_help)


def check_engine_options(a: argparse.Namespace) -> None:
    if a.jobs is not None and a.jobs < 1:
        raise FineQError(f"--jobs must be positive, got {a.jobs}")
    for name in ("rows", "cols", "psum_depth"):
        if getattr(a, name) < 1:
            raise FineQError(f"--{name.replace('_', '-')} must be positive, got {getattr(a, name)}")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    ap = _Parser(prog="fineq", description="FineQ 2.33-bit quantization, golden model and RTL runs")
    ap.add_argument("--version", action="version", version=f"fineq {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("quantize", help="quantize a float [M, K] .npy matrix into a .fineq.npz file")
    p.add_argument("weights", help="float [M, K] .npy file")
    p.add_argument("-o", "--output", help="output .fineq.npz (default: beside the input)")
    p.add_argument("--mode", choices=MODES + CALIBRATED_MODES, default="paper",
                   help="paper (default), search, or a calibrated mode (needs --calib)")
    p.add_argument("--calib", help="float [n, K] .npy: the layer's calibration inputs (calibrated modes)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(fn=cmd_quantize)

    p = sub.add_parser("info", help="describe a .fineq.npz file")
    p.add_argument("file", help=".fineq.npz file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(fn=cmd_info)

    p = sub.add_parser("bench", help="quantizer throughput and memory benchmark")
    p.add_argument("--m", type=int, default=4096, help="rows of the synthetic matrix (default 4096)")
    p.add_argument("--k", type=int, default=11008, help="columns of the synthetic matrix (default 11008)")
    p.add_argument("--mode", choices=MODES, default="paper", help="quantizer mode (default paper)")
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions, best kept (default 3)")
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("gemm", help="Y = V @ X through the golden model or the RTL, checked bit-exactly")
    p.add_argument("weights", help=".fineq.npz file")
    p.add_argument("activations", help="int8 [K, N] .npy file")
    p.add_argument("-o", "--output", help="write Y (int32 [M, N]) to exactly this file (NumPy .npy format)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    _engine_options(p, "golden", "golden model (default) or the RTL engine on a simulator",
                    "engine runs (tiles of COLS columns) simulated at once (default: one per core)")
    p.add_argument("--stall", type=float, default=0.0,
                   help="probability of a stall per beat on every stream (RTL backends; 0 keeps cycles exact)")
    p.add_argument("--seed", type=int, default=0, help="seed for random stream stalls (RTL backends)")
    p.add_argument("--waves", action="store_true", help="dump waves (RTL backends)")
    p.set_defaults(fn=cmd_gemm)

    p = sub.add_parser("demo", help="end-to-end demo: quantize, show the format, run the RTL, check")
    p.add_argument("--backend", choices=("golden", "icarus", "verilator"), default="verilator",
                   help="where the GEMM runs (default verilator)")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("eval", help="perplexity of a causal LM under each quantization method (Tables I, II)")
    p.add_argument("--model", help="Hugging Face folder, .gguf file, or 'smollm2' (the installed demo model)")
    p.add_argument("--text", help="UTF-8 text file (default: the installed corpus, The Devil's Dictionary)")
    p.add_argument("--methods", help="comma-separated method names (see --list-methods); default: "
                   "reference,fineq-paper,fineq-search,rtn,uniform,gptq,owq,pbllm")
    p.add_argument("--list-methods", action="store_true", help="print every method name, one per line")
    p.add_argument("--seq", type=int, nargs="+", help="window lengths in tokens (default 256; the paper: 2048)")
    p.add_argument("--max-windows", type=int, help="evaluate at most this many windows per length")
    p.add_argument("--max-tokens", type=int, default=16384,
                   help="without --max-windows: windows per length = max-tokens // seq (default 16384)")
    p.add_argument("--int8-activations", action="store_true",
                   help="also evaluate with int8 per-token activations (FineQ: the accelerator's integer GEMM)")
    p.add_argument("--calib-samples", type=int, default=32, help="calibration windows (default 32)")
    p.add_argument("--calib-seq", type=int, default=512, help="calibration window length (default 512)")
    p.add_argument("--skip", action="append", help="regular expression of linear names to leave unquantized")
    p.add_argument("--json", help="write the full results (JSON) here")
    p.add_argument("--chart", help="write perplexity vs bits (log scale) here (.png/.svg/.pdf)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("quantize-model", help="quantize every decoder linear of a model into one .fineq.safetensors")
    p.add_argument("--model", required=True, help="Hugging Face folder, .gguf file, or 'smollm2'")
    p.add_argument("-o", "--output", required=True, help="output file (.fineq.safetensors)")
    p.add_argument("--mode", default="paper", help=f"FineQ mode: {', '.join(MODES + CALIBRATED_MODES)} (default "
                   "paper; the calibrated ones read --text)")
    p.add_argument("--skip", action="append", help="regular expression of linear names to leave unquantized")
    p.add_argument("--text", help="calibration text for calibrated modes (default: the installed corpus)")
    p.add_argument("--calib-samples", type=int, default=32, help="calibration windows (default 32)")
    p.add_argument("--calib-seq", type=int, default=512, help="calibration window length (default 512)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(fn=cmd_quantize_model)

    p = sub.add_parser("rtl-layer", help="one decoder layer of a real model through the RTL engine, checked")
    p.add_argument("--model", default="smollm2", help="Hugging Face folder, .gguf file, or 'smollm2' (default)")
    p.add_argument("--layer", type=int, default=0, help="decoder layer index (default 0)")
    p.add_argument("--tokens", type=int, default=64, help="tokens of text whose activations are used (default 64)")
    p.add_argument("--text", help="UTF-8 text file (default: the installed corpus)")
    p.add_argument("--mode", default="paper", help="FineQ mode: paper (default) or search")
    _engine_options(p, "verilator", "where the GEMMs run (default verilator, the native harness)",
                    "linears simulated at once (default: one per core)")
    p.set_defaults(fn=cmd_rtl_layer)

    p = sub.add_parser("perf", help="cycle/energy model on real weights: the model's own layers and LLaMA-2 "
                       "shapes (FineQ vs MAC array)")
    p.add_argument("--model", action="append", choices=("llama2-7b", "llama2-13b"),
                   help="LLaMA-2 layer shapes to model (repeatable; default both, plus the weights' own layers)")
    p.add_argument("--seq", type=int, action="append", help="sequence length N (repeatable; default 32 256 1024 2048)")
    p.add_argument("--weights", help="real weights (default smollm2): safetensors, torch state dict, HF folder, "
                   ".gguf, 'smollm2', or a .fineq.safetensors from fineq quantize-model")
    p.add_argument("--synthetic", action="store_true", help="LLaMA-2 shapes with synthetic weights instead")
    p.add_argument("--buffer-kb", type=int, default=512, help="on-chip SRAM buffer for the memory energy (512)")
    p.add_argument("--synth", default="build/synth/summary.json", help="make synth's summary.json")
    p.add_argument("--chart", help="efficiency chart (.png/.svg/.pdf; default build/perf/fig9_efficiency.png)")
    p.add_argument("--mode", help="FineQ mode for --weights: paper (default) or search; a .fineq.safetensors "
                   "from quantize-model brings its own levels (any mode)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--json", help="also write the table as JSON here")
    p.set_defaults(fn=cmd_perf)
    return ap


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. Bad input: one line on stderr and exit 2; an unexpected failure: one line and exit 1
    (``--debug`` shows the traceback instead)."""
    import warnings

    a = build_parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QuantizationWarning)
        try:
            rc = int(a.fn(a))
        except KeyboardInterrupt:
            print(f"fineq {a.cmd}: interrupted", file=sys.stderr)
            return 130
        except (FineQError, OSError) as e:
            if a.debug:
                raise
            print(f"fineq {a.cmd}: error: {_one_line(e)}", file=sys.stderr)
            return 2
        except Exception as e:  # noqa: BLE001 - no traceback for users unless --debug
            if a.debug:
                raise
            print(f"fineq {a.cmd}: internal error ({type(e).__name__}): {_one_line(e)} (rerun with --debug)",
                  file=sys.stderr)
            return 1
        finally:
            for w in caught:
                if issubclass(w.category, QuantizationWarning):
                    print(f"fineq {a.cmd}: warning: {w.message}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
