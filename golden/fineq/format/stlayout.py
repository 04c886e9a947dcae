"""The safetensors layout, read without loading a file: an 8-byte little-endian header length ``n``, ``n`` bytes of
JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``, then the tensors' bytes
(offsets counted from the end of the header). Used to memory-map single tensors (a checkpoint's embedding, the
finished blocks of a block-by-block pass) and to rewrite a header in place."""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from fineq.errors import FormatError

MAX_HEADER = 100 * 2**20  # the library's own limit


@dataclass(frozen=True)
class Span:
    """Where one tensor's bytes are: ``offset`` from the start of the file, ``nbytes`` long."""

    dtype: str  # safetensors dtype name: "F32", "BF16", "U8", ...
    shape: tuple[int, ...]
    offset: int
    nbytes: int


def read_header(f: BinaryIO) -> tuple[dict[str, Any], int]:
    """The JSON header of an open safetensors file (read from its start) and the file offset of its data."""
    raw = f.read(8)
    if len(raw) != 8:
        raise FormatError("file too short for a safetensors header")
    n = int.from_bytes(raw, "little")
    if n > MAX_HEADER:
        raise FormatError(f"safetensors header of {n} bytes (at most {MAX_HEADER})")
    text = f.read(n)
    try:
        head = json.loads(text)
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"safetensors header is not JSON ({e})") from e
    if len(text) != n or not isinstance(head, dict):
        raise FormatError("safetensors header is truncated or not an object")
    return head, 8 + n


def span(path: str | os.PathLike[str], name: str) -> Span:
    """Where tensor ``name`` is in the safetensors file ``path``; FormatError naming the file when it is not there
    or its entry is damaged."""
    try:
        with open(path, "rb") as f:
            head, start = read_header(f)
            size = os.fstat(f.fileno()).st_size
        e = head[name]
        b, end = (int(x) for x in e["data_offsets"])
        s = Span(str(e["dtype"]), tuple(int(x) for x in e["shape"]), start + b, end - b)
    except KeyError as err:
        raise FormatError(f"{path}: no tensor {err}") from err
    except (OSError, FormatError, TypeError, ValueError) as err:
        raise FormatError(f"{path}: tensor {name} cannot be located ({err})") from err
    try:
        end = max(int(v["data_offsets"][1]) for k, v in head.items() if k != "__metadata__")
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise FormatError(f"{path}: damaged safetensors header ({err})") from err
    if s.nbytes < 0 or start + end > size:  # a truncated file
        raise FormatError(f"{path}: holds {size} bytes, its header promises {start + end}")
    return s


def map_array(path: str | os.PathLike[str], name: str, dtype: np.dtype | type, writeable: bool = False) -> np.ndarray:
    """Tensor ``name`` of ``path`` as a copy-on-write memory map (``dtype`` of the stored one's size; read-only
    unless ``writeable``, and writes stay in this process): its bytes are read from disk as they are touched, page
    by page (no read-ahead, and the file's cached pages around it are not mapped in with them)."""
    s = span(path, name)
    dt = np.dtype(dtype)
    count = int(np.prod(s.shape, dtype=np.int64))
    if count * dt.itemsize != s.nbytes:
        raise FormatError(f"{path}: tensor {name} holds {s.nbytes} bytes, not {count} x {dt}")
    if count == 0:
        return np.zeros(s.shape, dt)
    try:
        with open(path, "rb") as f:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            buf.madvise(mmap.MADV_RANDOM)
            if hasattr(os, "posix_fadvise"):  # else a fault maps the cached pages around it too (64 KB)
                os.posix_fadvise(f.fileno(), s.offset, s.nbytes, os.POSIX_FADV_DONTNEED)
    except OSError as err:
        raise FormatError(f"{path}: tensor {name} cannot be mapped ({err})") from err
    a = np.frombuffer(buf, dtype=dt, count=count, offset=s.offset).reshape(s.shape)
    a.flags.writeable = writeable
    return a
