#!/usr/bin/env bash
# make synth: Yosys + OpenSTA on Nangate45 for the FineQ array, its decoders and the MAC systolic array.
# Every setting is an environment variable with a default (synth/settings.py):
#   LIBERTY (empty: library-free estimate), CLOCK_MHZ=400, ROWS=64, COLS=64, FLAT_ROWS=8, FLAT_COLS=8,
#   SYNTH_BUILD=build/synth, ACT_M=128, ACT_K=256, ACT_N=64, ACT_SEED=1.
# Reports: $SYNTH_BUILD/summary.json, summary.md, summary.png.
set -euo pipefail
cd "$(dirname "$0")/.."
# one synthesis run per build folder: a second one waits for nothing and says so
build_dir="${SYNTH_BUILD:-build/synth}"
mkdir -p "$build_dir"
exec 9>"$build_dir/.lock"
if ! flock -n 9; then
  echo "synth: $build_dir is in use by another synthesis run; wait for it or set SYNTH_BUILD to another folder" >&2
  exit 1
fi
# the steps import the testbench helpers (fineq_tb) and the unit testbenches from tb/
export PYTHONPATH="$PWD/tb${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${LIBERTY:-}" ]; then
  echo "LIBERTY is not set: running the library-free estimate (transistor counts; no um^2, timing or power)."
  echo "For Nangate45 numbers: LIBERTY=/path/to/nangate45_typ.lib.gz make synth"
fi
echo "== 1/5 synthesize (Yosys)"
python synth/synthesize.py
echo "== 2/5 prove every netlist (gate-level simulation of its testbench against the golden model)"
python synth/prove.py
if [ -n "${LIBERTY:-}" ]; then
  echo "== 3/5 switching activity (RTL simulation of a GEMM workload, VCD)"
  python synth/activity.py
  echo "== 4/5 timing and power (OpenSTA)"
  python synth/sta.py
else
  echo "== 3/5, 4/5 skipped without a liberty"
fi
echo "== 5/5 report"
python synth/report.py
