"""Synthetic LLM-like weight matrices for tests, benchmarks and the perf model.

``heavy_tailed(m, k, seed)``: Student-t entries (``df=4``, so kurtosis is
infinite-tailed like LLM weights), scaled by 0.02, with a fraction
``outlier_frac`` (default 1%) of input channels (columns) multiplied by
``outlier_gain`` (default 10), the "outlier channel" structure reported for
LLaMA-family weights. Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np


def heavy_tailed(
    m: int,
    k: int,
    seed: int = 0,
    df: float = 4.0,
    outlier_frac: float = 0.01,
    outlier_gain: float = 10.0,
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.standard_t(df, size=(m, k)).astype(np.float32)
    w *= np.float32(0.02)
    n_out = int(round(outlier_frac * k))
    if n_out:
        cols = rng.choice(k, size=n_out, replace=False)
        w[:, cols] *= np.float32(outlier_gain)
    return w


def int8_activations(k: int, n: int, seed: int = 0) -> np.ndarray:
    """Uniform int8 activations over the full range -128..127."""
    return np.random.default_rng(seed).integers(-128, 128, size=(k, n), dtype=np.int8)
