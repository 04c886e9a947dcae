"""``fineq pareto``'s table and chart: perplexity (log) against energy per token, the Pareto front drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MARKERS = {"fineq": ("o", "#1f77b4"), "mac": ("s", "#d62728"), "mac-fineq": ("x", "#999999")}


def _kind(p: dict[str, Any]) -> str:
    return "mac-fineq" if p["fineq_weights"] else p["arch"]


def table(doc: dict[str, Any], workload: str) -> str:
    seqs = sorted(doc["reference_ppl"], key=int)
    pts = [p for p in doc["points"] if p["workload"] == workload]
    fed = [p for p in pts if p["fineq_weights"]]
    if fed:  # the MAC array fed FineQ's levels: one row (the most accurate mode's), the rest are in the JSON
        keep = min(fed, key=lambda p: p["ppl"][seqs[0]])
        pts = [p for p in pts if not p["fineq_weights"] or p is keep]
    head = (f"{'configuration':<36}{'bits':>6}" + "".join(f"{'ppl@' + s:>10}" for s in seqs)
            + "".join(f"{'cyc/tok@' + s:>13}{'uJ/tok@' + s:>12}{'w/mem@' + s:>12}" for s in seqs) + f"{'mm^2':>8}")
    lines = [f"== {workload}: energy per token at N = the sequence length (compute only; with DRAM + SRAM)", head]
    for p in sorted(pts, key=lambda p: (p["arch"], p["fineq_weights"], p["bits"], p["name"])):
        line = f"{p['name']:<36}{p['bits']:>6.2f}" + "".join(f"{p['ppl'].get(s, float('nan')):>10.1f}" for s in seqs)
        for s in seqs:
            e = p["by_seq"][s]
            line += (f"{e['cycles_per_token']:>13,.0f}{1e6 * e['compute_j_per_token']:>12.3f}"
                     f"{1e6 * e['with_memory_j_per_token']:>12.3f}")
        lines.append(line + f"{p['area_mm2']:>8.3f}")
    lines.append("reference perplexity: " + ", ".join(f"seq {s}: {v:.2f}" for s, v in doc["reference_ppl"].items())
                 + f" ({doc['reference']})")
    for r in (r for r in doc["iso_accuracy"] if r["workload"] == workload):
        if r["mac"] is None:
            lines.append(f"seq {r['seq']}, FineQ {r['role']} ({r['fineq']}, ppl {r['fineq_ppl']:.1f}): {r['note']}")
            continue
        extra = (f"; cheapest in compute alone: {r['mac_cheapest_compute']}, {r['ratio_compute_cheapest']:.2f}x"
                 if "mac_cheapest_compute" in r else "")
        lines.append(f"seq {r['seq']}, at equal accuracy, FineQ {r['role']} ({r['fineq']}, ppl {r['fineq_ppl']:.1f}) "
                     f"vs the cheapest MAC not worse ({r['mac']}, ppl {r['mac_ppl']:.1f}, {r['mac_bits']:.2f} b): "
                     f"MAC / FineQ energy per token {r['ratio_compute']:.2f}x compute only, "
                     f"{r['ratio_with_memory']:.2f}x with memory{extra}")
    return "\n".join(lines)


def chart(doc: dict[str, Any], workload: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seqs = sorted(doc["reference_ppl"], key=int)
    pts = [p for p in doc["points"] if p["workload"] == workload]
    keys = [("compute_j_per_token", "compute only"), ("with_memory_j_per_token", "with DRAM + SRAM")]
    fig, axes = plt.subplots(len(seqs), 2, figsize=(12, 4.6 * len(seqs)), squeeze=False)
    for i, s in enumerate(seqs):
        for j, (key, label) in enumerate(keys):
            ax = axes[i][j]
            for kind, (mk, col) in MARKERS.items():
                sel = [p for p in pts if _kind(p) == kind and s in p["ppl"]]
                ax.scatter([1e6 * p["by_seq"][s][key] for p in sel], [p["ppl"][s] for p in sel], marker=mk, c=col,
                           label={"fineq": "FineQ engine", "mac": "MAC array, its own grid",
                                  "mac-fineq": "MAC array fed FineQ levels"}[kind])
                for p in sel:
                    if kind != "mac-fineq":
                        ax.annotate(p["name"].removeprefix("FineQ ").removeprefix("MAC "),
                                    (1e6 * p["by_seq"][s][key], p["ppl"][s]), fontsize=6, xytext=(3, 2),
                                    textcoords="offset points")
            names = doc["fronts"][workload][s][key]
            fr = sorted((p for p in pts if p["name"] in names), key=lambda p: p["by_seq"][s][key])
            ax.step([1e6 * p["by_seq"][s][key] for p in fr], [p["ppl"][s] for p in fr], where="post", c="#2ca02c",
                    lw=1.2, label="Pareto front")
            ax.axhline(doc["reference_ppl"][s], ls="--", c="#555555", lw=0.8, label="reference")
            ax.set_yscale("log")
            ax.set_xscale("log")
            ax.set_xlabel(f"energy per token (uJ), {label}")
            ax.set_ylabel(f"perplexity, seq {s}")
            ax.set_title(f"{workload}, seq {s}, {label}", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle(f"{doc['model']} (reference: {doc['reference']}): perplexity against energy per token, "
                 f"64x64 arrays at {doc['clock_mhz']:.0f} MHz, Nangate45", fontsize=9)
    fig.tight_layout()
    from fineq.outputs import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip("."))
    plt.close(fig)
