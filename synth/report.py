"""Step 5: build/synth/summary.json, summary.md and summary.png from the steps' results.

Full designs are composed from the proven units by instance count:
  fineq_pe_array      = COLS x (column: ROWS PEs + adder tree + tree-sum register) + COLS x accumulator
                        + 1 temporal encoder; clock-gated (the engine's configuration)
  fineq_pe_array_binary, fineq_pe_array_pow2  the same for the binary-weighted coding and for the power-of-two
                        datapath (PEs passing x, 2x or 4x; the pow2 codebook), each with its own activity
  mac_systolic_array  = COLS x (column: ROWS MAC PEs) + COLS x accumulator; clock-gated the same way
  macsm<b>_systolic_array  the same at b-bit weights running its own sign-magnitude grid (settings.MAC_WIDTHS:
                        3, 4, 8), its columns synthesized flat
  *_nogate            = the same without clock gates; fineq_pe_array_nopipe also without the tree-sum
                        register (the array as the paper describes it, and as it was before the register)
  fineq_decoders      = 1 beat decoder (BPV block decoders) feeding the array
Each part is an OpenSTA run (settings.STA_RUNS) of a unit's netlist; area and cells come from the unit.
The flat synthesis of a FLAT_ROWS x FLAT_COLS array checks that composition.
"""

from __future__ import annotations

import json
from pathlib import Path

import settings as S

PAPER = {"area_reduction_pct": 61.2, "power_reduction_pct": 62.9,
         "breakdown_pct": {"accumulators": 71.8, "pe_array": 25.9, "temporal_encoders": 2.3}}
COMPOSITION = {
    "fineq_pe_array": [("fineq_col", S.COLS), ("fineq_acc", S.COLS), ("fineq_enc", 1)],
    "mac_systolic_array": [("mac_col", S.COLS), ("mac_acc", S.COLS)],
    "fineq_decoders": [("fineq_dec", 1)],
    "fineq_pe_array_binary": [("fineq_col_bin", S.COLS), ("fineq_acc_bin", S.COLS), ("fineq_enc_bin", 1)],
    "fineq_pe_array_pow2": [("fineq_col_pow2", S.COLS), ("fineq_acc_pow2", S.COLS), ("fineq_enc_pow2", 1)],
    "fineq_pe_array_nogate": [("fineq_col_nogate", S.COLS), ("fineq_acc_nogate", S.COLS), ("fineq_enc_nogate", 1)],
    "fineq_pe_array_nopipe": [("fineq_col_nopipe", S.COLS), ("fineq_acc_nopipe", S.COLS), ("fineq_enc_nogate", 1)],
    "mac_systolic_array_nogate": [("mac_col_nogate", S.COLS), ("mac_acc_nogate", S.COLS)],
    "fineq_array_no_accumulators": [("fineq_col", S.COLS), ("fineq_enc", 1)],
    "mac_array_no_accumulators": [("mac_col", S.COLS)],
    **{f"macsm{w}_systolic_array": [(f"macsm{w}_col", S.COLS), (f"macsm{w}_acc", S.COLS)] for w in S.MAC_WIDTHS},
}


def unit_of(part: str) -> str:
    """The synthesized unit behind a composition part (an OpenSTA run may reuse a unit's netlist)."""
    return S.STA_RUNS[part].unit if part in S.STA_RUNS else part


def _sum(parts: list[tuple[list[float], int]]) -> list[float]:
    out = [0.0, 0.0, 0.0, 0.0]
    for vals, n in parts:
        out = [a + n * b for a, b in zip(out, vals, strict=True)]
    return out


def _pw(v: list[float]) -> dict[str, float]:
    return {"internal": v[0], "switching": v[1], "leakage": v[2], "total": v[3]}


