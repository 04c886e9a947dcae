#!/usr/bin/env bash
# verilator --lint-only -Wall on every RTL file of rtl/files.f (the one file list), each as its own top (as a
# reviewer would), with CLOCK_GATE=0 too where the module has it (the form the simulators run), and its coding
# variants (CODING=1, 2; POW2=1).
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v verilator >/dev/null 2>&1; then
  echo "lint-rtl: verilator not found (run through scripts/venv-env.sh, or scripts/setup.sh first)" >&2
  exit 2
fi
files=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' rtl/files.f | sed 's|^|rtl/|')
inc=""
for d in $(for f in $files; do dirname "$f"; done | sort -u); do inc="$inc -I$d"; done
fail=0
for f in $files; do
  m=$(basename "$f" .v)
  out=$(verilator --lint-only -Wall $inc --top-module "$m" "$f" 2>&1 | grep -E '%(Warning|Error)')
  if grep -q "parameter integer CLOCK_GATE" "$f"; then  # the ungated form too
    out="$out$(verilator --lint-only -Wall $inc --top-module "$m" -GCLOCK_GATE=0 "$f" 2>&1 | grep -E '%(Warning|Error)')"
  fi
  if grep -q "parameter integer W_W" "$f"; then  # the MAC array's widest weights too
    out="$out$(verilator --lint-only -Wall $inc --top-module "$m" -GW_W=8 "$f" 2>&1 | grep -E '%(Warning|Error)')"
  fi
  for g in CODING=1 CODING=2 POW2=1; do  # the binary and power-of-two variants too
    if grep -q "parameter integer ${g%=*} " "$f"; then
      out="$out$(verilator --lint-only -Wall $inc --top-module "$m" -G$g "$f" 2>&1 | grep -E '%(Warning|Error)')"
    fi
  done
  if [ -n "$out" ]; then echo "$f:"; echo "$out"; fail=1; else echo "lint ok: $f"; fi
done
# every Verilog file under rtl/ is in the list
for f in $(find rtl -name '*.v' | sort); do
  echo "$files" | grep -qx "$f" || { echo "$f is not in rtl/files.f"; fail=1; }
done
exit $fail
