"""Big models one decoder block at a time: the model's skeleton on the meta device, its weights read from the
checkpoint's safetensors files when a block is needed.

:func:`open_streamed` builds the model from its ``config.json`` with no weights (accelerate's
``init_empty_weights``; buffers such as rotary frequencies are real), then reads every tensor that is not in a
decoder block (embeddings, final norm, ``lm_head``) from the checkpoint. A :class:`BlockLoader` puts one block's
weights on the compute device (:meth:`BlockLoader.load`, read through safetensors' memory map, converted to
float32 as :func:`fineq.llm.models.load` does) and sends them back to the meta device when the block is done
(:meth:`BlockLoader.release`), so resident memory holds the non-block weights, one block and the calibration
activations, not the whole model. With ``head=False`` (``quantize-model``) an untied ``lm_head`` is not read
(the calibrated pass stops before it) and a plain ``nn.Embedding`` stays memory-mapped in the checkpoint's dtype
(its float32 output is then exactly the float32 model's). :func:`fineq.llm.apply.apply` drives it (``blocks=``).

Streaming needs a Hugging Face folder whose safetensors (one file, or shards with
``model.safetensors.index.json``) hold every parameter under the model's own names; anything else (a GGUF file,
``pytorch_model.bin``, renamed keys) gives ``None`` and the caller loads the whole model. Function-preserving
transforms (``+fold``, ``+rot``) change every weight of the model at once and are not streamed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.format import stlayout
from fineq.llm.models import LoadedModel, decoder_layers, load


def resolve_device(spec: str | None) -> Any:
    """The compute device ``--device`` names: ``None`` is CUDA when torch sees a GPU, else the CPU; an unknown or
    absent device is a FineQError naming it."""
    import torch

    if spec is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError) as e:
        raise FineQError(f"device {spec!r} is not a torch device (cpu, cuda, cuda:N)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise FineQError(f"device {spec}: torch sees no GPU on this machine (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise FineQError(f"device {spec}: torch sees {torch.cuda.device_count()} GPU(s)")
    elif dev.type != "cpu":
        raise FineQError(f"device {spec}: only cpu and cuda devices are supported")
    return dev


def block_devices(model: Any, device: Any, max_memory: dict[Any, Any] | None = None) -> list[Any]:
    """The device of each decoder block. One device for all, unless ``device`` is ``"auto"``: then accelerate's
    ``infer_auto_device_map`` spreads the blocks over the GPUs torch sees (or over ``max_memory``'s devices), the
    CPU taking what does not fit; with no GPU every block is on the CPU."""
    import torch

    layers = decoder_layers(model)
    if str(device) != "auto":
        return [torch.device(device)] * len(layers)
    from accelerate import infer_auto_device_map

    prefix = next(n for n, m in model.named_modules() if m is layers)
    dmap = infer_auto_device_map(model, max_memory=max_memory, no_split_module_classes=[type(layers[0]).__name__])

    def where(i: int) -> Any:
        name = f"{prefix}.{i}"
        best = max((k for k in dmap if k == "" or name == k or name.startswith(k + ".")), key=len, default=None)
        if best is None:  # the block's parts were mapped one by one: its first part decides
            best = next(k for k in dmap if k.startswith(name + "."))
        d = dmap[best]
        if d == "disk":
            return torch.device("cpu")
        return torch.device(f"cuda:{d}" if isinstance(d, int) else d)

    return [where(i) for i in range(len(layers))]


@dataclass
class BlockLoader:
    """Loads and releases the decoder blocks of a model built on the meta device."""

    model: Any
    files: dict[str, Path]  # tensor name -> the safetensors file holding it
    prefix: str  # the module name of the decoder blocks' list ("model.layers")
    loaded: set[int] = field(default_factory=set)

    def _names(self, i: int) -> list[str]:
        head = f"{self.prefix}.{i}."
        return [n for n, _ in self.model.named_parameters(remove_duplicate=False) if n.startswith(head)]

    def load(self, i: int, device: Any) -> None:
        """Block ``i``'s weights from the checkpoint onto ``device`` (float32)."""
        _read_into(self.model, self.files, self._names(i), device)
        self.loaded.add(i)

    def release(self, i: int) -> None:
        """Block ``i``'s weights back to the meta device (its memory freed)."""
        from accelerate.utils import set_module_tensor_to_device

        for n in self._names(i):
            set_module_tensor_to_device(self.model, n, "meta")
        self.loaded.discard(i)


def _read_into(model: Any, files: dict[str, Path], names: list[str], device: Any, mapped: bool = False) -> None:
    import torch
    from accelerate.utils import set_module_tensor_to_device
    from safetensors import safe_open

    by_file: dict[Path, list[str]] = {}
    for n in names:
        by_file.setdefault(files[n], []).append(n)
    for path, ns in by_file.items():
        if mapped:  # as stored, memory-mapped: only the pages a lookup touches become resident
            for n in ns:
                t = _mapped(path, n)
                set_module_tensor_to_device(model, n, device, value=t, dtype=t.dtype)
            continue
        with safe_open(str(path), framework="pt") as f:  # closed (unmapped) once the block's tensors are read
            for n in ns:
                set_module_tensor_to_device(model, n, device, value=f.get_tensor(n).to(torch.float32))


def _mapped(path: Path, name: str) -> Any:
    """Tensor ``name`` of a safetensors file as a copy-on-write memory map of the file, in its stored dtype (read
    from disk as it is touched; writes stay in this process)."""
    import torch

    dtypes = {"BF16": (torch.bfloat16, np.int16), "F16": (torch.float16, np.float16),
              "F32": (torch.float32, np.float32), "F64": (torch.float64, np.float64)}
    try:
        tdt, ndt = dtypes[stlayout.span(path, name).dtype]
        return torch.from_numpy(stlayout.map_array(path, name, ndt, writeable=True)).view(tdt)
    except KeyError as err:
        raise FineQError(f"{path}: tensor {name} has dtype {err}, not one of {', '.join(dtypes)}") from err


def _prompt_free() -> None:
    """On glibc, large buffers (1 MiB and up) from their own mappings, returned to the system when freed: glibc's
    default raises that threshold as buffers are freed, then keeps freed blocks and activations in its heap, which
    adds hundreds of MB to the peak of a block-by-block pass. Elsewhere nothing happens."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(1 << 20))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def checkpoint_files(folder: Path) -> dict[str, Path] | None:
    """``{tensor name: file}`` of a folder's safetensors checkpoint, or None when it has none."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            wmap = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError, TypeError) as e:
            raise FineQError(f"{index}: not a safetensors index ({e})") from e
        return {n: folder / f for n, f in wmap.items()}
    single = folder / "model.safetensors"
    if not single.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(single), framework="pt") as f:
            return dict.fromkeys(f.keys(), single)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for bad headers
        raise FineQError(f"{single}: not a readable safetensors file ({e})") from e