def main() -> None:
    syn = json.loads((S.BUILD / "synth.json").read_text())
    proof = json.loads((S.BUILD / "prove.json").read_text())
    libfree = not S.LIBERTY
    sta = {} if libfree else json.loads((S.BUILD / "sta.json").read_text())
    act = {} if libfree else json.loads((S.BUILD / "activity.json").read_text())
    unproven = [u for u, r in proof.items() if not r["equal"]]
    if unproven:
        raise SystemExit(f"units not proven equal to their RTL: {unproven}")
    designs: dict[str, dict] = {}
    for name, comp in COMPOSITION.items():
        d: dict = {"composition": {u: n for u, n in comp},
                   "cells": sum(syn[unit_of(u)]["cells"] * n for u, n in comp),
                   "netlists_proven": all(proof[unit_of(u)]["equal"] for u, _ in comp)}
        if libfree:
            d["transistors"] = sum(syn[unit_of(u)]["transistors"] * n for u, n in comp)
            d.update(area_um2=None, area_mm2=None, power_mw=None, slack_ns=None, fmax_mhz=None)
        else:
            d["area_um2"] = sum(syn[unit_of(u)]["area_um2"] * n for u, n in comp)
            d["area_mm2"] = d["area_um2"] / 1e6
            d["power_mw"] = _pw(_sum([(sta[u]["power_vcd"], n) for u, n in comp]))
            d["power_mw_default_activity"] = _pw(_sum([(sta[u]["power_default"], n) for u, n in comp]))
            if all("power_syn" in sta[u] for u, _ in comp):
                d["power_mw_synthetic"] = _pw(_sum([(sta[u]["power_syn"], n) for u, n in comp]))
            slack = min(sta[u]["slack_ns"] for u, _ in comp)
            d["slack_ns"] = slack
            d["fmax_mhz"] = 1000.0 / (S.PERIOD_NS - slack)
        designs[name] = d

    summary: dict = {
        "mode": "library-free" if libfree else "liberty",
        "liberty": S.LIBERTY or None,
        "clock_mhz": S.CLOCK_MHZ,
        "array": [S.ROWS, S.COLS],
        "activity": (f"VCD of RTL simulation: GEMM M={act['workload']['m']} K={act['workload']['k']} "
                     f"N={act['workload']['n']}, {act['workload'].get('description', '')}; "
                     f"{100 * act['workload'].get('nonzero_levels', float('nan')):.1f}% non-zero weight levels"
                     + (f" (simulated on {S.ROWS} x {act['workload']['array_cols']} arrays, "
                        f"{act['workload']['runs']} runs of {act['workload']['array_cols']} tokens)"
                        if "runs" in act["workload"] else "")
                     + "; per-input-port-bit toggle rate and duty on each block, propagated by OpenSTA"
                     + (f". Synthetic comparison: {act['synthetic']['workload']['description']}, "
                        f"{100 * act['synthetic']['workload']['nonzero_levels']:.1f}% non-zero levels"
                        if "synthetic" in act else "")
                     if act else "none (library-free)"),
        "activity_synthetic": bool(act) and act["workload"].get("synthetic", False),
        "flow": ("Yosys 0.23 synth (no extract_fa), abc -g cmos2, stat -tech cmos, hierarchical units"
                 if libfree else
                 "Yosys 0.23 synth (no extract_fa), dfflibmap, abc -liberty -D <period>, hierarchical units; "
                 "OpenSTA 2.0.17 with the liberty's default wire load")
                + "; every unit netlist proven by gate-level simulation of its cocotb testbench against the golden model",
        "designs": designs,
        "units": {u: {**syn[u], "proof": proof[u], **({"sta": sta[u]} if u in sta else {})} for u in syn},
    }
    fq, mac = designs["fineq_pe_array"], designs["mac_systolic_array"]
    key = "transistors" if libfree else "area_um2"
    cmp = {"area_reduction_pct": 100 * (1 - fq[key] / mac[key]), "paper_area_reduction_pct": PAPER["area_reduction_pct"],
           "area_metric": key}
    core = designs["fineq_array_no_accumulators"], designs["mac_array_no_accumulators"]
    cmp["area_reduction_pct_without_accumulators"] = 100 * (1 - core[0][key] / core[1][key])
    if not libfree:
        cmp["power_reduction_pct"] = 100 * (1 - fq["power_mw"]["total"] / mac["power_mw"]["total"])
        cmp["power_reduction_pct_default_activity"] = 100 * (
            1 - fq["power_mw_default_activity"]["total"] / mac["power_mw_default_activity"]["total"])
        cmp["power_reduction_pct_without_accumulators"] = 100 * (
            1 - core[0]["power_mw"]["total"] / core[1]["power_mw"]["total"])
        cmp["paper_power_reduction_pct"] = PAPER["power_reduction_pct"]
        g = sta["fineq_col"]["groups_vcd"]
        pe = S.COLS * (g.get("pe", [0, 0, 0, 0])[3] + g.get("other", [0, 0, 0, 0])[3])
        accu = S.COLS * (g.get("tree", [0, 0, 0, 0])[3] + g.get("pipe", [0, 0, 0, 0])[3]
                         + sta["fineq_acc"]["power_vcd"][3])
        enc = sta["fineq_enc"]["power_vcd"][3]
        tot = pe + accu + enc
        summary["fineq_power_breakdown"] = {
            "mw": {"accumulators": accu, "pe_array": pe, "temporal_encoders": enc},
            "pct": {"accumulators": 100 * accu / tot, "pe_array": 100 * pe / tot, "temporal_encoders": 100 * enc / tot},
            "paper_pct": PAPER["breakdown_pct"],
            "note": ("accumulators = the column adder trees (which apply the signs), their tree-sum registers and "
                     "the column accumulators; PE array = the PE activation registers with their clock gates (the PEs' select "
                     "is a leaf of the adder tree: it counts with the trees)"),
        }
    summary["fineq_vs_mac"] = cmp
    summary["mac_widths"] = {str(w): designs[f"macsm{w}_systolic_array"] | {"weight_bits": w} for w in S.MAC_WIDTHS}
    if not libfree:
        summary["table_iii"] = table_iii(designs)
        summary["changes"] = changes(designs)
        summary["codings"] = codings(designs, act, sta)
    flat = {}
    for fam, (fl, col) in {"fineq": ("fineq_flat", "fineq_col_small"), "mac": ("mac_flat", "mac_col_small")}.items():
        est = S.FLAT_COLS * syn[col][key]
        flat[fam] = {"flat": syn[fl][key], "columns_x_count": est, "difference_pct": 100 * (syn[fl][key] / est - 1),
                     "array": [S.FLAT_ROWS, S.FLAT_COLS]}
    summary["flat_cross_check"] = flat
    (S.BUILD / "summary.json").write_text(json.dumps(summary, indent=1))
    md = markdown(summary)
    (S.BUILD / "summary.md").write_text(md)
    if not libfree:
        chart(summary, S.BUILD / "summary.png")
    print(md)


