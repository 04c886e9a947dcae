"""mac_systolic_array (the baseline) against the golden integer GEMM, bit-exactly, at every weight width W_W.

With W_W = 3 the weights are FineQ matrices (fineq.quantize) and the model is fineq.gemm; with W_W = 4 or 8
they are the MAC array's own sign-magnitude grid (fineq.quant.signmag) and the model is fineq.engine.gemm.int_gemm.

Per K tile: the driver preloads the tile of X, then streams the weight vectors
of every output row with the systolic skew (row r gets row m's weight at cycle
m + r). The input monitor records the activations and weights that entered the
DUT; the model computes that tile's product with fineq.gemm (weights of the
item, activations as observed) and checks the observed weight stream against
the item's levels. The output monitor takes column c of row m from the bottom
edge at cycle m + ROWS + c. The scoreboard compares every tile and the sum of
the tiles with fineq.gemm of the whole GEMM.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge, RisingEdge

import fineq
from fineq.engine.gemm import int_gemm
from fineq.format.codec import from_sign_magnitude, weights_bus
from fineq.quant.signmag import qmax, quantize_signmag
from fineq.synthetic import heavy_tailed
from fineq_tb import clocking, runner
from fineq_tb.scoreboard import Scoreboard


class TB:
    def __init__(self, dut, inject_error_at: int | None = None) -> None:
        self.dut = dut
        self.rows, self.cols = clocking.param(dut, "ROWS"), clocking.param(dut, "COLS")
        self.psum_w = clocking.param(dut, "PSUM_W")
        self.w_w = clocking.param(dut, "W_W")
        self.rng = clocking.seeded_rng(dut)
        self.sb = Scoreboard("mac_systolic_array", dut._log, equal=lambda a, b: np.array_equal(a, b),
                             inject_error_at=inject_error_at, corrupt=_flip)
        self.cycle = 0
        self.x_seen = np.zeros((self.rows, self.cols), dtype=np.int64)
        self.w_seen: dict[int, list[int]] = {}  # cycle -> row weights (levels) entering the left edge
        self.out_seen: dict[int, list[int]] = {}  # cycle -> bottom outputs

    async def monitor(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk_i)
            we = int(d.act_we_i.value)
            if we:
                lanes = clocking.lanes(int(d.act_row_i.value), 8, self.cols)
                for r in range(self.rows):
                    if (we >> r) & 1:
                        self.x_seen[r] = lanes
            wb = int(d.w_i.value)
            self.w_seen[self.cycle] = [from_sign_magnitude((wb >> (self.w_w * r)) & ((1 << self.w_w) - 1), self.w_w)
                                       for r in range(self.rows)]
            self.out_seen[self.cycle] = clocking.lanes(int(d.psum_o.value), self.psum_w, self.cols)
            self.cycle += 1

    async def run_tile(self, v: np.ndarray, x_tile: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Preload x_tile [ROWS, COLS], stream v [M, ROWS]; return (observed X, observed V, outputs [M, COLS])."""
        d, m = self.dut, v.shape[0]
        for r in range(self.rows):
            await FallingEdge(d.clk_i)
            d.act_we_i.value = 1 << r
            d.act_row_i.value = clocking.pack(x_tile[r].tolist(), 8)
        await FallingEdge(d.clk_i)
        d.act_we_i.value = 0
        start = self.cycle
        for j in range(m + self.rows - 1):
            lv = [int(v[j - r, r]) if 0 <= j - r < m else 0 for r in range(self.rows)]
            d.w_i.value = weights_bus(lv, self.w_w)
            await FallingEdge(d.clk_i)
        d.w_i.value = 0
        for _ in range(self.cols + 2):
            await FallingEdge(d.clk_i)
        v_obs = np.array([[self.w_seen[start + mm + r][r] for r in range(self.rows)] for mm in range(m)])
        out = np.array([[self.out_seen[start + mm + self.rows + c][c] for c in range(self.cols)] for mm in range(m)])
        return self.x_seen.copy(), v_obs, out

    async def run_gemm(self, w: fineq.QuantizedMatrix | np.ndarray, x: np.ndarray) -> None:
        """One GEMM: ``w`` a FineQ matrix (model fineq.gemm) or integer levels [M, K] (model int_gemm)."""
        lv = w.levels() if isinstance(w, fineq.QuantizedMatrix) else np.asarray(w)

        def model(xs: np.ndarray) -> np.ndarray:
            return fineq.gemm(w, xs) if isinstance(w, fineq.QuantizedMatrix) else int_gemm(lv, xs)

        m, k = lv.shape
        n = x.shape[1]
        total = np.zeros((m, self.cols), dtype=np.int64)
        for t in range(-(-k // self.rows)):
            k0, k1 = self.rows * t, min(k, self.rows * (t + 1))
            v = np.zeros((m, self.rows), dtype=np.int64)
            v[:, : k1 - k0] = lv[:, k0:k1]
            xt = np.zeros((self.rows, self.cols), dtype=np.int64)
            xt[: k1 - k0, :n] = x[k0:k1]
            x_obs, v_obs, out = await self.run_tile(v, xt)
            # model: the tile's product, weights from the item, activations as observed on the ports
            assert np.array_equal(v_obs, v), f"tile {t}: weight stream differs from the item's levels"
            x_full = np.zeros((k, self.cols), dtype=np.int8)
            x_full[k0:k1] = x_obs[: k1 - k0]
            self.sb.expect(model(x_full))
            self.sb.observe(out)
            total += out
        self.sb.expect(model(np.pad(x, ((0, 0), (0, self.cols - n)))))
        self.sb.observe(total)


def _flip(a: np.ndarray) -> np.ndarray:
    b = a.copy()
    b.flat[0] ^= 1 << 2
    return b


async def setup(dut) -> None:
    await clocking.start(dut, {"act_we_i": 0, "act_row_i": 0, "w_i": 0})


def cases(tb: TB, count: int) -> list[tuple[fineq.QuantizedMatrix | np.ndarray, np.ndarray]]:
    """Random GEMMs; the first has every weight at the largest magnitude of the width, with activation -128
    (the widest product). W_W = 3: FineQ matrices; wider: the sign-magnitude grid of the width."""
    nrng = np.random.default_rng(tb.rng.getrandbits(32))
    top = qmax(tb.w_w)
    out: list[tuple[fineq.QuantizedMatrix | np.ndarray, np.ndarray]] = []
    for i in range(count):
        m = tb.rng.randint(1, 12)
        k = tb.rng.choice([1, 23, tb.rows + 3, tb.rng.randint(1, 3 * tb.rows)])
        n = tb.rng.randint(1, tb.cols)
        x = nrng.integers(-128, 128, size=(k, n), dtype=np.int8)
        x[0, 0] = -128
        w = heavy_tailed(m, k, seed=tb.rng.getrandbits(32))
        if i == 0:
            lv = np.full((m, k), top, dtype=np.int16)
            lv[:, 0::3] = 0
            lv[::2] *= -1
            x[:] = -128
            q = fineq.from_levels(lv.astype(np.int8), np.ones((m, 4 * -(-k // 24)), dtype=np.uint8)) \
                if tb.w_w == 3 else lv
        else:
            q = fineq.quantize(w) if tb.w_w == 3 else quantize_signmag(w, tb.w_w).levels
        out.append((q, x))
    return out


@cocotb.test()
async def mac_random_gemms(dut):
    tb = TB(dut)
    await setup(dut)
    cocotb.start_soon(tb.monitor())
    n = 4 if tb.rows * tb.cols > 256 else 8
    for q, x in cases(tb, n):
        await tb.run_gemm(q, x)
    tb.sb.check(min_compared=2 * n)


@cocotb.test()
async def mac_scoreboard_catches_injected_error(dut):
    tb = TB(dut, inject_error_at=0)
    await setup(dut)
    cocotb.start_soon(tb.monitor())
    q, x = cases(tb, 2)[1]
    await tb.run_gemm(q, x)
    assert len(tb.sb.errors) == 1 and tb.sb.errors[0].startswith("observation 0"), tb.sb.errors
    dut._log.info("scoreboard reported the injected error, as it must")


@cocotb.test()
async def mac_file_job(dut):
    """Runs the GEMM in $FINEQ_JOB (synth/activity.py: the switching-activity workload), checked as above."""
    job = os.environ.get("FINEQ_JOB")
    if not job:
        return
    tb = TB(dut)
    await setup(dut)
    cocotb.start_soon(tb.monitor())
    with np.load(job, allow_pickle=False) as z:
        q = (z["levels"] if "levels" in z.files else
             fineq.QuantizedMatrix(z["packed"], z["scales"], tuple(int(v) for v in z["shape"])))
        x = z["x"]
    await tb.run_gemm(q, x)
    tb.sb.check(min_compared=2)


# The 64 x 64 array (4,096 clock-gated MAC PEs: about 8 minutes to build and run at C++ -O0) is marked fullsize:
# `make sim` runs it, `make test` leaves it out; there the 8 x 4 arrays (gated and not, both simulators, every
# weight width) check the same module, and synth/activity.py runs it 64 rows tall.
CONFIGS = [pytest.param(sim, r, c, g, w, marks=[pytest.mark.fullsize] if r == 64 else [])
           for sim, r, c, g, w in [("icarus", 8, 4, 1, 3), ("verilator", 8, 4, 1, 3), ("verilator", 8, 4, 0, 3),
                                   ("icarus", 8, 4, 1, 8), ("verilator", 8, 4, 1, 4), ("verilator", 64, 64, 1, 3)]
           if sim in runner.simulators()]


@pytest.mark.rtl
@pytest.mark.parametrize("sim,rows,cols,gate,w_w", CONFIGS)
def test_mac_systolic_array(sim, rows, cols, gate, w_w):
    runner.run("mac_systolic_array", "test_mac_systolic_array", sim,
               {"ROWS": rows, "COLS": cols, "CLOCK_GATE": gate, "W_W": w_w},
               name=f"{rows}x{cols}g{gate}w{w_w}", testcase=["mac_random_gemms", "mac_scoreboard_catches_injected_error"])
