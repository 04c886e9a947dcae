"""fineq_adder_tree: per column, the sum of the terms whose bit is 1, sign applied; extreme values included, no
overflow; terms shared by rows across the columns (the PE select and the weight sign are the leaves). With
POW2 = 1 a row's one-hot select passes x, 2x or 4x; with POW2 = 0 the x2/x4 selects are driven at random and must
change nothing. Signs are driven on rows that pass no term too (a negated zero is 0)."""

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
        self.pow2 = clocking.param(dut, "POW2")
        self.sum_w = clocking.param(dut, "SUM_W")
        self.rng = clocking.seeded_rng(dut)
        self.sb = Scoreboard("fineq_adder_tree", dut._log, equal=lambda a, b: list(a) == list(b))

    async def check(self, xs: list[int], negs: list[int], sel: list[int] | None = None) -> None:
        """``xs``: N values, or N * COLS (term (n, c) at n * COLS + c); one value per row is used in every column.
        ``sel``: per row 0, 1 (bits_i), 2 (x2_i) or 4 (x4_i); with POW2 = 0, 2 and 4 raise x2_i / x4_i beside a
        random bits_i, which the tree must ignore."""
        d = self.dut
        if len(xs) == self.n:
            xs = [x for x in xs for _ in range(self.cols)]
        sel = sel if sel is not None else [1] * self.n
        bits = [int(s == 1) if self.pow2 else (int(s == 1) | self.rng.getrandbits(1) * int(s > 1)) for s in sel]
        d.data_i.value = clocking.pack(xs, self.w)
        d.neg_i.value = clocking.pack(negs, 1)
        d.bits_i.value = clocking.pack(bits, 1)
        d.x2_i.value = clocking.pack([int(s == 2) for s in sel], 1)
        d.x4_i.value = clocking.pack([int(s == 4) for s in sel], 1)
        await Timer(1, "ns")
        # model fed from the inputs as the DUT sees them
        x_in = clocking.lanes(int(d.data_i.value), self.w, self.n * self.cols)
        n_in = clocking.lanes(int(d.neg_i.value), 1, self.n, is_signed=False)
        b_in = clocking.lanes(int(d.bits_i.value), 1, self.n, is_signed=False)
        f_in = b_in
        if self.pow2:
            x2 = clocking.lanes(int(d.x2_i.value), 1, self.n, is_signed=False)
            x4 = clocking.lanes(int(d.x4_i.value), 1, self.n, is_signed=False)
            f_in = [b + 2 * t + 4 * f for b, t, f in zip(b_in, x2, x4, strict=True)]
        self.sb.expect([sum((-1 if n_in[r] else 1) * f_in[r] * x_in[r * self.cols + c] for r in range(self.n))
                        for c in range(self.cols)])
        self.sb.observe(clocking.lanes(int(d.sum_o.value), self.sum_w, self.cols))


@cocotb.test()
async def adder_tree_extremes_and_random(dut):
    tb = TB(dut)
    lo, hi = -(1 << (tb.w - 1)), (1 << (tb.w - 1)) - 1
    n = tb.n
    for s in (1, 2, 4):  # every term at one select: the extremes (4 x -128 negated is the largest, 512)
        for v in (lo, hi, 0, -1, 1):
            for neg in (0, 1):
                await tb.check([v] * n, [neg] * n, [s] * n)
    await tb.check([lo] * n, [i % 2 for i in range(n)])
    await tb.check([lo if i % 2 else hi for i in range(n)], [1 - i % 2 for i in range(n)])
    for _ in range(1500):
        xs = [tb.rng.choice((lo, hi, tb.rng.randint(lo, hi))) for _ in range(n * tb.cols)]
        await tb.check(xs, [tb.rng.getrandbits(1) for _ in range(n)], [tb.rng.choice((0, 1, 2, 4)) for _ in range(n)])
    tb.sb.check(min_compared=1500)


@pytest.mark.rtl
@pytest.mark.parametrize("n,cols,pow2", [(64, 1, 0), (24, 3, 0), (5, 2, 0), (1, 1, 0), (64, 1, 1), (5, 2, 1)])
@pytest.mark.parametrize("sim", runner.simulators())
def test_fineq_adder_tree(sim, n, cols, pow2):
    runner.run("fineq_adder_tree", "test_fineq_adder_tree", sim, {"N": n, "COLS": cols, "IN_W": 8, "POW2": pow2},
               name=f"n{n}c{cols}" + ("p" if pow2 else ""))
