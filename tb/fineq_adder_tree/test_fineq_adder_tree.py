"""fineq_adder_tree: sum of sign-applied signed inputs, extreme values included, no overflow."""

from __future__ import annotations

import cocotb
import pytest
from cocotb.triggers import Timer

from fineq_tb import clocking, runner
from fineq_tb.scoreboard import Scoreboard


class TB:
    def __init__(self, dut) -> None:
        self.dut = dut
        self.n = clocking.param(dut, "N")
        self.w = clocking.param(dut, "IN_W")
        self.sum_w = clocking.param(dut, "SUM_W")
        self.rng = clocking.seeded_rng(dut)
        self.sb = Scoreboard("fineq_adder_tree", dut._log)

    async def check(self, xs: list[int], negs: list[int]) -> None:
        d = self.dut
        d.data_i.value = clocking.pack(xs, self.w)
        d.neg_i.value = clocking.pack(negs, 1)
        await Timer(1, "ns")
        # model fed from the inputs as the DUT sees them
        x_in = clocking.lanes(int(d.data_i.value), self.w, self.n)
        n_in = clocking.lanes(int(d.neg_i.value), 1, self.n, is_signed=False)
        self.sb.expect(sum(-x if s else x for x, s in zip(x_in, n_in, strict=True)))
        self.sb.observe(clocking.signed(int(d.sum_o.value), self.sum_w))


@cocotb.test()
async def adder_tree_extremes_and_random(dut):
    tb = TB(dut)
    lo, hi = -(1 << (tb.w - 1)), (1 << (tb.w - 1)) - 1
    n = tb.n
    for v in (lo, hi, 0, -1, 1):
        for neg in (0, 1):
            await tb.check([v] * n, [neg] * n)
    await tb.check([lo] * n, [i % 2 for i in range(n)])
    await tb.check([lo if i % 2 else hi for i in range(n)], [1 - i % 2 for i in range(n)])
    for _ in range(1500):
        xs = [tb.rng.choice((lo, hi, tb.rng.randint(lo, hi))) for _ in range(n)]
        await tb.check(xs, [tb.rng.getrandbits(1) for _ in range(n)])
    tb.sb.check(min_compared=1500)


@pytest.mark.rtl
@pytest.mark.parametrize("n", [64, 24, 5, 1])
@pytest.mark.parametrize("sim", runner.simulators())
def test_fineq_adder_tree(sim, n):
    runner.run("fineq_adder_tree", "test_fineq_adder_tree", sim, {"N": n, "IN_W": 8}, name=f"n{n}")
