"""Step 3: switching activity from RTL simulation of a GEMM workload.

The FineQ engine and the MAC systolic array each run the same GEMM on Verilator
with a VCD of the arrays' top-level nets (trace depth 1), ROWS x ACT_COLS arrays
running the ACT_N tokens in tiles of ACT_COLS (a column sees only its own
token, so the units, synthesized as one column, see the same activity as in
the 64-column array; activity is weighted by each run's cycles). The GEMM is real by
default (fineq.perf.workload: the first ACT_M rows of ACT_LINEAR of SmolLM2, or of
the model WEIGHTS names, quantized with WEIGHT_MODE, times that linear's real
int8 inputs for ACT_N tokens); WEIGHTS=synthetic runs the heavy-tailed synthetic
matrix with uniform int8 activations instead. Every block's input ports get the toggle rate (transitions per clock cycle)
and duty measured on the nets that drive them; buses of COLS lanes are averaged
over lanes and runs (the blocks are synthesized as one column). Writes
build/synth/activity.json: {unit: {port_bit: [activity, duty]}}.

The MAC array's runs are shorter than the full array's by COLS - ACT_COLS cycles
per K tile (the skew across columns, cycles without data: 0 on every input but
the activation row, which holds); its rates and duties are scaled to the full
array's cycles. Checked against a 64 x 64 run (docs/synthesis.md): same cycle
count, and the same toggle rates and duties.

Modelled, not measured: the MAC array's column accumulators (the MAC RTL has
none; the testbench sums tiles): their enable is high on each cycle an output
row leaves a column, their base input takes the FineQ run's partial sums
(the same values), their sum input the measured bottom-edge outputs. The MAC
arrays at their own weights (macsm<b>, b in MAC_WIDTHS) run the same rows quantized on their
own b-bit sign-magnitude grid (fineq.quant.signmag, RTN per row) and the same activations;
their accumulators' base input is modelled by their own bottom-edge outputs,
sign-extended to 32 bits (partial sums of earlier tiles have the same statistics).
The power-of-two datapath (units fineq_*_pow2) runs the same rows quantized with the same FineQ mode to the pow2
codebook's levels {0, +-1, +-2, +-4} on the engine with CODING = 2, the same activations.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import settings as S
from vcd import Bits, activity, lane_mean

from fineq.engine.config import mac_psum_w
from fineq.engine.config import sum_w as fineq_sum_w

Ports = dict[str, tuple[float, float]]


def token_tiles(n: int) -> list[tuple[int, int]]:
    """The ACT_COLS-token runs covering ``n`` tokens."""
    return [(c, min(n, c + S.ACT_COLS)) for c in range(0, n, S.ACT_COLS)]


def merge(runs: list[tuple[int, dict[str, Bits]]]) -> tuple[int, dict[str, Bits]]:
    """Several runs' per-bit (toggle rate, duty), weighted by their cycles: ``(total cycles, merged)``."""
    total = sum(c for c, _ in runs)
    out: dict[str, Bits] = {}
    for name in runs[0][1]:
        per_bit = zip(*(a[name] for _, a in runs), strict=True)
        out[name] = [(sum(c * r for (c, _), (r, _) in zip(runs, bits, strict=True)) / total,
                      sum(c * d for (c, _), (_, d) in zip(runs, bits, strict=True)) / total)
                     for bits in per_bit]
    return total, out


def bus(name: str, bits: list[tuple[float, float]]) -> Ports:
    return {f"{name}[{i}]": b for i, b in enumerate(bits)}


