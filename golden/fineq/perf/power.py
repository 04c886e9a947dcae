"""The synthesis report the energy model reads: FineQ and MAC power from ``make synth``'s summary.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fineq.errors import FineQError


def load_power(summary: str | Path) -> dict[str, Any] | None:
    """FineQ and MAC power (mW) and clock from make synth's summary.json, or None if there is none."""
    p = Path(summary)
    if not p.is_file():
        return None
    try:
        s = json.loads(p.read_text())
        if not isinstance(s, dict) or s.get("mode") != "liberty":
            return None
        d = s["designs"]
        dec = d["fineq_decoders"]["power_mw"]["total"]
        out = {"fineq_mw": d["fineq_pe_array"]["power_mw"]["total"] + dec,
               "mac_mw": d["mac_systolic_array"]["power_mw"]["total"], "clock_mhz": s["clock_mhz"],
               "array": s["array"], "source": str(p)}
        if "fineq_pe_array_binary" in d:
            out["fineq_binary_mw"] = d["fineq_pe_array_binary"]["power_mw"]["total"] + dec
        if "fineq_pe_array_pow2" in d:
            out["fineq_pow2_mw"] = d["fineq_pe_array_pow2"]["power_mw"]["total"] + dec
        return out
    except (ValueError, KeyError, TypeError) as e:
        raise FineQError(f"synthesis report {p} is not a make synth summary.json ({type(e).__name__}: {e})") from e
