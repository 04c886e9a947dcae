"""The workloads of the performance model: the linear layers of a model (its own matrices, or LLaMA-2 shapes
with a real model's statistics, or synthetic weights) and their cycles on the FineQ engine and the MAC array,
from the cycle model of :mod:`fineq.engine.cycles` (written once there)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fineq.engine.config import CODINGS, EngineConfig
from fineq.engine.cycles import gemm_cycles, mac_cycle_split, vector_cycles
from fineq.quant.registry import quantize
from fineq.synthetic import heavy_tailed

MODELS = {
    "llama2-7b": {"hidden": 4096, "inter": 11008, "layers": 32},
    "llama2-13b": {"hidden": 5120, "inter": 13824, "layers": 40},
}
SEQS = (32, 256, 1024, 2048)
PAPER_MAX_EFFICIENCY = 1.79


def layer_shapes(model: str) -> dict[str, tuple[int, int]]:
    """``{projection: (M, K)}`` (weight ``[out, in]``) of one transformer layer."""
    h, i = MODELS[model]["hidden"], MODELS[model]["inter"]
    return {"q_proj": (h, h), "k_proj": (h, h), "v_proj": (h, h), "o_proj": (h, h),
            "gate_proj": (i, h), "up_proj": (i, h), "down_proj": (h, i)}


@dataclass
class Layer:
    """One linear layer type of a workload: shape, how many of it, and the temporal cycles of one engine run
    over its vectors, per coding (:data:`fineq.engine.config.CODINGS`)."""

    name: str
    m: int
    k: int
    count: int
    vec_cycles: dict[str, int]


def layer_from_levels(name: str, levels: np.ndarray, count: int, cfg: EngineConfig) -> Layer:
    m, k = levels.shape
    return Layer(name, m, k, count,
                 {c: int(vector_cycles(levels, replace(cfg, coding=c)).sum()) for c in CODINGS})


def fineq_cycle_split(layer: Layer, n: int, cfg: EngineConfig) -> dict[str, int]:
    """Exact FineQ engine cycles for ``Y[M, N] = V @ X`` (N tiled by COLS), no stalls, split as
    :func:`fineq.engine.cycles.run_cycles`: preload, decode (pipeline fill), temporal (early-terminated), drain."""
    split = gemm_cycles(layer.m, layer.k, n, layer.vec_cycles[cfg.coding], cfg)
    split["total"] = sum(v for key, v in split.items() if key != "total")
    return split


def fineq_cycles(layer: Layer, n: int, cfg: EngineConfig) -> int:
    return fineq_cycle_split(layer, n, cfg)["total"]


def mac_cycles(m: int, k: int, n: int, cfg: EngineConfig) -> int:
    return mac_cycle_split(m, k, n, cfg)["total"]


def synthetic_layers(model: str, cfg: EngineConfig, seed: int = 0) -> list[Layer]:
    out = []
    for j, (name, (m, k)) in enumerate(layer_shapes(model).items()):
        lv = quantize(heavy_tailed(m, k, seed=seed + j)).levels()
        out.append(layer_from_levels(name, lv, MODELS[model]["layers"], cfg))
    return out


def scaled_layers(model: str, levels: dict[str, np.ndarray], cfg: EngineConfig) -> list[Layer]:
    """LLaMA-2 ``model``'s layer shapes with real weights' statistics: for each layer type (q, k, ...,
    down), the mean temporal cycles of a ROWS-weight vector over the real matrices of that type (all
    matrices if the type is missing) times the number of vectors of the LLaMA matrix (M x K tiles)."""
    def mean(coding: str, name: str) -> float:
        c = replace(cfg, coding=coding)
        vc = [vector_cycles(lv, c) for n, lv in levels.items() if name in n] or \
             [vector_cycles(lv, c) for lv in levels.values()]
        return float(sum(int(v.sum()) for v in vc) / sum(v.size for v in vc))

    out = []
    for name, (m, k) in layer_shapes(model).items():
        nvec = m * -(-k // cfg.rows)
        out.append(Layer(name, m, k, MODELS[model]["layers"], {c: round(mean(c, name) * nvec) for c in CODINGS}))
    return out


def file_layers(levels: dict[str, np.ndarray], cfg: EngineConfig) -> list[Layer]:
    """One layer per real matrix (count 1)."""
    return [layer_from_levels(name, lv, 1, cfg) for name, lv in levels.items()]
