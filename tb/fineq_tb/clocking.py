"""Clock and reset for the clocked testbenches."""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import RisingEdge


async def start(dut: SimHandleBase, idle: dict[str, int] | None = None, period_ns: float = 2.5,
                clk: str = "clk_i", rst: str = "rst_ni") -> None:
    """Drive the ``idle`` input values, start a clock (400 MHz by default), pulse the active-low reset 3 cycles."""
    for name, value in (idle or {}).items():
        getattr(dut, name).value = value
    cocotb.start_soon(Clock(getattr(dut, clk), period_ns, unit="ns").start())
    getattr(dut, rst).value = 0
    for _ in range(3):
        await RisingEdge(getattr(dut, clk))
    getattr(dut, rst).value = 1
    await RisingEdge(getattr(dut, clk))


def seeded_rng(dut: SimHandleBase) -> random.Random:
    """A Random seeded from this test's cocotb seed (derived from the regression seed, logged for SEED=)."""
    dut._log.info("regression seed %s: reproduce with SEED=%s (this test's seed %d)",
                  os.environ.get("FINEQ_SEED", "?"), os.environ.get("FINEQ_SEED", "?"), cocotb.RANDOM_SEED)
    return random.Random(cocotb.RANDOM_SEED)


def signed(value: int, width: int) -> int:
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


def lanes(value: int, width: int, count: int, is_signed: bool = True) -> list[int]:
    """Split a packed bus into ``count`` lanes of ``width`` bits (lane 0 in the low bits)."""
    mask = (1 << width) - 1
    out = [(value >> (width * i)) & mask for i in range(count)]
    return [signed(v, width) for v in out] if is_signed else out


def pack(values: list[int], width: int) -> int:
    mask = (1 << width) - 1
    return sum((v & mask) << (width * i) for i, v in enumerate(values))


def param(dut: SimHandleBase, name: str) -> int:
    """A Verilog parameter of the DUT, or ``FINEQ_PARAM_<NAME>`` from the environment.

    Gate-level netlists (synth/) have no parameters left; the runner passes
    them in the environment instead.
    """
    env = os.environ.get(f"FINEQ_PARAM_{name}")
    if env is not None:
        return int(env)
    return int(getattr(dut, name).value)