def table_iii(designs: dict) -> dict:
    """The paper's Table III (FineQ array vs MAC systolic array) from this flow: area, and power at the clock
    with the real workload's activity, the synthetic one's and the default 0.1, for the gated designs and
    the ungated ones."""
    out: dict = {}
    for tag, (f, m) in {"clock-gated (engine)": ("fineq_pe_array", "mac_systolic_array"),
                        "no clock gating": ("fineq_pe_array_nogate", "mac_systolic_array_nogate")}.items():
        fd, md = designs[f], designs[m]
        row: dict = {"fineq_area_mm2": fd["area_mm2"], "mac_area_mm2": md["area_mm2"],
                     "area_reduction_pct": 100 * (1 - fd["area_mm2"] / md["area_mm2"])}
        for key, label in [("power_mw", "real"), ("power_mw_synthetic", "synthetic"),
                           ("power_mw_default_activity", "default_0.1")]:
            if key in fd and key in md:
                row[f"fineq_mw_{label}"] = fd[key]["total"]
                row[f"mac_mw_{label}"] = md[key]["total"]
                row[f"power_reduction_pct_{label}"] = 100 * (1 - fd[key]["total"] / md[key]["total"])
        out[tag] = row
    out["paper"] = {k: PAPER[k] for k in ("area_reduction_pct", "power_reduction_pct")}
    return out


