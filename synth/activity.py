"""Step 3: switching activity from RTL simulation of a GEMM workload.

The FineQ engine and the MAC systolic array each run the same GEMM (weights from
fineq.quantize of a heavy-tailed matrix with outlier channels, uniform int8
activations) on Verilator with a VCD of the arrays' top-level nets (trace depth
1). Every block's input ports get the toggle rate (transitions per clock cycle)
and duty measured on the nets that drive them; buses of COLS lanes are averaged
over lanes (the blocks are synthesized as one column). Writes
build/synth/activity.json: {unit: {port_bit: [activity, duty]}}.

Modelled, not measured: the MAC array's column accumulators (the MAC RTL has
none; the testbench sums tiles): their enable is high on each cycle an output
row leaves a column, their base input takes the FineQ run's partial sums
(the same values), their sum input the measured bottom-edge outputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import settings as S
from vcd import activity, lane_mean

Ports = dict[str, tuple[float, float]]


def bus(name: str, bits: list[tuple[float, float]]) -> Ports:
    return {f"{name}[{i}]": b for i, b in enumerate(bits)}


def workload():
    from fineq import quantize
    from fineq.synthetic import heavy_tailed, int8_activations

    q = quantize(heavy_tailed(S.ACT_M, S.ACT_K, seed=S.ACT_SEED))
    x = int8_activations(S.ACT_K, min(S.ACT_N, S.COLS), seed=S.ACT_SEED + 1)
    return q, x


def fineq_activity(q, x) -> tuple[int, dict[str, Ports]]:
    from fineq.engine import EngineConfig
    from fineq_tb.gemm_job import run_engine

    out = run_engine(q, x, EngineConfig(S.ROWS, S.COLS, 256), "verilator", trace_depth=1)
    names = ["act_we", "act_data_i", "enc_bits", "enc_signs", "t_adv", "enc_first", "col_sum", "acc_base",
             "d_to_t", "dvec_q", "enc_step", "wgt_data_i", "skip_q", "rows_t"]
    cycles, a = activity(Path(out["work"]) / "dump.vcd", "fineq_gemm_engine", names)
    sum_w = 8 + 1 + S.clog2(S.ROWS)
    ports = {
        "fineq_col": {**bus("act_we_i", a["act_we"]), **bus("act_row_i", lane_mean(a["act_data_i"], 8, S.COLS)),
                      **bus("bits_i", a["enc_bits"]), **bus("signs_i", a["enc_signs"])},
        "fineq_acc": {"en_i": a["t_adv"][0], "first_i": a["enc_first"][0],
                      **bus("base_i", lane_mean(a["acc_base"], 32, S.COLS)),
                      **bus("sum_i", lane_mean(a["col_sum"], sum_w, S.COLS))},
        "fineq_enc": {"load_i": a["d_to_t"][0], **bus("vec_i", a["dvec_q"]), "step_i": a["enc_step"][0]},
        "fineq_dec": {**bus("beat_i", a["wgt_data_i"]), **bus("skip_i", a["skip_q"]), **bus("valid_i", a["rows_t"])},
    }
    return cycles, ports


def mac_activity(q, x, base: list[tuple[float, float]]) -> tuple[int, dict[str, Ports]]:
    from cocotb_tools.check_results import get_results

    from fineq_tb import runner

    work = S.BUILD / "activity_mac"
    work.mkdir(parents=True, exist_ok=True)
    job = work / "job.npz"
    np.savez(job, packed=q.packed, scales=q.scales, shape=np.array(q.shape), x=x)
    os.environ["WAVES"] = "1"
    xml = runner.run("mac_systolic_array", "test_mac_systolic_array", "verilator", {"ROWS": S.ROWS, "COLS": S.COLS},
                     name=f"{S.ROWS}x{S.COLS}", testcase="mac_file_job", test_dir=work, trace_depth=1,
                     log_file=work / "sim.log", extra_env={"FINEQ_JOB": str(job)})
    ntests, nfail = get_results(Path(xml))
    if nfail or not ntests:
        raise SystemExit(f"the MAC activity run failed its check; see {work / 'sim.log'}")
    cycles, a = activity(work / "dump.vcd", "mac_systolic_array", ["act_we_i", "act_row_i", "w_i", "psum_o"])
    psum_w = 8 + 2 + S.clog2(S.ROWS)
    m, k = q.shape
    tiles = -(-k // S.ROWS)
    en_duty = m * tiles / cycles  # one output row per cycle while a tile streams out
    ports = {
        "mac_col": {**bus("act_we_i", a["act_we_i"]), **bus("act_row_i", lane_mean(a["act_row_i"], 8, S.COLS)),
                    **bus("w_i", a["w_i"])},
        "mac_acc": {"en_i": (2 * tiles / cycles, en_duty), "first_i": (2 / cycles, m / cycles),
                    **bus("base_i", base), **bus("sum_i", lane_mean(a["psum_o"], psum_w, S.COLS))},
    }
    return cycles, ports


def main() -> None:
    q, x = workload()
    print(f"activity workload: M={q.shape[0]} K={q.shape[1]} N={x.shape[1]} (seed {S.ACT_SEED})", flush=True)
    fc, fineq_ports = fineq_activity(q, x)
    base = [fineq_ports["fineq_acc"][f"base_i[{b}]"] for b in range(32)]
    mc, mac_ports = mac_activity(q, x, base)
    print(f"  FineQ engine: {fc} cycles; MAC array: {mc} cycles", flush=True)
    data = {"workload": {"m": q.shape[0], "k": q.shape[1], "n": int(x.shape[1]), "seed": S.ACT_SEED},
            "cycles": {"fineq": fc, "mac": mc}, "units": {**fineq_ports, **mac_ports}}
    (S.BUILD / "activity.json").write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
