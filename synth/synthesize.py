"""Step 1: Yosys maps every unit to the liberty (or to generic CMOS gates without one).

Writes build/synth/<unit>/netlist.v and stat.txt, and build/synth/synth.json with
area (um^2) or transistor count, and cell count, per unit.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import settings as S


def parse_stat(text: str) -> dict[str, float]:
    if "=== design hierarchy ===" in text:
        text = text.split("=== design hierarchy ===")[-1]
    cells = re.findall(r"Number of cells:\s+(\d+)", text)
    out: dict[str, float] = {"cells": int(cells[-1]) if cells else 0}
    area = re.findall(r"Chip area for (?:top )?module '[^']*': ([0-9.]+)", text)
    if area:
        out["area_um2"] = float(area[-1])
    tr = re.findall(r"Estimated number of transistors:\s+(\d+)", text)
    if tr:
        out["transistors"] = int(tr[-1])
    return out


def synth_unit(name: str, unit: S.Unit, lib: Path | None) -> dict[str, float]:
    out = S.unit_dir(name)
    env = dict(os.environ, UNIT_TOP=unit.top, UNIT_FLATTEN="1" if unit.flatten else "0", OUT=str(out),
               UNIT_HP=" ".join(f"-set {k} {v}" for k, v in unit.params.items()),
               LIB=str(lib or ""), CLOCK_PS=str(int(S.PERIOD_NS * 1000)))
    t0 = time.perf_counter()
    res = subprocess.run(["yosys", "-q", "-l", str(out / "yosys.log"), "-c", str(S.ROOT / "synth" / "yosys_unit.tcl")],
                         cwd=S.ROOT, env=env, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"yosys failed on {name}; see {out / 'yosys.log'}\n{res.stderr[-2000:]}")
    stats = parse_stat((out / "stat.txt").read_text())
    stats["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"  {name:<16} {unit.top}{unit.params} {'flat' if unit.flatten else 'hier'}: {stats}", flush=True)
    return stats


def main() -> None:
    lib = S.liberty_plain()
    print(f"synthesis with {'liberty ' + str(S.LIBERTY) if lib else 'no liberty: library-free CMOS estimate'}")
    units = S.units()
    with ThreadPoolExecutor(2) as pool:
        futs = {n: pool.submit(synth_unit, n, u, lib) for n, u in units.items()}
        results = {n: f.result() for n, f in futs.items()}
    (S.BUILD / "synth.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
