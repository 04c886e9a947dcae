"""Measure the 64 x 64 engine on Verilator (``make measure``).

Runs one stall-free GEMM (default M=256, K=4096, N=64, weights from
fineq.quantize of a heavy-tailed matrix with outlier channels) through the RTL
with the cocotb/pyuvm testbench, checks it bit-exactly and against the cycle
model, and prints the simulation speed (cycles per second of wall time, the
testbench included: it drives and checks every beat) and the PE-array
utilization.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from fineq import gemm, quantize
from fineq.engine import EngineConfig, engine_cycles, utilization
from fineq.rtl import run_engine
from fineq.synthetic import heavy_tailed, int8_activations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--m", type=int, default=256)
    ap.add_argument("--k", type=int, default=4096)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--backend", default="verilator")
    a = ap.parse_args()
    cfg = EngineConfig(64, 64, 256)
    q = quantize(heavy_tailed(a.m, a.k, seed=1))
    x = int8_activations(a.k, a.n, seed=2)
    print(f"building and running the 64x64 engine ({a.backend}, -O2) on M={a.m} K={a.k} N={a.n} ...", flush=True)
    t0 = time.perf_counter()
    out = run_engine(q, x, cfg, a.backend, cxx_opt="-O2")
    wall = time.perf_counter() - t0
    model = engine_cycles(q.levels(), cfg)
    exact = bool(np.array_equal(out["y"], gemm(q, x)))
    util = utilization(q.levels(), a.n, cfg)
    big = utilization(quantize(heavy_tailed(4096, a.k, seed=3)).levels(), 64, cfg)
    res = {
        "shape": [a.m, a.k, a.n],
        "cycles": out["cycles"],
        "model_cycles": model["total"],
        "cycle_split": model,
        "bit_exact": exact,
        "sim_seconds": out["sim_seconds"],
        "cycles_per_second": out["cycles"] / out["sim_seconds"],
        "wall_seconds_with_build": wall,
        "utilization_useful": util["useful"],
        "utilization_temporal": util["temporal"],
        "model_utilization_useful_M4096": big["useful"],
        "model_utilization_temporal_M4096": big["temporal"],
    }
    print(f"cycles: RTL {res['cycles']}, model {res['model_cycles']} (split {model})")
    print(f"bit-exact against fineq.gemm: {exact}")
    print(f"Verilator + cocotb testbench: {res['cycles_per_second']:.0f} cycles/s "
          f"({res['sim_seconds']:.1f} s simulated run; {wall:.0f} s with build)")
    print(f"PE utilization (useful 1-bit PE-cycles / all PE-cycles): {100 * util['useful']:.1f}%; "
          f"PE-cycles in temporal cycles with a real (k, n): {100 * util['temporal']:.1f}%")
    print(f"model, M=4096 (a LLaMA-2-7B layer height): useful {100 * big['useful']:.1f}%, "
          f"temporal {100 * big['temporal']:.1f}%")
    print(json.dumps(res))
    if not exact or res["cycles"] != res["model_cycles"]:
        raise SystemExit("mismatch: RTL and golden model disagree")


if __name__ == "__main__":
    main()
