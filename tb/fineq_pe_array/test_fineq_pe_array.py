"""fineq_pe_array: activations preloaded row by row, bitstreams streamed, column sums checked.

With PIPE = 1 the model registers the tree sums on cycles with en_i high (driven at random), so a
missing or extra register load is caught as well as a wrong sum. With POW2 = 1 (the power-of-two PE) each row's
one-hot select passes x, 2x or 4x; with POW2 = 0 the x2/x4 selects are driven at random and must change nothing."""

from __future__ import annotations

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge, RisingEdge

from fineq_tb import clocking, runner
from fineq_tb.scoreboard import Scoreboard


class TB:
    def __init__(self, dut) -> None:
        self.dut = dut
        self.rows, self.cols = clocking.param(dut, "ROWS"), clocking.param(dut, "COLS")
        self.sum_w = clocking.param(dut, "SUM_W")
        self.pipe = clocking.param(dut, "PIPE")
        self.pow2 = clocking.param(dut, "POW2")
        self.sum_q = [0] * self.cols  # model of the tree-sum registers (PIPE = 1)
        self.rng = clocking.seeded_rng(dut)
        self.sb = Scoreboard("fineq_pe_array", dut._log, equal=lambda a, b: list(a) == list(b))
        self.acts = np.zeros((self.rows, self.cols), dtype=np.int64)  # model state

    async def monitor(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk_i)
            bits = np.array(clocking.lanes(int(d.bits_i.value), 1, self.rows, is_signed=False))
            if self.pow2:
                bits = bits + 2 * np.array(clocking.lanes(int(d.x2_i.value), 1, self.rows, is_signed=False)) \
                    + 4 * np.array(clocking.lanes(int(d.x4_i.value), 1, self.rows, is_signed=False))
            signs = clocking.lanes(int(d.signs_i.value), 1, self.rows, is_signed=False)
            sgn = np.where(np.array(signs) == 1, -1, 1) * bits
            tree = (sgn[:, None] * self.acts).sum(axis=0).tolist()
            self.sb.expect(self.sum_q if self.pipe else tree)
            self.sb.observe(clocking.lanes(int(d.col_sum_o.value), self.sum_w, self.cols))
            if self.pipe and int(d.en_i.value):
                self.sum_q = tree
            we = int(d.act_we_i.value)
            if we:
                row = clocking.lanes(int(d.act_row_i.value), 8, self.cols)
                for r in range(self.rows):
                    if (we >> r) & 1:
                        self.acts[r] = row

    async def preload(self, x: np.ndarray) -> None:
        d = self.dut
        for r in range(self.rows):
            await FallingEdge(d.clk_i)
            d.act_we_i.value = 1 << r
            d.act_row_i.value = clocking.pack(x[r].tolist(), 8)
        await FallingEdge(d.clk_i)
        d.act_we_i.value = 0

    def selects(self, sel: list[int]) -> None:
        """Drive each row's select: 0, 1 (bits_i), 2 (x2_i) or 4 (x4_i); with POW2 = 0, bits_i at random under a
        2 or 4 (x2_i and x4_i must be ignored)."""
        d = self.dut
        if self.pow2:
            bits = [int(s == 1) for s in sel]
        else:
            bits = [int(s == 1) | (int(s > 1) & self.rng.getrandbits(1)) for s in sel]
        d.bits_i.value = clocking.pack(bits, 1)
        d.x2_i.value = clocking.pack([int(s == 2) for s in sel], 1)
        d.x4_i.value = clocking.pack([int(s == 4) for s in sel], 1)

    async def stream(self, cycles: int) -> None:
        d = self.dut
        for _ in range(cycles):
            await FallingEdge(d.clk_i)
            self.selects([self.rng.choice((0, 1, 2, 4)) for _ in range(self.rows)])
            d.signs_i.value = self.rng.getrandbits(self.rows)
            d.en_i.value = int(self.rng.random() < 0.8)


@cocotb.test()
async def array_preload_and_stream(dut):
    tb = TB(dut)
    await clocking.start(dut, {"act_we_i": 0, "act_row_i": 0, "bits_i": 0, "x2_i": 0, "x4_i": 0, "signs_i": 0,
                               "en_i": 1})
    cocotb.start_soon(tb.monitor())
    nrng = np.random.default_rng(tb.rng.getrandbits(32))
    for x in (np.full((tb.rows, tb.cols), -128), np.full((tb.rows, tb.cols), 127),
              nrng.integers(-128, 128, size=(tb.rows, tb.cols))):
        await tb.preload(x)
        await tb.stream(40)
        for s in (1, 4):  # every row on (at x, then at 4x), every sign negative: extreme sums
            tb.selects([s] * tb.rows)
            dut.signs_i.value = (1 << tb.rows) - 1
            dut.en_i.value = 1
            await FallingEdge(dut.clk_i)
    await FallingEdge(dut.clk_i)
    await RisingEdge(dut.clk_i)
    tb.sb.check(min_compared=100)


# The full 64 x 64 array runs on Verilator; Icarus (about 0.4 s per cycle at that size) runs 16 x 8.
# PIPE and CLOCK_GATE: the engine's setting (1, 1) everywhere, the others on the small array; CLOCK_GATE = 0 (the
# form the native harness runs) also at 64 x 64 and at a ROWS that is not a power of two (padded tree leaves).
# POW2 = 1 (the power-of-two PE): the engine's setting on both simulators, and the padded tree on Verilator.
CONFIGS = [(sim, r, c, p, g, w) for sim, r, c, p, g, w in
           [("icarus", 16, 8, 1, 1, 0), ("icarus", 16, 8, 0, 0, 0), ("icarus", 5, 3, 1, 0, 0),
            ("verilator", 16, 8, 1, 1, 0), ("verilator", 16, 8, 1, 0, 0), ("verilator", 16, 8, 0, 1, 0),
            ("verilator", 5, 3, 0, 0, 0), ("verilator", 64, 64, 1, 1, 0), ("verilator", 64, 64, 1, 0, 0),
            ("icarus", 16, 8, 1, 1, 1), ("verilator", 16, 8, 1, 1, 1), ("verilator", 5, 3, 0, 0, 1)]
           if sim in runner.simulators()]


@pytest.mark.rtl
@pytest.mark.parametrize("sim,rows,cols,pipe,gate,pow2", CONFIGS)
def test_fineq_pe_array(sim, rows, cols, pipe, gate, pow2):
    runner.run("fineq_pe_array", "test_fineq_pe_array", sim,
               {"ROWS": rows, "COLS": cols, "PIPE": pipe, "CLOCK_GATE": gate, "POW2": pow2},
               name=f"{rows}x{cols}p{pipe}g{gate}" + ("w" if pow2 else ""))
