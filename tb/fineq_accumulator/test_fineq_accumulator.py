"""fineq_accumulator: first cycle starts from base, then adds tree sums (doubled on shift_i cycles when
SHIFT = 1; shift_i is driven at random either way, so SHIFT = 0 must ignore it); ACC_W wrap-free range."""

from __future__ import annotations

import cocotb
import pytest
from cocotb.triggers import FallingEdge, RisingEdge

from fineq_tb import clocking, runner
from fineq_tb.scoreboard import Scoreboard


class TB:
    def __init__(self, dut) -> None:
        self.dut = dut
        self.cols, self.sum_w, self.acc_w = (clocking.param(dut, p) for p in ("COLS", "SUM_W", "ACC_W"))
        self.shift = clocking.param(dut, "SHIFT")
        self.rng = clocking.seeded_rng(dut)
        self.sb = Scoreboard("fineq_accumulator", dut._log, equal=lambda a, b: list(a) == list(b))
        self.acc = [0] * self.cols  # model state

    async def monitor(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk_i)
            first = int(d.first_i.value)
            base = clocking.lanes(int(d.base_i.value), self.acc_w, self.cols)
            sums = clocking.lanes(int(d.sum_i.value), self.sum_w, self.cols)
            start = base if first else self.acc
            mul = 2 if self.shift and int(d.shift_i.value) else 1
            out = [clocking.signed(s + mul * x, self.acc_w) for s, x in zip(start, sums, strict=True)]
            self.sb.expect(out)
            self.sb.observe(clocking.lanes(int(d.sum_o.value), self.acc_w, self.cols))
            if int(d.en_i.value):
                self.acc = out

    async def drive(self, n: int) -> None:
        d = self.dut
        lo, hi = -(1 << (self.sum_w - 1)), (1 << (self.sum_w - 1)) - 1
        big = 3 * 128 * ((1 << 22) - 1)  # largest |Y| the engine can produce
        for _ in range(n):
            await FallingEdge(d.clk_i)
            d.en_i.value = int(self.rng.random() < 0.8)
            d.first_i.value = int(self.rng.random() < 0.3)
            d.shift_i.value = int(self.rng.random() < 0.5)
            base = [self.rng.choice((big, -big, self.rng.randint(-big, big))) for _ in range(self.cols)]
            d.base_i.value = clocking.pack(base, self.acc_w)
            d.sum_i.value = clocking.pack([self.rng.choice((lo, hi, self.rng.randint(lo, hi)))
                                           for _ in range(self.cols)], self.sum_w)


@cocotb.test()
async def accumulator_random(dut):
    tb = TB(dut)
    await clocking.start(dut, {"en_i": 0, "first_i": 1, "shift_i": 0, "base_i": 0, "sum_i": 0})
    cocotb.start_soon(tb.monitor())
    await tb.drive(2000)
    await RisingEdge(dut.clk_i)
    tb.sb.check(min_compared=2000)


@pytest.mark.rtl
@pytest.mark.parametrize("gate,shift", [(1, 0), (0, 0), (1, 1)])
@pytest.mark.parametrize("sim", runner.simulators())
def test_fineq_accumulator(sim, gate, shift):
    runner.run("fineq_accumulator", "test_fineq_accumulator", sim,
               {"COLS": 4, "SUM_W": 15, "ACC_W": 32, "CLOCK_GATE": gate, "SHIFT": shift}, name=f"g{gate}s{shift}")
