"""Step 4: OpenSTA timing and power of every unit at CLOCK_MHZ.

Timing: each unit with its inputs arriving at the clock edge and outputs due at
the next one; the column-to-accumulator path is composed by giving the
accumulator's sum input the column's latest output arrival. Power: once with
OpenSTA's default-style global activity (0.1 transitions per cycle, duty 0.5)
and once with the per-port-bit activity measured in step 3, propagated through
each block by OpenSTA. Power per group (PEs, adder tree, ...) sums the leaf
cells by instance path. Writes build/synth/sta.json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import settings as S

GROUPS = {"fineq_col": "pe g_row tree u_tree/ pipe g_pipe", "mac_col": "pe u_pe/"}  # by family (instance names)


def activity_tcl(name: str, ports: dict[str, list[float]] | None, tag: str = "") -> Path | None:
    if ports is None:
        return None
    path = S.unit_dir(name) / f"activity{tag}.tcl"
    lines = [f"set_power_activity -input_ports [get_ports {{{p}}}] -activity {a:.6f} -duty {min(max(d, 0.0), 1.0):.6f}"
             for p, (a, d) in sorted(ports.items())]
    lines += [f"array set ::duty [list {{{p}}} {min(max(d, 0.0), 1.0):.6f}]" for p, (_, d) in sorted(ports.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_sta(name: str, run: S.StaRun, top: str, lib: Path, act: Path | None, act_syn: Path | None,
            in_port: str = "", in_delay: float = 0.0) -> dict:
    out = S.unit_dir(name)
    env = dict(os.environ, LIB=str(lib), NETLIST=str(S.unit_dir(run.unit) / "netlist.v"), UNIT_TOP=top,
               PERIOD_NS=str(S.PERIOD_NS), ACTIVITY=str(act or ""), ACTIVITY_SYN=str(act_syn or ""),
               IN_DELAY_PORT=in_port, IN_DELAY_NS=str(in_delay),
               GROUPS=GROUPS.get(run.family.removesuffix("_bin").removesuffix("_pow2"), ""))
    res = subprocess.run(["sta", "-no_splash", "-exit", str(S.ROOT / "synth" / "sta_unit.tcl")], env=env,
                         capture_output=True, text=True)
    (out / "sta.log").write_text(res.stdout + res.stderr)
    if res.returncode or "RESULT slack_ns" not in res.stdout:
        raise SystemExit(f"OpenSTA failed on {name}; see {out / 'sta.log'}")
    r: dict = {"groups_default": {}, "groups_vcd": {}, "groups_syn": {}}
    for line in res.stdout.splitlines():
        tok = line.split()
        if not tok or tok[0] != "RESULT":
            continue
        if tok[1] == "clock_gates":
            r["clock_gates"] = int(tok[2])
        elif tok[1] == "slack_ns":
            r["slack_ns"] = float(tok[2])
        elif tok[1].startswith("power_"):
            r[tok[1]] = [float(v) * 1e3 for v in tok[2:6]]  # W -> mW
        elif tok[1].startswith("group_"):
            r["groups_" + tok[1][6:]][tok[2]] = [float(v) * 1e3 for v in tok[3:7]]
    outp = res.stdout.split("BEGIN_OUT_PATH")[1].split("END_OUT_PATH")[0]
    arr = re.findall(r"([0-9.]+)\s+data arrival time", outp)
    r["out_arrival_ns"] = float(arr[0]) if arr else 0.0
    crit = res.stdout.split("BEGIN_PATH")[1].split("END_PATH")[0]
    (out / "critical_path.txt").write_text(crit)
    return r


def main() -> None:
    lib = S.liberty_plain()
    if lib is None:
        print("no liberty: no timing or power (library-free estimate only)")
        (S.BUILD / "sta.json").write_text(json.dumps({}))
        return
    data = json.loads((S.BUILD / "activity.json").read_text())
    act, act_syn = data["units"], data.get("synthetic", {}).get("units")
    units = S.units()
    res: dict[str, dict] = {}
    for name, run in S.STA_RUNS.items():
        in_port, in_delay = "", 0.0
        if run.chain_from:  # the column's adder tree / bottom PE feeds sum_i in the same cycle
            in_port, in_delay = "sum_i*", res[run.chain_from]["out_arrival_ns"]
        res[name] = run_sta(name, run, units[run.unit].top, lib, activity_tcl(name, act[run.family]),
                            activity_tcl(name, act_syn.get(run.family) if act_syn else None, "_synthetic"),
                            in_port, in_delay)
        r = res[name]
        print(f"  {name:<17} slack {r['slack_ns']:+.3f} ns, power {r['power_vcd'][3]:.4f} mW "
              f"(default activity {r['power_default'][3]:.4f} mW), {r.get('clock_gates', 0)} clock gates",
              flush=True)
    (S.BUILD / "sta.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
