"""Options and input checks shared by the command handlers; the backend and coding choices come from their
registries (:data:`fineq.hw.run.BACKENDS`, :data:`fineq.engine.config.CODINGS`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fineq.engine.config import CODINGS
from fineq.errors import FineQError
from fineq.format.codec import CODEBOOKS, SPEC_CODEBOOK
from fineq.hw.run import BACKENDS
from fineq.quant.layer_rules import LayerRules, load_rules


def load_npy(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise FineQError(f"{what} file {path} does not exist")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise FineQError(f"{what} file {path} is not a readable .npy array: {e}") from e


def engine_options(p: argparse.ArgumentParser, backend: str, backend_help: str, jobs_help: str) -> None:
    """The RTL engine's options, shared by gemm and rtl-layer (checked by :func:`check_engine_options`)."""
    p.add_argument("--backend", choices=BACKENDS, default=backend, help=backend_help)
    p.add_argument("--rows", type=int, default=64, help="engine ROWS, the K tile (default 64)")
    p.add_argument("--cols", type=int, default=64, help="engine COLS, the N tile (default 64)")
    p.add_argument("--psum-depth", type=int, default=256, help="engine PSUM_DEPTH, rows of M per chunk (default 256)")
    p.add_argument("--coding", choices=CODINGS, default=None,
                   help="the engine's coding: the paper's thermometer (the default for the spec's levels), the "
                   "binary-weighted variant, or pow2, the power-of-two datapath (the default, and the only coding, "
                   "for the pow2 codebook)")
    p.add_argument("--jobs", type=int, help=jobs_help)


def codebook_option(p: argparse.ArgumentParser) -> None:
    """``--codebook``: the levels a FineQ mode rounds to (:data:`fineq.format.codec.CODEBOOKS`)."""
    p.add_argument("--codebook", choices=tuple(CODEBOOKS), default=SPEC_CODEBOOK,
                   help="the levels: int, the spec's -3..+3 (default), or pow2, {0, +-1, +-2, +-4} (a variant "
                   "outside the spec, run by the power-of-two datapath, --coding pow2)")


def check_engine_options(a: argparse.Namespace) -> None:
    if a.jobs is not None and a.jobs < 1:
        raise FineQError(f"--jobs must be positive, got {a.jobs}")
    for name in ("rows", "cols", "psum_depth"):
        if getattr(a, name) < 1:
            raise FineQError(f"--{name.replace('_', '-')} must be positive, got {getattr(a, name)}")


def rule_options(p: argparse.ArgumentParser) -> None:
    """Per-layer rules (:mod:`fineq.quant.layer_rules`), read by :func:`rules_of`."""
    p.add_argument("--rule", action="append", metavar="REGEX=MODE",
                   help="per-layer rule, in order, first match wins: linears whose name matches REGEX take FineQ "
                   "mode MODE, or stay float with skip (repeatable)")
    p.add_argument("--rules", metavar="FILE", help="a file of rules, one REGEX = MODE per line (# comments), "
                   "after the --rule ones")


def rules_of(a: argparse.Namespace) -> LayerRules:
    return load_rules(a.rule, a.rules)
