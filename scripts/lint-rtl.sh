#!/usr/bin/env bash
# verilator --lint-only -Wall on every RTL file, each as its own top (as a reviewer would).
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v verilator >/dev/null 2>&1; then
  echo "lint-rtl: verilator not found (run through scripts/venv-env.sh, or scripts/setup.sh first)" >&2
  exit 2
fi
inc=""
for d in $(find rtl -name '*.v' -exec dirname {} \; | sort -u); do inc="$inc -I$d"; done
fail=0
for f in $(find rtl -name '*.v' | sort); do
  m=$(basename "$f" .v)
  out=$(verilator --lint-only -Wall $inc --top-module "$m" "$f" 2>&1 | grep -E '%(Warning|Error)')
  if grep -q "parameter integer CLOCK_GATE" "$f"; then  # the ungated form too
    out="$out$(verilator --lint-only -Wall $inc --top-module "$m" -GCLOCK_GATE=0 "$f" 2>&1 | grep -E '%(Warning|Error)')"
  fi
  if grep -q "parameter integer LOOPS" "$f"; then  # the PE array's loop description
    out="$out$(verilator --lint-only -Wall $inc --top-module "$m" -GCLOCK_GATE=0 -GLOOPS=1 "$f" 2>&1 | grep -E '%(Warning|Error)')"
  fi
  if [ -n "$out" ]; then echo "$f:"; echo "$out"; fail=1; else echo "lint ok: $f"; fi
done
exit $fail
