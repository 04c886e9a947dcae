"""RTL regression (``make sim``): every testbench on the selected simulators, then a summary table.

Environment: ``SIM`` (icarus, verilator, or both by default), ``SEED`` (regression
seed, to reproduce a run), ``WAVES=1`` (dump waves into each build folder),
``JOBS`` (parallel pytest workers, default 2).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    report = ROOT / "build" / "sim" / "regress.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    jobs = os.environ.get("JOBS", "2")
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", jobs, "-m", "rtl", f"--junitxml={report}", "tb",
           "tests/test_cli_rtl.py"]
    print("running:", " ".join(cmd), f"(SIM={os.environ.get('SIM') or 'icarus,verilator'}, "
          f"SEED={os.environ.get('SEED') or 'random'}, WAVES={os.environ.get('WAVES') or '0'})", flush=True)
    rc = subprocess.call(cmd, cwd=ROOT)
    if not report.exists():
        print("no report written", file=sys.stderr)
        return rc or 1
    rows = []
    for tc in ET.parse(report).iter("testcase"):
        name = tc.get("name", "")
        m = re.match(r"(test_\w+)\[(.*)\]", name)
        module, params = (m.group(1)[5:], m.group(2)) if m else (name, "")
        sim = next((s for s in ("icarus", "verilator") if s in params), "-")
        params = "-".join(p for p in params.split("-") if p not in ("icarus", "verilator")) or "default"
        status = "FAIL" if tc.find("failure") is not None or tc.find("error") is not None else (
            "SKIP" if tc.find("skipped") is not None else "pass")
        rows.append((module, params, sim, status, float(tc.get("time", 0))))
    rows.sort()
    w = max(len(r[0]) for r in rows) if rows else 10
    pw = max(len(r[1]) for r in rows) if rows else 10
    print(f"\n{'testbench':<{w}}  {'parameters':<{pw}}  {'simulator':<9}  {'result':<6}  {'seconds':>8}")
    print("-" * (w + pw + 33))
    for module, params, sim, status, secs in rows:
        print(f"{module:<{w}}  {params:<{pw}}  {sim:<9}  {status:<6}  {secs:8.1f}")
    npass = sum(r[3] == "pass" for r in rows)
    nfail = sum(r[3] == "FAIL" for r in rows)
    print(f"\n{npass} passed, {nfail} failed")
    return rc


if __name__ == "__main__":
    sys.exit(main())
