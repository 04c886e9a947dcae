"""Quantizer benchmark: ``fineq bench`` / ``make bench``.

Quantizes and packs a float32 matrix (default 4096 x 11008, a LLaMA-2-7B MLP
weight, heavy-tailed) and prints weights/s, peak memory (tracemalloc: NumPy
reports its buffers to it) and the ratio of the quantizer's time to one plain
NumPy pass (``np.max``) over the same matrix, measured in the same run.
"""

from __future__ import annotations

import json
import time
import tracemalloc

import numpy as np

from fineq.quant.registry import quantize
from fineq.synthetic import heavy_tailed


def run(m: int = 4096, k: int = 11008, mode: str = "paper", repeat: int = 3, seed: int = 0) -> dict[str, float]:
    w = heavy_tailed(m, k, seed)
    in_mb = w.nbytes / 2**20
    base = min(_timed(lambda: np.max(w)) for _ in range(repeat))
    quantize(w[:8], mode)  # warm-up: imports, LUTs
    times = []
    for _ in range(repeat):
        times.append(_timed(lambda: quantize(w, mode)))
    tracemalloc.start()
    quantize(w, mode)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    best = min(times)
    res = {
        "shape": [m, k],
        "mode": mode,
        "seconds": best,
        "mweights_per_s": m * k / best / 1e6,
        "numpy_pass_seconds": base,
        "ratio_to_numpy_pass": best / base,
        "input_mb": in_mb,
        "peak_extra_mb": peak / 2**20,
        "peak_total_over_input": (w.nbytes + peak) / w.nbytes,
        "llama2_7b_minutes": 6.74e9 / (m * k / best) / 60,
    }
    return res


def _timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def report(res: dict[str, float]) -> str:
    lines = [
        f"quantize+pack {res['shape'][0]}x{res['shape'][1]} float32 (mode {res['mode']}):",
        f"  time              {res['seconds']:.3f} s (best of runs)",
        f"  throughput        {res['mweights_per_s']:.1f} M weights/s (target >= 20)",
        f"  numpy pass        {res['numpy_pass_seconds'] * 1e3:.1f} ms (np.max over the same matrix)",
        f"  ratio             {res['ratio_to_numpy_pass']:.1f}x one numpy pass",
        f"  peak memory       input {res['input_mb']:.0f} MB + working {res['peak_extra_mb']:.0f} MB"
        f" = {res['peak_total_over_input']:.2f}x input (target < 3)",
        f"  LLaMA-2-7B (6.74 B weights) at this rate: {res['llama2_7b_minutes']:.1f} min",
        json.dumps(res),
    ]
    return "\n".join(lines)
