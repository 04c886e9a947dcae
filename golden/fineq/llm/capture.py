"""Activations capture: the real inputs of a decoder layer's linears, from forward hooks on the float model."""

from __future__ import annotations

from typing import Any

import numpy as np

from fineq.errors import FineQError


def capture_inputs(lm: Any, layer: int, tokens: np.ndarray) -> dict[str, np.ndarray]:
    """``{linear name: float32 [T, K]}``: the inputs of layer ``layer``'s linears for one token window."""
    import torch

    from fineq.llm.models import decoder_linears, linear_layer_index

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