def workload(weights: str):
    """``(FineQ matrix, int8 activations, description, float rows)``: the float rows are what the MAC array's own
    grids quantize."""
    from fineq import quantize
    from fineq.perf.workload import real_gemm
    from fineq.synthetic import heavy_tailed, int8_activations

    n = S.ACT_N
    if weights == "synthetic":
        w = heavy_tailed(S.ACT_M, S.ACT_K, seed=S.ACT_SEED)
        x = int8_activations(S.ACT_K, n, seed=S.ACT_SEED + 1)
        return quantize(w), x, (f"SYNTHETIC weights (fineq.synthetic.heavy_tailed, seed {S.ACT_SEED}) quantized with "
                                "FineQ paper, uniform int8 activations"), w
    wl = real_gemm(weights, S.ACT_LINEAR, S.ACT_M, n, S.WEIGHT_MODE, seed=S.ACT_SEED)
    if wl.q.codebook != "int":
        raise SystemExit(f"WEIGHTS={weights} holds {wl.q.codebook} levels: the activity workload takes the spec's "
                         "levels (the power-of-two datapath's run quantizes the same rows itself)")
    return wl.q, wl.x, wl.description, wl.w


def pow2_matrix(q, wf):
    """The power-of-two datapath's weights: the workload's float rows quantized with the same FineQ mode to the
    pow2 codebook (a data-free mode: WEIGHT_MODE, or paper for the stored levels of a calibrated model file)."""
    from fineq import quantize

    mode = q.mode if q.mode in ("paper", "search") else "paper"
    return quantize(wf, mode, codebook="pow2")


def mac_family(w_w: int | None) -> str:
    """The synthesis units' name prefix: the MAC array fed FineQ's levels (``None``: ``mac``), or at ``w_w``-bit
    weights on its own grid (``macsm<w_w>``)."""
    return "mac" if w_w is None else f"macsm{w_w}"


def fineq_activity(q, x, coding: str = "thermometer") -> tuple[int, dict[str, Ports]]:
    """The engine's run; with coding="binary" or "pow2" the caller names the families fineq_*_bin or fineq_*_pow2
    (decoder left out: the decoders are the same)."""
    from fineq.engine.config import EngineConfig
    from fineq_tb.gemm_job import run_engine

    names = ["act_we", "act_data_i", "enc_bits", "enc_signs", "t_adv", "a_adv", "a_first_q", "a_shift_q", "col_sum",
             "acc_base", "d_to_t", "dvec_q", "enc_step", "wgt_data_i", "skip_q", "rows_t"]
    if coding == "pow2":
        names += ["enc_x2", "enc_x4"]
    cfg = EngineConfig(S.ROWS, S.ACT_COLS, 256, coding)
    runs = []
    for c0, c1 in token_tiles(x.shape[1]):
        out = run_engine(q, x[:, c0:c1], cfg, "verilator", trace_depth=1)
        runs.append(activity(Path(str(out.extra["work"])) / "dump.vcd", "fineq_gemm_engine", names))
    cycles, a = merge(runs)
    sum_w = fineq_sum_w(S.ROWS, coding=coding)
    lanes = S.ACT_COLS
    ports = {
        "fineq_col": {**bus("act_we_i", a["act_we"]), **bus("act_row_i", lane_mean(a["act_data_i"], 8, lanes)),
                      **bus("bits_i", a["enc_bits"]), **bus("signs_i", a["enc_signs"]), "en_i": a["t_adv"][0]},
        "fineq_acc": {"en_i": a["a_adv"][0], "first_i": a["a_first_q"][0], "shift_i": a["a_shift_q"][0],
                      **bus("base_i", lane_mean(a["acc_base"], 32, lanes)),
                      **bus("sum_i", lane_mean(a["col_sum"], sum_w, lanes))},
        "fineq_enc": {"load_i": a["d_to_t"][0], **bus("vec_i", a["dvec_q"]), "step_i": a["enc_step"][0]},
        "fineq_dec": {**bus("beat_i", a["wgt_data_i"]), **bus("skip_i", a["skip_q"]), **bus("valid_i", a["rows_t"])},
    }
    if coding == "pow2":
        ports["fineq_col"].update({**bus("x2_i", a["enc_x2"]), **bus("x4_i", a["enc_x4"])})
    return cycles // len(runs), ports


