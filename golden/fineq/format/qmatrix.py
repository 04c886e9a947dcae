"""The :class:`QuantizedMatrix` container: the spec's packed blocks and row scales of one matrix (or, in the
group-scale variant, one scale per ``group`` consecutive weights of a row: docs/format.md "Group scales"; in the
power-of-two variant, the same bits read as levels {0, +-1, +-2, +-4}: docs/format.md "Power-of-two levels"). It
knows the format only; the quantizers (:mod:`fineq.quant`) produce it."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field

import numpy as np

from fineq.errors import FineQError, FormatError
from fineq.format.codec import BLOCK_BYTES, BLOCK_WEIGHTS, SPEC_CODEBOOK, check_codebook, level_max
from fineq.format.pack import check_packed, n_blocks, pack_levels, unpack, unpack_codes


@dataclass(frozen=True, eq=False)
class QuantizedMatrix:
    """A FineQ-quantized ``[M, K]`` matrix (immutable: its arrays are read-only copies; with ``copy=False``,
    ``packed`` is a read-only view of the caller's array, which must not change: a memory map of a file that keeps
    a big model's finished matrices on disk).

    Two matrices are equal (``==``) when shape, group, codebook, packed bytes and scales are
    equal; ``mode`` is informational and not compared.

    Attributes:
        packed: ``uint8 [M, 7*ceil(K/24)]``, the spec's blocks, row after row.
        scales: ``float16 [M]``, one scale per output channel (row); with ``group``, ``float16 [M, ceil(K/group)]``,
                one per ``group`` consecutive weights of a row (the last group may be shorter).
        shape:  ``(M, K)`` of the original matrix.
        mode:   quantizer mode that produced it (informational).
        group:  None (the spec's per-row scale) or the weights per group scale (the variant outside the spec).
        codebook: ``"int"`` (the spec's levels, -3..+3) or ``"pow2"`` (the variant outside the spec: a 3-bit
                field's magnitude 3 stands for 4, levels in {0, +-1, +-2, +-4}); the packed bits are read the
                same.
    """

    packed: np.ndarray
    scales: np.ndarray
    shape: tuple[int, int]
    mode: str = "paper"
    group: int | None = None
    codebook: str = SPEC_CODEBOOK
    _levels: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)
    copy: InitVar[bool] = True  # False: keep ``packed`` as given, as a read-only view (a memory map of a file)

    def __post_init__(self, copy: bool) -> None:
        p = check_packed(self.packed)
        p = p.copy() if copy else p.view()
        p.flags.writeable = False
        object.__setattr__(self, "packed", p)
        m, k = (int(x) for x in self.shape)
        if m < 1 or k < 1:
            raise FormatError(f"shape must be positive, got {self.shape}")
        if p.shape != (m, BLOCK_BYTES * n_blocks(k)):
            raise FormatError(f"packed shape {p.shape} does not match matrix shape {(m, k)}")
        g = self.group
        if g is not None and (isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1):
            raise FormatError(f"group must be a positive whole number of weights, got {g!r}")
        want = (m,) if g is None else (m, -(-k // int(g)))
        s = np.array(self.scales, copy=True)
        if s.dtype != np.float16 or s.shape != want:
            raise FormatError(f"scales must be float16 {list(want)}, got {s.dtype} {s.shape}")
        if not np.isfinite(s).all() or (s < 0).any():
            raise FormatError("scales must be finite and non-negative")
        s.flags.writeable = False
        object.__setattr__(self, "scales", s)
        object.__setattr__(self, "shape", (m, k))
        object.__setattr__(self, "group", None if g is None else int(g))
        try:
            check_codebook(self.codebook)
        except FineQError as e:
            raise FormatError(str(e)) from e

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantizedMatrix):
            return NotImplemented
        return (self.shape == other.shape and self.group == other.group and self.codebook == other.codebook
                and np.array_equal(self.packed, other.packed) and np.array_equal(self.scales, other.scales))

    __hash__ = None  # type: ignore[assignment]

    def levels(self, keep: bool = True) -> np.ndarray:
        """Decoded levels ``v``: ``int8 [M, K]`` in -3..+3 (``pow2``: in {0, +-1, +-2, +-4}) (cached, unless ``keep``
        is False: 1 byte per weight against the packed 0.29, which matters when a whole model's matrices are
        held)."""
        if self._levels:
            return self._levels[0]
        lv = unpack(self.packed, self.shape[1], self.codebook)
        lv.flags.writeable = False
        if keep:
            self._levels.append(lv)
        return lv

    def forget_levels(self) -> None:
        """Drop the cached levels (they are decoded again when asked for)."""
        self._levels.clear()

    def codes(self) -> np.ndarray:
        """Pair codes ``uint8 [M, 4*nb]``."""
        return unpack_codes(self.packed)

    def weight_scales(self) -> np.ndarray:
        """``float16 [M, K]``: every weight's scale (its row's, or its group's)."""
        if self.group is None:
            return np.broadcast_to(self.scales[:, None], self.shape)
        return np.repeat(self.scales, self.group, axis=1)[:, : self.shape[1]]

    def group_slices(self) -> list[slice]:
        """The column range of every scale of a row: one slice (the row) or one per group."""
        k = self.shape[1]
        g = k if self.group is None else self.group
        return [slice(c, min(c + g, k)) for c in range(0, k, g)]

    def dequantize(self) -> np.ndarray:
        """``float32 [M, K]``: ``s_m * v[m, k]`` (group scales: ``s_{m, k // group} * v[m, k]``)."""
        return self.weight_scales().astype(np.float32) * self.levels().astype(np.float32)

    @property
    def bits_per_weight(self) -> float:
        """Storage per original weight: packed bits plus the 16-bit scales (one per row, or per group)."""
        m, k = self.shape
        return (self.packed.size * 8 + 16 * self.scales.size) / (m * k)

    @property
    def level_max(self) -> int:
        """The largest level magnitude of the codebook (3, or 4 for ``pow2``)."""
        return level_max(self.codebook)

    @property
    def n_blocks(self) -> int:
        return n_blocks(self.shape[1])

    @property
    def padded_k(self) -> int:
        return self.n_blocks * BLOCK_WEIGHTS


def from_levels(levels: np.ndarray, codes: np.ndarray, scales: np.ndarray | None = None,
                group: int | None = None, codebook: str = SPEC_CODEBOOK) -> QuantizedMatrix:
    """Build a QuantizedMatrix from explicit levels ``[M, K]`` of ``codebook`` and pair codes (for tests and tools);
    ``scales`` ``[M]``, or ``[M, ceil(K/group)]`` with ``group``."""
    lv = np.asarray(levels)
    if lv.ndim != 2:
        raise FineQError(f"levels must be 2-D, got shape {lv.shape}")
    m, k = lv.shape
    kp = BLOCK_WEIGHTS * n_blocks(k)
    full = np.zeros((m, kp), dtype=np.int8)
    full[:, :k] = lv
    ns = (m,) if group is None else (m, -(-k // group))
    sc = np.ones(ns, dtype=np.float16) if scales is None else np.asarray(scales, dtype=np.float16)
    return QuantizedMatrix(pack_levels(full, np.asarray(codes, dtype=np.uint8), codebook), sc, (m, k), "explicit",
                           group, codebook)
