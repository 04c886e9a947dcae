"""Whole-model artifacts: ``.fineq.safetensors`` (``fineq quantize-model``) and :func:`load_model`.

A safetensors file (read without pickle) holding, for every quantized linear
``<name>`` (its module name in the model):

==========================  ==============  ==========================================
tensor                      dtype / shape   meaning
==========================  ==============  ==========================================
``<name>.packed``           uint8 [M, 7nb]  blocks (spec section 6)
``<name>.scales``           float16 [M]     row scales (group scales: ``[M, ceil(K/group)]``)
``<name>.shape``            int64 [2]       ``(M, K)``
==========================  ==============  ==========================================

and the metadata ``format = fineq-model``, ``format_version = 1``, ``mode``
(the quantizer mode), ``base_model`` (what it was quantized from),
``linears`` (JSON list of the names, in order), and, when per-layer rules
(:mod:`fineq.quant.layer_rules`) gave some linears another mode,
``linear_modes`` (JSON ``{name: mode}``, informative: the levels are the
format's whatever the mode). The base model supplies
everything that is not quantized (embeddings, norms, ``lm_head``).

A model quantized after a function-preserving transform (``quantize-model
--transform fold|rotate[:seed]``, :mod:`fineq.llm.rotate`) has ``format_version
= 2`` and the metadata ``transform``: the loader applies the same transform to
the base model (the rotation is rebuilt from its seed) before placing the
linears. A reader that knows only version 1 refuses such a file instead of
loading rotated linears into an unrotated model.

Linears with group scales (the variant outside the spec: ``fineq-<mode>-g<N>``,
``quantize-model --group N``; docs/format.md "Group scales") make the file
``format_version = 3`` and are listed in the metadata ``linear_groups`` (JSON
``{name: group}``); version 3 may also carry a ``transform``.

A model of the power-of-two codebook (the other variant outside the spec: ``fineq-<mode>-pow2``,
``quantize-model --codebook pow2``; docs/format.md "Power-of-two levels") makes the file ``format_version = 4``
with the metadata ``codebook = pow2`` (one codebook per file: one engine runs it); version 4 may also carry a
``transform`` and ``linear_groups``. Readers of versions 1-3 refuse it instead of reading its 4s as 3s.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from fineq.errors import FineQError, FormatError
from fineq.format import stlayout
from fineq.format.codec import CODEBOOKS, SPEC_CODEBOOK
from fineq.format.qmatrix import QuantizedMatrix
from fineq.llm.rotate import apply_transform
from fineq.llm.rotate import parse as parse_transform
from fineq.outputs import atomic_path
from fineq.quant.registry import FINEQ_MODES

MODEL_FORMAT = "fineq-model"
MODEL_FORMAT_VERSION = 1
MODEL_FORMAT_VERSION_TRANSFORM = 2  # files with a ``transform``
MODEL_FORMAT_VERSION_GROUP = 3  # files with group scales (``linear_groups``; a ``transform`` or not)
MODEL_FORMAT_VERSION_CODEBOOK = 4  # files of another codebook (``codebook``; ``linear_groups``, ``transform`` or not)
_VERSIONS = tuple(str(v) for v in (MODEL_FORMAT_VERSION, MODEL_FORMAT_VERSION_TRANSFORM, MODEL_FORMAT_VERSION_GROUP,
                                   MODEL_FORMAT_VERSION_CODEBOOK))


def save_model(path: str | os.PathLike[str], qms: dict[str, QuantizedMatrix], mode: str, base_model: str,
               transform: str | None = None, linear_modes: dict[str, str] | None = None) -> Path:
    """Write every quantized linear of a model into one file (atomically); ``transform``: the model transform
    applied before quantizing (:func:`fineq.llm.rotate.parse`), None for none; ``linear_modes``: the linears
    that per-layer rules gave another mode than ``mode`` (metadata ``linear_modes``, JSON)."""
    from safetensors.numpy import save_file

    if transform is not None:
        parse_transform(transform)

    if not qms:
        raise FineQError("no quantized linears to save")
    tensors: dict[str, np.ndarray] = {}
    for name, q in qms.items():
        tensors[f"{name}.packed"] = np.ascontiguousarray(q.packed)
        tensors[f"{name}.scales"] = np.ascontiguousarray(q.scales)
        tensors[f"{name}.shape"] = np.array(q.shape, dtype=np.int64)
    meta = {"format": MODEL_FORMAT, "format_version": str(MODEL_FORMAT_VERSION), "mode": mode,
            "base_model": base_model, "linears": json.dumps(list(qms))}
    if transform is not None:
        meta.update(format_version=str(MODEL_FORMAT_VERSION_TRANSFORM), transform=transform)
    if linear_modes:
        meta["linear_modes"] = json.dumps(linear_modes)
    groups = {n: q.group for n, q in qms.items() if q.group is not None}
    if groups:
        meta.update(format_version=str(MODEL_FORMAT_VERSION_GROUP), linear_groups=json.dumps(groups))
    books = sorted({q.codebook for q in qms.values()})
    if len(books) > 1:
        raise FineQError(f"a model file holds one codebook (one engine runs it), got {', '.join(books)}")
    if books[0] != SPEC_CODEBOOK:
        meta.update(format_version=str(MODEL_FORMAT_VERSION_CODEBOOK), codebook=books[0])
    p = Path(path)
    with atomic_path(p) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
        _canonical_header(tmp)
    return p


def _canonical_header(path: Path) -> None:
    """Rewrite the safetensors header in place with its metadata keys sorted (the library writes them in hash
    order), same length (padded with spaces, as the format allows): equal models give equal bytes."""
    with open(path, "r+b") as f:
        head, start = stlayout.read_header(f)
        n = start - 8
        head["__metadata__"] = dict(sorted(head.get("__metadata__", {}).items()))
        text = json.dumps(head, separators=(",", ":")).encode()
        if len(text) > n:  # cannot happen (the same content, compact); keep the library's header then
            return
        f.seek(8)
        f.write(text + b" " * (n - len(text)))


def read_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, QuantizedMatrix], dict[str, str]]:
    """``({name: QuantizedMatrix}, metadata)``; FormatError for corrupt, truncated or foreign files."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise FineQError(f"quantized model file {p} does not exist")
    try:
        with safe_open(str(p), framework="np") as f:
            meta = f.metadata() or {}
            if meta.get("format") != MODEL_FORMAT:
                raise FormatError(f"{p}: not a FineQ model file (metadata format is {meta.get('format')!r})")
            version = meta.get("format_version", "")
            if version not in _VERSIONS:
                raise FormatError(f"{p}: format version {version!r} is not supported (this fineq reads "
                                  f"{', '.join(_VERSIONS)})")
            newer = (str(MODEL_FORMAT_VERSION_GROUP), str(MODEL_FORMAT_VERSION_CODEBOOK))
            if version not in newer and ((version == str(MODEL_FORMAT_VERSION_TRANSFORM)) != ("transform" in meta)):
                raise FormatError(f"{p}: format version {version} and the transform metadata disagree")
            if version != newer[1] and (version == str(MODEL_FORMAT_VERSION_GROUP)) != ("linear_groups" in meta):
                raise FormatError(f"{p}: format version {version} and the linear_groups metadata disagree")
            if (version == newer[1]) != ("codebook" in meta):
                raise FormatError(f"{p}: format version {version} and the codebook metadata disagree")
            codebook = meta.get("codebook", SPEC_CODEBOOK)
            if codebook not in CODEBOOKS or ("codebook" in meta and codebook == SPEC_CODEBOOK):
                raise FormatError(f"{p}: codebook {codebook!r} is not one of "
                                  f"{', '.join(c for c in CODEBOOKS if c != SPEC_CODEBOOK)}")
            groups = _groups(p, meta)
            if "transform" in meta:
                try:
                    parse_transform(meta["transform"])
                except FineQError as e:
                    raise FormatError(f"{p}: {e}") from e
            if meta.get("mode") not in FINEQ_MODES:
                raise FormatError(f"{p}: mode {meta.get('mode')!r} is not a FineQ mode ({', '.join(FINEQ_MODES)})")
            names = json.loads(meta.get("linears", "[]"))
            if not isinstance(names, list) or not names:
                raise FormatError(f"{p}: the linears list is missing or empty")
            stray = sorted(set(groups) - set(names))
            if stray:
                raise FormatError(f"{p}: linear_groups names {stray[0]}, which is not in the linears list")
            keys = set(f.keys())
            out = {}
            for n in names:
                miss = [s for s in ("packed", "scales", "shape") if f"{n}.{s}" not in keys]
                if miss:
                    raise FormatError(f"{p}: linear {n} lacks {', '.join(miss)}")
                shape = tuple(int(v) for v in f.get_tensor(f"{n}.shape"))
                if len(shape) != 2:
                    raise FormatError(f"{p}: linear {n} has shape {shape}, not 2-D")
                try:
                    out[n] = QuantizedMatrix(f.get_tensor(f"{n}.packed"), f.get_tensor(f"{n}.scales"), shape,
                                             meta.get("mode", "unknown"), groups.get(n),  # type: ignore[arg-type]
                                             codebook)
                except FormatError as e:
                    raise FormatError(f"{p}: linear {n}: {e}") from e
    except FormatError:
        raise
    except FineQError as e:
        raise FormatError(f"{p}: {e}") from e
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for bad headers and data
        raise FormatError(f"{p}: not a readable FineQ model file (truncated or corrupt: {e})") from e
    return out, meta


