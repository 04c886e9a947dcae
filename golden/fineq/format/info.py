"""A quantized matrix described: shape, bits per weight, code and level histograms, outlier share."""

from __future__ import annotations

import numpy as np

from fineq.format.qmatrix import QuantizedMatrix


def info_dict(q: QuantizedMatrix) -> dict[str, object]:
    """Shape, bits per weight, code histogram and outlier share of a quantized matrix."""
    codes = q.codes()
    hist = np.bincount(codes.reshape(-1), minlength=4)
    lv = q.levels()
    top = q.level_max
    lhist = np.bincount((lv.reshape(-1).astype(np.int16) + top), minlength=2 * top + 1)
    return {
        "shape": list(q.shape),
        "mode": q.mode,
        "blocks_per_row": q.n_blocks,
        "bits_per_weight": round(q.bits_per_weight, 4),
        "bits_per_weight_packed_only": round(q.packed.size * 8 / (q.shape[0] * q.shape[1]), 4),
        "code_histogram": {f"{c:02b}": int(hist[c]) for c in range(4)},
        "outlier_pair_share": float(hist[1:].sum() / hist.sum()),
        "codebook": q.codebook,
        "level_histogram": {str(v): int(lhist[v + top]) for v in range(-top, top + 1)
                            if q.codebook == "int" or abs(v) != 3},
        "scale_range": [float(q.scales.min()), float(q.scales.max())],
    }
