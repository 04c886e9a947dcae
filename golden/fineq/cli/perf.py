"""Handler of ``fineq perf``: the cycle and energy model on real weights, FineQ against the MAC array."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from fineq.cli.options import rules_of
from fineq.engine.config import EngineConfig
from fineq.engine.cycles import level_stats
from fineq.errors import FineQError
from fineq.llm.weights import file_levels
from fineq.perf import memory
from fineq.perf.energy import evaluate
from fineq.perf.layers import MODELS, SEQS, Layer, file_layers, scaled_layers, synthetic_layers
from fineq.perf.power import load_power
from fineq.perf.report import DEFAULT_CHART, PAPER_MAX_EFFICIENCY, chart, table


def cmd_perf(a: argparse.Namespace) -> int:
    from fineq.outputs import check_output, write_text_atomic

    cfg = EngineConfig()
    chart_path = Path(a.chart or DEFAULT_CHART)
    if chart_path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise FineQError(f"--chart {chart_path}: use a .png, .svg or .pdf file name")
    for given in (a.chart, a.json):
        if given and not str(given).startswith("build/"):  # build/ holds generated artefacts, replaced freely
            check_output(given, force=a.force, inputs=[a.weights] if a.weights else [])
    if a.synthetic and (a.weights or a.mode):
        raise FineQError("--synthetic models synthetic weights; it does not take --weights or --mode")
    if a.buffer_kb < 1:
        raise FineQError(f"--buffer-kb must be positive, got {a.buffer_kb}")
    power = load_power(a.synth)
    if power is None:
        print(f"no synthesis report with power at {a.synth}: run `LIBERTY=... make synth` for energy; "
              "showing cycles and throughput only (no efficiency chart)")
    elif power["array"] != [cfg.rows, cfg.cols]:
        raise FineQError(f"{a.synth} is for a {power['array']} array; the model is 64 x 64: rerun make synth")
    seqs = a.seq or list(SEQS)
    if any(n < 1 for n in seqs):
        raise FineQError(f"sequence lengths must be positive, got {seqs}")
    workloads: dict[str, list[Layer]] = {}
    t0 = time.perf_counter()
    if a.synthetic:
        for model in a.model or list(MODELS):
            print(f"quantizing SYNTHETIC {model} layer weights ...", flush=True)
            workloads[f"{model} (SYNTHETIC weights)"] = synthetic_layers(model, cfg)
    else:
        from fineq.llm.models import DEMO_MODEL

        src = a.weights or DEMO_MODEL
        print(f"weights: {src} (real{'; SmolLM2 reference = the dequantized Q4_1 GGUF' if src == DEMO_MODEL else ''})",
              flush=True)
        levels, mode = file_levels(src, a.mode, rules_of(a))
        if any(int(np.abs(lv).max(initial=0)) > 3 for lv in levels.values()):
            raise FineQError(f"{src} holds power-of-two levels (a 4): fineq perf models the paper's comparison on "
                             "the temporal codings; the power-of-two datapath is costed by fineq pareto "
                             "(docs/performance.md)")
        hw = level_stats(list(levels.values()), cfg)
        name = Path(src).name
        print(f"{name}, FineQ {mode}: {len(levels)} matrices, {100 * hw['nonzero_levels']:.1f}% non-zero levels, "
              f"{hw['cycles_per_vector']:.3f} temporal cycles per {cfg.rows}-weight vector", flush=True)
        if not a.model:
            workloads[f"{name}, FineQ {mode}"] = file_layers(levels, cfg)
        for model in a.model or list(MODELS):
            workloads[f"{model} shapes, {name} FineQ {mode} statistics"] = scaled_layers(model, levels, cfg)
    results: dict[str, dict[int, dict[str, Any]]] = {}
    for model, layers in workloads.items():
        results[model] = {}
        for n in seqs:
            res = evaluate(layers, n, cfg, power, buffer_kb=a.buffer_kb)
            results[model][n] = res
            print(table(model, res, power))
    print(f"({time.perf_counter() - t0:.1f} s)")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(a.json, json.dumps({"power": power, "results": results}, indent=1, default=str))
    if power:
        chart(results, chart_path)
        print(f"chart: {chart_path}")
        summ = {m: {n: round(r["total"]["efficiency"], 3) for n, r in by.items()} for m, by in results.items()}
        summ_mem = {m: {n: round(r["total"]["efficiency_with_memory"], 3) for n, r in by.items()}
                    for m, by in results.items()}
        print(json.dumps({"efficiency": summ, "efficiency_with_memory": summ_mem, "paper_max": PAPER_MAX_EFFICIENCY,
                          "memory": memory.SOURCE, "buffer_kb": a.buffer_kb}))
    return 0


def cmd_pareto(a: argparse.Namespace) -> int:
    """``fineq pareto``: table, chart and JSON of every configuration from an eval JSON and make synth's summary."""
    from fineq.outputs import write_text_atomic
    from fineq.perf import pareto, pareto_report

    if a.buffer_kb < 1:
        raise FineQError(f"--buffer-kb must be positive, got {a.buffer_kb}")
    if not a.usable > 1:
        raise FineQError(f"--usable must exceed 1 (a multiple of the reference perplexity), got {a.usable}")
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise FineQError(f"--out {out} is a file; give a folder")
    t0 = time.perf_counter()
    evals = pareto.load_evals(a.eval or ["build/eval/pareto.json"])
    for note in pareto.environment_notes(evals):
        print(note, file=sys.stderr)
    doc = pareto.build(evals, pareto.load_power(a.synth), a.shapes, a.buffer_kb, a.usable)
    for w in doc["workloads"]:
        print(pareto_report.table(doc, w))
    if doc["not_on_either_array"]:
        print("not run on either array (no point): " + ", ".join(doc["not_on_either_array"]) +
              " (asymmetric or mixed grids; the MAC array runs the sign-magnitude grids, methods named *-sm*)")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "pareto.json", json.dumps(doc, indent=1))
    write_text_atomic(out / "pareto.md", "\n\n".join(f"```\n{pareto_report.table(doc, w)}\n```"
                                                     for w in doc["workloads"]) + "\n")
    pareto_report.chart(doc, doc["workloads"][0], out / "pareto.png")
    print(f"wrote {out / 'pareto.json'}, pareto.md, pareto.png ({time.perf_counter() - t0:.1f} s)")
    return 0
