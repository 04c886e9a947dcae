"""The performance model's table and chart (the paper's Figure 9)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

PAPER_MAX_EFFICIENCY = 1.79
DEFAULT_CHART = "build/perf/fig9_efficiency.png"


def _short(name: str, width: int = 28) -> str:
    """A layer name that fits the column: ``model.layers.12.mlp.down_proj.weight`` -> ``L12 mlp.down_proj``."""
    m = re.search(r"layers\.(\d+)\.(.*?)(?:\.weight)?$", name)
    s = f"L{m.group(1)} {m.group(2)}" if m else name
    return s if len(s) <= width else "..." + s[-(width - 3):]


def table(model: str, res: dict[str, Any], power: dict[str, Any] | None) -> str:
    t = res["total"]
    head = f"{'layer':<28}{'M':>7}{'K':>7}{'x':>4}{'FineQ cycles':>15}{'MAC cycles':>15}"
    if power:
        head += f"{'FineQ uJ':>12}{'MAC uJ':>12}{'mem uJ':>12}{'eff.':>7}{'w/ mem':>8}"
    lines = [f"== {model}, sequence length {res['n']}", head]
    for r in res["layers"]:
        line = f"{_short(r['layer']):<28}{r['m']:>7}{r['k']:>7}{r['count']:>4}{r['fineq_cycles']:>15,}{r['mac_cycles']:>15,}"
        if power:
            line += (f"{r['fineq_uj']:>12.1f}{r['mac_uj']:>12.1f}{r['memory_uj']:>12.1f}{r['efficiency']:>7.2f}"
                     f"{r['efficiency_with_memory']:>8.2f}")
        lines.append(line)
    lines.append(f"total: FineQ {t['fineq_cycles']:,} cycles ({t['fineq_seconds'] * 1e3:.1f} ms, {t['fineq_gops']:.1f} GOPS), "
                 f"MAC {t['mac_cycles']:,} cycles ({t['mac_seconds'] * 1e3:.1f} ms, {t['mac_gops']:.1f} GOPS) at 400 MHz")
    if power:
        lines.append(f"energy: FineQ {t['fineq_mj']:.3f} mJ, MAC {t['mac_mj']:.3f} mJ, memory {t['memory_mj']:.3f} mJ "
                     f"(both; {res['buffer_kb']} KB buffer); energy efficiency FineQ / MAC = {t['efficiency']:.2f}x "
                     f"compute only, {t['efficiency_with_memory']:.2f}x with memory (paper: up to "
                     f"{PAPER_MAX_EFFICIENCY}x)")
        if "efficiency_binary" in t:
            lines.append(f"binary-weighted coding (variant): {t['fineq_binary_cycles']:,} cycles, "
                         f"{t['fineq_binary_mj']:.3f} mJ; efficiency {t['efficiency_binary']:.2f}x compute only, "
                         f"{t['efficiency_binary_with_memory']:.2f}x with memory")
    else:
        lines.append(f"binary-weighted coding (variant): {t['fineq_binary_cycles']:,} cycles")
    return "\n".join(lines)


def chart(results: dict[str, dict[int, dict[str, Any]]], path: Path) -> None:
    """The paper's Figure 9: energy efficiency FineQ / MAC per model and sequence length, compute only and
    with memory, one panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results)
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 4.2), squeeze=False)
    top = max(max(max(r["total"]["efficiency"] for r in by.values()) for by in results.values()),
              PAPER_MAX_EFFICIENCY) * 1.3
    for ax, model in zip(axes[0], models, strict=True):
        by = results[model]
        ns = list(by)
        xs = np.arange(len(ns))
        comp = [by[n]["total"]["efficiency"] for n in ns]
        mem = [by[n]["total"]["efficiency_with_memory"] for n in ns]
        bars = [(comp, "compute only", "#1f77b4"), (mem, "with DRAM + SRAM", "#ff7f0e")]
        if all("efficiency_binary" in by[n]["total"] for n in ns):
            bars += [([by[n]["total"]["efficiency_binary"] for n in ns], "binary coding, compute only", "#2ca02c"),
                     ([by[n]["total"]["efficiency_binary_with_memory"] for n in ns], "binary coding, with memory",
                      "#98df8a")]
        w = 0.8 / len(bars)
        for i, (vals, label, color) in enumerate(bars):
            off = (i - (len(bars) - 1) / 2) * w
            ax.bar(xs + off, vals, w, label=label, color=color)
            for x, v in zip(xs, vals, strict=True):
                ax.text(x + off, v + 0.02, f"{v:.2f}", ha="center", fontsize=6, rotation=90)
        ax.axhline(1.0, color="#999999", lw=1)
        ax.axhline(PAPER_MAX_EFFICIENCY, ls="--", color="#d62728", lw=1, label=f"paper, best ({PAPER_MAX_EFFICIENCY}x)")
        ax.set_xticks(xs, [str(n) for n in ns])
        ax.set_xlabel("sequence length N")
        ax.set_title(model, fontsize=8, wrap=True)
        ax.set_ylim(0, top)
    axes[0][0].set_ylabel("energy efficiency FineQ / MAC array")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Energy efficiency, FineQ vs MAC systolic array (64x64, 400 MHz, Nangate45)", fontsize=10)
    fig.tight_layout()
    from fineq.outputs import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip("."))
    plt.close(fig)
