"""One decoder layer of a real model through the RTL engine (``fineq rtl-layer``): an application of
:mod:`fineq.llm` (model, text, activations capture) and :mod:`fineq.hw` (engine runs).

The seven linears of layer ``L`` (q, k, v, o, gate, up, down) get their real
inputs for the first ``--tokens`` tokens of a real text (forward hooks on the
float model), quantized to int8 per token (absmax, as :mod:`fineq.llm.int8path`).
Each weight is quantized with a FineQ mode, each product runs on the RTL
engine (``--backend``) and is checked bit-exactly against :func:`fineq.gemm`
and cycle-exactly against the cycle model; the dequantized result
``s_w * s_x * (V @ X)`` is compared with the float layer's output ``W x``.
The seven GEMMs are independent simulations, ``--jobs`` at a time (default:
one per core).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.hw.procs import worker_pool


def run_layer(model: str, layer: int, tokens: int, text: str | None, mode: str, backend: str, cfg: Any,
              jobs: int | None = None, report: Callable[[dict[str, Any]], None] | None = None,
              codebook: str = "int") -> dict[str, Any]:
    """Run the seven linears of decoder layer ``layer`` of ``model``, quantized with ``mode`` to ``codebook``'s levels
    (``cfg.coding`` must run them), through ``backend``; ``report(row)`` is called as each linear finishes. Returns
    ``{"model", "reference", "layer", "tokens", "mode", "codebook", "backend", "linears", "total"}``."""
    import torch

    from fineq.engine.config import coding_for
    from fineq.engine.gemm import gemm
    from fineq.hw.run import run_gemm
    from fineq.llm import corpus
    from fineq.llm.capture import capture_inputs
    from fineq.llm.int8path import quantize_tokens
    from fineq.llm.models import load
    from fineq.quant.registry import quantize

    if tokens < 1:
        raise FineQError(f"--tokens must be positive, got {tokens}")
    if mode not in ("paper", "search"):
        raise FineQError(f"--mode {mode}: rtl-layer quantizes with the data-free modes paper or search")
    coding_for(codebook, cfg.coding)  # before the model loads
    t0 = time.perf_counter()
    raw, desc = corpus.read_text(text)  # checked before the model loads
    lm = load(model)
    toks = corpus.tokenize(lm.tokenizer, raw)
    if len(toks) < tokens:
        raise FineQError(f"the text has {len(toks)} tokens, fewer than --tokens {tokens}")
    inputs = capture_inputs(lm, layer, toks[: tokens])
    mods = dict(lm.model.named_modules())
    print(f"{lm.name} ({lm.reference}), layer {layer}, {tokens} tokens of {desc}; FineQ {mode} ({codebook} levels, "
          f"{cfg.coding} coding), "
          f"int8 per-token activations, {cfg.rows}x{cfg.cols} engine on {backend}", file=sys.stderr, flush=True)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(inputs)))
    work = {}
    for name, xf in inputs.items():
        w = mods[name].weight.detach().float()
        q = quantize(w, mode, codebook=codebook)
        xq, sx = quantize_tokens(torch.from_numpy(xf))
        work[name] = (w, xf, q, xq.numpy().T.copy(), sx)  # xi: int8 [K, T]

    def one(name: str) -> tuple[dict[str, Any], float]:
        _, _, q, xi, _ = work[name]
        t1 = time.perf_counter()
        res = run_gemm(q, xi, backend, rows=cfg.rows, cols=cfg.cols, psum_depth=cfg.psum_depth, jobs=1,
                       coding=cfg.coding)
        return res, time.perf_counter() - t1

    if backend == "verilator":
        from fineq.hw.native import build

        build(cfg)  # once, before the linears share it
    rows = []
    with worker_pool(jobs) as pool:  # each GEMM is a simulator process: threads only wait; killed on failure
        for name, (res, wall) in zip(work, pool.map(one, work), strict=True):
            w, xf, q, xi, sx = work[name]
            ref = gemm(q, xi)
            y = res["y"].astype(np.float64) * sx.numpy()[None, :] * q.scales.astype(np.float64)[:, None]
            yf = (w.double() @ torch.from_numpy(xf).double().T).numpy()
            rel = float(np.linalg.norm(y - yf) / max(np.linalg.norm(yf), 1e-30))
            row = {"linear": name, "m": q.shape[0], "k": q.shape[1], "n": tokens,
                   "bit_exact": bool(np.array_equal(res["y"], ref)), "cycles": res["cycles"],
                   "model_cycles": res["model_cycles"], "cycles_match_model": res["cycles"] == res["model_cycles"],
                   "sim_seconds": res["sim_seconds"], "wall_seconds": round(wall, 2),
                   "cycles_per_second": res["cycles_per_second"], "rel_error_vs_float": rel}
            rows.append(row)
            if report is not None:
                report(row)
    tot = {"cycles": sum(r["cycles"] for r in rows), "sim_seconds": round(sum(r["sim_seconds"] for r in rows), 3),
           "all_bit_exact": all(r["bit_exact"] for r in rows),
           "all_cycles_match": all(r["cycles_match_model"] for r in rows),
           "wall_seconds": round(time.perf_counter() - t0, 1), "jobs": jobs}
    return {"model": lm.name, "reference": lm.reference, "layer": layer, "tokens": tokens, "mode": mode,
            "codebook": codebook, "backend": backend, "linears": rows, "total": tot}
