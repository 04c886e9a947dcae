"""The GEMM engine's parameters and the widths derived from them, as in ``rtl/fineq_defs.vh``
(``FINEQ_SUM_W``, ``FINEQ_BPV``; ``tests/test_rtl_sources.py`` holds the two equal)."""

from __future__ import annotations

from dataclasses import dataclass

from fineq.errors import FineQError
from fineq.format.codec import ACT_BITS, BLOCK_WEIGHTS, W_BITS


def tree_levels(n: int) -> int:
    """Levels of a binary tree over ``n`` leaves (at least 1): ``FINEQ_LEVELS``."""
    return max(1, (n - 1).bit_length())


def sum_w(rows: int, act_w: int = ACT_BITS) -> int:
    """Width of a column sum of ``rows`` sign-applied ``act_w``-bit terms: ``FINEQ_SUM_W``."""
    return act_w + 1 + tree_levels(rows)


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


CODINGS = ("thermometer", "binary")  # CODING = 0, 1 of fineq_gemm_engine


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
        return f"{self.rows}x{self.cols}d{self.psum_depth}" + ("b" if self.coding == "binary" else "")

    @property
    def bpv(self) -> int:
        """Blocks per weight beat."""
        return bpv(self.rows)

    @property
    def sum_w(self) -> int:
        """Width of a column sum (the adder tree's output)."""
        return sum_w(self.rows)


def tiles(k: int, cfg: EngineConfig) -> int:
    return -(-k // cfg.rows)


