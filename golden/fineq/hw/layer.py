"""``fineq rtl-layer``: one decoder layer of a real model through the RTL engine.

The seven linears of layer ``L`` (q, k, v, o, gate, up, down) get their real
inputs for the first ``--tokens`` tokens of a real text (forward hooks on the
float model), quantized to int8 per token (absmax, as :mod:`fineq.int8path`).
Each weight is quantized with a FineQ mode, each product runs on the RTL
engine (``--backend``) and is checked bit-exactly against :func:`fineq.gemm`
and cycle-exactly against the cycle model; the dequantized result
``s_w * s_x * (V @ X)`` is compared with the float layer's output ``W x``.
The seven GEMMs are independent simulations, ``--jobs`` at a time (default:
one per core).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import FineQError


def capture_inputs(lm: Any, layer: int, tokens: np.ndarray) -> dict[str, np.ndarray]:
    """``{linear name: float32 [T, K]}``: the inputs of layer ``layer``'s linears for one token window."""
    import torch

    from ..models import decoder_linears, linear_layer_index

    lins = {n: m for n, m in decoder_linears(lm.model).items() if linear_layer_index(n) == layer}
    if not lins:
        raise FineQError(f"the model has no decoder layer {layer}")
    got: dict[str, np.ndarray] = {}
    hooks = [m.register_forward_hook(lambda _m, a, _o, n=n: got.__setitem__(n, a[0][0].float().numpy().copy()))
             for n, m in lins.items()]
    try:
        with torch.inference_mode():
            lm.model(input_ids=torch.from_numpy(tokens[None]), use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    return got


def cli_rtl_layer(a: argparse.Namespace) -> int:
    import torch

    from .. import corpus
    from ..engine import EngineConfig
    from ..gemm import gemm
    from ..int8path import quantize_tokens
    from ..models import load
    from ..qmatrix import quantize
    from ..run import run_gemm

    if a.tokens < 1:
        raise FineQError(f"--tokens must be positive, got {a.tokens}")
    if a.mode not in ("paper", "search"):
        raise FineQError(f"--mode {a.mode}: rtl-layer quantizes with the data-free modes paper or search")
    t0 = time.perf_counter()
    lm = load(a.model)
    raw, desc = corpus.read_text(a.text)
    toks = corpus.tokenize(lm.tokenizer, raw)
    if len(toks) < a.tokens:
        raise FineQError(f"the text has {len(toks)} tokens, fewer than --tokens {a.tokens}")
    inputs = capture_inputs(lm, a.layer, toks[: a.tokens])
    mods = dict(lm.model.named_modules())
    cfg = EngineConfig(a.rows, a.cols, a.psum_depth, a.coding)
    print(f"{lm.name} ({lm.reference}), layer {a.layer}, {a.tokens} tokens of {desc}; FineQ {a.mode}, "
          f"int8 per-token activations, {cfg.rows}x{cfg.cols} engine on {a.backend}", file=sys.stderr, flush=True)
    jobs = max(1, min(a.jobs or os.cpu_count() or 1, len(inputs)))
    work = {}
    for name, xf in inputs.items():
        w = mods[name].weight.detach().float()
        q = quantize(w, a.mode)
        xq, sx = quantize_tokens(torch.from_numpy(xf))
        work[name] = (w, xf, q, xq.numpy().T.copy(), sx)  # xi: int8 [K, T]

    def one(name: str) -> tuple[dict[str, Any], float]:
        _, _, q, xi, _ = work[name]
        t1 = time.perf_counter()
        res = run_gemm(q, xi, a.backend, rows=cfg.rows, cols=cfg.cols, psum_depth=cfg.psum_depth, jobs=1,
                       coding=cfg.coding)
        return res, time.perf_counter() - t1

    if a.backend == "verilator":
        from .native import build

        build(cfg)  # once, before the linears share it
    rows = []
    with ThreadPoolExecutor(jobs) as pool:  # each GEMM is a simulator process: threads only wait
        for name, (res, wall) in zip(work, pool.map(one, work), strict=True):
            w, xf, q, xi, sx = work[name]
            ref = gemm(q, xi)
            y = res["y"].astype(np.float64) * sx.numpy()[None, :] * q.scales.astype(np.float64)[:, None]
            yf = (w.double() @ torch.from_numpy(xf).double().T).numpy()
            rel = float(np.linalg.norm(y - yf) / max(np.linalg.norm(yf), 1e-30))
            row = {"linear": name, "m": q.shape[0], "k": q.shape[1], "n": a.tokens,
                   "bit_exact": bool(np.array_equal(res["y"], ref)), "cycles": res["cycles"],
                   "model_cycles": res["model_cycles"], "cycles_match_model": res["cycles"] == res["model_cycles"],
                   "sim_seconds": res["sim_seconds"], "wall_seconds": round(wall, 2),
                   "cycles_per_second": res["cycles_per_second"], "rel_error_vs_float": rel}
            rows.append(row)
            print(f"{name:<36}{q.shape[0]:>6}{q.shape[1]:>6}  bit-exact {row['bit_exact']}  cycles "
                  f"{row['cycles']:>9,} (model {row['model_cycles']:,})  {row['sim_seconds']:.2f} s sim  "
                  f"rel. error {rel:.4f}", flush=True)
    tot = {"cycles": sum(r["cycles"] for r in rows), "sim_seconds": round(sum(r["sim_seconds"] for r in rows), 3),
           "all_bit_exact": all(r["bit_exact"] for r in rows),
           "all_cycles_match": all(r["cycles_match_model"] for r in rows),
           "wall_seconds": round(time.perf_counter() - t0, 1), "jobs": jobs}
    print(f"layer {a.layer}: {tot['cycles']:,} cycles, {tot['sim_seconds']} s of simulation, "
          f"bit-exact {tot['all_bit_exact']}, cycles = model {tot['all_cycles_match']}, {tot['wall_seconds']} s in all")
    print(json.dumps({"model": lm.name, "reference": lm.reference, "layer": a.layer, "tokens": a.tokens,
                      "mode": a.mode, "backend": a.backend, "linears": rows, "total": tot}))
    return 0 if tot["all_bit_exact"] and tot["all_cycles_match"] else 1
