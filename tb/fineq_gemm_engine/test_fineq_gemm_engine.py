"""fineq_gemm_engine in a pyuvm environment, checked bit-exactly against fineq.gemm.

    GemmSeq --items--> GemmDriver --act/wgt streams (random stalls)--> DUT --out stream--> OutputMonitor
                                   InputMonitor (start, act, wgt beats) --> GemmModel (fineq.gemm,
                                   engine_cycles) --expected--> GemmScoreboard <--actual-- OutputMonitor

The model sees only what the input monitor observed on the DUT's ports: it
rebuilds the packed weights and X from the beats (fineq.engine.schedule's documented
order) and calls fineq.gemm. When a run had no stall on any stream, the
scoreboard also holds the DUT's cycle counter to the cycle model.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import cocotb
import numpy as np
import pytest
import pyuvm
from cocotb.triggers import FallingEdge, RisingEdge
from pyuvm import (
    ConfigDB,
    uvm_analysis_port,
    uvm_component,
    uvm_driver,
    uvm_env,
    uvm_get_port,
    uvm_sequence,
    uvm_sequence_item,
    uvm_sequencer,
    uvm_test,
    uvm_tlm_analysis_fifo,
)

import fineq
from fineq.engine.config import CODINGS, EngineConfig
from fineq.engine.cycles import engine_cycles
from fineq.engine.schedule import act_rows, beat_window, schedule
from fineq.format.codec import BLOCK_BYTES, level_max
from fineq.hw.job import Job, make_job, read_job
from fineq.synthetic import heavy_tailed
from fineq_tb import clocking, runner
from fineq_tb.streams import StreamMonitor, StreamSink, StreamSource, wait_reset_released

# ----------------------------------------------------------------------------- transactions


class GemmItem(uvm_sequence_item):
    """One GEMM as a :class:`fineq.hw.job.Job` (the job every backend runs: streams, stalls, watchdog)."""

    def __init__(self, name: str, job: Job, label: str = "") -> None:
        super().__init__(name)
        self.job, self.stall, self.label = job, job.stall, label


@dataclass
class ObservedInput:
    m: int
    k: int
    act: list[int] = field(default_factory=list)
    wgt: list[int] = field(default_factory=list)
    stall_cycles: int = 0


@dataclass
class Expected:
    rows: list[list[int]]
    cycles: int | None  # None when the run stalled (the cycle model assumes no stalls)
    label: str = ""


@dataclass
class Actual:
    rows: list[list[int]]
    cycles: int


# ----------------------------------------------------------------------------- case generation


Case = tuple[str, fineq.QuantizedMatrix, np.ndarray, float]


def case_list(kind: str, cfg: EngineConfig, rng: random.Random) -> list[Case]:
    """(label, weights, activations, stall probability) for a named set of cases."""
    nrng = np.random.default_rng(rng.getrandbits(32))

    def acts(k: int, n: int) -> np.ndarray:
        x = nrng.integers(-128, 128, size=(k, n), dtype=np.int8)
        x.flat[nrng.integers(0, x.size, size=max(1, x.size // 8))] = -128
        x.flat[nrng.integers(0, x.size, size=max(1, x.size // 8))] = 127
        return x

    book = cfg.codebook  # the levels the engine's coding runs (pow2: {0, +-1, +-2, +-4})

    def heavy(m: int, k: int) -> fineq.QuantizedMatrix:
        return fineq.quantize(heavy_tailed(m, k, seed=rng.getrandbits(32)), rng.choice(["paper", "search"]),
                              codebook=book)

    r, c, d = cfg.rows, cfg.cols, cfg.psum_depth
    if kind == "random":
        out = []
        for i in range(6):
            m = rng.randint(1, 2 * d + 1) if d <= 8 else rng.randint(1, 40)
            k = rng.choice([rng.randint(1, 3 * r + 5), rng.randint(1, 30), 24 * rng.randint(1, 6)])
            n = rng.randint(1, c)
            out.append((f"random{i} M={m} K={k} N={n}", heavy(m, k), acts(k, n), rng.choice([0.1, 0.3, 0.5])))
        return out
    if kind == "cycles":
        out = []
        for i in range(4):
            m, k, n = rng.randint(1, d + 3), rng.randint(1, 2 * r + 30), rng.randint(1, c)
            out.append((f"cycles{i} M={m} K={k} N={n}", heavy(m, k), acts(k, n), 0.0))
        return out
    if kind == "corners":
        k3, top = 2 * r + 8, level_max(book)
        three = np.full((3, k3), top, dtype=np.int8)
        three[1] = -top
        three[2, ::2] = -top
        codes3 = np.array([[1 + (p % 3) for p in range(4 * -(-k3 // 24))]] * 3, dtype=np.uint8)
        for row in range(3):
            for cl in range(-(-k3 // 3)):
                pos = 3 * cl + int(codes3[row, cl // 2]) - 1  # the position each code zeroes
                if pos < k3:
                    three[row, pos] = 0
        cases = [
            ("all-zero weights", fineq.quantize(np.zeros((3, 50), dtype=np.float32), codebook=book), acts(50, c), 0.0),
            (f"every magnitude {top}", fineq.from_levels(three, codes3, codebook=book), acts(k3, c), 0.0),
            ("K=1", heavy(4, 1), acts(1, c), 0.0),
            ("K=23 (not a multiple of 24)", heavy(3, 23), acts(23, 2), 0.0),
            (f"K={r + 1} (not a multiple of ROWS)", heavy(2, r + 1), acts(r + 1, c), 0.0),
            (f"K={3 * r} (ROWS multiple)", heavy(2, 3 * r), acts(3 * r, 1), 0.0),
            ("N=1", heavy(5, 40), acts(40, 1), 0.0),
            ("M=1", heavy(1, 70), acts(70, c), 0.0),
            (f"M={d + 1} (two psum chunks)", heavy(d + 1, 30), acts(30, 3), 0.0),
            ("X all -128", heavy(3, 48), np.full((48, c), -128, dtype=np.int8), 0.0),
            ("X all 127, stalls", heavy(3, 48), np.full((48, c), 127, dtype=np.int8), 0.5),
        ]
        return cases
    if kind == "full":
        k = 2 * r + 40
        return [(f"full-size M=3 K={k} N={c}", heavy(3, k), acts(k, c), 0.0)]
    raise ValueError(f"unknown case set {kind!r}")


# ----------------------------------------------------------------------------- sequence, driver


def enumerate_cases(cases: list, cfg: EngineConfig) -> list[tuple[str, Job]]:
    """Each case as ``(label, Job)``: a ``(label, q, x, stall)`` case becomes the job every backend runs (its
    watchdog from the cycle model); a ``(label, Job)`` case (a job file) is taken as it is."""
    out = []
    for case in cases:
        if len(case) == 2:
            out.append(case)
        else:
            label, q, x, stall = case
            out.append((label, make_job(q, x.astype(np.int8), cfg, engine_cycles(q.levels(), cfg)["total"], stall)))
    return out


class GemmSeq(uvm_sequence):
    async def body(self) -> None:
        cfg: EngineConfig = ConfigDB().get(None, "", "ENGINE")
        for label, case in enumerate_cases(ConfigDB().get(None, "", "CASES"), cfg):
            item = GemmItem(label, case, label)
            await self.start_item(item)
            await self.finish_item(item)


class GemmDriver(uvm_driver):
    """Turns a GemmItem into act/weight beats in the engine's order and drives them with stalls."""

    def build_phase(self) -> None:
        self.dut = cocotb.top
        self.cfg: EngineConfig = ConfigDB().get(self, "", "ENGINE")
        self.rng: random.Random = ConfigDB().get(self, "", "RNG")

    def beats(self, item: GemmItem) -> tuple[list[int], list[int]]:
        act = [int.from_bytes(b.tobytes(), "little") for b in item.job.act]
        wgt = [int.from_bytes(b.tobytes(), "little") for b in item.job.wgt]
        return act, wgt

    async def run_phase(self) -> None:
        d = self.dut
        d.start_i.value = 0
        d.act_valid_i.value = 0
        d.wgt_valid_i.value = 0
        d.out_ready_i.value = 1
        while True:
            item = await self.seq_item_port.get_next_item()
            await self.drive(item)
            self.seq_item_port.item_done()

    async def drive(self, item: GemmItem) -> None:
        d = self.dut
        m, k = item.job.m, item.job.k
        act, wgt = self.beats(item)
        self.logger.info("GEMM %s: %d act beats, %d weight beats, stall %.1f", item.label, len(act), len(wgt),
                         item.stall)
        await FallingEdge(d.clk_i)
        d.cfg_m_i.value = m
        d.cfg_k_i.value = k
        d.start_i.value = 1
        srcs = [
            cocotb.start_soon(StreamSource(d.clk_i, d.act_valid_i, d.act_ready_o, d.act_data_i, self.rng,
                                           item.stall).send(act)),
            cocotb.start_soon(StreamSource(d.clk_i, d.wgt_valid_i, d.wgt_ready_o, d.wgt_data_i, self.rng,
                                           item.stall).send(wgt)),
        ]
        sink = cocotb.start_soon(StreamSink(d.clk_i, d.out_ready_i, self.rng, item.stall).run())
        await RisingEdge(d.clk_i)
        await FallingEdge(d.clk_i)
        d.start_i.value = 0
        limit = item.job.max_cycles
        for _ in range(limit):
            await RisingEdge(d.clk_i)
            if int(d.done_o.value):
                break
        else:
            raise AssertionError(f"GEMM {item.label}: no done_o within {limit} cycles")
        sink.cancel()
        for s in srcs:
            assert s.done(), f"GEMM {item.label}: engine finished before taking every beat"
        d.out_ready_i.value = 1


