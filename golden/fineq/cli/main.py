"""Command line: the parser and the dispatch of ``fineq quantize | info | bench | gemm | demo | eval |
quantize-model | rtl-layer | perf | pareto``. Every handler lives in this package (:mod:`.matrix`, :mod:`.model`,
:mod:`.perf`); every one-line error and exit code is decided in :func:`main`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from fineq.cli.matrix import cmd_bench, cmd_demo, cmd_gemm, cmd_info, cmd_quantize
from fineq.cli.model import cmd_eval, cmd_export, cmd_quantize_model, cmd_rtl_layer
from fineq.cli.options import codebook_option, engine_options, rule_options
from fineq.cli.perf import cmd_pareto, cmd_perf
from fineq.errors import FineQError, QuantizationWarning
from fineq.hw.run import BACKENDS
from fineq.quant.registry import FINEQ_MODES, MATRIX_MODES
from fineq.quant.rules import MODES


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from fineq.version import __version__

    ap = _Parser(prog="fineq", description="FineQ 2.33-bit quantization, golden model and RTL runs")
    ap.add_argument("--version", action="version", version=f"fineq {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("quantize", help="quantize a float [M, K] .npy matrix into a .fineq.npz file")
    p.add_argument("weights", help="float [M, K] .npy file")
    p.add_argument("-o", "--output", help="output .fineq.npz (default: beside the input)")
    p.add_argument("--mode", choices=MATRIX_MODES, default="paper",
                   help="paper (default), search, or a calibrated mode (needs --calib)")
    p.add_argument("--calib", help="float [n, K] .npy: the layer's calibration inputs (calibrated modes)")
    p.add_argument("--group", type=int, help="a float16 scale per GROUP weights of a row instead of per row "
                   "(mode gptq-ord; a format variant outside the spec, docs/format.md)")
    codebook_option(p)
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
    engine_options(p, "golden", "golden model (default) or the RTL engine on a simulator",
                    "engine runs (tiles of COLS columns) simulated at once (default: one per core)")
    p.add_argument("--stall", type=float, default=0.0,
                   help="probability of a stall per beat on every stream (RTL backends; 0 keeps cycles exact)")
    p.add_argument("--seed", type=int, default=0, help="seed for random stream stalls (RTL backends)")
    p.add_argument("--waves", action="store_true", help="dump waves (RTL backends)")
    p.set_defaults(fn=cmd_gemm)

    p = sub.add_parser("demo", help="end-to-end demo: quantize, show the format, run the RTL, check")
    p.add_argument("--backend", choices=BACKENDS, default="verilator",
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
    p.add_argument("--calib-text", help="UTF-8 text file the calibrated methods calibrate on (default: the first "
                   "calibration windows of --text; with this option all of --text is evaluated)")
    p.add_argument("--calib-samples", type=int, default=32, help="calibration windows (default 32)")
    p.add_argument("--calib-seq", type=int, default=512, help="calibration window length (default 512)")
    p.add_argument("--skip", action="append", help="regular expression of linear names to leave unquantized")
    rule_options(p)
    p.add_argument("--quantized", action="append", help="a .fineq.safetensors of fineq quantize-model for this model, "
                   "evaluated as method file:<name> (repeatable)")
    engine_options(p, "golden", "where the FineQ linears' integer GEMMs run: golden (default: fineq.gemm) or the "
                   "RTL engine on verilator or icarus (every GEMM checked; implies the int8 path)",
                   "engine runs at once on the local pool (default: one per core)")
    p.add_argument("--cluster", help="with --backend: run the engine runs on Dask: local:N (a local cluster of N "
                   "workers) or a scheduler address tcp://host:port")
    p.add_argument("--work", help="the work folder of finished methods, calibrated blocks and RTL windows "
                   "(default: beside --json, JSON.work; with --backend and no --json ./fineq-eval.work); the same "
                   "command resumes from it")
    p.add_argument("--synth", default="build/synth/summary.json",
                   help="with --backend: make synth's summary.json, for the energy per token")
    p.add_argument("--json", help="write the full results (JSON) here")
    p.add_argument("--chart", help="write perplexity vs bits (log scale) here (.png/.svg/.pdf)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("export", help="write a quantized model as a standard Hugging Face folder")
    p.add_argument("file", help="a .fineq.safetensors of fineq quantize-model")
    p.add_argument("--dequantized", required=True, metavar="OUT_DIR",
                   help="the folder to write (config, safetensors, tokenizer): the FineQ levels dequantized")
    p.add_argument("--model", help="the base model (default: the file's base_model)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("quantize-model", help="quantize every decoder linear of a model into one .fineq.safetensors")
    p.add_argument("--model", required=True, help="Hugging Face folder, .gguf file, or 'smollm2'")
    p.add_argument("-o", "--output", required=True, help="output file (.fineq.safetensors)")
    p.add_argument("--mode", default="paper", help=f"FineQ mode: {', '.join(FINEQ_MODES)} (default "
                   "paper; the calibrated ones read --calib-text)")
    p.add_argument("--skip", action="append", help="regular expression of linear names to leave unquantized")
    p.add_argument("--group", type=int, help="a float16 scale per GROUP weights of a row instead of per row "
                   "(modes gptq-ord and recon; a format variant outside the spec, docs/format.md)")
    codebook_option(p)
    rule_options(p)
    p.add_argument("--transform", help="transform the model first: fold (RMSNorm gains into the linears) or "
                   "rotate[:SEED] (fold, then the residual stream rotated, QuaRot's R1); stored in the file")
    p.add_argument("--calib-text", "--text", dest="text",
                   help="calibration text for calibrated modes (default: the installed corpus)")
    p.add_argument("--calib-samples", type=int, default=32, help="calibration windows (default 32)")
    p.add_argument("--calib-seq", type=int, default=512, help="calibration window length (default 512)")
    p.add_argument("--device", help="where each decoder block is computed: cpu, cuda, cuda:N, or auto (blocks "
                   "spread over the GPUs by accelerate's device map); default cuda when torch sees a GPU, else cpu")
    p.add_argument("--whole", action="store_true", help="load the whole model into memory (default for a "
                   "safetensors folder: one decoder block resident at a time, read from the checkpoint)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(fn=cmd_quantize_model)

    p = sub.add_parser("rtl-layer", help="one decoder layer of a real model through the RTL engine, checked")
    p.add_argument("--model", default="smollm2", help="Hugging Face folder, .gguf file, or 'smollm2' (default)")
    p.add_argument("--layer", type=int, default=0, help="decoder layer index (default 0)")
    p.add_argument("--tokens", type=int, default=64, help="tokens of text whose activations are used (default 64)")
    p.add_argument("--text", help="UTF-8 text file (default: the installed corpus)")
    p.add_argument("--mode", default="paper", help="FineQ mode: paper (default) or search")
    codebook_option(p)
    engine_options(p, "verilator", "where the GEMMs run (default verilator, the native harness)",
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
    rule_options(p)
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--json", help="also write the table as JSON here")
    p.set_defaults(fn=cmd_perf)

    p = sub.add_parser("pareto", help="every accelerator configuration: bits, perplexity, energy per token, the "
                       "Pareto front, FineQ vs MAC at equal accuracy")
    p.add_argument("--eval", action="append", help="a fineq eval JSON (repeatable: evals of the same windows are "
                   "merged; default build/eval/pareto.json, make eval-pareto's)")
    p.add_argument("--synth", default="build/synth/summary.json", help="make synth's summary.json")
    p.add_argument("--out", default="build/pareto", help="folder for pareto.json, pareto.md, pareto.png")
    p.add_argument("--shapes", nargs="*", default=["llama2-7b"], choices=("llama2-7b", "llama2-13b"),
                   help="LLaMA-2 shapes with the model's statistics, beside its own layers (default llama2-7b)")
    p.add_argument("--buffer-kb", type=int, default=512, help="on-chip SRAM buffer for the memory energy (512)")
    p.add_argument("--usable", type=float, default=10.0,
                   help="a FineQ configuration is usable at perplexity <= this x the reference's (default 10)")
    p.set_defaults(fn=cmd_pareto)
    return ap


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: raised in the main thread by the handler :func:`_on_signals` installs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (also when the parent made SIGINT
    ignored, as a shell does for a background job); the first one only: cleanup is not interrupted again.
    The previous handlers come back after the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.getsignal(s) for s in sigs}

    def handler(signum: int, _frame: object) -> None:
        for s in sigs:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    for s in sigs:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def _interrupted(cmd: str, e: KeyboardInterrupt, kept: list[object]) -> int:
    """Stop the simulators, say what was kept, and return the exit status (128 + the signal's number)."""
    from fineq.hw import procs

    signum = e.signum if isinstance(e, Interrupted) else int(signal.SIGINT)
    killed = procs.stop_all()
    procs.allow()  # this process may run simulators again (the CLI called as a function)
    from fineq.outputs import notes

    said = ([f"kept the finished output(s) {', '.join(map(str, kept))}"] if kept else []) + notes()
    print(f"fineq {cmd}: stopped by {signal.Signals(signum).name}" +
          (f", {killed} simulator run(s) killed" if killed else "") +
          ("; " + "; ".join(said) if said else "; nothing written (outputs are written only when complete)"),
          file=sys.stderr)
    return 128 + signum


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. Bad input: one line on stderr and exit 2; an unexpected failure: one line and exit 1
    (``--debug`` shows the traceback instead); SIGINT / SIGTERM: the simulators killed, no partial output,
    one line saying what was kept, exit 130 / 143."""
    import warnings

    from fineq.outputs import release, written

    a = build_parser().parse_args(argv)
    before = len(written())
    with warnings.catch_warnings(record=True) as caught, _on_signals():
        warnings.simplefilter("always", QuantizationWarning)
        try:
            rc = int(a.fn(a))
        except KeyboardInterrupt as e:
            return _interrupted(a.cmd, e, list(written()[before:]))
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
            release()
            for w in caught:
                if issubclass(w.category, QuantizationWarning):
                    print(f"fineq {a.cmd}: warning: {w.message}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
