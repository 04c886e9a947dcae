"""A whole model through the RTL engine (``fineq eval --backend verilator|icarus``): perplexity computed by the
accelerator.

Every decoder linear that a FineQ method quantized runs the int8 path of
:mod:`fineq.llm.int8path` (per-token int8 activations, row scales after the
integer GEMM) with its integer GEMM on the RTL engine (:mod:`fineq.hw`); the
rest of the model (norms, attention, the vocabulary projection) stays in
torch. Every GEMM is checked as it runs against :func:`fineq.gemm` and its
engine runs' cycles against the cycle model (:mod:`fineq.hw.checked`); a
difference stops the run, naming the window, the linear, the tile and the first
differing element.

Windows are the unit of work kept: each finished window's summed negative
log-likelihood and cycle counts are written (atomically) to a work folder
beside the output, under a fingerprint of the model, the method's levels, the
window's tokens and the engine configuration; the same command after a kill
takes those and computes the rest, so the result is identical. Windows run a
few at once (threads of this process, each a forward pass); their engine runs
go to the executor of :mod:`fineq.hw.cluster` (a local pool, or Dask).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fineq.engine.config import EngineConfig, coding_for
from fineq.errors import FineQError
from fineq.hw.checked import checked_gemm
from fineq.hw.cluster import Engines, engines
from fineq.hw.procs import worker_pool
from fineq.hw.run import cycles_per_second, n_tiles
from fineq.llm import evaluate
from fineq.llm.apply import NO_RULES
from fineq.llm.int8path import int8_activations
from fineq.llm.ppl import from_nlls, perplexity, window_nll
from fineq.llm.workdir import fingerprint
from fineq.outputs import keep_note, write_text_atomic
from fineq.perf.layers import MODELS, file_layers, fineq_cycles, scaled_layers
from fineq.perf.power import load_power
from fineq.progress import Meter
from fineq.quant import registry
from fineq.quant.layer_rules import LayerRules
from fineq.quant.result import QResult

#: the LLaMA-2 shapes whose time the estimate also prints
ESTIMATE_SHAPES = "llama2-7b"
RECORD_KEYS = ("nll", "cycles", "model_cycles", "sim_seconds", "gemms")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _duration(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 5400 else f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def window_key(model: str, results: dict[str, QResult], windows: np.ndarray, cfg: EngineConfig,
               backend: str) -> str:
    """What a window's record depends on (:func:`fineq.llm.workdir.fingerprint`: the package's code too): the
    model, every linear's levels and scales, the tokens, the engine."""
    parts: list[Any] = [model, backend, cfg.params, windows]
    for name in sorted(results):
        r = results[name]
        parts += [name, r.qmatrix.packed, r.qmatrix.scales, None if r.in_scale is None else np.asarray(r.in_scale)]
    return fingerprint(*parts)


def _codebook(method: str, results: dict[str, QResult]) -> str:
    """The one codebook of a method's matrices (an engine runs one), or FineQError."""
    books = sorted({r.qmatrix.codebook for r in results.values()})
    if len(books) != 1:
        raise FineQError(f"{method}: its linears hold levels of several codebooks ({', '.join(books)}): one engine "
                         "runs one")
    return books[0]


def read_record(path: Path) -> dict[str, Any] | None:
    """A finished window's record, or None (missing; damaged ones are reported and recomputed)."""
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text())
        if not isinstance(rec, dict) or not all(k in rec for k in RECORD_KEYS):
            raise ValueError("fields missing")
        return rec
    except (ValueError, OSError) as e:
        log(f"fineq eval: window record {path} is damaged ({e}); computing that window again")
        return None