def changes(designs: dict) -> dict:
    """What the tree-sum register and the clock gates cost and save (real-workload power)."""
    def d(a: str, b: str) -> dict:
        x, y = designs[a], designs[b]
        return {"from": a, "to": b, "area_mm2": y["area_mm2"] - x["area_mm2"],
                "area_pct": 100 * (y["area_mm2"] / x["area_mm2"] - 1),
                "power_mw": y["power_mw"]["total"] - x["power_mw"]["total"],
                "power_pct": 100 * (y["power_mw"]["total"] / x["power_mw"]["total"] - 1),
                "slack_ns": [x["slack_ns"], y["slack_ns"]], "fmax_mhz": [x["fmax_mhz"], y["fmax_mhz"]]}

    return {"tree-sum register (FineQ)": d("fineq_pe_array_nopipe", "fineq_pe_array_nogate"),
            "clock gating (FineQ)": d("fineq_pe_array_nogate", "fineq_pe_array"),
            "clock gating (MAC)": d("mac_systolic_array_nogate", "mac_systolic_array"),
            "power-of-two datapath (FineQ, power per cycle)": d("fineq_pe_array", "fineq_pe_array_pow2")}


def codings(designs: dict, act: dict, sta: dict) -> dict:
    """The FineQ array's codings on the activity workload: power, the run's cycles and its energy (the power-of-two
    datapath runs the same rows quantized to its own levels), and where the power goes: the column adder trees
    (with the PEs' select and signs), the column accumulators, the rest (PE registers, tree-sum registers,
    encoder). ``energy_uj_free_accumulators`` is a bound, not a design: the run's energy if the column
    accumulators drew nothing, the most any accumulator-energy lever could save."""
    f = S.CLOCK_MHZ * 1e6
    out = {}
    for coding, design, key in [("thermometer", "fineq_pe_array", "fineq"), ("binary", "fineq_pe_array_binary",
                                 "fineq_binary"), ("pow2", "fineq_pe_array_pow2", "fineq_pow2")]:
        if key in act.get("cycles", {}):
            mw, cyc = designs[design]["power_mw"]["total"], act["cycles"][key]
            col, acc = (next(u for u, _ in COMPOSITION[design] if u.startswith(p)) for p in ("fineq_col", "fineq_acc"))
            trees = S.COLS * sta[col]["groups_vcd"]["tree"][3]
            accs = S.COLS * sta[acc]["power_vcd"][3]
            out[coding] = {"design": design, "power_mw": mw, "cycles": cyc, "energy_uj": mw * 1e-3 * cyc / f * 1e6,
                           "trees_mw": trees, "accumulators_mw": accs, "rest_mw": mw - trees - accs,
                           "energy_uj_free_accumulators": (mw - accs) * 1e-3 * cyc / f * 1e6}
    return out


