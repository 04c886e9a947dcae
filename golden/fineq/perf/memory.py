"""Memory energy of one GEMM layer ``Y[M, N] = W[M, K] @ X[K, N]`` on the 64 x 64 arrays (``fineq perf``).

Constants: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, energy
per 64-bit access in 45 nm: SRAM 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ; DRAM 1.3 to 2.6 nJ. We use the
DRAM figure's low end (1.3 nJ / 8 B = 162.5 pJ per byte; the high end would only push both arrays'
totals further toward memory) and, for the on-chip buffer, the SRAM energy interpolated log-log in the
buffer's size between Horowitz's three points.

Traffic (bytes; in ``fineq perf`` both arrays move the same data: the MAC array reads the same packed weights
through the same decoders, so memory adds the same energy to both; ``fineq pareto`` gives the MAC array at its
own widths its own weight bytes, :func:`signmag_weight_bytes`):
  weights   Wb = M * 7 * ceil(K / 24) packed bytes + 2 M bytes of float16 scales
  acts      A  = K * N int8;  outputs O = M * N * 4 (int32, the engine's output)
  runs      R  = ceil(N / COLS) engine runs (each streams every weight once)
  chunks    C  = ceil(M / PSUM_DEPTH) (each run reloads its activations once per chunk)
  DRAM  = Wb (once, if Wb + K * COLS fits the buffer; else R * Wb) + A + O
  SRAM  = the DRAM bytes written into the buffer (weights and A) + R * Wb + C * A read by the array + O
The partial sums stay in the engine's psum buffer, which both arrays have; they are not counted. This is
a first-order model for comparing the arrays, not a memory-system simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fineq.engine.config import EngineConfig
from fineq.format.codec import BLOCK_BYTES, BLOCK_WEIGHTS

HOROWITZ_SRAM_PJ_PER_64B = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
HOROWITZ_DRAM_PJ_PER_64B = 1300.0
DRAM_PJ_PER_BYTE = HOROWITZ_DRAM_PJ_PER_64B / 8
DEFAULT_BUFFER_KB = 512
SOURCE = "Horowitz, ISSCC 2014 (45 nm): SRAM 10/20/100 pJ per 64 bit at 8 KB/32 KB/1 MB, DRAM 1.3 nJ per 64 bit"


def sram_pj_per_byte(buffer_bytes: int) -> float:
    """SRAM energy per byte for a buffer of this size (log-log interpolation, clamped to the end points)."""
    pts = HOROWITZ_SRAM_PJ_PER_64B
    b = min(max(buffer_bytes, pts[0][0]), pts[-1][0])
    for (s0, e0), (s1, e1) in zip(pts, pts[1:], strict=False):
        if b <= s1:
            t = math.log(b / s0) / math.log(s1 / s0)
            return math.exp(math.log(e0) + t * (math.log(e1) - math.log(e0))) / 8
    return pts[-1][1] / 8


@dataclass(frozen=True)
class Traffic:
    dram_bytes: int
    sram_bytes: int
    weights_fit: bool


def fineq_weight_bytes(m: int, k: int, group: int | None = None) -> int:
    """FineQ's packed blocks and float16 row scales (or, the variant outside the spec, a scale per ``group``
    weights of a row)."""
    return m * BLOCK_BYTES * -(-k // BLOCK_WEIGHTS) + 2 * m * (1 if group is None else -(-k // group))


def signmag_weight_bytes(m: int, k: int, bits: int, group: int | None = None) -> int:
    """The MAC array's own weights (:mod:`fineq.quant.signmag`): ``bits`` per weight, packed densely, and a
    float16 scale per row or per group of ``group`` weights of a row."""
    return -(-m * k * bits // 8) + 2 * m * (1 if group is None else -(-k // group))


def traffic(m: int, k: int, n: int, cfg: EngineConfig, buffer_bytes: int, weight_bytes: int | None = None) -> Traffic:
    """The layer's traffic; its weights are FineQ's packed format unless ``weight_bytes`` says otherwise."""
    wb = fineq_weight_bytes(m, k) if weight_bytes is None else weight_bytes
    a, o = k * n, m * n * 4
    runs, chunks = -(-n // cfg.cols), -(-m // cfg.psum_depth)
    fit = wb + k * cfg.cols <= buffer_bytes
    dram_w = wb if fit else runs * wb
    return Traffic(dram_w + a + o, dram_w + a + runs * wb + chunks * a + o, fit)


def energy_pj(t: Traffic, buffer_bytes: int) -> float:
    return t.dram_bytes * DRAM_PJ_PER_BYTE + t.sram_bytes * sram_pj_per_byte(buffer_bytes)
