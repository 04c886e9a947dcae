"""Cycle-level performance and energy model: FineQ engine vs MAC systolic array (``fineq perf``).

Cycles
  FineQ: ``engine.engine_cycles`` per engine run (exact: the RTL's cycle
  counter equals it, see tb/fineq_gemm_engine and tests/test_perf.py), times
  ``ceil(N / COLS)`` runs (N is tiled by the driver).
  MAC: the schedule of the input-stationary MAC array as its testbench drives
  it: per K tile, ``rows_t`` preload cycles, ``M`` weight vectors one per cycle,
  and ``ROWS + COLS - 1`` cycles to drain the skew; times ``ceil(N / COLS)``.
  (The testbench checks every output at exactly the cycle this schedule gives.)

Energy
  ``E = P * cycles / f``, with ``P`` the total power that ``make synth`` reports
  (build/synth/summary.json, real-workload activity, 400 MHz): FineQ = PE array
  with encoders and accumulators + the weight decoders; MAC = MAC systolic array
  with the same column accumulators. Compute-only, and with memory
  (:mod:`fineq.memory`: DRAM and on-chip SRAM per byte from Horowitz, ISSCC
  2014; the same traffic for both arrays), which makes the ratio depend on N.

Workloads
  Real weights by default: SmolLM2-135M (``--weights smollm2``; reference = the
  dequantized Q4_1 GGUF) or the model / file given, quantized with ``--mode``
  (or a ``.fineq.safetensors``' stored levels). Modelled: that model's own
  linears, and the linear layers (q, k, v, o, gate, up, down) of LLaMA-2-7B (32
  layers, 4096 / 11008) and 13B (40 layers, 5120 / 13824) with the real
  weights' statistics scaled to their shapes (:func:`scaled_layers`: each
  layer type's mean temporal cycles per 64-weight vector, times the LLaMA
  matrix's vector count). ``--synthetic``: LLaMA-2 shapes with synthetic weights
  (fineq.synthetic.heavy_tailed, labelled SYNTHETIC).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import memory
from .engine import CODINGS, FILL_CYCLES, EngineConfig, level_stats, vector_cycles
from .errors import FineQError
from .qmatrix import quantize
from .synthetic import heavy_tailed

MODELS = {
    "llama2-7b": {"hidden": 4096, "inter": 11008, "layers": 32},
    "llama2-13b": {"hidden": 5120, "inter": 13824, "layers": 40},
}
SEQS = (32, 256, 1024, 2048)
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PAPER_MAX_EFFICIENCY = 1.79


def layer_shapes(model: str) -> dict[str, tuple[int, int]]:
    """``{projection: (M, K)}`` (weight ``[out, in]``) of one transformer layer."""
    h, i = MODELS[model]["hidden"], MODELS[model]["inter"]
    return {"q_proj": (h, h), "k_proj": (h, h), "v_proj": (h, h), "o_proj": (h, h),
            "gate_proj": (i, h), "up_proj": (i, h), "down_proj": (h, i)}


@dataclass
class Layer:
    name: str
    m: int
    k: int
    count: int
    vec_cycles: dict[str, int]  # per coding (CODINGS): the temporal cycles of one engine run, summed over vectors


def layer_from_levels(name: str, levels: np.ndarray, count: int, cfg: EngineConfig) -> Layer:
    m, k = levels.shape
    return Layer(name, m, k, count,
                 {c: int(vector_cycles(levels, replace(cfg, coding=c)).sum()) for c in CODINGS})


def fineq_cycle_split(layer: Layer, n: int, cfg: EngineConfig) -> dict[str, int]:
    """Exact FineQ engine cycles for ``Y[M, N] = V @ X`` (N tiled by COLS), no stalls, split as
    ``engine.engine_cycles``: preload, decode (pipeline fill), temporal (early-terminated), drain."""
    runs = -(-n // cfg.cols)
    chunks = -(-layer.m // cfg.psum_depth)
    tiles = -(-layer.k // cfg.rows)
    split = {"preload": chunks * layer.k, "decode": FILL_CYCLES * chunks * tiles,
             "temporal": layer.vec_cycles[cfg.coding], "drain": 1}
    split = {k: runs * v for k, v in split.items()}
    split["total"] = sum(split.values())
    return split


def fineq_cycles(layer: Layer, n: int, cfg: EngineConfig) -> int:
    return fineq_cycle_split(layer, n, cfg)["total"]


def mac_cycle_split(m: int, k: int, n: int, cfg: EngineConfig) -> dict[str, int]:
    """MAC systolic array cycles: per K tile preload, M weight vectors, ROWS + COLS - 1 drain; N tiled by COLS."""
    runs = -(-n // cfg.cols)
    tiles = -(-k // cfg.rows)
    split = {"preload": runs * k, "stream": runs * tiles * m, "drain": runs * tiles * (cfg.rows + cfg.cols - 1)}
    split["total"] = sum(split.values())
    return split


def mac_cycles(m: int, k: int, n: int, cfg: EngineConfig) -> int:
    return mac_cycle_split(m, k, n, cfg)["total"]


def synthetic_layers(model: str, cfg: EngineConfig, seed: int = 0) -> list[Layer]:
    out = []
    for j, (name, (m, k)) in enumerate(layer_shapes(model).items()):
        lv = quantize(heavy_tailed(m, k, seed=seed + j)).levels()
        out.append(layer_from_levels(name, lv, MODELS[model]["layers"], cfg))
    return out


def scaled_layers(model: str, levels: dict[str, np.ndarray], cfg: EngineConfig) -> list[Layer]:
    """LLaMA-2 ``model``'s layer shapes with real weights' statistics: for each layer type (q, k, ...,
    down), the mean temporal cycles of a ROWS-weight vector over the real matrices of that type (all
    matrices if the type is missing) times the number of vectors of the LLaMA matrix (M x K tiles)."""
    def mean(coding: str, name: str) -> float:
        c = replace(cfg, coding=coding)
        vc = [vector_cycles(lv, c) for n, lv in levels.items() if name in n] or \
             [vector_cycles(lv, c) for lv in levels.values()]
        return float(sum(int(v.sum()) for v in vc) / sum(v.size for v in vc))

    out = []
    for name, (m, k) in layer_shapes(model).items():
        nvec = m * -(-k // cfg.rows)
        out.append(Layer(name, m, k, MODELS[model]["layers"], {c: round(mean(c, name) * nvec) for c in CODINGS}))
    return out


def load_weight_file(path: str | Path) -> dict[str, np.ndarray]:
    """``{name: float32 [out, in]}`` for every ``*_proj.weight`` of a model: a safetensors file, a torch
    state dict (``.pt``/``.pth``/``.bin``), or anything ``fineq eval --model`` takes (a Hugging Face folder,
    a ``.gguf`` file, ``smollm2``)."""
    from .models import is_model_spec

    if is_model_spec(path):
        from .models import decoder_linears, load

        lm = load(path)
        return {f"{n}.weight": m.weight.detach().float().numpy() for n, m in decoder_linears(lm.model).items()}
    path = Path(path)
    if not path.is_file():
        raise FineQError(f"weights file {path} does not exist")
    if path.suffix not in (".safetensors", ".pt", ".pth", ".bin"):
        raise FineQError(f"weights file {path}: expected .safetensors, a torch state dict (.pt/.pth/.bin), "
                         "a .gguf file, a model folder or 'smollm2'")
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
                sd = sd["state_dict"]
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad file for the user
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise FineQError(f"{path}: not a readable safetensors file or torch state dict ({first})") from e
    if not isinstance(sd, dict):
        raise FineQError(f"{path}: expected a state dict, got {type(sd).__name__}")
    out = {}
    for name, t in sd.items():
        if re.search(r"(" + "|".join(PROJ) + r")\.weight$", name) and hasattr(t, "dim") and t.dim() == 2:
            out[name] = t.detach().to(torch.float32).numpy()
    if not out:
        raise FineQError(f"{path}: no *_proj.weight matrices ({', '.join(PROJ)}) found")
    return out


def is_model_file(path: str | Path) -> bool:
    """A ``.fineq.safetensors`` written by ``fineq quantize-model`` (levels stored, any mode)."""
    return str(path).endswith(".fineq.safetensors")


def file_levels(path: str | Path, mode: str | None = None) -> tuple[dict[str, np.ndarray], str]:
    """``({name: int8 levels}, mode)`` of a real model: a ``.fineq.safetensors`` gives its stored levels
    (whatever mode made them, calibrated ones included); anything else is quantized here with a data-free
    mode (``paper``, the default, or ``search``)."""
    if is_model_file(path):
        from .modelfile import read_model_file

        qms, meta = read_model_file(path)
        stored = meta.get("mode", "unknown")
        if mode is not None and mode != stored:
            raise FineQError(f"--mode {mode}: {path} holds levels quantized with mode {stored}; drop --mode")
        return {n: q.levels() for n, q in qms.items()}, stored
    mode = mode or "paper"
    if mode not in ("paper", "search"):
        raise FineQError(f"--mode {mode}: fineq perf quantizes with the data-free modes paper or search; for a "
                         "calibrated mode, run fineq quantize-model --mode ... and pass its .fineq.safetensors")
    return {name: quantize(w, mode).levels() for name, w in load_weight_file(path).items()}, mode


def file_layers(levels: dict[str, np.ndarray], cfg: EngineConfig) -> list[Layer]:
    """One layer per real matrix (count 1)."""
    return [layer_from_levels(name, lv, 1, cfg) for name, lv in levels.items()]


def load_power(summary: str | Path) -> dict[str, Any] | None:
    """FineQ and MAC power (mW) and clock from make synth's summary.json, or None if there is none."""
    p = Path(summary)
    if not p.is_file():
        return None
    try:
        s = json.loads(p.read_text())
        if not isinstance(s, dict) or s.get("mode") != "liberty":
            return None
        d = s["designs"]
        dec = d["fineq_decoders"]["power_mw"]["total"]
        out = {"fineq_mw": d["fineq_pe_array"]["power_mw"]["total"] + dec,
               "mac_mw": d["mac_systolic_array"]["power_mw"]["total"], "clock_mhz": s["clock_mhz"],
               "array": s["array"], "source": str(p)}
        if "fineq_pe_array_binary" in d:
            out["fineq_binary_mw"] = d["fineq_pe_array_binary"]["power_mw"]["total"] + dec
        return out
    except (ValueError, KeyError, TypeError) as e:
        raise FineQError(f"synthesis report {p} is not a make synth summary.json ({type(e).__name__}: {e})") from e


