"""FineQ mode ``recon``: ``gptq-ord``, then its levels and row scales trained against the output they must
reproduce (block-wise reconstruction), in the spec's packed format unchanged.

Written for this project after EfficientQAT's Block-AP (Chen et al., "EfficientQAT: Efficient
Quantization-Aware Training for Large Language Models", ACL 2025; github.com/OpenGVLab/EfficientQAT,
``quantize/block_ap.py``): each decoder block in turn, its quantized weights are trained with a
straight-through estimator (STE) for the rounding, together with their quantization step (here the row scale),
so that the quantized block, fed the quantized model's own inputs, reproduces the float block's outputs (MSE);
AdamW, cosine learning-rate decay. What differs, and what is simplified:

* **FineQ's codebook.** Every weight keeps the pair code ``gptq-ord`` chose for it (spec section 4): a zeroed
  position stays 0, a 2-bit one stays in -1..+1, a 3-bit one in -3..+3 (with the power-of-two codebook, the
  variant outside the spec, in {0, +-1, +-2, +-4}: the STE rounds to those levels,
  :mod:`fineq.quant.codebook`). Codes are not re-chosen (a discrete choice the STE cannot move); only the
  levels inside them and the scales train.
* **Start from GPTQ, not from round-to-nearest.** The latent level ``u`` (in units of the row's scale) starts
  at ``gptq-ord``'s level plus the part of ``w / s`` it rounded away, clipped to +-0.45, so the first forward
  pass is exactly ``gptq-ord`` and the latent sits as close to the float weight as that allows.
* **The scale trains in the log domain** (``s = s0 exp(t)``), so it stays positive; it is rounded to float16
  at the end and the levels are read off ``u`` by rounding (half to even) and clipping to the code's range.
* **Kept only if it wins:** the trained block's loss on all the calibration data is compared with
  ``gptq-ord``'s; when it is not lower, ``gptq-ord``'s levels and scales are kept.
* No end-to-end phase (EfficientQAT's E2E-QP), no validation split or early stop, no mixed precision; the
  norms and every other float parameter stay as they are.

The mode needs a model: :mod:`fineq.llm.recon` trains each decoder block's seven linears together against the
block's outputs. On one matrix alone there is nothing to reconstruct but the layer's own output, which
``gptq-ord`` already minimizes; measured, STE training through the layer's Hessian only made it worse (on a
synthetic 16 x 96 layer every learning rate tried raised the output error, by 6% to 180%), so ``fineq quantize``
does not offer the mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.format.codec import SPEC_CODEBOOK
from fineq.quant.codebook import round_levels_torch

RECON_MODE = "recon"
#: how far the latent level may start from ``gptq-ord``'s level (below 0.5, so it rounds back to it)
INIT_MARGIN = 0.45


@dataclass(frozen=True)
class ReconConfig:
    """Training settings of mode ``recon`` (the defaults are what docs/accuracy.md measured)."""

    epochs: int = 4  # passes over the calibration batches, per block
    lr_level: float = 5e-3  # AdamW learning rate of the latent levels (units of one level)
    lr_scale: float = 5e-3  # AdamW learning rate of the log row scales
    batch: int = 2  # calibration windows per step (model runs)
    #: keep every engine vector's largest magnitude (its temporal cycles) at most what the start had; for
    #: starts from ``gptq-hw``, whose caps are the point
    keep_vector_caps: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch < 1:
            raise FineQError(f"recon needs epochs >= 0 and batch >= 1, got {self.epochs} and {self.batch}")
        if not (self.lr_level >= 0 and self.lr_scale >= 0):
            raise FineQError(f"recon learning rates must be at least 0, got {self.lr_level}, {self.lr_scale}")


class LatentFineQ:
    """One linear's FineQ weight made trainable: latent levels ``u`` and log scales ``t``, codes fixed;
    ``vector``: also cap each run of ``vector`` columns of a row at its starting largest magnitude (at least 1).

    ``weight()`` is ``s[:, None] * clamp(round_ste(u), -lim, lim) * allowed`` with ``s = s0 exp(t)``; ``harden()``
    returns ``(levels int8 [M, K], codes, scales float16 [M])`` for :func:`fineq.format.qmatrix.from_levels`.
    With ``group`` the scales are ``[M, ceil(K/group)]``, one per group of a row (each trains); ``codebook``: the
    levels the rounding goes to (``pow2``: {0, +-1, +-2, +-4}).
    """

    def __init__(self, w: Any, levels: np.ndarray, codes: np.ndarray, scales: np.ndarray,
                 vector: int | None = None, group: int | None = None, codebook: str = SPEC_CODEBOOK) -> None:
        import torch

        from fineq.quant.calibrated import code_limits

        wt = torch.as_tensor(w).detach().to("cpu", torch.float32)
        m, k = wt.shape
        self.group, self.k, self.codebook = group, k, codebook
        want = (m,) if group is None else (m, -(-k // group))
        if levels.shape != (m, k) or scales.shape != want:
            raise FineQError(f"recon: levels {levels.shape} and scales {scales.shape} do not fit weights {(m, k)}"
                             + ("" if group is None else f" in groups of {group}"))
        cd = np.asarray(codes, dtype=np.int64)
        if cd.shape[0] != m or 6 * cd.shape[1] < k:
            raise FineQError(f"recon: codes {cd.shape} do not cover weights {(m, k)}")
        self.codes = np.asarray(codes, dtype=np.uint8)
        lim, allowed = code_limits(cd, k, codebook)
        if vector is not None:  # no vector of ``vector`` columns may need more temporal cycles than at the start
            mag = np.abs(np.asarray(levels, dtype=np.float32))
            for c0 in range(0, k, vector):
                top = np.maximum(mag[:, c0 : c0 + vector].max(axis=1, keepdims=True), 1.0)
                lim[:, c0 : c0 + vector] = np.minimum(lim[:, c0 : c0 + vector], top)
        self.lim = torch.from_numpy(lim)
        self.allowed = torch.from_numpy(allowed)
        s16 = np.asarray(scales, dtype=np.float16).reshape(m, -1)  # [M, 1] per row, [M, G] in groups
        self.s0 = torch.from_numpy(s16.astype(np.float32))
        v = torch.from_numpy(np.asarray(levels, dtype=np.float32))
        inv = torch.where(self.s0 > 0, 1.0 / torch.where(self.s0 > 0, self.s0, 1.0), 0.0)
        frac = torch.clamp(wt * self._cols(inv) - v, -INIT_MARGIN, INIT_MARGIN)
        self.u = torch.nn.Parameter(torch.where(self.allowed, v + frac, 0.0))
        self.t = torch.nn.Parameter(torch.zeros(s16.shape))
        self.s16_init = s16
        self.levels_init = np.asarray(levels, dtype=np.int8)

    def _levels(self, ste: bool) -> Any:
        import torch

        r = round_levels_torch(self.u, self.codebook)
        q = self.u + (r - self.u).detach() if ste else r
        q = torch.maximum(torch.minimum(q, self.lim), -self.lim)
        return q * self.allowed

    def _cols(self, s: Any) -> Any:
        """Scales ``[M, 1]`` or ``[M, G]`` as they apply to the columns: broadcast per row, repeated per group."""
        import torch

        return s if self.group is None else torch.repeat_interleave(s, self.group, dim=1)[:, : self.k]

    def weight(self) -> Any:
        """The dequantized weight, differentiable in ``u`` (STE) and ``t``."""
        import torch

        s = self.s0 * torch.exp(self.t)
        return self._levels(ste=True) * self._cols(s)

    def harden(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The trained ``(levels, codes, scales)``; a row with a trained scale that is not a positive finite float16
        keeps its starting scales and levels."""
        import torch

        with torch.no_grad():
            lv = self._levels(ste=False).to(torch.int8).numpy()
            with np.errstate(over="ignore"):
                s16 = (self.s0 * torch.exp(self.t)).numpy().astype(np.float16)
        bad = (~(np.isfinite(s16) & (s16 > 0)) & (self.s16_init > 0)).any(axis=1)
        s16 = np.where(self.s16_init > 0, s16, self.s16_init).astype(np.float16)
        s16[bad] = self.s16_init[bad]
        lv[bad] = self.levels_init[bad]
        return lv, self.codes, (s16[:, 0] if self.group is None else s16)

    def hard_weight(self) -> Any:
        """``harden()``'s weight, float32 torch ``[M, K]``, as the packed format dequantizes it."""
        import torch

        lv, _, s16 = self.harden()
        return torch.from_numpy(lv.astype(np.float32)) * self._cols(torch.from_numpy(
            s16.reshape(lv.shape[0], -1).astype(np.float32)))


def train(latents: list[LatentFineQ], loss_of: Callable[[int], Any], n_batches: int, cfg: ReconConfig) -> None:
    """AdamW over the latents' levels and scales, ``cfg.epochs`` passes of ``loss_of(batch)`` for ``batch`` in
    ``range(n_batches)``, cosine learning-rate decay to a tenth (EfficientQAT's schedule)."""
    import torch

    steps = cfg.epochs * n_batches
    if steps == 0 or not latents:
        return
    opt = torch.optim.AdamW([{"params": [lt.u for lt in latents], "lr": cfg.lr_level},
                             {"params": [lt.t for lt in latents], "lr": cfg.lr_scale}], weight_decay=0.0)
    base = [cfg.lr_level, cfg.lr_scale]
    for step in range(steps):
        frac = 0.1 + 0.45 * (1.0 + math.cos(math.pi * step / steps))
        for g, b in zip(opt.param_groups, base, strict=True):
            g["lr"] = b * frac
        opt.zero_grad(set_to_none=True)
        loss = loss_of(step % n_batches)
        if not torch.isfinite(loss):
            raise FineQError(f"recon: the reconstruction loss became {loss.item()} at step {step}")
        loss.backward()
        opt.step()
