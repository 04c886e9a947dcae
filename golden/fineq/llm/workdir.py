"""Work folders of long model jobs: what a killed run keeps, and the same command takes up again.

* :class:`BlockStore` (``quantize-model``, and every calibrated method of
  ``eval``): each decoder block's quantized linears once the block is done,
  one safetensors file per block (no pickle), under a fingerprint of
  everything the result depends on. The calibrated pass
  (:func:`fineq.llm.apply.apply`) reloads finished blocks instead of
  quantizing them again, and recomputes their outputs from the reloaded
  weights, so the continued run is the uninterrupted one, bit for bit.
* :class:`RowStore` (``eval``): each finished method's result rows, as JSON.

A folder made for another computation (another fingerprint) is reported and
started afresh; damaged records are reported and recomputed. Records are
written atomically and never registered as outputs; the CLI says what a
stopped command kept (:func:`fineq.outputs.keep_note`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fineq.errors import FormatError
from fineq.format import stlayout
from fineq.format.qmatrix import QuantizedMatrix
from fineq.outputs import atomic_path, keep_note, write_text_atomic
from fineq.quant.result import QResult
from fineq.version import environment


def code_version() -> str:
    """A SHA-256 of the package's own sources: a record made by other code is never reused."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def fingerprint(*parts: Any) -> str:
    """A SHA-256 over ``parts`` (arrays by their bytes, the rest by ``repr``), :func:`code_version` and the
    environment (:func:`fineq.version.environment`: a record made on another CPU or with other libraries is not
    reused, since calibrated results may differ there)."""
    h = hashlib.sha256(code_version().encode())
    h.update(repr(sorted(environment().items())).encode())
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(repr((p.dtype.str, p.shape)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"\x00")
    return h.hexdigest()


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Folder:
    def __init__(self, folder: Path, key: str, what: str) -> None:
        self.folder, self.key, self.what = folder, key, what
        stamp = folder / "fingerprint"
        if stamp.is_file() and stamp.read_text().strip() != key:  # ours, for another computation (an unstamped
            # folder is never removed: it may be the user's)
            _log(f"work folder {folder} is for another computation; starting it afresh")
            shutil.rmtree(folder)

    def ensure(self) -> None:
        """Create the folder with its fingerprint when the first record is written (a run that keeps nothing
        leaves nothing)."""
        if not (self.folder / "fingerprint").is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.folder / "fingerprint", self.key + "\n", register=False)

    def note(self, n: int) -> None:
        keep_note(str(self.folder), f"kept {n} finished {self.what} in {self.folder}: the same command resumes "
                                    "from them")

    def remove(self) -> None:
        """The job is complete: its folder goes."""
        keep_note(str(self.folder), None)
        shutil.rmtree(self.folder, ignore_errors=True)


class BlockStore(_Folder):
    """Finished decoder blocks of one calibrated pass."""

    def __init__(self, folder: Path, key: str, label: str = "") -> None:
        super().__init__(folder, key, f"block(s){' of ' + label if label else ''}")
        self.done = len(list(folder.glob("block-*.safetensors"))) if folder.is_dir() else 0

    def load(self, i: int) -> dict[str, QResult] | None:
        from safetensors import safe_open

        p = self.folder / f"block-{i:05d}.safetensors"
        if not p.is_file():
            return None
        try:
            import torch

            out = {}
            with safe_open(str(p), framework="np") as f:
                meta = json.loads((f.metadata() or {})["results"])
                for n, m in meta.items():
                    q = QuantizedMatrix(f.get_tensor(f"{n}.packed"), f.get_tensor(f"{n}.scales"),
                                        tuple(m["shape"]), m.get("mode", "unknown"), m.get("group"),
                                        m.get("codebook", "int"))
                    ins = f.get_tensor(f"{n}.in_scale") if m.get("in_scale") else None
                    out[n] = QResult(torch.from_numpy(q.dequantize()), float(m["bits"]), q, ins, m.get("info"))
            return out
        except Exception as e:  # noqa: BLE001 - any damage: recompute the block
            _log(f"work folder record {p} is damaged ({type(e).__name__}: {e}); quantizing that block again")
            p.unlink(missing_ok=True)
            return None

    def mapped(self, i: int, results: dict[str, QResult]) -> dict[str, QResult]:
        """``results`` of block ``i`` with their packed matrices replaced by memory maps of its record, equal to
        them (a block-by-block pass keeps a big model's finished blocks on disk, read when the output is written);
        the record must not change while they are in use."""
        p = self.folder / f"block-{i:05d}.safetensors"
        out = {}
        for n, r in results.items():
            q = r.qmatrix
            if q is None:
                out[n] = r
                continue
            a = stlayout.map_array(p, f"{n}.packed", np.uint8)
            if a.shape != q.packed.shape:
                raise FormatError(f"{p}: {n}.packed has shape {a.shape}, not {q.packed.shape}")
            out[n] = dataclasses.replace(r, qmatrix=dataclasses.replace(q, packed=a, copy=False))
        return out

    def save(self, i: int, results: dict[str, QResult]) -> None:
        from safetensors.numpy import save_file

        tensors: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {}
        for n, r in results.items():
            q = r.qmatrix
            tensors[f"{n}.packed"] = np.ascontiguousarray(q.packed)
            tensors[f"{n}.scales"] = np.ascontiguousarray(q.scales)
            if r.in_scale is not None:
                tensors[f"{n}.in_scale"] = np.ascontiguousarray(np.asarray(r.in_scale))
            meta[n] = {"shape": list(q.shape), "mode": q.mode, "bits": r.bits, "in_scale": r.in_scale is not None,
                       "info": r.info, "group": q.group, "codebook": q.codebook}
        self.ensure()
        with atomic_path(self.folder / f"block-{i:05d}.safetensors", register=False) as tmp:
            save_file(tensors, str(tmp), metadata={"results": json.dumps(meta)})
        self.done = max(self.done, i + 1)
        self.note(self.done)


class RowStore(_Folder):
    """Finished methods of one ``fineq eval``."""

    def __init__(self, folder: Path, key: str) -> None:
        super().__init__(folder, key, "method(s)")

    def _path(self, method: str) -> Path:
        return self.folder / f"method-{fingerprint(method)[:16]}.json"

    def load(self, method: str) -> list[dict[str, Any]] | None:
        p = self._path(method)
        if not p.is_file():
            return None
        try:
            doc = json.loads(p.read_text())
            if doc.get("method") != method or not isinstance(doc.get("rows"), list):
                raise ValueError("not this method's record")
            return doc["rows"]
        except (ValueError, OSError) as e:
            _log(f"work folder record {p} is damaged ({e}); evaluating {method} again")
            return None

    def save(self, method: str, rows: list[dict[str, Any]]) -> None:
        self.ensure()
        write_text_atomic(self._path(method), json.dumps({"method": method, "rows": rows}), register=False)
        self.note(len(list(self.folder.glob("method-*.json"))))
