"""Speed of the 64 x 64 engine on Verilator (``make measure``): the native harness against the
cocotb testbench on the same GEMM, in one run.

The GEMM: SmolLM2's layer-0 ``down_proj`` (576 x 1536, real weights, FineQ
``paper``; reference = the dequantized Q4_1 GGUF) times 64 int8 activation
columns, or a synthetic heavy-tailed matrix of the same shape (``--synthetic``,
labelled as such). Each path is checked bit-exactly against ``fineq.gemm`` and
cycle-exactly against the cycle model; the figures are engine cycles per second
of simulation (the harness's loop, or cocotb's test time), and build times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from fineq import QuantizedMatrix, gemm, quantize
from fineq.engine.config import EngineConfig
from fineq.engine.cycles import engine_cycles, utilization
from fineq.hw.native import FORMS, build, run_engine
from fineq.synthetic import heavy_tailed, int8_activations

#: What each of fineq.hw.native's FORMS is, for the printout.
FORM_TEXT = {"gated": "CLOCK_GATE=1, as synthesized, the product path", "plain": "CLOCK_GATE=0"}


def weights(synthetic: bool, layers: int = 1) -> tuple[np.ndarray, str]:
    """SmolLM2's ``down_proj`` of ``layers`` decoder layers (0, 1, ..., 29, 0, ...), stacked along M (576 x 1536 each)."""
    if synthetic:
        return heavy_tailed(576 * layers, 1536, seed=1), f"synthetic heavy-tailed {576 * layers} x 1536"
    from fineq.llm.models import load

    lm = load("smollm2")
    mods = dict(lm.model.named_modules())
    w = np.concatenate([mods[f"model.layers.{i % 30}.mlp.down_proj"].weight.detach().float().numpy() for i in range(layers)])
    what = "layer 0 down_proj" if layers == 1 else f"down_proj of {layers} layers stacked (0-29, then 0-{layers - 31})"
    return w, f"SmolLM2 {what} (dequantized Q4_1 reference)"


def timed_runs(q: QuantizedMatrix, x: np.ndarray, cfg: EngineConfig, model: int, ref: np.ndarray, reps: int,
               **kw: object) -> dict[str, object]:
    """``reps`` runs of one GEMM on the native harness (built once): cycles/s min, median, max; all exact?"""
    rates, exact = [], True
    for _ in range(reps):
        out = run_engine(q, x, cfg, model_cycles=model, **kw)
        exact = exact and bool(np.array_equal(out.y, ref)) and out.cycles == model
        rates.append(out.cycles_per_second)
    return {"cycles_per_second": statistics.median(rates), "min": min(rates), "max": max(rates), "runs": reps,
            "exact": exact}


def fmt(r: dict[str, object]) -> str:
    return (f"{r['cycles_per_second']:,.0f} cycles/s (median of {r['runs']}; {r['min']:,.0f} - {r['max']:,.0f}), "
            f"bit- and cycle-exact {r['exact']}")


def long_run(a: argparse.Namespace, cfg: EngineConfig, res: dict[str, object]) -> None:
    """The sustained rate: one engine run of at least a million cycles (32 down_proj matrices stacked)."""
    w, label = weights(a.synthetic, layers=32)
    q = quantize(w)
    x = int8_activations(q.shape[1], a.n, seed=3)
    model = engine_cycles(q.levels(), cfg)["total"]
    ref = gemm(q, x)
    print(f"long GEMM {q.shape[0]} x {q.shape[1]} x {a.n}: {label}; model {model:,} cycles", flush=True)
    for f in a.forms:
        r = timed_runs(q, x, cfg, model, ref, a.repeat, clock_gate=FORMS[f])
        res[f"long_{f}"] = {"weights": label, "shape": [*q.shape, a.n], "model_cycles": model, **r}
        print(f"native harness, {FORM_TEXT[f]}, sustained over {model:,} cycles: {fmt(r)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=64, help="activation columns (<= 64: one engine run)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="Verilator --threads to try")
    ap.add_argument("--forms", nargs="+", default=list(FORMS), choices=list(FORMS),
                    help="engine forms to try (same function and cycles): " + "; ".join(
                        f"{k}: {FORM_TEXT[k]}" for k in FORMS))
    ap.add_argument("--synthetic", action="store_true", help="synthetic weights instead of SmolLM2's")
    ap.add_argument("--no-cocotb", action="store_true", help="skip the cocotb baseline (its build takes minutes)")
    ap.add_argument("--no-long", action="store_true", help="skip the sustained run (a GEMM of about a million cycles)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each native measurement, median reported (3)")
    a = ap.parse_args()
    cfg = EngineConfig(64, 64, 256)
    w, label = weights(a.synthetic)
    q = quantize(w)
    x = int8_activations(q.shape[1], a.n, seed=2)
    ref = gemm(q, x)
    model = engine_cycles(q.levels(), cfg)
    print(f"GEMM {q.shape[0]} x {q.shape[1]} x {a.n}: {label}; model {model['total']:,} cycles", flush=True)
    res: dict[str, object] = {"weights": label, "shape": [*q.shape, a.n], "model_cycles": model["total"],
                              "cycle_split": model, "utilization": utilization(q.levels(), a.n, cfg)}
    for t, f in [(t, f) for f in a.forms for t in a.threads]:
        gate = FORMS[f]
        t0 = time.perf_counter()
        _, secs = build(cfg, threads=t, clock_gate=gate)
        r = timed_runs(q, x, cfg, model["total"], ref, a.repeat, threads=t, clock_gate=gate)
        res[f"native_t{t}_{f}"] = {**r, "build_seconds": round(secs, 1), "wall_seconds": round(time.perf_counter() - t0, 1)}
        print(f"native harness, {FORM_TEXT[f]}, --threads {t}, short GEMM ({model['total']:,} cycles): {fmt(r)}; "
              f"build {secs:.0f} s (0: cached)", flush=True)
    if not a.no_long:
        long_run(a, cfg, res)
    if not a.no_cocotb:
        from fineq_tb.gemm_job import run_engine as cocotb_run  # tb/ on PYTHONPATH (make measure)

        t0 = time.perf_counter()
        out = cocotb_run(q, x, cfg, "verilator", cxx_opt="-O0")  # its speed is Python-bound; -O0 builds 4x faster
        exact = bool(np.array_equal(out.y, ref)) and out.cycles == model["total"]
        cps = out.cycles / out.sim_seconds
        res["cocotb"] = {"cycles_per_second": cps, "sim_seconds": out.sim_seconds, "exact": exact,
                         "wall_seconds_with_build": round(time.perf_counter() - t0, 1)}
        best = max(v["cycles_per_second"] for k, v in res.items() if k.startswith("native"))  # type: ignore[union-attr]
        res["speedup"] = best / cps
        print(f"cocotb + pyuvm testbench: {cps:,.0f} cycles/s ({out.sim_seconds:.1f} s), exact {exact}; "
              f"native / cocotb = {best / cps:.0f}x", flush=True)
    print(json.dumps(res, default=float))


if __name__ == "__main__":
    main()
