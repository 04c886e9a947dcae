"""``.fineq.npz`` files: one QuantizedMatrix per file.

Layout (a NumPy ``.npz`` archive, read with ``allow_pickle=False``):

=================  ==============  ===========================================
key                dtype / shape   meaning
=================  ==============  ===========================================
``magic``          uint8 [8]       ASCII ``FINEQNPZ``
``format_version`` int64 []        1 (per-row scales), 2 (group scales), 3 (another codebook)
``shape``          int64 [2]       ``(M, K)``
``packed``         uint8 [M, 7nb]  blocks (spec section 6)
``scales``         float16 [M]     row scales (version 2: ``[M, ceil(K/group)]``)
``mode``           str []          quantizer mode (informational)
``group``          int64 []        version 2, and 3 with group scales: weights per group scale
``codebook``       str []          version 3 only: ``pow2`` (the levels a field's magnitude stands for)
=================  ==============  ===========================================

A matrix with group scales (the variant outside the spec, docs/format.md) is written as version 2, so that a
reader of version 1 refuses it instead of misreading its scales; a matrix of the power-of-two codebook (the
other variant outside the spec) as version 3, with or without group scales, so that readers of versions 1 and 2
refuse it instead of reading its 4s as 3s.

The zip CRC catches corrupted members; a truncated file, a foreign archive,
a missing key or an unknown version raises :class:`fineq.FormatError`.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fineq.errors import FineQError, FormatError
from fineq.format.codec import CODEBOOKS, SPEC_CODEBOOK
from fineq.format.qmatrix import QuantizedMatrix

MAGIC = b"FINEQNPZ"
FORMAT_VERSION = 1
FORMAT_VERSION_GROUP = 2  # files with group scales
FORMAT_VERSION_CODEBOOK = 3  # files of another codebook than the spec's (key ``codebook``; ``group`` or not)
VERSIONS = (FORMAT_VERSION, FORMAT_VERSION_GROUP, FORMAT_VERSION_CODEBOOK)
_KEYS = ("magic", "format_version", "shape", "packed", "scales", "mode")


def save(q: QuantizedMatrix, path: str | os.PathLike[str]) -> Path:
    """Write ``q`` to ``path`` (written to a temporary file, then renamed: never half a file)."""
    if not isinstance(q, QuantizedMatrix):
        raise FineQError(f"save() takes a QuantizedMatrix, got {type(q).__name__}")
    from fineq.outputs import atomic_path

    path = Path(path)
    if path.is_dir():
        raise FineQError(f"output {path} is a directory; give a file name")
    extra: dict[str, Any] = {} if q.group is None else {"group": np.int64(q.group)}
    version = FORMAT_VERSION if q.group is None else FORMAT_VERSION_GROUP
    if q.codebook != SPEC_CODEBOOK:
        extra["codebook"] = np.array(q.codebook)
        version = FORMAT_VERSION_CODEBOOK
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            magic=np.frombuffer(MAGIC, dtype=np.uint8),
            format_version=np.int64(version),
            shape=np.array(q.shape, dtype=np.int64),
            packed=q.packed,
            scales=q.scales,
            mode=np.array(q.mode),
            **extra,
        )
    return path


def _check_member(path: Path, z: Any, key: str) -> None:
    """FormatError if the archive member ``key`` declares more data than it holds (a header asking for an
    absurd allocation is refused before anything is allocated)."""
    name = f"{key}.npy"
    info = z.zip.getinfo(name)
    with z.zip.open(name) as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read(fh)
        header = fh.tell()
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if need > info.file_size - header:
        raise FormatError(f"{path}: {key} declares shape {shape} ({need} bytes) but holds {info.file_size - header} bytes "
                          "(corrupt or tampered)")


def load(path: str | os.PathLike[str]) -> QuantizedMatrix:
    """Read a file written by :func:`save`; raise FormatError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head[:2] != b"PK":
            what = "a NumPy .npy array" if head[:4] == b"\x93NUM" else "not a zip archive"
            raise FormatError(f"{path}: not a FineQ .fineq.npz file ({what}); make one with `fineq quantize`")
        with np.load(path, allow_pickle=False) as z:
            for k in z.files:
                _check_member(path, z, k)
            missing = [k for k in _KEYS if k not in z.files]
            if "magic" in missing or bytes(z["magic"].tobytes()) != MAGIC:
                raise FormatError(f"{path}: not a FineQ file (no FINEQNPZ magic)")
            if missing:
                raise FormatError(f"{path}: FineQ file lacks {', '.join(missing)}")
            fv = z["format_version"]
            if fv.dtype.kind not in "iu" or fv.shape != ():
                raise FormatError(f"{path}: format_version must be an integer scalar, got {fv.dtype} {fv.shape}")
            version = int(fv)
            if version not in VERSIONS:
                raise FormatError(f"{path}: format version {version} is not supported (this fineq reads "
                                  f"{', '.join(map(str, VERSIONS))})")
            group, codebook = None, SPEC_CODEBOOK
            if version != FORMAT_VERSION_CODEBOOK and ("group" in z.files) != (version == FORMAT_VERSION_GROUP):
                raise FormatError(f"{path}: format version {version} and the group key disagree")
            if ("codebook" in z.files) != (version == FORMAT_VERSION_CODEBOOK):
                raise FormatError(f"{path}: format version {version} and the codebook key disagree")
            if "codebook" in z.files:
                zc = z["codebook"]
                if zc.dtype.kind != "U" or zc.shape != () or str(zc) not in CODEBOOKS or str(zc) == SPEC_CODEBOOK:
                    raise FormatError(f"{path}: codebook must be one of "
                                      f"{', '.join(c for c in CODEBOOKS if c != SPEC_CODEBOOK)}, got {zc!r}")
                codebook = str(zc)
            if "group" in z.files:
                zg = z["group"]
                if zg.dtype.kind not in "iu" or zg.shape != ():
                    raise FormatError(f"{path}: group must be an integer scalar, got {zg.dtype} {zg.shape}")
                group = int(zg)
            zs = z["shape"]
            if zs.dtype.kind not in "iu":
                raise FormatError(f"{path}: shape must be integers, got {zs.dtype}")
            shape = tuple(int(v) for v in zs.reshape(-1))
            if len(shape) != 2:
                raise FormatError(f"{path}: shape {shape} is not 2-D")
            try:
                return QuantizedMatrix(z["packed"], z["scales"], shape, str(z["mode"]), group,  # type: ignore[arg-type]
                                       codebook)
            except FormatError as e:
                raise FormatError(f"{path}: {e}") from e
    except FormatError:
        raise
    except FineQError as e:
        raise FormatError(f"{path}: {e}") from e
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise FormatError(f"{path}: not a readable FineQ file (truncated or corrupt: {e})") from e