def mac_activity(q, x, tag: str, w_w: int | None = None) -> tuple[int, dict[str, Ports]]:
    """The MAC array's runs: ``w_w = None``, ``q`` the FineQ matrix (3-bit weights; the caller adds the
    accumulators' base_i, the FineQ run's partial sums, the same values); else ``q`` integer levels on the
    ``w_w``-bit sign-magnitude grid, base_i modelled by the array's own partial sums (sum_i sign-extended)."""
    from cocotb_tools.check_results import get_results

    from fineq_tb import runner

    runs = []
    for i, (c0, c1) in enumerate(token_tiles(x.shape[1])):
        work = S.BUILD / f"activity_{mac_family(w_w)}_{tag}" / f"tokens{i}"
        work.mkdir(parents=True, exist_ok=True)
        job = work / "job.npz"
        if w_w is None:
            np.savez(job, packed=q.packed, scales=q.scales, shape=np.array(q.shape), x=x[:, c0:c1])
        else:
            np.savez(job, levels=q, x=x[:, c0:c1])
        width = 3 if w_w is None else w_w
        xml = runner.run("mac_systolic_array", "test_mac_systolic_array", "verilator",
                         {"ROWS": S.ROWS, "COLS": S.ACT_COLS, "W_W": width}, name=f"{S.ROWS}x{S.ACT_COLS}w{width}",
                         testcase="mac_file_job",
                         test_dir=work, trace_depth=1, log_file=work / "sim.log", extra_env={"FINEQ_JOB": str(job)})
        ntests, nfail = get_results(Path(xml))
        if nfail or not ntests:
            raise SystemExit(f"the MAC activity run failed its check; see {work / 'sim.log'}")
        runs.append(activity(work / "dump.vcd", "mac_systolic_array", ["act_we_i", "act_row_i", "w_i", "psum_o"]))
    total, a = merge(runs)
    m, k = np.shape(q.levels() if w_w is None else q)
    tiles = -(-k // S.ROWS)
    # A COLS-wide array runs longer (the skew across its columns: fineq.engine.cycles' MAC cycle model); those cycles
    # carry no data into a column, so its toggles are the same over more cycles. Their values: 0, but the
    # activation row bus holds its last row (its duty stays).
    from fineq.engine.config import EngineConfig
    from fineq.perf.layers import mac_cycles

    n_run = min(x.shape[1], S.ACT_COLS)
    skew = mac_cycles(m, k, n_run, EngineConfig(S.ROWS, S.COLS)) - mac_cycles(m, k, n_run, EngineConfig(S.ROWS, S.ACT_COLS))
    cycles = total / len(runs) + skew  # per run, full width
    scale = total / len(runs) / cycles
    a = {name: [(r * scale, d if name == "act_row_i" else d * scale) for r, d in bits] for name, bits in a.items()}
    psum_w = mac_psum_w(S.ROWS, w_w=width)
    en_duty = m * tiles / cycles  # one output row per cycle while a tile streams out
    sums = lane_mean(a["psum_o"], psum_w, S.ACT_COLS)
    fam = mac_family(w_w)
    ports = {
        f"{fam}_col": {**bus("act_we_i", a["act_we_i"]),
                       **bus("act_row_i", lane_mean(a["act_row_i"], 8, S.ACT_COLS)), **bus("w_i", a["w_i"])},
        f"{fam}_acc": {"en_i": (2 * tiles / cycles, en_duty), "first_i": (2 / cycles, m / cycles),
                       **bus("sum_i", sums)},
    }
    if w_w is not None:
        ports[f"{fam}_acc"].update(bus("base_i", [sums[min(b, psum_w - 1)] for b in range(32)]))
    return round(cycles), ports


def measure(weights: str, tag: str, variant: bool) -> dict:
    from fineq.quant.signmag import quantize_signmag

    q, x, desc, wf = workload(weights)
    nz = float((q.levels() != 0).mean())
    print(f"activity workload ({tag}): M={q.shape[0]} K={q.shape[1]} N={x.shape[1]}: {desc}; "
          f"{100 * nz:.1f}% non-zero levels", flush=True)
    wide = {w: quantize_signmag(wf, w).levels for w in S.MAC_WIDTHS} if variant else {}
    for w, lv in wide.items():
        print(f"  MAC {w}-bit weights: the same rows on the {w}-bit sign-magnitude grid (RTN, per row): "
              f"{100 * float((lv != 0).mean()):.1f}% non-zero", flush=True)
    qp = pow2_matrix(q, wf) if variant else None
    if qp is not None:
        print(f"  FineQ power-of-two datapath: the same rows, FineQ {qp.mode} to the pow2 codebook: "
              f"{100 * float((qp.levels() != 0).mean()):.1f}% non-zero levels", flush=True)
    # the simulations are independent processes: two at a time (the binary-weighted and power-of-two variants and
    # the wider MAC arrays on the same workload)
    with ThreadPoolExecutor(2) as pool:
        f_fq = pool.submit(fineq_activity, q, x)
        f_mac = pool.submit(mac_activity, q, x, tag)
        f_bin = pool.submit(fineq_activity, q, x, "binary") if variant else None
        f_pow2 = pool.submit(fineq_activity, qp, x, "pow2") if qp is not None else None
        f_wide = {w: pool.submit(mac_activity, lv, x, tag, w) for w, lv in wide.items()}
        (fc, fineq_ports), (mc, mac_ports) = f_fq.result(), f_mac.result()
        base = [fineq_ports["fineq_acc"][f"base_i[{b}]"] for b in range(32)]
        mac_ports["mac_acc"].update(bus("base_i", base))
        runs = len(token_tiles(x.shape[1]))
        print(f"  {runs} runs of {S.ROWS} x {S.ACT_COLS} arrays; per run at full width ({S.ROWS} x {S.COLS}): "
              f"FineQ engine {fc} cycles, MAC array {mc} cycles", flush=True)
        cycles = {"fineq": fc, "mac": mc}
        if f_bin is not None:
            bc, bin_ports = f_bin.result()
            fineq_ports.update({f"{k}_bin": v for k, v in bin_ports.items() if k != "fineq_dec"})
            cycles["fineq_binary"] = bc
            print(f"  FineQ engine, binary-weighted coding: {bc} cycles", flush=True)
        if f_pow2 is not None:
            pc, pow2_ports = f_pow2.result()
            fineq_ports.update({f"{k}_pow2": v for k, v in pow2_ports.items() if k != "fineq_dec"})
            cycles["fineq_pow2"] = pc
            print(f"  FineQ engine, power-of-two datapath (pow2 levels): {pc} cycles", flush=True)
        for w, f in f_wide.items():
            wc, wports = f.result()
            mac_ports.update(wports)
            cycles[mac_family(w)] = wc
            print(f"  MAC array, {w}-bit weights on its own grid: {wc} cycles", flush=True)
    return {"workload": {"m": q.shape[0], "k": q.shape[1], "n": int(x.shape[1]), "seed": S.ACT_SEED,
                         "array_cols": S.ACT_COLS, "runs": len(token_tiles(x.shape[1])),
                         "weights": weights, "description": desc, "nonzero_levels": nz,
                         "pow2_nonzero_levels": None if qp is None else float((qp.levels() != 0).mean()),
                         "mac_widths": {str(w): {"grid": "sign-magnitude RTN per row",
                                                 "nonzero_levels": float((lv != 0).mean())} for w, lv in wide.items()},
                         "synthetic": weights == "synthetic"},
            "cycles": cycles, "units": {**fineq_ports, **mac_ports}}


def main() -> None:
    """The workload WEIGHTS names; with real weights, the synthetic workload too (reported beside it)."""
    data = measure(S.WEIGHTS, "real" if S.WEIGHTS != "synthetic" else "synthetic", variant=True)
    if S.WEIGHTS != "synthetic":
        data["synthetic"] = measure("synthetic", "synthetic", variant=False)
    (S.BUILD / "activity.json").write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