def _groups(p: Path, meta: dict[str, str]) -> dict[str, int]:
    """The ``linear_groups`` metadata: ``{name: group}`` (positive whole numbers), or FormatError."""
    if "linear_groups" not in meta:
        return {}
    try:
        groups = json.loads(meta["linear_groups"])
    except ValueError as e:
        raise FormatError(f"{p}: linear_groups is not JSON ({e})") from e
    if (not isinstance(groups, dict) or not groups
            or not all(isinstance(g, int) and not isinstance(g, bool) and g >= 1 for g in groups.values())):
        raise FormatError(f"{p}: linear_groups must map linear names to positive whole numbers")
    return groups


def place(model: Any, qms: dict[str, QuantizedMatrix], meta: dict[str, str], where: str) -> Any:
    """Put stored linears on ``model`` (the untransformed base model), in place: the file's ``transform`` first,
    then every linear's weight replaced by its dequantized FineQ value; a linear the model lacks, or of another
    shape, is a FormatError naming ``where``. Returns the model."""
    import torch

    apply_transform(model, meta.get("transform"))
    mods = dict(model.named_modules())
    with torch.no_grad():
        for name, q in qms.items():
            lin = mods.get(name)
            if lin is None or not hasattr(lin, "weight"):
                raise FormatError(f"{where}: the model has no linear {name}")
            if tuple(lin.weight.shape) != q.shape:
                raise FormatError(f"{where}: {name} is {q.shape} in the file, {tuple(lin.weight.shape)} in the model")
            lin.weight.copy_(torch.from_numpy(q.dequantize()).to(lin.weight.dtype))
    return model