def markdown(s: dict) -> str:
    lib = s["mode"] == "liberty"
    out = [f"# Synthesis summary ({s['mode']})", ""]
    if not lib:
        out += ["**No liberty was given (LIBERTY unset): these are Yosys's library-free estimates (transistor counts "
                "of a generic CMOS mapping, `stat -tech cmos`). No area in um^2, no timing, no power.**", ""]
    out += [f"Array {s['array'][0]} x {s['array'][1]}, clock {s['clock_mhz']:.0f} MHz, liberty `{s['liberty']}`.",
            f"Flow: {s['flow']}.", f"Activity: {s['activity']}.", ""]
    if lib:
        out += ["| design | area um^2 | area mm^2 | cells | internal mW | switching mW | leakage mW | total mW "
                "| total mW (default activity) | slack ns | fmax MHz |", "|---" * 11 + "|"]
        for n, d in s["designs"].items():
            p, q = d["power_mw"], d["power_mw_default_activity"]
            out.append(f"| {n} | {d['area_um2']:.0f} | {d['area_mm2']:.4f} | {d['cells']} | {p['internal']:.2f} | "
                       f"{p['switching']:.2f} | {p['leakage']:.3f} | {p['total']:.2f} | {q['total']:.2f} | "
                       f"{d['slack_ns']:+.3f} | {d['fmax_mhz']:.0f} |")
    else:
        out += ["| design | transistors | cells |", "|---|---|---|"]
        out += [f"| {n} | {d['transistors']} | {d['cells']} |" for n, d in s["designs"].items()]
    c = s["fineq_vs_mac"]
    out += ["", "## FineQ array vs MAC systolic array", "", "| | this flow | paper |", "|---|---|---|",
            f"| area reduction ({c['area_metric']}) | {c['area_reduction_pct']:.1f}% | {c['paper_area_reduction_pct']}% |",
            f"| area reduction, accumulators left out of both | {c['area_reduction_pct_without_accumulators']:.1f}% | |"]
    if lib:
        out += [f"| power reduction (VCD activity) | {c['power_reduction_pct']:.1f}% | {c['paper_power_reduction_pct']}% |",
                f"| power reduction (default activity 0.1) | {c['power_reduction_pct_default_activity']:.1f}% | |",
                f"| power reduction, accumulators left out of both | {c['power_reduction_pct_without_accumulators']:.1f}% | |"]
        t = s["table_iii"]
        out += ["", "## Table III: FineQ array vs MAC systolic array (area; power at the clock)", "",
                "| designs | FineQ mm^2 | MAC mm^2 | area red. | FineQ mW real | MAC mW real | power red. real "
                "| FineQ mW synth. | MAC mW synth. | power red. synth. | power red. at 0.1 |", "|---" * 11 + "|"]
        for tag, r in t.items():
            if tag == "paper":
                continue
            out.append(f"| {tag} | {r['fineq_area_mm2']:.4f} | {r['mac_area_mm2']:.4f} | {r['area_reduction_pct']:.1f}% | "
                       f"{r.get('fineq_mw_real', float('nan')):.1f} | {r.get('mac_mw_real', float('nan')):.1f} | "
                       f"{r.get('power_reduction_pct_real', float('nan')):.1f}% | "
                       f"{r.get('fineq_mw_synthetic', float('nan')):.1f} | {r.get('mac_mw_synthetic', float('nan')):.1f} | "
                       f"{r.get('power_reduction_pct_synthetic', float('nan')):.1f}% | "
                       f"{r.get('power_reduction_pct_default_0.1', float('nan')):.1f}% |")
        out.append(f"| paper (45 nm, commercial flow) | | | {t['paper']['area_reduction_pct']}% | | | "
                   f"{t['paper']['power_reduction_pct']}% | | | | |")
        out += ["", "'real' is the workload of this run (see Activity above); with WEIGHTS=synthetic both columns "
                "are synthetic.", "", "## What the tree-sum register, the clock gates and the power-of-two datapath change", "",
                "| change | area mm^2 | area | power mW | power | slack ns before -> after | fmax MHz before -> after |",
                "|---|---|---|---|---|---|---|"]
        for k, c in s["changes"].items():
            out.append(f"| {k} | {c['area_mm2']:+.4f} | {c['area_pct']:+.1f}% | {c['power_mw']:+.1f} | "
                       f"{c['power_pct']:+.1f}% | {c['slack_ns'][0]:+.3f} -> {c['slack_ns'][1]:+.3f} | "
                       f"{c['fmax_mhz'][0]:.0f} -> {c['fmax_mhz'][1]:.0f} |")
        out += ["", "## The FineQ array's codings on the activity workload (one engine run, the arrays without "
                "decoders)", "", "| coding | power mW | column trees mW | column accumulators mW | rest mW | cycles | "
                "energy uJ | energy uJ, accumulators free (bound) |", "|---|---|---|---|---|---|---|---|"]
        out += [f"| {k} | {v['power_mw']:.2f} | {v['trees_mw']:.1f} ({100 * v['trees_mw'] / v['power_mw']:.1f}%) | "
                f"{v['accumulators_mw']:.1f} ({100 * v['accumulators_mw'] / v['power_mw']:.1f}%) | "
                f"{v['rest_mw']:.1f} | {v['cycles']:,} | {v['energy_uj']:.3f} | {v['energy_uj_free_accumulators']:.3f} |"
                for k, v in s.get("codings", {}).items()]
        out += ["", "The power-of-two datapath runs the same rows quantized with the same mode to its own levels "
                "{0, +-1, +-2, +-4} (one cycle per vector). Column trees = the PEs' select and signs and the 64-input "
                "adder trees; rest = PE registers, tree-sum registers, encoder. The last column is a bound, not a "
                "design: the energy if the column accumulators drew nothing."]
        b = s["fineq_power_breakdown"]
        out += ["", "## FineQ array power breakdown (the paper's Figure 8)", "", "| part | mW | this flow | paper |",
                "|---|---|---|---|"]
        out += [f"| {k} | {b['mw'][k]:.2f} | {b['pct'][k]:.1f}% | {b['paper_pct'][k]}% |" for k in b["pct"]]
        out += ["", b["note"] + "."]
    if lib:
        out += ["", "## The MAC array at its own weights (b-bit sign-magnitude grid, clock-gated, with its accumulators, "
                "columns synthesized flat)", "",
                "| weight bits | area mm^2 | total mW | slack ns | fmax MHz |", "|---|---|---|---|---|"]
        out += [f"| {w} | {d['area_mm2']:.4f} | {d['power_mw']['total']:.2f} | {d['slack_ns']:+.3f} | "
                f"{d['fmax_mhz']:.0f} |" for w, d in s["mac_widths"].items()]
        out += ["", "Each width's power comes from the same GEMM with its own weights (the same rows on its "
                "sign-magnitude grid; synth/activity.py)."]
    f = s["flat_cross_check"]
    out += ["", "## Scaling cross-check", ""]
    out += [f"- {fam}: {v['array'][0]}x{v['array'][1]} array synthesized flat = {v['flat']:.0f}; its column synthesized "
            f"alone x {v['array'][1]} = {v['columns_x_count']:.0f}; difference {v['difference_pct']:+.1f}%."
            for fam, v in f.items()]
    return "\n".join(out) + "\n"


