"""fineq_beat_decoder (BPV decoders, skip, K mask) against fineq.engine.schedule.decode_beat."""

from __future__ import annotations

import cocotb
import pytest
from cocotb.triggers import Timer

from fineq.engine.config import EngineConfig
from fineq.engine.schedule import beat_window, decode_beat
from fineq.format import codec
from fineq_tb import clocking, runner
from fineq_tb.scoreboard import Scoreboard


class TB:
    def __init__(self, dut) -> None:
        self.dut = dut
        self.rows = clocking.param(dut, "ROWS")
        self.cfg = EngineConfig(rows=self.rows)
        self.rng = clocking.seeded_rng(dut)
        dut._log.info("ROWS=%d BPV=%d", self.rows, self.cfg.bpv)
        self.sb = Scoreboard("fineq_beat_decoder", dut._log)

    async def drive(self, blocks: list[bytes], skip: int, valid: int) -> None:
        self.dut.beat_i.value = sum(codec.block_word(b) << (56 * i) for i, b in enumerate(blocks))
        self.dut.skip_i.value = skip
        self.dut.valid_i.value = valid
        await Timer(1, "ns")

    def model_from_inputs(self) -> int:
        beat = int(self.dut.beat_i.value)
        skip = int(self.dut.skip_i.value)
        valid = int(self.dut.valid_i.value)
        blocks = [((beat >> (56 * i)) & ((1 << 56) - 1)).to_bytes(7, "little") for i in range(self.cfg.bpv)]
        # find a tile index t whose window has this skip, and a K that leaves `valid` weights in it
        t = next(t for t in range(3) if beat_window(t, self.cfg)[1] == 8 * skip)
        vec = decode_beat(blocks, t, self.rows * t + valid, self.cfg)
        return codec.weights_bus(vec.tolist())

    async def check(self, blocks: list[bytes], skip: int, valid: int) -> None:
        await self.drive(blocks, skip, valid)
        self.sb.expect(self.model_from_inputs())
        self.sb.observe(int(self.dut.vec_o.value))


@cocotb.test()
async def beat_decoder_random(dut):
    tb = TB(dut)
    skips = sorted({beat_window(t, tb.cfg)[1] // 8 for t in range(3)})
    for i in range(1500):
        blocks = [bytes(tb.rng.getrandbits(8) for _ in range(7)) for _ in range(tb.cfg.bpv)]
        valid = tb.rows if i % 3 else tb.rng.randint(1, tb.rows)
        await tb.check(blocks, tb.rng.choice(skips), valid)
    tb.sb.check(min_compared=1500)


@pytest.mark.rtl
@pytest.mark.parametrize("rows", [8, 16, 64])
@pytest.mark.parametrize("sim", runner.simulators())
def test_fineq_beat_decoder(sim, rows):
    runner.run("fineq_beat_decoder", "test_fineq_beat_decoder", sim, {"ROWS": rows}, name=f"r{rows}")
