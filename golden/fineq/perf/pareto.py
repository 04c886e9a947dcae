"""``fineq pareto``: every accelerator configuration as (bits per weight, perplexity, energy per token), the
Pareto front, and FineQ against the MAC array **at equal accuracy**.

Inputs: a ``fineq eval`` JSON (perplexity and the hardware side of each method: FineQ's temporal cycles per
vector per linear type; the MAC grid's weight width and group) and ``make synth``'s ``summary.json`` (power of
the FineQ array with its decoders and of the MAC array at each weight width, 400 MHz, each from a GEMM with its
own weights). Configurations:

* ``fineq``: a FineQ mode on the FineQ engine; cycles from the cycle model with the mode's own cycles per
  vector for each linear type (:mod:`fineq.perf.layers`), memory at FineQ's packed bytes; the spec's levels on
  the thermometer and binary-weighted codings, the power-of-two codebook's (``fineq-*-pow2``) on the power-of-two
  datapath (one cycle per vector; its own power);
* ``mac``: the MAC array at ``b``-bit weights running a method on its own sign-magnitude grid
  (:mod:`fineq.quant.signmag`), memory at its own bytes; group-wise grids add a scale multiply per output and
  group in the accumulators, **costed, not built** (:func:`group_scale_pj`); so do FineQ modes with group scales
  (``fineq-gptq-ord-g128``, the format variant outside the spec), their scales also in the weight bytes;
* ``mac-fineq-weights``: the 3-bit MAC array fed a FineQ mode's levels through FineQ's decoders (the paper's
  comparison, same weights). Shown, but not a candidate at equal accuracy: the accuracy is FineQ's.

Energy per token of a workload at ``N`` tokens (one GEMM batch of every decoder linear; ``N`` = the perplexity's
sequence length): ``P * cycles / f / N``, compute only, and with memory (:mod:`fineq.perf.memory`).
Workloads: the model's own linears (their shapes from the eval JSON) and LLaMA-2-7B shapes with the model's
statistics (as ``fineq perf`` does).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fineq.engine.config import EngineConfig, codings_for, mac_psum_w
from fineq.engine.cycles import mac_cycle_split
from fineq.errors import FineQError
from fineq.format.codec import W_BITS
from fineq.perf import memory
from fineq.perf.layers import MODELS, Layer, fineq_cycles, layer_shapes

SCALE_BITS = 16  # a float16 group scale (its multiply is costed as a SCALE_BITS-bit integer multiply)
DEFAULT_USABLE = 10.0  # "usable": perplexity at most this many times the reference's


#: the FineQ arrays of ``make synth``'s summary by coding (the engine's datapath)
FINEQ_DESIGNS = {"thermometer": "fineq_pe_array", "binary": "fineq_pe_array_binary", "pow2": "fineq_pe_array_pow2"}


@dataclass(frozen=True)
class Power:
    """What the energy model takes from ``make synth``: total power per array (mW) and area (mm^2)."""

    clock_mhz: float
    fineq_mw: dict[str, float]  # coding -> the FineQ array with its decoders (a summary may lack pow2)
    fineq_mm2: dict[str, float]
    mac_mw: dict[int, float]  # weight bits -> MAC array with its accumulators, running its own grid
    mac_mm2: dict[int, float]
    mac_pe_pj: dict[int, float]  # weight bits -> energy of one MAC PE per cycle (pJ), accumulators left out
    mac_fineq_mw: float  # the 3-bit MAC array fed FineQ's levels (make synth's mac_systolic_array)
    mac_fineq_mm2: float
    source: str


@dataclass
class Point:
    name: str
    arch: str  # "fineq" | "mac"
    method: str
    bits: float
    ppl: dict[str, float]
    weight_bits: int | None = None  # MAC array width
    group: int | None = None
    fineq_weights: bool = False  # the MAC array fed FineQ's levels (not a candidate at equal accuracy)
    coding: str = "thermometer"  # FineQ's temporal coding
    cycles_per_vector: dict[str, float] = field(default_factory=dict)  # FineQ: by linear type, "" overall
    energy: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # workload -> seq -> figures

    def candidate(self) -> bool:
        return self.arch == "mac" and not self.fineq_weights


def load_power(summary: str | Path) -> Power:
    p = Path(summary)
    if not p.is_file():
        raise FineQError(f"{p}: no synthesis summary (run `LIBERTY=... make synth`)")
    try:
        s = json.loads(p.read_text())
        if s.get("mode") != "liberty":
            raise FineQError(f"{p} is a library-free synthesis summary: energy needs LIBERTY=... make synth")
        d, rows = s["designs"], s["array"][0]
        widths = {int(w): v for w, v in s["mac_widths"].items()}
        f = s["clock_mhz"] * 1e6

        def pe_pj(w: int) -> float:  # one column's power over its ROWS PEs, per cycle
            return s["units"][f"macsm{w}_col"]["sta"]["power_vcd"][3] * 1e-3 / rows / f * 1e12

        dec = d["fineq_decoders"]
        fq = {c: d[n] for c, n in FINEQ_DESIGNS.items() if n in d or c != "pow2"}
        return Power(float(s["clock_mhz"]),
                     {c: v["power_mw"]["total"] + dec["power_mw"]["total"] for c, v in fq.items()},
                     {c: v["area_mm2"] + dec["area_mm2"] for c, v in fq.items()},
                     {w: v["power_mw"]["total"] for w, v in widths.items()},
                     {w: v["area_mm2"] for w, v in widths.items()}, {w: pe_pj(w) for w in widths},
                     d["mac_systolic_array"]["power_mw"]["total"], d["mac_systolic_array"]["area_mm2"], str(p))
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise FineQError(f"{p} is not a make synth summary.json with power ({type(e).__name__}: {e})") from e


def group_scale_pj(power: Power, rows: int, w_w: int) -> float:
    """Costed, not built: one group scale applied in an accumulator, ``acc += psum * scale``, estimated as the
    measured energy of a MAC PE's cycle at the widest weights synthesized (a multiply and an add) scaled by the
    multiplier's operand-bit product: ``(PSUM_W + 1) x 16`` (a partial sum over two tiles times a float16
    scale's significand-sized integer) against ``8 x W``."""
    w = max(power.mac_pe_pj)
    return power.mac_pe_pj[w] * (mac_psum_w(rows, w_w=w_w) + 1) * SCALE_BITS / (8 * w)


