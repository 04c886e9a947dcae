"""``fineq eval``: perplexity of a causal LM with each quantization method (the paper's Tables I and II).

One model load; for each method the decoder linears are restored to the
reference weights, quantized (timed), and evaluated at every ``--seq`` on the
same windows. See ``docs/accuracy.md``.
"""

from __future__ import annotations

import copy
import hashlib
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.llm import corpus, models
from fineq.llm.apply import NO_RULES, bits_per_weight, timed_apply
from fineq.llm.int8path import int8_activations
from fineq.llm.modelfile import place, read_model_file
from fineq.llm.ppl import perplexity
from fineq.llm.recon import block_loss_stats
from fineq.llm.workdir import BlockStore, RowStore, fingerprint
from fineq.quant import registry
from fineq.quant.layer_rules import LayerRules
from fineq.quant.result import QResult
from fineq.version import environment

#: ``(model, results, windows, method, seq) -> row fields``: another evaluation of the int8 path (see :func:`run`)
Int8Eval = Callable[[Any, dict[str, QResult], np.ndarray, str, int], dict[str, Any]]
DEFAULT_METHODS = ("reference", "fineq-paper", "fineq-search", "rtn", "uniform", "gptq", "owq", "pbllm")
DEFAULT_MAX_TOKENS = 16384


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_methods(spec: str | None, allow_none: bool = False) -> list[str]:
    """The method names of ``--methods`` (the defaults when not given; none at all only with ``allow_none``,
    ``spec == ""``)."""
    if spec == "" and allow_none:
        return []
    names = list(DEFAULT_METHODS) if not spec else [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise FineQError("--methods names no method")
    for n in names:
        registry.get(n)
    if len(set(names)) != len(names):
        raise FineQError(f"--methods names a method twice: {spec}")
    return names


def run(model_spec: str, text: str | None, method_names: list[str], seqs: list[int], max_windows: int | None,
        max_tokens: int, int8: bool, calib_samples: int, calib_seq: int, skip: tuple[str, ...] = (),
        calib_text: str | None = None, int8_eval: Int8Eval | None = None,
        quantized: tuple[str, ...] = (), rules: LayerRules = NO_RULES, work: Path | None = None,
        work_key: str = "") -> dict[str, Any]:
    """Evaluate; returns the JSON document (see :func:`cli`). Calibrated methods calibrate on the first
    ``calib_samples x calib_seq`` tokens of ``text`` (evaluated on the rest), or, with ``calib_text``, on that
    file's, and are evaluated on the whole of ``text``. ``int8_eval(model, results, windows, method, seq)``,
    if given, evaluates each method's int8 path instead (the RTL backend: :mod:`fineq.apps.rtl_model`) and
    returns the row's fields (``ppl_int8`` among them). Each of ``quantized`` (``.fineq.safetensors`` files of
    ``fineq quantize-model`` for this model) is evaluated after the methods, as method ``file:<name>``."""
    import torch

    for s in seqs:
        if s < 2:
            raise FineQError(f"--seq must be at least 2, got {s}")
    if max_tokens < 2:
        raise FineQError(f"--max-tokens must be at least 2, got {max_tokens}")
    t0 = time.perf_counter()
    rule_cal = any(registry.for_mode(x).calibrated for x in rules.modes)  # rules' modes: for the FineQ methods
    need_cal = any(registry.get(n).calibrated or (rule_cal and registry.get(n).mode is not None)
                   for n in method_names)
    files = {f"file:{Path(f).name}": read_model_file(f) for f in quantized}  # checked before the model loads
    raw, text_desc = corpus.read_text(text)  # the texts are checked before the model loads
    craw, calib_desc = corpus.read_text(calib_text) if need_cal and calib_text is not None else (raw, text_desc)
    lm = models.load(model_spec)
    log(f"model {lm.name}: {lm.reference} (the reference, 'full precision' here) loaded in "
         f"{time.perf_counter() - t0:.1f} s")
    toks = corpus.tokenize(lm.tokenizer, raw)
    if need_cal and calib_text is not None:
        calib = corpus.calibration(corpus.tokenize(lm.tokenizer, craw), calib_samples, calib_seq, calib_desc)
        sp = corpus.Split(calib, corpus.split(toks, 0, calib_seq).eval_tokens, len(toks))
    else:
        if calib_text is not None:
            log(f"--calib-text {calib_text} unused: none of the methods is calibrated")
        sp = corpus.split(toks, calib_samples if need_cal else 0, calib_seq)
    wins = {s: sp.windows(s, max_windows if max_windows is not None else max(1, max_tokens // s)) for s in seqs}
    log(f"text: {text_desc}: {sp.total_tokens} tokens; calibration: first {sp.calib.size} tokens "
         f"({len(sp.calib)} x {calib_seq}) of {calib_desc}; evaluation: " +
         ", ".join(f"seq {s}: {w.shape[0]} windows ({w.size} tokens)" for s, w in wins.items()))
    lins = models.decoder_linears(lm.model)
    orig = {n: lin.weight.detach().clone() for n, lin in lins.items()}
    results: list[dict[str, Any]] = []
    rows_key = fingerprint("eval", lm.path, raw, craw, calib_samples, calib_seq, sp.calib, sorted(wins),
                           *[wins[s] for s in sorted(wins)], int8, skip, rules.rules, work_key,
                           [hashlib.sha256(Path(q).read_bytes()).hexdigest() for q in quantized])
    store = RowStore(work, rows_key) if work is not None else None
    for name in [*method_names, *files]:
        kept = store.load(name) if store is not None else None
        if kept is not None:
            log(f"[{name}] taken from the work folder {work} (finished by an earlier run of this evaluation)")
            results.extend(kept)
            continue
        first_row = len(results)
        with torch.no_grad():
            for n, lin in lins.items():
                lin.weight.copy_(orig[n])
        if name in files:
            model, res, qsec = _from_file(lm.model, name, *files[name])
        else:
            m = registry.get(name)
            log(f"[{name}] quantizing ({m.about}) ...")
            # a transformed method (+fold, +rot) changes more than the linears: it works on a copy
            model = copy.deepcopy(lm.model) if m.transform else lm.model
            cal = m.calibrated or (rule_cal and m.mode is not None)
            blocks = BlockStore(work / f"blocks-{fingerprint(name)[:16]}", fingerprint(rows_key, name), name) \
                if cal and work is not None and m.mode is not None else None  # FineQ levels are what it keeps
            res, qsec = timed_apply(model, m, sp.calib if cal else None, skip, rules, blocks)
        bits = bits_per_weight(res, model)
        hw = {**hardware_side(res), **block_loss_stats(res)}
        log(f"[{name}] {bits:.3f} bits/weight, quantized in {qsec:.1f} s" +
             (f"; {100 * hw['nonzero_levels']:.1f}% non-zero levels, {hw['cycles_per_vector']:.2f} cycles/vector"
              if "nonzero_levels" in hw else "") +
             (f"; a float16 scale per {hw['group']} weights" + (" (outside the spec)" if "nonzero_levels" in hw else "")
              if hw.get("group") else "") +
             (f"; {hw['recon_blocks_trained']} of {hw['recon_blocks']} blocks trained, mean block loss "
              f"{hw['recon_loss_start']:.4g} (start) -> {hw['recon_loss']:.4g}" if "recon_blocks" in hw else ""))
        for s, w in wins.items():
            t1 = time.perf_counter()
            r = perplexity(model, w, desc=f"{name} seq {s}")
            row: dict[str, Any] = {"method": name, "bits": round(bits, 4), "seq": s, "ppl": r["ppl"],
                                   "windows": r["windows"], "tokens": r["tokens"], "quant_seconds": round(qsec, 2),
                                   "eval_seconds": round(time.perf_counter() - t1, 2), **hw}
            if int8:
                wrap = res or {n: QResult(lin.weight, 16.0 * lin.weight.numel()) for n, lin in lins.items()}
                if int8_eval is not None:
                    row.update(int8_eval(model, wrap, w, name, s))
                else:
                    with int8_activations(model, wrap):
                        row["ppl_int8"] = perplexity(model, w, desc=f"{name} seq {s} int8")["ppl"]
            log(f"[{name}] seq {s}: perplexity {r['ppl']:.3f}" +
                 (f", int8 activations {row['ppl_int8']:.3f}" if int8 else ""))
            results.append(row)
        if store is not None:
            store.save(name, results[first_row:])
    with torch.no_grad():
        for n, lin in lins.items():
            lin.weight.copy_(orig[n])
    return {"model": lm.name, "model_path": lm.path, "reference": lm.reference, "text": text_desc,
            "calibration_text": calib_desc if sp.calib.size else None, "linears": linear_shapes(lins),
            "tokens": sp.total_tokens, "calibration_tokens": int(sp.calib.size),
            "int8_activations": int8, "seconds": round(time.perf_counter() - t0, 1), "environment": environment(),
            "results": results}


def _from_file(base: Any, name: str, qms: dict[str, Any], meta: dict[str, str]) -> tuple[Any, dict[str, QResult],
                                                                                       float]:
    """A method from a ``.fineq.safetensors`` file: its levels on (a copy of, if it is transformed) ``base``."""
    log(f"[{name}] FineQ mode {meta.get('mode')}" + (f", transform {meta['transform']}" if meta.get("transform")
                                                     else "") + f": {len(qms)} linears from the file")
    model = place(copy.deepcopy(base) if meta.get("transform") else base, qms, meta, name[len("file:"):])
    mods = dict(model.named_modules())
    res = {n: QResult(mods[n].weight.detach().clone(), q.bits_per_weight * q.shape[0] * q.shape[1], q)
           for n, q in qms.items()}
    return model, res, 0.0


def hardware_side(res: dict[str, QResult]) -> dict[str, Any]:
    """What the accelerators see of a method's matrices: for FineQ modes the share of non-zero levels and the
    temporal cycles per vector, thermometer and binary-weighted coding (overall and per linear type:
    ``q_proj``, ...), or for the power-of-two codebook (``codebook: pow2``) the power-of-two datapath's cycles per
    vector (its only coding); for the MAC array's grid (:mod:`fineq.quant.signmag`) its weight width and group.
    Empty for other methods."""
    from fineq.engine.cycles import level_stats

    first = next(iter(res.values()), None)
    if first is None:
        return {}
    if first.qmatrix is not None:
        from fineq.engine.config import EngineConfig, codings_for

        books = {r.qmatrix.codebook for r in res.values()}
        if len(books) > 1:
            raise FineQError(f"a method's matrices hold levels of several codebooks ({', '.join(sorted(books))}): "
                             "no one engine runs them")
        book = books.pop()
        levels = [r.qmatrix.levels() for r in res.values()]
        by: dict[str, list[Any]] = {}
        for n, lv in zip(res, levels, strict=True):
            by.setdefault(n.rsplit(".", 1)[-1], []).append(lv)
        first_coding = codings_for(book)[0]
        hw: dict[str, Any] = level_stats(levels, EngineConfig(coding=first_coding))
        if book != "int":
            hw["codebook"] = book
        groups = {r.qmatrix.group for r in res.values()} - {None}
        if groups:  # the variant outside the spec: its scale multiplies are costed by fineq pareto
            hw["group"] = min(groups)
        for coding in codings_for(book):  # the first coding's figures unsuffixed
            sfx = "" if coding == first_coding else f"_{coding}"
            cfg = EngineConfig(coding=coding)
            hw[f"cycles_per_vector{sfx}"] = level_stats(levels, cfg)["cycles_per_vector"]
            hw[f"cycles_per_vector{sfx}_by_linear"] = {t: level_stats(v, cfg)["cycles_per_vector"]
                                                      for t, v in by.items()}
        return hw
    sm = (first.info or {}).get("signmag")
    return {"mac_weight_bits": sm.bits, "group": sm.group} if sm is not None else {}


def linear_shapes(lins: dict[str, Any]) -> dict[str, dict[str, int]]:
    """``{linear type: {"m", "k", "count"}}`` of the decoder linears (weights ``[m, k]``), for the energy model."""
    out: dict[str, dict[str, int]] = {}
    for n, lin in lins.items():
        t = n.rsplit(".", 1)[-1]
        m, k = (int(v) for v in lin.weight.shape)
        if t in out and (out[t]["m"], out[t]["k"]) != (m, k):
            t = n  # a type whose shapes differ between blocks is kept per linear
        out.setdefault(t, {"m": m, "k": k, "count": 0})["count"] += 1
    return out


def table(doc: dict[str, Any]) -> str:
    """A Table-I-shaped text table: method, bits, perplexity per sequence length, times."""
    seqs = sorted({r["seq"] for r in doc["results"]})
    int8 = doc["int8_activations"]
    names = list(dict.fromkeys(r["method"] for r in doc["results"]))
    by = {(r["method"], r["seq"]): r for r in doc["results"]}
    head = f"{'method':<18}{'bits':>7}" + "".join(f"{'ppl@' + str(s):>12}" for s in seqs)
    rtl = doc.get("backend", "golden") != "golden"
    if int8:
        head += "".join(f"{'A8 ppl@' + str(s):>13}" for s in seqs)
    if rtl:
        head += "".join(f"{'RTL ppl@' + str(s):>13}{'RTL cyc/tok':>13}" for s in seqs)
    head += f"{'quant s':>9}"
    lines = [f"model: {doc['model']} (reference: {doc['reference']}); text: {doc['text']}", head]
    for n in names:
        first = by[(n, seqs[0])]
        line = f"{n:<18}{first['bits']:>7.2f}" + "".join(f"{_fmt(by[(n, s)]['ppl']):>12}" for s in seqs)
        if int8:
            line += "".join(f"{_fmt(by[(n, s)]['ppl_int8']):>13}" for s in seqs)
        if rtl:
            line += "".join(f"{_fmt(by[(n, s)]['ppl_rtl']):>13}{by[(n, s)]['rtl_cycles_per_token']:>13,.0f}"
                            for s in seqs)
        line += f"{first['quant_seconds']:>9.1f}"
        lines.append(line)
    lines.append("windows: " + ", ".join(f"seq {s}: {by[(names[0], s)]['windows']} x {s} tokens" for s in seqs))
    if rtl:
        lines.append(f"RTL: every FineQ linear's integer GEMM on the {doc['backend']} engine, checked bit-exactly "
                     "against fineq.gemm and cycle-exactly against the cycle model")
    return "\n".join(lines)


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "inf"
    return f"{v:.2f}" if v < 1e4 else f"{v:.3g}"


def _spread(ys: list[float], gap: float) -> list[float]:
    """Positions as close to ``ys`` as possible, in the same order, at least ``gap`` apart."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    pos = [ys[i] for i in order]
    for _ in range(200):
        moved = False
        for k in range(1, len(pos)):
            if pos[k] - pos[k - 1] < gap - 1e-9:
                mid, moved = (pos[k] + pos[k - 1]) / 2, True
                pos[k - 1], pos[k] = mid - gap / 2, mid + gap / 2
        if not moved:
            break
    out = [0.0] * len(ys)
    for k, i in enumerate(order):
        out[i] = pos[k]
    return out


def chart(doc: dict[str, Any], path: Path) -> None:
    """Perplexity (log scale) against bits per weight, one point per method, one panel per sequence length.
    FineQ blue, baselines red; the reference (16 bits) is the green dashed line. Labels sit in a column to
    the right, joined to their points."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fineq.outputs import atomic_path

    seqs = sorted({r["seq"] for r in doc["results"]})
    n_methods = len({r["method"] for r in doc["results"]})
    fig, axes = plt.subplots(1, len(seqs), figsize=(5.6 * len(seqs), max(4.5, 0.34 * n_methods)), squeeze=False)
    for ax, s in zip(axes[0], seqs, strict=True):
        rows = [r for r in doc["results"] if r["seq"] == s]
        ref = [r for r in rows if r["method"] == "reference"]
        pts = [r for r in rows if r["method"] != "reference"] or rows
        lo_b, hi_b = min(r["bits"] for r in pts), max(r["bits"] for r in pts)
        lx = hi_b + 0.25 * max(hi_b - lo_b, 0.5)
        logs = [math.log10(r["ppl"]) for r in pts] + [math.log10(r["ppl"]) for r in ref]
        lo, hi = min(logs), max(logs)
        gap = max(hi - lo, 1.0) / max(len(pts) - 1, 1) * 0.9
        ys = _spread([math.log10(r["ppl"]) for r in pts], min(gap, 0.05 * 16 * max(hi - lo, 1.0) / len(pts)))
        for r, y in zip(pts, ys, strict=True):
            color = "#1f77b4" if r["method"].startswith("fineq") else "#d62728"
            ax.scatter(r["bits"], r["ppl"], color=color, s=28, zorder=3)
            ax.annotate(f"{r['method']} ({r['bits']:.2f} b): {r['ppl']:.3g}", (r["bits"], r["ppl"]),
                        xytext=(lx, 10**y), fontsize=7, va="center", color=color,
                        arrowprops={"arrowstyle": "-", "color": color, "lw": 0.5, "alpha": 0.6})
        for r in ref:
            ax.axhline(r["ppl"], color="#2ca02c", ls="--", lw=1)
            ax.text(lo_b, r["ppl"] * 1.15, f"reference ({r['bits']:.0f} b): {r['ppl']:.3g}", fontsize=7,
                    color="#2ca02c")
        ax.set_yscale("log")
        ax.set_xlim(lo_b - 0.1 * max(hi_b - lo_b, 0.5), lx + 1.4 * max(hi_b - lo_b, 0.5))
        ax.set_xlabel("bits per weight (levels, scales, zero points, indices, outliers)", fontsize=8)
        ax.set_ylabel("perplexity (log scale)", fontsize=8)
        ax.set_title(f"seq {s}", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(f"{doc['model']}: perplexity vs bits, every decoder linear quantized\n"
                 f"(reference = {doc['reference']})", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
