"""Valid/ready stream agents: a source with random stalls, a sink with random
back-pressure, and a monitor that records every beat that moves."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import cocotb
from cocotb.handle import SimHandleBase
from cocotb.triggers import RisingEdge


class StreamSource:
    """Drives ``valid``/``data`` and holds each beat until ``ready`` takes it.

    ``stall`` is the probability of idling a cycle before offering a beat.
    """

    def __init__(self, clk: SimHandleBase, valid: SimHandleBase, ready: SimHandleBase, data: SimHandleBase,
                 rng: random.Random, stall: float = 0.0) -> None:
        self.clk, self.valid, self.ready, self.data = clk, valid, ready, data
        self.rng, self.stall = rng, stall
        self.valid.value = 0

    async def send(self, beats: list[int]) -> None:
        for beat in beats:
            while self.stall and self.rng.random() < self.stall:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.valid.value = 1
            self.data.value = beat
            while True:
                await RisingEdge(self.clk)  # values read here are the ones the edge sampled
                if int(self.ready.value):
                    break
        self.valid.value = 0


class StreamSink:
    """Drives ``ready``: high each cycle with probability ``1 - stall``."""

    def __init__(self, clk: SimHandleBase, ready: SimHandleBase, rng: random.Random, stall: float = 0.0) -> None:
        self.clk, self.ready, self.rng, self.stall = clk, ready, rng, stall
        self.ready.value = 0 if stall >= 1 else 1

    async def run(self) -> None:
        while True:
            self.ready.value = 0 if (self.stall and self.rng.random() < self.stall) else 1
            await RisingEdge(self.clk)


class StreamMonitor:
    """Calls ``callback(int(data))`` for every beat with valid && ready at a rising edge."""

    def __init__(self, clk: SimHandleBase, valid: SimHandleBase, ready: SimHandleBase, data: SimHandleBase,
                 callback: Callable[[int], Any]) -> None:
        self.clk, self.valid, self.ready, self.data, self.callback = clk, valid, ready, data, callback

    async def run(self) -> None:
        await wait_reset_released(self.clk)
        while True:
            await RisingEdge(self.clk)
            if int(self.valid.value) and int(self.ready.value):
                self.callback(int(self.data.value))



async def wait_reset_released(clk: SimHandleBase, rst_name: str = "rst_ni") -> None:
    """Wait until the top level's active-low reset is released (signals may be X before)."""
    rst = getattr(cocotb.top, rst_name)
    while True:
        await RisingEdge(clk)
        if str(rst.value) == "1":
            return
