"""The GEMM engine's parameters and the widths derived from them, as in ``rtl/fineq_defs.vh``
(``FINEQ_SUM_W``, ``FINEQ_BPV``; ``tests/test_rtl_sources.py`` holds the two equal)."""

from __future__ import annotations

from dataclasses import dataclass

from fineq.errors import FineQError
from fineq.format.codec import ACT_BITS, BLOCK_WEIGHTS, SPEC_CODEBOOK, W_BITS, check_codebook


def tree_levels(n: int) -> int:
    """Levels of a binary tree over ``n`` leaves (at least 1): ``FINEQ_LEVELS``."""
    return max(1, (n - 1).bit_length())


def sum_w(rows: int, act_w: int = ACT_BITS, coding: str = "thermometer") -> int:
    """Width of a column sum of ``rows`` sign-applied ``act_w``-bit terms: ``FINEQ_SUM_W``; with the power-of-two
    coding a term is an activation shifted left by up to ``POW2_SHIFT`` bits: ``FINEQ_SUM_W(act_w + 2, rows)``."""
    return act_w + (POW2_SHIFT if coding == "pow2" else 0) + 1 + tree_levels(rows)


def mac_prod_w(w_w: int = W_BITS, act_w: int = ACT_BITS) -> int:
    """Width of one MAC product, an ``act_w``-bit activation times a ``w_w``-bit sign-magnitude weight
    (``|a w| <= 2^(act_w - 1) (2^(w_w - 1) - 1)``, signed): ``FINEQ_MAC_PROD_W``."""
    return act_w + w_w - 1


def mac_psum_w(rows: int, act_w: int = ACT_BITS, w_w: int = W_BITS) -> int:
    """Width of the MAC array's partial sums over ``rows`` products: ``FINEQ_MAC_PSUM_W``."""
    return mac_prod_w(w_w, act_w) + tree_levels(rows)


def bpv(rows: int) -> int:
    """Blocks per weight beat (a K tile starts 0, 8 or 16 weights into its first block): ``FINEQ_BPV``."""
    return -(-(rows + 16) // BLOCK_WEIGHTS)


CODINGS = ("thermometer", "binary", "pow2")  # CODING = 0, 1, 2 of fineq_gemm_engine
#: the largest left shift of the power-of-two PE (levels 1, 2, 4 = 1 << 0, 1, 2): ``FINEQ_POW2_SHIFT``
POW2_SHIFT = 2
#: the codings that run a codebook's levels: the spec's integers on the temporal codings, the power-of-two levels
#: on the power-of-two datapath (a PE selects x, 2x or 4x: one cycle per vector) alone
CODEBOOK_CODINGS = {"int": ("thermometer", "binary"), "pow2": ("pow2",)}


def codings_for(codebook: str) -> tuple[str, ...]:
    """The engine codings that run ``codebook``'s levels (the first is its default)."""
    return CODEBOOK_CODINGS[check_codebook(codebook)]


def coding_for(codebook: str, coding: str | None = None) -> str:
    """``coding`` checked against ``codebook`` (FineQError if the engine would misread its levels), or the
    codebook's default coding when ``coding`` is None."""
    ok = codings_for(codebook)
    if coding is None:
        return ok[0]
    if coding not in ok:
        raise FineQError(f"the {codebook} codebook's levels run on the {' or '.join(ok)} coding, not {coding} "
                         f"(the engine would read them as the " +
                         ("spec's integers" if codebook != SPEC_CODEBOOK else "power-of-two levels") + ")")
    return coding


@dataclass(frozen=True)
class EngineConfig:
    """Engine parameters (the Verilog parameters of ``fineq_gemm_engine``)."""

    rows: int = 64
    cols: int = 64
    psum_depth: int = 256
    coding: str = "thermometer"

    def __post_init__(self) -> None:
        if self.rows < 8 or self.rows % 8:
            raise FineQError(f"ROWS must be a positive multiple of 8, got {self.rows}")
        if self.cols < 1:
            raise FineQError(f"COLS must be positive, got {self.cols}")
        if self.psum_depth < 1:
            raise FineQError(f"PSUM_DEPTH must be positive, got {self.psum_depth}")
        if self.coding not in CODINGS:
            raise FineQError(f"coding must be one of {', '.join(CODINGS)}, got {self.coding!r}")

    @property
    def params(self) -> dict[str, int]:
        """The Verilog parameters of ``fineq_gemm_engine`` for this configuration."""
        return {"ROWS": self.rows, "COLS": self.cols, "PSUM_DEPTH": self.psum_depth,
                "CODING": CODINGS.index(self.coding)}

    @property
    def name(self) -> str:
        return f"{self.rows}x{self.cols}d{self.psum_depth}" + {"binary": "b", "pow2": "p"}.get(self.coding, "")

    @property
    def bpv(self) -> int:
        """Blocks per weight beat."""
        return bpv(self.rows)

    @property
    def sum_w(self) -> int:
        """Width of a column sum (the adder tree's output)."""
        return sum_w(self.rows, coding=self.coding)

    @property
    def codebook(self) -> str:
        """The codebook whose levels this configuration runs."""
        return next(cb for cb, cods in CODEBOOK_CODINGS.items() if self.coding in cods)


def tiles(k: int, cfg: EngineConfig) -> int:
    return -(-k // cfg.rows)


