"""fineq_decoder against the bit-level golden codec (fineq.format.codec), bit-exactly.

Driver: puts a 56-bit block on block_i. Input monitor: reads block_i back from
the DUT and feeds the model (fineq.format.codec.decode_word -> weights_bus). Output
monitor: reads weights_o. Scoreboard: compares in order.
"""

from __future__ import annotations

import cocotb
import pytest
from cocotb.triggers import Timer

from fineq.format import codec
from fineq_tb import clocking, runner
from fineq_tb.scoreboard import Scoreboard

N_RANDOM = 10_000


class TB:
    def __init__(self, dut, inject_error_at: int | None = None) -> None:
        self.dut = dut
        self.rng = clocking.seeded_rng(dut)
        self.sb = Scoreboard("fineq_decoder", dut._log, inject_error_at=inject_error_at,
                             corrupt=lambda v: v ^ (1 << 31))

    async def drive(self, word: int) -> None:
        self.dut.block_i.value = word
        await Timer(1, "ns")

    def monitor_input(self) -> None:
        word = int(self.dut.block_i.value)
        self.sb.expect(codec.weights_bus(codec.decode_word(word)))

    def monitor_output(self) -> None:
        self.sb.observe(int(self.dut.weights_o.value))

    async def check(self, word: int) -> None:
        await self.drive(word)
        self.monitor_input()
        self.monitor_output()


def every_code_sign_magnitude() -> list[int]:
    """All 4 codes x all 64 field values, in all 8 cluster positions, plus mixed-code blocks."""
    words = []
    for code in range(4):
        for f in range(64):
            data = sum(f << (6 * j) for j in range(8))
            words.append((code * 0b01010101) | (data << 8))
    for codes in range(256):  # every index byte, with distinct fields per cluster
        data = sum(((codes + 7 * j) & 0x3F) << (6 * j) for j in range(8))
        words.append(codes | (data << 8))
    return words


@cocotb.test()
async def decoder_exhaustive(dut):
    tb = TB(dut)
    for w in every_code_sign_magnitude():
        await tb.check(w)
    tb.sb.check(min_compared=512)


@cocotb.test()
async def decoder_random(dut):
    tb = TB(dut)
    for _ in range(N_RANDOM):
        await tb.check(tb.rng.getrandbits(56))
    tb.sb.check(min_compared=N_RANDOM)


@cocotb.test()
async def decoder_scoreboard_catches_injected_error(dut):
    tb = TB(dut, inject_error_at=7)
    for _ in range(20):
        await tb.check(tb.rng.getrandbits(56))
    assert len(tb.sb.errors) == 1 and tb.sb.errors[0].startswith("observation 7"), tb.sb.errors
    try:
        tb.sb.check()
    except AssertionError:
        dut._log.info("scoreboard reported the injected error, as it must")
    else:
        raise AssertionError("scoreboard missed the injected error")


@pytest.mark.rtl
@pytest.mark.parametrize("sim", runner.simulators())
def test_fineq_decoder(sim):
    runner.run("fineq_decoder", "test_fineq_decoder", sim)