def evaluate(layers: list[Layer], n: int, cfg: EngineConfig, power: dict[str, Any] | None,
             clock_mhz: float = 400.0, buffer_kb: int = memory.DEFAULT_BUFFER_KB) -> dict[str, Any]:
    rows = []
    for ly in layers:
        fs = {k: v * ly.count for k, v in fineq_cycle_split(ly, n, cfg).items()}
        ms = {k: v * ly.count for k, v in mac_cycle_split(ly.m, ly.k, n, cfg).items()}
        bc = fineq_cycles(ly, n, replace(cfg, coding="binary")) * ly.count
        rows.append({"layer": ly.name, "m": ly.m, "k": ly.k, "n": n, "count": ly.count,
                     "fineq_cycles": fs["total"], "mac_cycles": ms["total"], "fineq_binary_cycles": bc,
                     "fineq_split": fs, "mac_split": ms})
    tot = {k: sum(r[k] for r in rows) for k in ("fineq_cycles", "mac_cycles", "fineq_binary_cycles")}
    ops = sum(2 * r["m"] * r["k"] * n * r["count"] for r in rows)
    f = clock_mhz * 1e6
    tot["fineq_seconds"], tot["mac_seconds"] = tot["fineq_cycles"] / f, tot["mac_cycles"] / f
    tot["fineq_gops"], tot["mac_gops"] = ops / tot["fineq_seconds"] / 1e9, ops / tot["mac_seconds"] / 1e9
    if power:
        def uj(mw: float, cycles: int) -> float:
            return mw * 1e-3 * cycles / f * 1e6

        for r in rows:
            r["fineq_uj"] = uj(power["fineq_mw"], r["fineq_cycles"])
            r["mac_uj"] = uj(power["mac_mw"], r["mac_cycles"])
            r["efficiency"] = r["mac_uj"] / r["fineq_uj"]
            t = memory.traffic(r["m"], r["k"], n, cfg, buffer_kb * 1024)
            r["dram_bytes"], r["sram_bytes"] = t.dram_bytes * r["count"], t.sram_bytes * r["count"]
            r["memory_uj"] = memory.energy_pj(t, buffer_kb * 1024) * r["count"] * 1e-6
            r["efficiency_with_memory"] = (r["mac_uj"] + r["memory_uj"]) / (r["fineq_uj"] + r["memory_uj"])
            if "fineq_binary_mw" in power:
                r["fineq_binary_uj"] = uj(power["fineq_binary_mw"], r["fineq_binary_cycles"])
        tot["fineq_mj"] = sum(r["fineq_uj"] for r in rows) / 1e3
        tot["mac_mj"] = sum(r["mac_uj"] for r in rows) / 1e3
        tot["memory_mj"] = sum(r["memory_uj"] for r in rows) / 1e3
        tot["efficiency"] = tot["mac_mj"] / tot["fineq_mj"]
        tot["efficiency_with_memory"] = (tot["mac_mj"] + tot["memory_mj"]) / (tot["fineq_mj"] + tot["memory_mj"])
        if "fineq_binary_mw" in power:
            tot["fineq_binary_mj"] = sum(r["fineq_binary_uj"] for r in rows) / 1e3
            tot["efficiency_binary"] = tot["mac_mj"] / tot["fineq_binary_mj"]
            tot["efficiency_binary_with_memory"] = ((tot["mac_mj"] + tot["memory_mj"])
                                                    / (tot["fineq_binary_mj"] + tot["memory_mj"]))
    return {"layers": rows, "total": tot, "n": n, "buffer_kb": buffer_kb}