def load_model(path: str | os.PathLike[str], model: Any = None) -> Any:
    """Rebuild the quantized model: the base model (loaded from the file's ``base_model`` unless
    ``model`` is given: an ``nn.Module`` or a model name/path) with every stored linear's weight
    replaced in place by its dequantized FineQ value (after the file's ``transform``, if any: a given
    ``nn.Module`` must then be the untransformed base model). Returns the model."""
    from fineq.llm.models import load

    qms, meta = read_model_file(path)
    if model is None or isinstance(model, (str, os.PathLike)):
        model = load(model if model is not None else meta.get("base_model", "")).model
    return place(model, qms, meta, str(path))


def export_dequantized(path: str | os.PathLike[str], out: str | os.PathLike[str], model: str | None = None,
                       force: bool = False) -> Path:
    """Write the quantized model of ``path`` (dequantized weights, its transform applied) as a standard Hugging Face
    folder ``out`` (config, safetensors weights, tokenizer) that ``transformers`` loads as it is. The folder is
    written beside ``out`` and renamed when complete; an existing ``out`` is replaced only with ``force``."""
    import shutil
    import tempfile

    from fineq.llm.models import load

    dst = Path(out)
    if dst.exists() and not force:
        raise FineQError(f"output folder {dst} exists; use --force to replace it")
    if dst.exists() and not dst.is_dir():
        raise FineQError(f"output {dst} exists and is not a folder")
    if not dst.parent.is_dir():
        raise FineQError(f"output folder {dst.parent} does not exist")
    _, meta = read_model_file(path)  # a bad file fails before the model loads
    lm = load(model if model is not None else meta.get("base_model", ""))
    load_model(path, lm.model)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        lm.model.save_pretrained(tmp, safe_serialization=True)
        lm.tokenizer.save_pretrained(tmp)
        (tmp / "fineq_export.json").write_text(json.dumps({
            "from": str(Path(path).resolve()), "mode": meta.get("mode"), "transform": meta.get("transform"),
            "base_model": meta.get("base_model"), "weights": "FineQ levels dequantized to float32"}, indent=1))
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst
