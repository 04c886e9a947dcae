"""Step 2: prove every netlist equal to its RTL by gate-level simulation against the golden model.

Each mapped netlist becomes a simulatable one (the liberty cells replaced by
their functions, gls_netlist.tcl) and runs its block's own cocotb testbench on
Icarus, with the parameters passed in the environment. A unit whose netlist
fails is reported and the flow stops: no number from a wrong netlist.
Writes build/synth/prove.json.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import settings as S

from fineq_tb import runner


def prove_unit(name: str, unit: S.Unit, lib: Path | None) -> dict[str, object]:
    from cocotb_tools.check_results import get_results

    out = S.unit_dir(name)
    gls = out / "gls.v"
    env = dict(os.environ, LIB=str(lib or ""), NETLIST=str(out / "netlist.v"), UNIT_TOP=unit.top, OUT=str(gls))
    res = subprocess.run(["yosys", "-q", "-l", str(out / "gls.log"), "-c", str(S.ROOT / "synth" / "gls_netlist.tcl")],
                         cwd=S.ROOT, env=env, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"yosys could not make a simulatable netlist of {name}: {res.stderr[-1500:]}")
    xml = runner.run(unit.top, f"test_{unit.tb}", "icarus", name=name, sources=[gls], build_root=S.BUILD / "gls",
                     testcase=unit.testcases,
                     log_file=out / "gls_sim.log",
                     extra_env={f"FINEQ_PARAM_{k}": str(v) for k, v in unit.tb_params.items()})
    ntests, nfail = get_results(Path(xml))
    ok = ntests > 0 and nfail == 0
    print(f"  {name:<16} gate-level {unit.tb} testbench: {ntests - nfail}/{ntests} tests pass", flush=True)
    return {"tests": ntests, "failed": nfail, "equal": ok, "testbench": f"tb/{unit.tb}",
            "log": str(out / "gls_sim.log")}


def main() -> None:
    lib = S.liberty_plain()
    units = S.units()
    with ThreadPoolExecutor(2) as pool:
        futs = {n: pool.submit(prove_unit, n, u, lib) for n, u in units.items()}
        results = {n: f.result() for n, f in futs.items()}
    (S.BUILD / "prove.json").write_text(json.dumps(results, indent=1))
    bad = [n for n, r in results.items() if not r["equal"]]
    if bad:
        raise SystemExit(f"netlists that do not match their RTL: {bad}; their numbers are not reported")


if __name__ == "__main__":
    main()
