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
  if [ -n "$out" ]; then echo "$f:"; echo "$out"; fail=1; else echo "lint ok: $f"; fi
done
exit $fail