# ----------------------------------------------------------------------------- monitors, model


class InputMonitor(uvm_component):
    """Records the configuration and every act/weight beat the engine takes; publishes at done."""

    def build_phase(self) -> None:
        self.ap = uvm_analysis_port("ap", self)
        self.dut = cocotb.top
        self.cur: ObservedInput | None = None

    async def run_phase(self) -> None:
        d = self.dut
        await wait_reset_released(d.clk_i)
        cocotb.start_soon(StreamMonitor(d.clk_i, d.act_valid_i, d.act_ready_o, d.act_data_i,
                                        lambda v: self.cur.act.append(v)).run())
        cocotb.start_soon(StreamMonitor(d.clk_i, d.wgt_valid_i, d.wgt_ready_o, d.wgt_data_i,
                                        lambda v: self.cur.wgt.append(v)).run())
        while True:
            await RisingEdge(d.clk_i)
            if int(d.start_i.value) and not int(d.busy_o.value):
                self.cur = ObservedInput(int(d.cfg_m_i.value), int(d.cfg_k_i.value))
            elif self.cur is not None and int(d.busy_o.value):
                stalled = (int(d.act_ready_o.value) and not int(d.act_valid_i.value)) or \
                          (int(d.wgt_ready_o.value) and not int(d.wgt_valid_i.value)) or \
                          (int(d.out_valid_o.value) and not int(d.out_ready_i.value))
                self.cur.stall_cycles += int(bool(stalled))
            if int(d.done_o.value) and self.cur is not None:
                self.ap.write(self.cur)
                self.cur = None


