"""Handlers of the matrix commands: ``fineq quantize | info | bench | gemm | demo``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from fineq.cli.options import check_engine_options, load_npy
from fineq.errors import FineQError
from fineq.format.fileio import load, save
from fineq.format.info import info_dict
from fineq.quant.registry import quantize


def cmd_quantize(a: argparse.Namespace) -> int:
    from fineq.outputs import check_output
    from fineq.quant.calibrated import hessian_from_inputs
    from fineq.quant.codebook import check_mode_codebook
    from fineq.quant.registry import NEEDS_HESSIAN

    out = Path(a.output or Path(a.weights).with_suffix(".fineq.npz"))
    check_output(out, force=a.force, inputs=[a.weights, a.calib])
    check_mode_codebook(a.codebook, a.mode)  # before any file is read
    w = load_npy(a.weights, "weight")
    h = None
    if a.mode in NEEDS_HESSIAN:
        if not a.calib:
            raise FineQError(f"mode {a.mode} needs --calib X.npy: float [n, K] inputs of the layer")
        x = load_npy(a.calib, "calibration")
        if x.ndim != 2 or x.dtype.kind != "f" or (w.ndim == 2 and x.shape[1] != w.shape[1]):
            raise FineQError(f"calibration file {a.calib}: expected float [n, K={w.shape[-1]}], got {x.dtype} {x.shape}")
        h = hessian_from_inputs(x)
    elif a.calib:
        raise FineQError(f"mode {a.mode} uses no --calib (calibrated modes: {', '.join(NEEDS_HESSIAN)})")
    q = quantize(w, a.mode, hessian=h, group=a.group, codebook=a.codebook)
    save(q, out)
    d = info_dict(q)
    err = float(np.sqrt(np.mean((q.dequantize() - w.astype(np.float32)) ** 2)))
    print(f"wrote {out}: {q.shape[0]}x{q.shape[1]}, {d['bits_per_weight']} bits/weight, "
          f"{100 * float(d['outlier_pair_share']):.1f}% pairs with outliers, RMS error {err:.4g}")
    return 0


def cmd_info(a: argparse.Namespace) -> int:
    q = load(a.file)
    d = info_dict(q)
    if a.json:
        print(json.dumps(d))
        return 0
    print(f"file             {a.file}")
    print(f"shape            {d['shape'][0]} x {d['shape'][1]}  ({d['blocks_per_row']} blocks/row)")
    print(f"mode             {d['mode']}")
    print(f"bits per weight  {d['bits_per_weight']} (packed only: {d['bits_per_weight_packed_only']})")
    tot = sum(d["code_histogram"].values())  # type: ignore[union-attr]
    for code, n in d["code_histogram"].items():  # type: ignore[union-attr]
        print(f"code {code}          {n:>12d}  {100 * n / tot:5.1f}%")
    print(f"pairs w/ outlier {100 * float(d['outlier_pair_share']):.1f}%")
    lh = d["level_histogram"]
    print(f"codebook         {d['codebook']}" + ("" if d["codebook"] == "int" else " (a variant outside the spec)"))
    print(f"levels {min(lh, key=int)}..+{max(lh, key=int)}    {list(lh.values())}")  # type: ignore[union-attr]
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from fineq.apps import bench

    for name in ("m", "k", "repeat"):
        if getattr(a, name) < 1:
            raise FineQError(f"--{name} must be positive, got {getattr(a, name)}")
    print(bench.report(bench.run(a.m, a.k, a.mode, a.repeat)))
    return 0


def cmd_gemm(a: argparse.Namespace) -> int:
    from fineq.engine.config import EngineConfig, coding_for
    from fineq.engine.gemm import check_activations, gemm
    from fineq.hw.run import cycles_per_second, run_gemm
    from fineq.outputs import atomic_path, check_output

    if a.output:
        check_output(a.output, force=a.force, inputs=[a.weights, a.activations])
    q = load(a.weights)
    x = check_activations(q, load_npy(a.activations, "activation"))
    if not 0 <= a.stall < 1:
        raise FineQError(f"--stall must be in [0, 1), got {a.stall}")
    check_engine_options(a)
    coding = coding_for(q.codebook, a.coding)  # the matrix's codebook decides the engine's datapath

    def announce(cyc: int, runs: int) -> None:
        rate = max(1, round(cycles_per_second(a.backend, EngineConfig(a.rows, a.cols, a.psum_depth, coding))))
        jobs = max(1, min(a.jobs or os.cpu_count() or 1, runs))
        print(f"fineq gemm: {runs} engine run(s), {cyc:,} cycles; about {cyc / rate / jobs:,.0f} s at ~{rate:,} "
              f"cycles/s per simulator on {a.backend}, {jobs} at once (plus the simulator build)",
              file=sys.stderr, flush=True)

    res = run_gemm(q, x, a.backend, seed=a.seed, rows=a.rows, cols=a.cols, psum_depth=a.psum_depth,
                   waves=a.waves, stall=a.stall, jobs=a.jobs, coding=coding, announce=announce)
    y = res.pop("y")
    ref = gemm(q, x)
    res["bit_exact"] = bool(np.array_equal(y, ref))
    if a.output:
        with atomic_path(a.output) as tmp, open(tmp, "wb") as fh:
            np.save(fh, y.astype(np.int32) if np.abs(y).max(initial=0) < 2**31 else y)
        res["output"] = str(a.output)
    print(json.dumps(res))
    return 0 if res["bit_exact"] else 1


def cmd_demo(a: argparse.Namespace) -> int:
    from fineq.apps.demo import run_demo

    return run_demo(a.backend)
