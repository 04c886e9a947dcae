"""Real weights from files for the hardware side (``fineq perf --weights``, ``make synth``'s workload): the
decoder linears' float matrices of a safetensors file, a torch state dict or anything ``fineq eval --model``
takes, or the stored levels of a ``.fineq.safetensors``."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np

from fineq.errors import FineQError
from fineq.llm.models import PICKLE_REFUSED, PROJ
from fineq.quant.layer_rules import LayerRules
from fineq.quant.registry import quantize

#: a decoder block's matrix in a state dict: every 2-D ``layers.<i>....weight`` (q/k/v/o/gate/up/down, fused
#: qkv_proj / gate_up_proj), as :func:`fineq.llm.models.decoder_linears` finds them in a loaded model
_BLOCK_MATRIX = re.compile(r"(^|\.)layers\.\d+\..+\.weight$")


def load_weight_file(path: str | Path) -> dict[str, np.ndarray]:
    """``{name: float32 [out, in]}`` for every ``*_proj.weight`` of a model: a safetensors file, a torch
    state dict (``.pt``/``.pth``/``.bin``), or anything ``fineq eval --model`` takes (a Hugging Face folder,
    a ``.gguf`` file, ``smollm2``)."""
    from fineq.llm.models import is_model_spec

    if is_model_spec(path):
        from fineq.llm.models import decoder_linears, load

        lm = load(path)
        return {f"{n}.weight": m.weight.detach().float().numpy() for n, m in decoder_linears(lm.model).items()}
    path = Path(path)
    if not path.is_file():
        raise FineQError(f"weights file {path} does not exist")
    if path.suffix not in (".safetensors", ".pt", ".pth", ".bin"):
        raise FineQError(f"weights file {path}: expected .safetensors, a torch state dict (.pt/.pth/.bin), "
                         "a .gguf file, a model folder or 'smollm2'")
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
                sd = sd["state_dict"]
    except pickle.UnpicklingError as e:
        raise FineQError(f"{path}: {PICKLE_REFUSED}") from e
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad file for the user
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise FineQError(f"{path}: not a readable safetensors file or torch state dict ({first})") from e
    if not isinstance(sd, dict):
        raise FineQError(f"{path}: expected a state dict, got {type(sd).__name__}")
    out = {}
    for name, t in sd.items():
        if _BLOCK_MATRIX.search(name) and hasattr(t, "dim") and t.dim() == 2:
            out[name] = t.detach().to(torch.float32).numpy()
    if not out:
        raise FineQError(f"{path}: no decoder block matrices (layers.<i>....weight, 2-D: {', '.join(PROJ)}, or fused "
                         "ones such as qkv_proj) found")
    return out


def is_model_file(path: str | Path) -> bool:
    """A ``.fineq.safetensors`` written by ``fineq quantize-model`` (levels stored, any mode)."""
    return str(path).endswith(".fineq.safetensors")


def file_levels(path: str | Path, mode: str | None = None, rules: LayerRules | None = None) -> tuple[
        dict[str, np.ndarray], str]:
    """``({name: int8 levels}, mode)`` of a real model: a ``.fineq.safetensors`` gives its stored levels
    (whatever mode made them, calibrated ones included); anything else is quantized here with a data-free
    mode (``paper``, the default, or ``search``)."""
    if rules and is_model_file(path):
        raise FineQError(f"--rule: {path} holds its levels already; rules apply when quantizing (quantize-model)")
    if rules and any(m == "skip" for _, m in rules.rules):
        raise FineQError("--rule ...=skip: fineq perf runs every linear on the accelerator (there is no float path); "
                         "give a mode")
    if is_model_file(path):
        from fineq.llm.modelfile import read_model_file

        qms, meta = read_model_file(path)
        stored = meta.get("mode", "unknown")
        if mode is not None and mode != stored:
            raise FineQError(f"--mode {mode}: {path} holds levels quantized with mode {stored}; drop --mode")
        return {n: q.levels() for n, q in qms.items()}, stored
    mode = mode or "paper"
    if mode not in ("paper", "search"):
        raise FineQError(f"--mode {mode}: fineq perf quantizes with the data-free modes paper or search; for a "
                         "calibrated mode, run fineq quantize-model --mode ... and pass its .fineq.safetensors")
    for m in (rules.modes if rules else ()):
        if m not in ("paper", "search"):
            raise FineQError(f"--rule ...={m}: fineq perf quantizes with the data-free modes paper or search")
    return {name: quantize(w, (rules.decide(name) if rules else None) or mode).levels()
            for name, w in load_weight_file(path).items()}, mode + (" with rules" if rules else "")
