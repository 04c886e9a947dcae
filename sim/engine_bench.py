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
import time

import numpy as np

from fineq import gemm, quantize
from fineq.engine.config import EngineConfig
from fineq.engine.cycles import engine_cycles, utilization
from fineq.hw.native import FORMS, build, run_engine
from fineq.synthetic import heavy_tailed, int8_activations

#: What each of fineq.hw.native's FORMS is, for the printout.
FORM_TEXT = {"plain": "CLOCK_GATE=0, the product path", "gated": "CLOCK_GATE=1, as synthesized"}


def weights(synthetic: bool, layers: int = 1) -> tuple[np.ndarray, str]:
    """SmolLM2's ``down_proj`` of the first ``layers`` decoder layers, stacked along M (576 x 1536 each)."""
    if synthetic:
        return heavy_tailed(576 * layers, 1536, seed=1), f"synthetic heavy-tailed {576 * layers} x 1536"
    from fineq.llm.models import load

    lm = load("smollm2")
    mods = dict(lm.model.named_modules())
    w = np.concatenate([mods[f"model.layers.{i}.mlp.down_proj"].weight.detach().float().numpy() for i in range(layers)])
    what = "layer 0 down_proj" if layers == 1 else f"down_proj of layers 0-{layers - 1} stacked"
    return w, f"SmolLM2 {what} (dequantized Q4_1 reference)"


def long_run(a: argparse.Namespace, cfg: EngineConfig, res: dict[str, object]) -> None:
    """The sustained rate: one engine run of at least a million cycles (30 down_proj matrices stacked)."""
    w, label = weights(a.synthetic, layers=30)
    q = quantize(w)
    x = int8_activations(q.shape[1], a.n, seed=3)
    model = engine_cycles(q.levels(), cfg)["total"]
    print(f"long GEMM {q.shape[0]} x {q.shape[1]} x {a.n}: {label}; model {model:,} cycles", flush=True)
    t0 = time.perf_counter()
    out = run_engine(q, x, cfg, model_cycles=model)
    exact = bool(np.array_equal(out.y, gemm(q, x))) and out.cycles == model
    res["long"] = {"weights": label, "shape": [*q.shape, a.n], "model_cycles": model,
                   "cycles_per_second": out.cycles_per_second, "sim_seconds": out.sim_seconds, "exact": exact,
                   "wall_seconds": round(time.perf_counter() - t0, 1)}
    print(f"native harness, CLOCK_GATE=0, sustained over {model:,} cycles: {out.cycles_per_second:,.0f} cycles/s "
          f"({out.sim_seconds:.2f} s), bit- and cycle-exact {exact}", flush=True)


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
        out = run_engine(q, x, cfg, threads=t, clock_gate=gate)
        exact = bool(np.array_equal(out.y, ref)) and out.cycles == model["total"]
        res[f"native_t{t}_{f}"] = {"cycles_per_second": out.cycles_per_second,
                                   "sim_seconds": out.sim_seconds, "build_seconds": round(secs, 1),
                                   "exact": exact, "wall_seconds": round(time.perf_counter() - t0, 1)}
        print(f"native harness, {FORM_TEXT[f]}, --threads {t}, short GEMM ({model['total']:,} cycles): "
              f"{out.cycles_per_second:,.0f} cycles/s ({out.sim_seconds:.2f} s), build {secs:.0f} s (0: cached), "
              f"bit- and cycle-exact {exact}", flush=True)
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
