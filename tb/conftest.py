"""Shared pytest setup for the cocotb testbenches: put tb/ on sys.path for the common helpers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
