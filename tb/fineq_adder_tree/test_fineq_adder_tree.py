"""fineq_adder_tree: per column, the sum of the terms whose bit is 1, sign applied; extreme values included, no
overflow; terms shared by rows across the columns (the PE select and the weight sign are the leaves)."""

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
        self.cols = clocking.param(dut, "COLS")
        self.w = clocking.param(dut, "IN_W")
        self.sum_w = clocking.param(dut, "SUM_W")
        self.rng = clocking.seeded_rng(dut)
        self.sb = Scoreboard("fineq_adder_tree", dut._log, equal=lambda a, b: list(a) == list(b))

    async def check(self, xs: list[int], negs: list[int], bits: list[int] | None = None) -> None:
        """``xs``: N values, or N * COLS (term (n, c) at n * COLS + c); one value per row is used in every column."""
        d = self.dut
        if len(xs) == self.n:
            xs = [x for x in xs for _ in range(self.cols)]
        bits = bits if bits is not None else [1] * self.n
        d.data_i.value = clocking.pack(xs, self.w)
        d.neg_i.value = clocking.pack(negs, 1)
        d.bits_i.value = clocking.pack(bits, 1)
        await Timer(1, "ns")
        # model fed from the inputs as the DUT sees them
        x_in = clocking.lanes(int(d.data_i.value), self.w, self.n * self.cols)
        n_in = clocking.lanes(int(d.neg_i.value), 1, self.n, is_signed=False)
        b_in = clocking.lanes(int(d.bits_i.value), 1, self.n, is_signed=False)
        self.sb.expect([sum((-1 if n_in[r] else 1) * b_in[r] * x_in[r * self.cols + c] for r in range(self.n))
                        for c in range(self.cols)])
        self.sb.observe(clocking.lanes(int(d.sum_o.value), self.sum_w, self.cols))


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
        xs = [tb.rng.choice((lo, hi, tb.rng.randint(lo, hi))) for _ in range(n * tb.cols)]
        await tb.check(xs, [tb.rng.getrandbits(1) for _ in range(n)], [tb.rng.getrandbits(1) for _ in range(n)])
    tb.sb.check(min_compared=1500)


@pytest.mark.rtl
@pytest.mark.parametrize("n,cols", [(64, 1), (24, 3), (5, 2), (1, 1)])
@pytest.mark.parametrize("sim", runner.simulators())
def test_fineq_adder_tree(sim, n, cols):
    runner.run("fineq_adder_tree", "test_fineq_adder_tree", sim, {"N": n, "COLS": cols, "IN_W": 8},
               name=f"n{n}c{cols}")
