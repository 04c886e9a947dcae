"""fineq_temporal_encoder against the spec's thermometer code (section 8) and early termination, or,
with CODING = 1, against the binary-weighted variant (b1 bits with shift_o, then b0 bits), or, with CODING = 2,
against the power-of-two datapath's one-hot selects (bits_o, x2_o, x4_o for magnitudes 1, 2, 3: one cycle).

Input monitor samples load_i/vec_i/step_i at each edge and feeds the model
(a cycle-by-cycle Python encoder); output monitor samples bits/signs/first/last;
the scoreboard compares them cycle by cycle.
"""

from __future__ import annotations

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge, RisingEdge

from fineq.engine.config import CODINGS
from fineq.engine.cycles import vector_length
from fineq.engine.gemm import temporal_bits
from fineq.format import codec
from fineq_tb import clocking, runner
from fineq_tb.scoreboard import Scoreboard


class Model:
    """Thermometer (spec section 8): bit t of magnitude u is (t < u). Binary: with some u >= 2, cycle 0
    sends bit 1 of every u (shift 1), cycle 1 bit 0; otherwise one cycle of bit 0. Power-of-two: one cycle, the
    selects of x (u = 1), 2x (u = 2) and 4x (u = 3) from ``fineq.engine.gemm.temporal_bits``. A vector lasts
    ``fineq.engine.cycles.vector_length`` cycles."""

    def __init__(self, rows: int, coding: int) -> None:
        self.rows, self.coding, self.vec, self.cnt = rows, coding, [0] * rows, 0

    def outputs(self) -> tuple[int, int, int, int, int, int, int]:
        mags = [abs(v) for v in self.vec]
        hi = self.coding == 1 and max(mags) >= 2 and self.cnt == 0
        x2 = x4 = 0
        if self.coding == 2:
            (factor, _), = temporal_bits(np.array(mags), "pow2")
            bits, x2, x4 = (sum(int(f == want) << r for r, f in enumerate(factor)) for want in (1, 2, 4))
        elif self.coding == 1:
            bits = sum((((m >> 1) if hi else m) & 1) << r for r, m in enumerate(mags))
        else:
            bits = sum((self.cnt < m) << r for r, m in enumerate(mags))
        signs = sum((v < 0) << r for r, v in enumerate(self.vec))
        last = self.cnt == vector_length(max(mags), CODINGS[self.coding]) - 1
        return bits, x2, x4, signs, int(hi), int(self.cnt == 0), int(last)

    def step(self, load: int, vec_bus: int, step: int) -> None:
        if load:
            self.vec = [_level(vec_bus >> (3 * r)) for r in range(self.rows)]
            self.cnt = 0
        elif step:
            self.cnt += 1


def _level(f: int) -> int:
    mag = f & 3
    return -mag if f & 4 else mag


class TB:
    def __init__(self, dut) -> None:
        self.dut = dut
        self.rows = clocking.param(dut, "ROWS")
        self.coding = clocking.param(dut, "CODING")
        self.rng = clocking.seeded_rng(dut)
        self.model = Model(self.rows, self.coding)
        self.sb = Scoreboard("fineq_temporal_encoder", dut._log)
        self.cycles_seen: list[tuple[int, int]] = []  # (expected cycles, observed cycles) per vector

    async def monitor(self) -> None:
        while True:
            await RisingEdge(self.dut.clk_i)
            d = self.dut
            self.sb.expect(self.model.outputs())
            self.sb.observe((int(d.bits_o.value), int(d.x2_o.value), int(d.x4_o.value), int(d.signs_o.value),
                             int(d.shift_o.value), int(d.first_o.value), int(d.last_o.value)))
            self.model.step(int(d.load_i.value), int(d.vec_i.value), int(d.step_i.value))

    async def run_vector(self, levels: list[int], hold_prob: float) -> int:
        """Load a vector, step it to its last cycle (with random holds); return its cycle count.

        The driver acts on falling edges, where the encoder's outputs have settled.
        """
        d = self.dut
        d.vec_i.value = codec.weights_bus(levels)
        d.load_i.value = 1
        d.step_i.value = 0
        await RisingEdge(d.clk_i)
        await FallingEdge(d.clk_i)
        d.load_i.value = 0
        cycles = 0
        while True:
            hold = self.rng.random() < hold_prob
            last = int(d.last_o.value)
            d.step_i.value = 0 if (hold or last) else 1
            await RisingEdge(d.clk_i)
            await FallingEdge(d.clk_i)
            if not hold:
                cycles += 1
                if last:
                    return cycles

    def vector(self, kind: str) -> list[int]:
        r = self.rows
        if kind == "zero":
            return [0] * r
        if kind == "three":
            return [self.rng.choice((-3, 3)) for _ in range(r)]
        top = self.rng.randint(0, 3)
        return [self.rng.randint(-top, top) for _ in range(r)]


@cocotb.test()
async def encoder_random_vectors(dut):
    tb = TB(dut)
    await clocking.start(dut, {"load_i": 0, "step_i": 0, "vec_i": 0})
    cocotb.start_soon(tb.monitor())
    await FallingEdge(dut.clk_i)
    for i in range(400):
        kind = "zero" if i % 17 == 0 else "three" if i % 13 == 0 else "random"
        levels = tb.vector(kind)
        n = await tb.run_vector(levels, hold_prob=0.2 if i % 2 else 0.0)
        expected = vector_length(max(abs(v) for v in levels), CODINGS[tb.coding])
        assert n == expected, f"vector {i} ({kind}) took {n} cycles, early termination says {expected}"
    tb.sb.check(min_compared=800)


@pytest.mark.rtl
@pytest.mark.parametrize("rows,gate,coding", [(8, 1, 0), (8, 0, 0), (64, 1, 0), (8, 1, 1), (64, 1, 1), (8, 1, 2),
                                              (64, 1, 2)])
@pytest.mark.parametrize("sim", runner.simulators())
def test_fineq_temporal_encoder(sim, rows, gate, coding):
    runner.run("fineq_temporal_encoder", "test_fineq_temporal_encoder", sim,
               {"ROWS": rows, "CLOCK_GATE": gate, "CODING": coding}, name=f"r{rows}g{gate}c{coding}")