class GemmModel(uvm_component):
    """Rebuilds weights and X from observed beats and computes the expected result with fineq.gemm."""

    def build_phase(self) -> None:
        self.fifo = uvm_tlm_analysis_fifo("fifo", self)
        self.analysis_export = self.fifo.analysis_export
        self.get_port = uvm_get_port("get_port", self)
        self.ap = uvm_analysis_port("ap", self)
        self.cfg: EngineConfig = ConfigDB().get(self, "", "ENGINE")

    def connect_phase(self) -> None:
        self.get_port.connect(self.fifo.get_export)

    async def run_phase(self) -> None:
        while True:
            obs: ObservedInput = await self.get_port.get()
            self.ap.write(self.predict(obs))

    def predict(self, obs: ObservedInput) -> Expected:
        cfg = self.cfg
        nb = -(-obs.k // 24)
        packed = np.zeros((obs.m, BLOCK_BYTES * nb), dtype=np.uint8)
        seen = np.zeros((obs.m, nb), dtype=bool)
        x = np.zeros((obs.k, cfg.cols), dtype=np.int8)
        act_it, wgt_it = iter(obs.act), iter(obs.wgt)
        for c0, _c1, t, row in schedule(obs.m, obs.k, cfg):
            if row == c0:
                for kk in act_rows(obs.k, t, cfg):
                    lanes = np.array(clocking.lanes(next(act_it), 8, cfg.cols), dtype=np.int8)
                    if c0 == 0:
                        x[kk] = lanes
                    assert np.array_equal(x[kk], lanes), f"act row {kk} differs between M chunks"
            beat = next(wgt_it)
            b0, _ = beat_window(t, cfg)
            for i in range(cfg.bpv):
                b = b0 + i
                if b >= nb:
                    continue
                blk = np.frombuffer(((beat >> (56 * i)) & ((1 << 56) - 1)).to_bytes(7, "little"), dtype=np.uint8)
                if seen[row, b]:
                    assert np.array_equal(packed[row, 7 * b : 7 * b + 7], blk), f"block {b} of row {row} differs"
                packed[row, 7 * b : 7 * b + 7] = blk
                seen[row, b] = True
        assert next(act_it, None) is None and next(wgt_it, None) is None, "engine took extra beats"
        assert seen.all(), "some blocks never reached the engine"
        q = fineq.QuantizedMatrix(packed, np.ones(obs.m, dtype=np.float16), (obs.m, obs.k), codebook=cfg.codebook)
        y = fineq.gemm(q, x)
        cycles = engine_cycles(q.levels(), cfg)["total"] if obs.stall_cycles == 0 else None
        return Expected([list(map(int, r)) for r in y], cycles)


class OutputMonitor(uvm_component):
    """Records output rows; at done publishes them with the engine's cycle count."""

    def build_phase(self) -> None:
        self.ap = uvm_analysis_port("ap", self)
        self.dut = cocotb.top
        self.cfg: EngineConfig = ConfigDB().get(self, "", "ENGINE")
        self.rows: list[list[int]] = []

    async def run_phase(self) -> None:
        d = self.dut
        await wait_reset_released(d.clk_i)
        cocotb.start_soon(StreamMonitor(d.clk_i, d.out_valid_o, d.out_ready_i, d.out_data_o,
                                        lambda v: self.rows.append(clocking.lanes(v, 32, self.cfg.cols))).run())
        while True:
            await RisingEdge(d.clk_i)
            if int(d.done_o.value):
                await FallingEdge(d.clk_i)
                self.ap.write(Actual(self.rows, int(d.cycles_o.value)))
                self.rows = []


class GemmScoreboard(uvm_component):
    """Compares every output row and, for stall-free runs, the cycle count."""

    def build_phase(self) -> None:
        self.exp_fifo = uvm_tlm_analysis_fifo("exp_fifo", self)
        self.act_fifo = uvm_tlm_analysis_fifo("act_fifo", self)
        self.exp_port = uvm_get_port("exp_port", self)
        self.act_port = uvm_get_port("act_port", self)
        self.inject = ConfigDB().get(self, "", "INJECT_ERROR")
        self.errors: list[str] = []
        self.compared_rows = 0
        self.compared_cycles = 0
        self.cycles_seen: list[int] = []
        self.last_rows: list[list[int]] = []

    def connect_phase(self) -> None:
        self.exp_port.connect(self.exp_fifo.get_export)
        self.act_port.connect(self.act_fifo.get_export)

    def check_phase(self) -> None:
        n = 0
        while self.exp_port.can_get():
            _, exp = self.exp_port.try_get()
            ok, act = self.act_port.try_get()
            if not ok:
                self.errors.append(f"GEMM {n}: no output observed")
                break
            if self.inject and n == 0:
                act.rows[0][0] ^= 1 << 3  # the injected error: one bit of one output lane
                self.logger.warning("injected an error into GEMM 0, row 0, lane 0")
            if len(act.rows) != len(exp.rows):
                self.errors.append(f"GEMM {n}: {len(act.rows)} output rows, expected {len(exp.rows)}")
            for r, (a, e) in enumerate(zip(act.rows, exp.rows, strict=False)):
                self.compared_rows += 1
                if a != e:
                    bad = [c for c in range(len(e)) if a[c] != e[c]][:4]
                    self.errors.append(f"GEMM {n} row {r}: lanes {bad} got {[a[c] for c in bad]}, "
                                       f"expected {[e[c] for c in bad]}")
            self.cycles_seen.append(act.cycles)
            self.last_rows = act.rows
            if exp.cycles is not None:
                self.compared_cycles += 1
                if act.cycles != exp.cycles:
                    self.errors.append(f"GEMM {n}: {act.cycles} cycles, cycle model says {exp.cycles}")
            n += 1
        if self.act_port.can_get():
            self.errors.append("outputs observed for a GEMM that was never expected")
        self.gemms = n
        for e in self.errors[:10]:
            self.logger.error(e)
        self.logger.info("%d GEMMs, %d rows compared, %d cycle counts compared, %d errors",
                         n, self.compared_rows, self.compared_cycles, len(self.errors))


class GemmEnv(uvm_env):
    def build_phase(self) -> None:
        self.seqr = uvm_sequencer("seqr", self)
        ConfigDB().set(None, "*", "SEQR", self.seqr)
        self.driver = GemmDriver("driver", self)
        self.in_mon = InputMonitor("in_mon", self)
        self.model = GemmModel("model", self)
        self.out_mon = OutputMonitor("out_mon", self)
        self.scoreboard = GemmScoreboard("scoreboard", self)

    def connect_phase(self) -> None:
        self.driver.seq_item_port.connect(self.seqr.seq_item_export)
        self.in_mon.ap.connect(self.model.analysis_export)
        self.model.ap.connect(self.scoreboard.exp_fifo.analysis_export)
        self.out_mon.ap.connect(self.scoreboard.act_fifo.analysis_export)


# ----------------------------------------------------------------------------- tests


class GemmBaseTest(uvm_test):
    CASES = "random"
    INJECT = False

    def build_phase(self) -> None:
        dut = cocotb.top
        self.cfg = EngineConfig(*(clocking.param(dut, p) for p in ("ROWS", "COLS", "PSUM_DEPTH")),
                                coding=CODINGS[clocking.param(dut, "CODING")])
        rng = clocking.seeded_rng(dut)
        ConfigDB().set(None, "*", "ENGINE", self.cfg)
        ConfigDB().set(None, "*", "RNG", rng)
        ConfigDB().set(None, "*", "INJECT_ERROR", self.INJECT)
        ConfigDB().set(None, "*", "CASES", self.cases(rng))
        self.env = GemmEnv("env", self)

    def cases(self, rng: random.Random) -> list:
        return case_list(self.CASES, self.cfg, rng)

    async def run_phase(self) -> None:
        self.raise_objection()
        await clocking.start(cocotb.top)
        seq = GemmSeq("seq")
        await seq.start(self.env.seqr)
        for _ in range(5):
            await RisingEdge(cocotb.top.clk_i)
        self.drop_objection()

    def report_phase(self) -> None:
        sb = self.env.scoreboard
        assert sb.gemms == len(ConfigDB().get(None, "", "CASES")), "not every GEMM was checked"
        assert not sb.errors, f"{len(sb.errors)} scoreboard errors: {sb.errors[:3]}"


@pyuvm.test()
class GemmRandomTest(GemmBaseTest):
    """Random GEMMs from quantized heavy-tailed matrices, random stalls on every stream."""

    CASES = "random"


@pyuvm.test()
class GemmCornerTest(GemmBaseTest):
    """All-zero weights, every magnitude 3 (4 with the power-of-two coding), K=1, K not a multiple of 24 or ROWS,
    N=1, M=1, M chunks."""

    CASES = "corners"


@pyuvm.test()
class GemmCycleTest(GemmBaseTest):
    """Stall-free random GEMMs: the cycle counter must equal fineq's cycle model."""

    CASES = "cycles"

    def report_phase(self) -> None:
        super().report_phase()
        assert self.env.scoreboard.compared_cycles == len(ConfigDB().get(None, "", "CASES"))


@pyuvm.test()
class GemmInjectErrorTest(GemmBaseTest):
    """Corrupts one observed output bit: the scoreboard must report exactly that mismatch."""

    CASES = "cycles"
    INJECT = True

    def report_phase(self) -> None:
        errs = self.env.scoreboard.errors
        assert len(errs) == 1 and errs[0].startswith("GEMM 0 row 0: lanes [0]"), errs
        self.logger.info("scoreboard caught the injected error: %s", errs[0])


@pyuvm.test()
class GemmFullSizeTest(GemmBaseTest):
    """One GEMM on the full-size engine (used on Icarus, where the 64 x 64 array is slow)."""

    CASES = "full"


@pyuvm.test()
class GemmFileTest(GemmBaseTest):
    """Runs the GEMM in $FINEQ_JOB (written by fineq.rtl) and writes Y and cycles to $FINEQ_RESULT."""

    def cases(self, rng: random.Random) -> list:
        job = os.environ.get("FINEQ_JOB")
        if not job:
            return []
        return [("file", read_job(job, self.cfg.coding, self.cfg.psum_depth))]

    def report_phase(self) -> None:
        super().report_phase()
        out = os.environ.get("FINEQ_RESULT")
        sb = self.env.scoreboard
        if out and sb.cycles_seen:
            np.savez(out, cycles=np.int64(sb.cycles_seen[0]), y=np.array(sb.last_rows, dtype=np.int64))


# ----------------------------------------------------------------------------- pytest entry

SMALL = {"ROWS": 16, "COLS": 8, "PSUM_DEPTH": 4}
FULL = {"ROWS": 64, "COLS": 64, "PSUM_DEPTH": 256}
REGRESSION = ["GemmRandomTest", "GemmCornerTest", "GemmCycleTest", "GemmInjectErrorTest"]


CONFIGS = [
    pytest.param(sim, params, tests, id=ident)
    for sim, params, tests, ident in [
        ("icarus", SMALL, REGRESSION, "icarus-16x8"),
        ("icarus", FULL, ["GemmFullSizeTest"], "icarus-64x64-one-gemm"),
        ("verilator", SMALL, REGRESSION, "verilator-16x8"),
        ("verilator", {**SMALL, "CODING": 1}, REGRESSION, "verilator-16x8-binary"),
        ("icarus", {**SMALL, "CODING": 1}, ["GemmCycleTest"], "icarus-16x8-binary"),
        ("verilator", {**SMALL, "CODING": 2}, REGRESSION, "verilator-16x8-pow2"),
        ("icarus", {**SMALL, "CODING": 2}, ["GemmCycleTest", "GemmCornerTest"], "icarus-16x8-pow2"),
        ("verilator", FULL, REGRESSION, "verilator-64x64"),
    ]
    if sim in runner.simulators()
]


@pytest.mark.rtl
@pytest.mark.parametrize("sim,params,tests", CONFIGS)
def test_fineq_gemm_engine(sim, params, tests):
    name = f"{params['ROWS']}x{params['COLS']}d{params['PSUM_DEPTH']}c{params.get('CODING', 0)}"
    runner.run("fineq_gemm_engine", "test_fineq_gemm_engine", sim, params, name=name, testcase=tests)
