"""Perplexity as the quantization literature computes it (GPTQ, OWQ, PB-LLM evaluations).

The evaluation tokens are cut into non-overlapping windows of ``seq`` tokens;
each window is one forward pass with no context from the previous one. Every
token after the first of a window is predicted, so a window contributes
``seq - 1`` negative log-likelihoods. Perplexity is ``exp`` of their mean over
all windows. (GPTQ's script multiplies each window's mean loss by ``seq``; over
equal windows that is the same mean.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fineq.progress import progress


def perplexity(model: Any, windows: np.ndarray, batch_tokens: int = 4096, desc: str = "perplexity") -> dict[str, Any]:
    """``{"ppl", "nll", "windows", "tokens", "predicted"}`` of ``model`` on ``windows`` ``int64 [W, seq]``."""
    import torch

    w, seq = windows.shape
    per_batch = max(1, batch_tokens // seq)
    total = 0.0
    count = 0
    with torch.inference_mode():
        for b0 in progress(range(0, w, per_batch), desc=desc, unit="batch"):
            ids = torch.from_numpy(windows[b0 : b0 + per_batch])
            hidden = model.model(input_ids=ids).last_hidden_state  # [B, seq, H]
            for i in range(ids.shape[0]):  # the vocabulary projection one window at a time bounds memory
                logits = model.lm_head(hidden[i, :-1]).float()
                nll = torch.nn.functional.cross_entropy(logits, ids[i, 1:], reduction="sum")
                total += float(nll)
                count += seq - 1
    mean = total / count
    return {"ppl": math.exp(mean), "nll": mean, "windows": int(w), "tokens": int(w * seq), "predicted": count}


def window_nll(model: Any, window: np.ndarray) -> float:
    """The summed negative log-likelihood of one window ``int64 [seq]`` (its ``seq - 1`` predicted tokens), a
    forward pass of its own: what :func:`perplexity` adds up per window."""
    import torch

    with torch.inference_mode():
        ids = torch.from_numpy(np.ascontiguousarray(window[None, :]))
        hidden = model.model(input_ids=ids).last_hidden_state
        logits = model.lm_head(hidden[0, :-1]).float()
        return float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))


def from_nlls(nlls: list[float], seq: int) -> dict[str, Any]:
    """``{"ppl", "nll", "windows", "tokens", "predicted"}`` from per-window summed NLLs, added in window order."""
    total = 0.0
    for v in nlls:
        total += v
    count = len(nlls) * (seq - 1)
    mean = total / count
    return {"ppl": math.exp(mean), "nll": mean, "windows": len(nlls), "tokens": len(nlls) * seq, "predicted": count}