def chart(s: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c, b = s["fineq_vs_mac"], s["fineq_power_breakdown"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    lab = ["area", "power"]
    ours = [c["area_reduction_pct"], c["power_reduction_pct"]]
    paper = [c["paper_area_reduction_pct"], c["paper_power_reduction_pct"]]
    xs = range(2)
    a1.bar([x - 0.2 for x in xs], ours, 0.4, label="this flow (Nangate45, Yosys+OpenSTA)")
    a1.bar([x + 0.2 for x in xs], paper, 0.4, label="paper (45 nm, commercial)")
    for x, v in zip(xs, ours, strict=True):
        a1.text(x - 0.2, v + 1, f"{v:.1f}%", ha="center")
    for x, v in zip(xs, paper, strict=True):
        a1.text(x + 0.2, v + 1, f"{v:.1f}%", ha="center")
    a1.set_xticks(list(xs), lab)
    a1.set_ylabel("reduction vs MAC systolic array (%)")
    kind = "synthetic" if s.get("activity_synthetic") else "real-weight"
    a1.set_title(f"FineQ vs MAC array, {s['array'][0]}x{s['array'][1]} @ {s['clock_mhz']:.0f} MHz, {kind} activity",
                 fontsize=10)
    a1.set_ylim(0, 100)
    a1.legend(fontsize=8)
    parts = list(b["pct"])
    bottom_o, bottom_p = 0.0, 0.0
    for p in parts:
        a2.bar(0, b["pct"][p], 0.5, bottom=bottom_o, label=p)
        a2.text(0, bottom_o + b["pct"][p] / 2, f"{b['pct'][p]:.1f}%", ha="center", va="center")
        bottom_o += b["pct"][p]
    a2.set_prop_cycle(None)
    for p in parts:
        a2.bar(1, b["paper_pct"][p], 0.5, bottom=bottom_p)
        a2.text(1, bottom_p + b["paper_pct"][p] / 2, f"{b['paper_pct'][p]:.1f}%", ha="center", va="center")
        bottom_p += b["paper_pct"][p]
    a2.set_xticks([0, 1], ["this flow", "paper Fig. 8"])
    a2.set_ylabel("share of FineQ array power (%)")
    a2.set_title("FineQ array power breakdown")
    a2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
