"""Energy: ``E = P * cycles / f`` with ``P`` the total power ``make synth`` reports (real-workload activity,
400 MHz): FineQ = PE array with encoders and accumulators + the weight decoders; MAC = MAC systolic array with
the same column accumulators. Compute only, and with memory (:mod:`fineq.perf.memory`: DRAM and on-chip SRAM
per byte from Horowitz, ISSCC 2014; the same traffic for both arrays), which makes the ratio depend on N."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fineq.engine.config import EngineConfig
from fineq.engine.cycles import mac_cycle_split
from fineq.perf import memory
from fineq.perf.layers import Layer, fineq_cycle_split, fineq_cycles


def evaluate(layers: list[Layer], n: int, cfg: EngineConfig, power: dict[str, Any] | None,
             clock_mhz: float = 400.0, buffer_kb: int = memory.DEFAULT_BUFFER_KB) -> dict[str, Any]:
    rows = []
    for ly in layers:
        fs = {k: v * ly.count for k, v in fineq_cycle_split(ly, n, cfg).items()}
        ms = {k: v * ly.count for k, v in mac_cycle_split(ly.m, ly.k, n, cfg).items()}
        bc = fineq_cycles(ly, n, replace(cfg, coding="binary")) * ly.count
        rows.append({"layer": ly.name, "m": ly.m, "k": ly.k, "n": n, "count": ly.count,
                     "fineq_cycles": fs["total"], "mac_cycles": ms["total"], "fineq_binary_cycles": bc,
                     "fineq_split": fs, "mac_split": ms})
    tot = {k: sum(r[k] for r in rows) for k in ("fineq_cycles", "mac_cycles", "fineq_binary_cycles")}
    ops = sum(2 * r["m"] * r["k"] * n * r["count"] for r in rows)
    f = clock_mhz * 1e6
    tot["fineq_seconds"], tot["mac_seconds"] = tot["fineq_cycles"] / f, tot["mac_cycles"] / f
    tot["fineq_gops"], tot["mac_gops"] = ops / tot["fineq_seconds"] / 1e9, ops / tot["mac_seconds"] / 1e9
    if power:
        def uj(mw: float, cycles: int) -> float:
            return mw * 1e-3 * cycles / f * 1e6

        for r in rows:
            r["fineq_uj"] = uj(power["fineq_mw"], r["fineq_cycles"])
            r["mac_uj"] = uj(power["mac_mw"], r["mac_cycles"])
            r["efficiency"] = r["mac_uj"] / r["fineq_uj"]
            t = memory.traffic(r["m"], r["k"], n, cfg, buffer_kb * 1024)
            r["dram_bytes"], r["sram_bytes"] = t.dram_bytes * r["count"], t.sram_bytes * r["count"]
            r["memory_uj"] = memory.energy_pj(t, buffer_kb * 1024) * r["count"] * 1e-6
            r["efficiency_with_memory"] = (r["mac_uj"] + r["memory_uj"]) / (r["fineq_uj"] + r["memory_uj"])
            if "fineq_binary_mw" in power:
                r["fineq_binary_uj"] = uj(power["fineq_binary_mw"], r["fineq_binary_cycles"])
        tot["fineq_mj"] = sum(r["fineq_uj"] for r in rows) / 1e3
        tot["mac_mj"] = sum(r["mac_uj"] for r in rows) / 1e3
        tot["memory_mj"] = sum(r["memory_uj"] for r in rows) / 1e3
        tot["efficiency"] = tot["mac_mj"] / tot["fineq_mj"]
        tot["efficiency_with_memory"] = (tot["mac_mj"] + tot["memory_mj"]) / (tot["fineq_mj"] + tot["memory_mj"])
        if "fineq_binary_mw" in power:
            tot["fineq_binary_mj"] = sum(r["fineq_binary_uj"] for r in rows) / 1e3
            tot["efficiency_binary"] = tot["mac_mj"] / tot["fineq_binary_mj"]
            tot["efficiency_binary_with_memory"] = ((tot["mac_mj"] + tot["memory_mj"])
                                                    / (tot["fineq_binary_mj"] + tot["memory_mj"]))
    return {"layers": rows, "total": tot, "n": n, "buffer_kb": buffer_kb}