class RtlEval:
    """The hook of :func:`fineq.llm.evaluate.run` that evaluates a method's int8 path on the RTL: the engine of
    ``cfg`` with ``coding``, or (None) the coding of each method's codebook (:func:`fineq.engine.config.coding_for`:
    the spec's levels on the thermometer coding, the power-of-two ones on the power-of-two datapath)."""

    def __init__(self, model_name: str, backend: str, cfg: EngineConfig, pool: Engines, work: Path,
                 power: dict[str, Any] | None, coding: str | None = None) -> None:
        self.model_name, self.backend, self.cfg, self.pool, self.work, self.power = (
            model_name, backend, cfg, pool, work, power)
        self.coding = coding
        self.local = threading.local()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.cycles_done = 0

    def estimate(self, results: dict[str, QResult], seq: int, windows: int, todo: int, method: str) -> int:
        """Print the cycle model's count and time for the windows to do, and for LLaMA-2-7B shapes; returns the
        cycles of one window."""
        levels = {n: r.qmatrix.levels() for n, r in results.items()}
        per_window = sum(fineq_cycles(la, seq, self.cfg) for la in file_layers(levels, self.cfg))
        rate = cycles_per_second(self.backend, self.cfg)
        # engine runs that can run at once: every tile of every window (a GEMM's tiles are independent)
        most = windows * len(n_tiles(seq, self.cfg.cols))
        n = min(self.pool.workers, max(1, todo) * len(n_tiles(seq, self.cfg.cols)))
        big = sum(fineq_cycles(la, seq, self.cfg) * la.count for la in scaled_layers(ESTIMATE_SHAPES, levels,
                                                                                        self.cfg))
        log(f"[{method}] seq {seq}: the cycle model says {per_window:,} cycles per window "
            f"({per_window // seq:,} per token); {todo} of {windows} windows to run: {todo * per_window:,} cycles, "
            f"about {_duration(todo * per_window / rate)} on one simulator, {_duration(todo * per_window / rate / n)} "
            f"on {n} ({self.backend} at ~{rate:,.0f} cycles/s each; simulation only)")
        log(f"[{method}] the same windows with {ESTIMATE_SHAPES.upper()} shapes ({MODELS[ESTIMATE_SHAPES]['layers']} "
            f"layers) and this method's level statistics: {windows * big:,} cycles, about "
            f"{_duration(windows * big / rate)} on one simulator, {_duration(windows * big / rate / n)} on {n}, "
            f"{_duration(windows * big / rate / most)} on {most} (the most its {windows} windows x "
            f"{most // windows} tiles can keep busy)")
        return per_window

    def gemm(self, name: str, q: Any, x: np.ndarray) -> np.ndarray:
        if self.stop.is_set():  # another window failed or the run was interrupted: no new engine runs
            raise FineQError("stopped")
        ctx = self.local.ctx
        res = checked_gemm(f"window {ctx['window']}, {name}", q, x, self.backend, self.cfg, self.pool)
        ctx["cycles"] += res["cycles"]
        ctx["model_cycles"] += res["model_cycles"]
        ctx["sim_seconds"] += res["sim_seconds"]
        ctx["gemms"] += 1
        with self.lock:
            self.cycles_done += res["cycles"]  # every window's, finished or not: the estimate's progress
        self.meter.update(res["cycles"])
        return res["y"]

    def _window(self, model: Any, windows: np.ndarray, i: int) -> dict[str, Any]:
        self.local.ctx = {"window": i, "cycles": 0, "model_cycles": 0, "sim_seconds": 0.0, "gemms": 0}
        nll = window_nll(model, windows[i])
        rec = {**self.local.ctx, "nll": nll}
        rec["sim_seconds"] = round(rec["sim_seconds"], 3)
        return rec

    def __call__(self, model: Any, results: dict[str, QResult], windows: np.ndarray, method: str,
                 seq: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        missing = [n for n, r in results.items() if r.qmatrix is None]
        if missing:
            raise FineQError(f"{method}: --backend {self.backend} runs FineQ levels; {missing[0]} has none")
        grouped = [n for n, r in results.items() if r.qmatrix.group is not None]
        if grouped:
            raise FineQError(f"{method}: --backend {self.backend} runs the spec's per-row scales; {grouped[0]} has "
                             "group scales (costed, not built in the RTL)")
        self.cfg = replace(self.cfg, coding=coding_for(_codebook(method, results), self.coding))
        fp = window_key(self.model_name, results, windows, self.cfg, self.backend)
        folder = self.work / f"{re.sub(r'[^A-Za-z0-9_.@+-]', '_', method)}-seq{seq}-{fp[:16]}"
        paths = [folder / f"window-{i:05d}.json" for i in range(windows.shape[0])]
        recs: list[dict[str, Any] | None] = [read_record(p) for p in paths]
        todo = [i for i, r in enumerate(recs) if r is None]
        if len(todo) < len(recs):
            log(f"[{method}] seq {seq}: {len(recs) - len(todo)} of {len(recs)} windows already done in {folder} "
                "(resuming)")
        per_window = self.estimate(results, seq, len(recs), len(todo), method)
        tiles = len(n_tiles(seq, self.cfg.cols))
        at_once = max(1, min(len(todo), max(2, -(-2 * self.pool.workers // tiles))))
        self.meter = Meter(len(todo) * per_window, desc=f"{method} seq {seq} on {self.backend}", unit="cycle")
        self.cycles_done = 0
        futs: dict[int, Any] = {}
        self.stop.clear()
        try:
            # windows as threads of a pool that, failing or interrupted, kills the local simulators first
            with int8_activations(model, results, self.gemm), worker_pool(at_once) as threads:
                futs = {i: threads.submit(self._window, model, windows, i) for i in todo}
                for k, i in enumerate(todo):
                    rec = futs[i].result()
                    folder.mkdir(parents=True, exist_ok=True)
                    write_text_atomic(paths[i], json.dumps(rec), register=False)
                    recs[i] = rec
                    keep_note(str(folder), f"kept {sum(r is not None for r in recs)} finished window(s) of "
                              f"{method} seq {seq} in {folder}: the same command resumes from them")
                    wall = time.perf_counter() - t0
                    with self.lock:
                        done = self.cycles_done
                    left = max(0, len(todo) * per_window - done)  # the cycle model's count still to simulate
                    log(f"[{method}] seq {seq}: window {i + 1}/{len(recs)} on the RTL ({k + 1} of {len(todo)} "
                        f"this run): {rec['gemms']} GEMMs, {rec['cycles']:,} cycles (= model), {wall:.0f} s so far; "
                        f"about {_duration(left * wall / max(done, 1))} left")
        except BaseException:
            self.stop.set()
            for f in futs.values():
                f.cancel()
            raise
        finally:
            self.meter.close()
        keep_note(str(folder), None)  # complete: the result says it all
        done = [r for r in recs if r is not None]
        rtl = from_nlls([float(r["nll"]) for r in done], seq)
        with int8_activations(model, results):  # the golden integer path, as fineq eval --int8-activations runs it
            golden = perplexity(model, windows, desc=f"{method} seq {seq} int8 golden")
        cycles = sum(int(r["cycles"]) for r in done)
        model_cycles = sum(int(r["model_cycles"]) for r in done)
        out: dict[str, Any] = {
            "ppl_int8": golden["ppl"], "ppl_rtl": rtl["ppl"], "backend": self.backend, "engine": self.cfg.params,
            "rtl_cycles": cycles, "rtl_model_cycles": model_cycles, "rtl_cycles_match_model": cycles == model_cycles,
            "rtl_gemms": sum(int(r["gemms"]) for r in done), "rtl_cycles_per_token": cycles / rtl["tokens"],
            "rtl_sim_seconds": round(sum(float(r["sim_seconds"]) for r in done), 1),
            "rtl_wall_seconds": round(time.perf_counter() - t0, 1), "rtl_windows_resumed": len(recs) - len(todo),
            "rtl_engines": self.pool.where, "rtl_work": str(folder)}
        if self.power is not None:
            key = "fineq_mw" if self.cfg.coding == "thermometer" else f"fineq_{self.cfg.coding}_mw"
            mw = self.power.get(key)
            if mw is not None:
                out["rtl_energy_uj_per_token"] = (cycles / rtl["tokens"]) * mw * 1e-3 / (
                    self.power["clock_mhz"] * 1e6) * 1e6
                out["rtl_power_source"] = self.power["source"]
        log(f"[{method}] seq {seq} on the RTL ({self.backend}): perplexity {rtl['ppl']:.3f} (golden integer path "
            f"{golden['ppl']:.3f}), {cycles:,} RTL cycles = cycle model {model_cycles:,}: "
            f"{cycles / rtl['tokens']:,.0f} accelerator cycles per token"
            + (f", {out['rtl_energy_uj_per_token']:.2f} uJ per token (compute, {out['rtl_power_source']})"
               if "rtl_energy_uj_per_token" in out else "") + f"; {out['rtl_wall_seconds']:.0f} s")
        return out


def run(model_spec: str, text: str | None, methods: list[str], seqs: list[int], max_windows: int | None,
        max_tokens: int, calib_samples: int, calib_seq: int, skip: tuple[str, ...], calib_text: str | None,
        quantized: tuple[str, ...], backend: str, cfg: EngineConfig, cluster: str | None, jobs: int | None,
        work: Path, synth: str | None, rules: LayerRules = NO_RULES, coding: str | None = None) -> dict[str, Any]:
    """``fineq eval`` with every FineQ linear's GEMM on ``backend``; the document of
    :func:`fineq.llm.evaluate.run` with each row's RTL fields, and ``backend``. The engine is ``cfg`` with
    ``coding``, or (None) with each method's codebook's coding."""
    from fineq.llm.modelfile import read_model_file

    bad = [n for n in methods if registry.get(n).mode is None]
    if bad:
        raise FineQError(f"--backend {backend} runs FineQ methods (fineq-*, or --quantized files); {bad[0]} is not one")
    books = {n: registry.get(n).codebook for n in methods}
    books.update({f: read_model_file(f)[1].get("codebook", "int") for f in quantized})
    cfgs = {}
    for n, book in books.items():
        try:
            c = coding_for(book, coding)
        except FineQError as e:
            raise FineQError(f"{n}: {e}") from e
        cfgs[c] = replace(cfg, coding=c)
    if not methods and not quantized:
        raise FineQError(f"--backend {backend}: no FineQ method to run (give --methods fineq-... or --quantized)")
    power = load_power(synth) if synth else None
    if synth and power is None:
        log(f"no synthesis report at {synth} (make synth writes it): energy per token is not given")
    if backend == "verilator":
        from fineq.hw.native import build

        for c in cfgs.values():  # once here, before the local runs share them (a cluster's workers build their own)
            build(c)
    with engines(cluster, jobs) as pool:
        log(f"RTL: the {cfg.rows}x{cfg.cols} engine on {backend}, engine runs on {pool.where}; work folder {work}")
        hook = RtlEval(str(model_spec), backend, cfg, pool, work, power, coding)
        doc = evaluate.run(model_spec, text, methods, seqs, max_windows, max_tokens, True, calib_samples, calib_seq,
                           skip, calib_text, int8_eval=hook, quantized=quantized, rules=rules, work=work,
                           work_key=repr((backend, cfg.params, coding)))
    doc["backend"] = backend
    return doc