def load_streamed(spec: str | os.PathLike[str], head: bool = True) -> LoadedModel:
    """:func:`fineq.llm.models.load` with the blocks of a streamable folder left on the meta device
    (``blocks`` is their loader); any other model is loaded whole (``blocks`` None). ``head=False`` leaves an
    untied ``lm_head`` on the meta device too (the calibrated pass never reaches it)."""
    return load(spec, build=lambda folder: open_streamed(folder, head))


def open_streamed(folder: Path, head: bool = True) -> tuple[Any, BlockLoader] | None:
    """The model of ``folder`` with its non-block weights loaded (the output embeddings only with ``head``, or
    when they are the input embeddings) and its blocks on the meta device, and the loader of its blocks; None
    when the folder cannot be streamed (see the module docstring)."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    files = checkpoint_files(folder)
    if files is None:
        return None
    _prompt_free()
    config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    with init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, trust_remote_code=False)
    tied = getattr(model, "_tied_weights_keys", None) or {}
    tie = bool(getattr(config.get_text_config(), "tie_word_embeddings", False))
    names = [n for n, _ in model.named_parameters() if not (tie and n in tied and n not in files)]
    if any(n not in files for n in names):
        return None  # keys renamed on load, or a checkpoint of another layout: the whole-model loader handles it
    layers = decoder_layers(model)
    prefix = next(n for n, m in model.named_modules() if m is layers)
    block = re.compile(rf"^{re.escape(prefix)}\.\d+\.")
    out_emb = model.get_output_embeddings()
    skip = set() if head or out_emb is None else {f"{n}.weight" for n, m in model.named_modules() if m is out_emb}
    emb = model.get_input_embeddings()
    narrow = not head and type(emb) is torch.nn.Embedding and emb is not out_emb  # a plain lookup: kept as stored
    emb_w = {f"{n}.weight" for n, m in model.named_modules() if m is emb} if narrow else set()
    _read_into(model, files, [n for n in names if not block.match(n) and n not in skip | emb_w], "cpu")
    _read_into(model, files, sorted(emb_w), "cpu", mapped=True)
    if narrow:  # a bfloat16 row read as float32 is exact: the lookup's output is the float32 model's
        emb.register_forward_hook(lambda _m, _a, y: y.to(torch.float32))
    model.tie_weights()
    model.eval()
    return model, BlockLoader(model, files, prefix)
