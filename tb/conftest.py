"""Shared pytest setup: put tb/ on sys.path for the common testbench helpers (fineq_tb)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