def _short(name: str, width: int = 28) -> str:
    """A layer name that fits the column: ``model.layers.12.mlp.down_proj.weight`` -> ``L12 mlp.down_proj``."""
    m = re.search(r"layers\.(\d+)\.(.*?)(?:\.weight)?$", name)
    s = f"L{m.group(1)} {m.group(2)}" if m else name
    return s if len(s) <= width else "..." + s[-(width - 3):]


def _table(model: str, res: dict[str, Any], power: dict[str, Any] | None) -> str:
    t = res["total"]
    head = f"{'layer':<28}{'M':>7}{'K':>7}{'x':>4}{'FineQ cycles':>15}{'MAC cycles':>15}"
    if power:
        head += f"{'FineQ uJ':>12}{'MAC uJ':>12}{'mem uJ':>12}{'eff.':>7}{'w/ mem':>8}"
    lines = [f"== {model}, sequence length {res['n']}", head]
    for r in res["layers"]:
        line = f"{_short(r['layer']):<28}{r['m']:>7}{r['k']:>7}{r['count']:>4}{r['fineq_cycles']:>15,}{r['mac_cycles']:>15,}"
        if power:
            line += (f"{r['fineq_uj']:>12.1f}{r['mac_uj']:>12.1f}{r['memory_uj']:>12.1f}{r['efficiency']:>7.2f}"
                     f"{r['efficiency_with_memory']:>8.2f}")
        lines.append(line)
    lines.append(f"total: FineQ {t['fineq_cycles']:,} cycles ({t['fineq_seconds'] * 1e3:.1f} ms, {t['fineq_gops']:.1f} GOPS), "
                 f"MAC {t['mac_cycles']:,} cycles ({t['mac_seconds'] * 1e3:.1f} ms, {t['mac_gops']:.1f} GOPS) at 400 MHz")
    if power:
        lines.append(f"energy: FineQ {t['fineq_mj']:.3f} mJ, MAC {t['mac_mj']:.3f} mJ, memory {t['memory_mj']:.3f} mJ "
                     f"(both; {res['buffer_kb']} KB buffer); energy efficiency FineQ / MAC = {t['efficiency']:.2f}x "
                     f"compute only, {t['efficiency_with_memory']:.2f}x with memory (paper: up to "
                     f"{PAPER_MAX_EFFICIENCY}x)")
        if "efficiency_binary" in t:
            lines.append(f"binary-weighted coding (variant): {t['fineq_binary_cycles']:,} cycles, "
                         f"{t['fineq_binary_mj']:.3f} mJ; efficiency {t['efficiency_binary']:.2f}x compute only, "
                         f"{t['efficiency_binary_with_memory']:.2f}x with memory")
    else:
        lines.append(f"binary-weighted coding (variant): {t['fineq_binary_cycles']:,} cycles")
    return "\n".join(lines)