def load_evals(paths: list[str | Path]) -> dict[str, Any]:
    """Several eval JSONs as one: they must be of the same model, text and windows (a method in two files, or a
    reference perplexity that differs between them, is an error)."""
    docs = [load_eval(p) for p in paths]
    out = dict(docs[0], results=list(docs[0]["results"]))
    for p, d in zip(paths[1:], docs[1:], strict=True):
        for key in ("model", "reference", "text", "tokens"):
            if d.get(key) != out.get(key):
                raise FineQError(f"{p}: {key} {d.get(key)!r} differs from {paths[0]}'s {out.get(key)!r}")
        have = {(r["method"], r["seq"]): r for r in out["results"]}
        for r in d["results"]:
            old = have.get((r["method"], r["seq"]))
            if old is None:
                out["results"].append(r)
            elif r["method"] != "reference":
                raise FineQError(f"{p}: method {r['method']} is also in an earlier eval JSON")
            elif abs(old["ppl"] - r["ppl"]) > 1e-6 * old["ppl"]:
                raise FineQError(f"{p}: reference perplexity at seq {r['seq']} is {r['ppl']:.4f}, not "
                                 f"{old['ppl']:.4f}: not the same windows")
    out["environments"] = [{"eval": str(p), **(d.get("environment") or {})} for p, d in zip(paths, docs, strict=True)]
    return out


def environment_notes(doc: dict[str, Any]) -> list[str]:
    """Lines for merged evals measured in different environments, or with none recorded (eval JSONs from before
    they were kept): the reference perplexity agrees across environments while calibrated methods may not
    (docs/accuracy.md)."""
    envs = doc.get("environments") or []
    if len(envs) < 2:
        return []
    bare = [e["eval"] for e in envs if len(e) == 1]
    notes = [f"note: {', '.join(bare)} record(s) no environment; calibrated methods may differ between "
             "environments, compare within one"] if bare else []
    known = [e for e in envs if len(e) > 1]
    for e in known[1:]:
        keys = sorted(k for k in set(known[0]) | set(e) if k != "eval" and known[0].get(k) != e.get(k))
        if keys:
            what = ", ".join(f"{k} {known[0].get(k)!r} vs {e.get(k)!r}" for k in keys)
            notes.append(f"note: {e['eval']} was measured in another environment than {known[0]['eval']} ({what}); "
                         "calibrated methods may differ between environments by several percent, compare within one")
    return notes


