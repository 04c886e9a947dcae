"""fineq_pe: holds an activation, outputs it when the bitstream bit is 1, else 0."""

from __future__ import annotations

import cocotb
import pytest
from cocotb.triggers import FallingEdge, RisingEdge

from fineq_tb import clocking, runner
from fineq_tb.scoreboard import Scoreboard


class TB:
    def __init__(self, dut) -> None:
        self.dut = dut
        self.w = clocking.param(dut, "ACT_W")
        self.rng = clocking.seeded_rng(dut)
        self.sb = Scoreboard("fineq_pe", dut._log)
        self.act = 0  # model state, fed from the input monitor

    async def monitor(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk_i)
            self.sb.expect(self.act if int(d.bit_i.value) else 0)
            self.sb.observe(int(d.out_o.value))
            if int(d.load_i.value):
                self.act = int(d.act_i.value)

    async def drive(self, n: int) -> None:
        d = self.dut
        extremes = [0, 1, (1 << self.w) - 1, 1 << (self.w - 1), (1 << (self.w - 1)) - 1]
        for _ in range(n):
            await FallingEdge(d.clk_i)
            d.load_i.value = int(self.rng.random() < 0.3)
            d.act_i.value = self.rng.choice(extremes) if self.rng.random() < 0.3 else self.rng.getrandbits(self.w)
            d.bit_i.value = self.rng.getrandbits(1)


@cocotb.test()
async def pe_random(dut):
    tb = TB(dut)
    await clocking.start(dut, {"load_i": 0, "bit_i": 0, "act_i": 0})
    cocotb.start_soon(tb.monitor())
    await tb.drive(2000)
    await RisingEdge(dut.clk_i)
    tb.sb.check(min_compared=2000)


@pytest.mark.rtl
@pytest.mark.parametrize("act_w,gate", [(8, 1), (8, 0), (4, 1)])
@pytest.mark.parametrize("sim", runner.simulators())
def test_fineq_pe(sim, act_w, gate):
    runner.run("fineq_pe", "test_fineq_pe", sim, {"ACT_W": act_w, "CLOCK_GATE": gate}, name=f"w{act_w}g{gate}")