def chart(results: dict[str, dict[int, dict[str, Any]]], path: Path) -> None:
    """The paper's Figure 9: energy efficiency FineQ / MAC per model and sequence length, compute only and
    with memory, one panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results)
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 4.2), squeeze=False)
    top = max(max(max(r["total"]["efficiency"] for r in by.values()) for by in results.values()),
              PAPER_MAX_EFFICIENCY) * 1.3
    for ax, model in zip(axes[0], models, strict=True):
        by = results[model]
        ns = list(by)
        xs = np.arange(len(ns))
        comp = [by[n]["total"]["efficiency"] for n in ns]
        mem = [by[n]["total"]["efficiency_with_memory"] for n in ns]
        bars = [(comp, "compute only", "#1f77b4"), (mem, "with DRAM + SRAM", "#ff7f0e")]
        if all("efficiency_binary" in by[n]["total"] for n in ns):
            bars += [([by[n]["total"]["efficiency_binary"] for n in ns], "binary coding, compute only", "#2ca02c"),
                     ([by[n]["total"]["efficiency_binary_with_memory"] for n in ns], "binary coding, with memory",
                      "#98df8a")]
        w = 0.8 / len(bars)
        for i, (vals, label, color) in enumerate(bars):
            off = (i - (len(bars) - 1) / 2) * w
            ax.bar(xs + off, vals, w, label=label, color=color)
            for x, v in zip(xs, vals, strict=True):
                ax.text(x + off, v + 0.02, f"{v:.2f}", ha="center", fontsize=6, rotation=90)
        ax.axhline(1.0, color="#999999", lw=1)
        ax.axhline(PAPER_MAX_EFFICIENCY, ls="--", color="#d62728", lw=1, label=f"paper, best ({PAPER_MAX_EFFICIENCY}x)")
        ax.set_xticks(xs, [str(n) for n in ns])
        ax.set_xlabel("sequence length N")
        ax.set_title(model, fontsize=8, wrap=True)
        ax.set_ylim(0, top)
    axes[0][0].set_ylabel("energy efficiency FineQ / MAC array")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Energy efficiency, FineQ vs MAC systolic array (64x64, 400 MHz, Nangate45)", fontsize=10)
    fig.tight_layout()
    from .outputs import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip("."))
    plt.close(fig)


DEFAULT_CHART = "build/perf/fig9_efficiency.png"


def cli_perf(a: argparse.Namespace) -> int:
    from .outputs import check_output, write_text_atomic

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
        from .models import DEMO_MODEL

        src = a.weights or DEMO_MODEL
        print(f"weights: {src} (real{'; SmolLM2 reference = the dequantized Q4_1 GGUF' if src == DEMO_MODEL else ''})",
              flush=True)
        levels, mode = file_levels(src, a.mode)
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
            print(_table(model, res, power))
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