def area(p: Point, power: Power) -> float:
    """The array's area (mm^2) of a configuration (FineQ: with its decoders)."""
    if p.arch == "fineq":
        return power.fineq_mm2[p.coding]
    return power.mac_fineq_mm2 if p.fineq_weights else power.mac_mm2[p.weight_bits]


def load_eval(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise FineQError(f"{p}: no such eval JSON (write one with `fineq eval ... --json FILE`)")
    try:
        doc = json.loads(p.read_text())
        rows = doc["results"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) and {"method", "seq", "ppl", "bits"} <= set(r)
                                                 for r in rows):
            raise KeyError("results")
    except (ValueError, KeyError, TypeError) as e:
        raise FineQError(f"{p} is not a fineq eval JSON ({type(e).__name__}: {e})") from e
    if "linears" not in doc:
        raise FineQError(f"{p} has no layer shapes ('linears'): rerun fineq eval with this version")
    return doc


def points_of(doc: dict[str, Any]) -> tuple[list[Point], dict[str, float], list[str]]:
    """``(points, reference perplexity by seq, methods that run on neither array)``."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in doc["results"]:
        by.setdefault(r["method"], []).append(r)
    ref = {str(r["seq"]): float(r["ppl"]) for r in by.get("reference", [])}
    out: list[Point] = []
    skipped = []
    for method, rows in by.items():
        ppl = {str(r["seq"]): float(r["ppl"]) for r in rows}
        first = rows[0]
        if "cycles_per_vector" in first:
            cpv = {"": float(first["cycles_per_vector"]), **first.get("cycles_per_vector_by_linear", {})}
            short = method.removeprefix("fineq-")
            g = first.get("group")
            book = first.get("codebook", "int")
            out.append(Point(f"FineQ {short}", "fineq", method, first["bits"], ppl, group=g, cycles_per_vector=cpv,
                             coding=codings_for(book)[0]))
            if book != "int":  # the power-of-two levels: their own datapath only (no MAC array runs them)
                continue
            if "cycles_per_vector_binary" in first:
                cpb = {"": float(first["cycles_per_vector_binary"]),
                       **first.get("cycles_per_vector_binary_by_linear", {})}
                out.append(Point(f"FineQ {short} binary", "fineq", method, first["bits"], ppl, group=g,
                                 cycles_per_vector=cpb, coding="binary"))
            out.append(Point(f"MAC 3b on FineQ {short} weights", "mac", method, first["bits"], ppl, 3,
                             group=g, fineq_weights=True))
        elif "mac_weight_bits" in first:
            b, g = int(first["mac_weight_bits"]), first.get("group")
            out.append(Point(f"MAC {b}b {method}", "mac", method, first["bits"], ppl, b, g))
        elif method != "reference":
            skipped.append(method)
    return out, ref, skipped


def workload_shapes(doc: dict[str, Any], workload: str) -> list[tuple[str, int, int, int]]:
    """``[(linear type, M, K, count)]``: the eval model's own linears, or a LLaMA-2 model's shapes."""
    if workload in MODELS:
        return [(t, m, k, MODELS[workload]["layers"]) for t, (m, k) in layer_shapes(workload).items()]
    return [(t, v["m"], v["k"], v["count"]) for t, v in doc["linears"].items()]


def energy(pt: Point, shapes: list[tuple[str, int, int, int]], n: int, power: Power, cfg: EngineConfig,
           buffer_kb: int) -> dict[str, float]:
    """Cycles and energy (J) of one batch of ``n`` tokens through every linear, and per token."""
    f = power.clock_mhz * 1e6
    buf = buffer_kb * 1024
    cycles, mem_pj, extra_pj = 0, 0.0, 0.0
    for t, m, k, count in shapes:
        if pt.arch == "fineq":
            cpv = pt.cycles_per_vector.get(t, pt.cycles_per_vector[""])
            ly = Layer(t, m, k, count, {pt.coding: round(cpv * m * -(-k // cfg.rows))})
            cycles += fineq_cycles(ly, n, replace(cfg, coding=pt.coding)) * count
        else:
            cycles += mac_cycle_split(m, k, n, cfg)["total"] * count
        fineq_levels = pt.arch == "fineq" or pt.fineq_weights
        if not fineq_levels:
            wb: int | None = memory.signmag_weight_bytes(m, k, pt.weight_bits, pt.group)
        else:
            wb = None if pt.group is None else memory.fineq_weight_bytes(m, k, pt.group)
        if pt.group is not None:  # FineQ's tile sums are those of 3-bit sign-magnitude weights (pow2: as wide as 4-bit)
            bits = (W_BITS + (pt.coding == "pow2")) if fineq_levels else pt.weight_bits
            extra_pj += m * n * -(-k // pt.group) * count * group_scale_pj(power, cfg.rows, bits)
        mem_pj += memory.energy_pj(memory.traffic(m, k, n, cfg, buf, wb), buf) * count
    if pt.arch == "fineq":
        mw = power.fineq_mw[pt.coding]
    else:
        mw = power.mac_fineq_mw if pt.fineq_weights else power.mac_mw[pt.weight_bits]
    compute = mw * 1e-3 * cycles / f + extra_pj * 1e-12
    return {"tokens": n, "cycles": cycles, "cycles_per_token": cycles / n, "compute_j": compute,
            "memory_j": mem_pj * 1e-12, "group_scale_j": extra_pj * 1e-12,
            "compute_j_per_token": compute / n, "with_memory_j_per_token": (compute + mem_pj * 1e-12) / n}


def front(points: list[Point], workload: str, seq: str, key: str) -> list[Point]:
    """The Pareto front (lower energy, lower perplexity) over ``points`` that have this seq."""
    pts = sorted((p for p in points if seq in p.ppl and math.isfinite(p.ppl[seq])),
                 key=lambda p: (p.energy[workload][seq][key], p.ppl[seq]))
    out: list[Point] = []
    for p in pts:
        if not out or p.ppl[seq] < out[-1].ppl[seq]:
            out.append(p)
    return out


def iso_accuracy(points: list[Point], ref: dict[str, float], workload: str, seq: str,
                 usable: float = DEFAULT_USABLE, on_front: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """For FineQ's most accurate configuration (the cheaper of equally accurate ones), its cheapest usable
    one (perplexity at most ``usable`` x the reference; the more accurate of equally cheap ones) and every other
    usable FineQ configuration named in ``on_front`` (role "on the front"): the cheapest MAC
    configuration (its own grid) whose perplexity is not worse, and the energy ratios MAC / FineQ. The MAC
    configuration is the cheapest with memory; if another is cheapest in compute alone it is named too, with its
    own compute ratio."""
    fq = [p for p in points if p.arch == "fineq" and seq in p.ppl]
    if not fq:
        return []
    best = min(fq, key=lambda p: (p.ppl[seq], p.energy[workload][seq]["with_memory_j_per_token"]))
    ok = [p for p in fq if seq in ref and p.ppl[seq] <= usable * ref[seq]]
    picks = {"most accurate": best}
    if ok:
        picks["cheapest usable"] = min(ok, key=lambda p: (p.energy[workload][seq]["with_memory_j_per_token"], p.ppl[seq]))
    roles = [(role, p) for role, p in picks.items()]
    roles += [("on the front", p) for p in sorted(ok, key=lambda p: p.ppl[seq])
              if p.name in on_front and all(p is not q for q in picks.values())]
    out = []
    for role, p in roles:
        e = p.energy[workload][seq]
        macs = [m for m in points if m.candidate() and seq in m.ppl and m.ppl[seq] <= p.ppl[seq]]
        row: dict[str, Any] = {"fineq": p.name, "role": role, "seq": int(seq), "workload": workload,
                               "fineq_ppl": p.ppl[seq]}
        if not macs:
            row.update(mac=None, ratio_compute=None, ratio_with_memory=None,
                       note="no MAC configuration in the eval is as accurate")
        else:
            mm = min(macs, key=lambda m: m.energy[workload][seq]["with_memory_j_per_token"])
            mc = min(macs, key=lambda m: m.energy[workload][seq]["compute_j_per_token"])
            em, ec = mm.energy[workload][seq], mc.energy[workload][seq]
            row.update(mac=mm.name, mac_ppl=mm.ppl[seq], mac_bits=mm.bits,
                       ratio_compute=em["compute_j_per_token"] / e["compute_j_per_token"],
                       ratio_with_memory=em["with_memory_j_per_token"] / e["with_memory_j_per_token"])
            if mc is not mm:
                row.update(mac_cheapest_compute=mc.name,
                           ratio_compute_cheapest=ec["compute_j_per_token"] / e["compute_j_per_token"])
        out.append(row)
    return out


def build(doc: dict[str, Any], power: Power, shapes: list[str], buffer_kb: int = memory.DEFAULT_BUFFER_KB,
          usable: float = DEFAULT_USABLE, cfg: EngineConfig | None = None) -> dict[str, Any]:
    """The pareto document (``build/pareto/pareto.json``): workloads are the eval model's own layers
    (``"<model> layers"``) and each LLaMA-2 model of ``shapes``."""
    cfg = cfg or EngineConfig()
    workloads = [f"{doc.get('model', 'model')} layers", *(f"{s}" for s in shapes)]
    pts, ref, skipped = points_of(doc)
    if not any(p.arch == "fineq" for p in pts) or not any(p.candidate() for p in pts):
        raise FineQError("the eval JSON needs at least one FineQ mode and one MAC-grid method (e.g. gptq4-sm); "
                         "`make eval-pareto` runs them")
    missing = sorted({p.weight_bits for p in pts if p.candidate()} - set(power.mac_mw))
    if missing:
        raise FineQError(f"{power.source} has no MAC array at {missing}-bit weights: rerun make synth "
                         f"(MAC_WIDTHS)")
    nocoding = sorted({p.coding for p in pts if p.arch == "fineq"} - set(power.fineq_mw))
    if nocoding:
        raise FineQError(f"{power.source} has no FineQ array for the {nocoding[0]} coding "
                         f"({FINEQ_DESIGNS[nocoding[0]]}): rerun make synth")
    seqs = sorted({s for p in pts for s in p.ppl}, key=int)
    for p in pts:
        for w in workloads:
            shapes = workload_shapes(doc, w)
            p.energy[w] = {s: energy(p, shapes, int(s), power, cfg, buffer_kb) for s in seqs}
    fronts = {w: {s: {k: [p.name for p in front(pts, w, s, k)]
                      for k in ("compute_j_per_token", "with_memory_j_per_token")} for s in seqs} for w in workloads}
    iso = [r for w in workloads for s in seqs
           for r in iso_accuracy(pts, ref, w, s, usable, tuple(fronts[w][s]["with_memory_j_per_token"]))]
    main = seqs[0]
    return {
        "model": doc.get("model"), "reference": doc.get("reference"), "text": doc.get("text"),
        "reference_ppl": ref, "synthesis": power.source, "clock_mhz": power.clock_mhz, "buffer_kb": buffer_kb,
        "usable_ratio": usable, "workloads": workloads, "energy_tokens": f"N = the sequence length; "
        f"energy_j_per_token at seq {main}",
        "not_on_either_array": skipped, "environments": doc.get("environments", []),
        "points": [{"name": p.name, "arch": p.arch, "method": p.method, "bits": p.bits, "ppl": p.ppl,
                    "weight_bits": p.weight_bits, "group": p.group, "fineq_weights": p.fineq_weights,
                    "coding": p.coding if p.arch == "fineq" else None, "area_mm2": area(p, power),
                    "workload": w,
                    "energy_j_per_token": {"compute": p.energy[w][main]["compute_j_per_token"],
                                           "with_memory": p.energy[w][main]["with_memory_j_per_token"]},
                    "cycles_per_token": p.energy[w][main]["cycles_per_token"],
                    "by_seq": p.energy[w]} for w in workloads for p in pts],
        "fronts": fronts, "iso_accuracy": iso,
    }
