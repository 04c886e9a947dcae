"""Handlers of the model commands: ``fineq eval | quantize-model | rtl-layer``."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from fineq.cli.options import check_engine_options, rules_of
from fineq.errors import FineQError
from fineq.format.codec import SPEC_CODEBOOK
from fineq.quant.registry import QUANTIZERS, get


def _texts_exist(*paths: str | None) -> None:
    """Fail before the model loads when a text file the command names is missing."""
    for t in paths:
        if t is not None and not Path(t).is_file():
            raise FineQError(f"text file {t} does not exist")


def _work_folder(a: argparse.Namespace, rtl: bool) -> Path | None:
    """eval's work folder: ``--work``, else beside the JSON output (``OUT.work``), else (only through the RTL, whose
    windows are worth keeping) ``./fineq-eval.work``; None: nothing kept."""
    if a.work:
        return Path(a.work)
    if a.json:
        return Path(f"{a.json}.work")
    return Path("fineq-eval.work") if rtl else None


#: the RTL fields of ``fineq eval --backend``'s result line
RTL_LINE_KEYS = ("ppl_rtl", "backend", "rtl_cycles", "rtl_model_cycles", "rtl_cycles_per_token",
                 "rtl_energy_uj_per_token")


def cmd_eval(a: argparse.Namespace) -> int:
    from fineq.llm.evaluate import chart, log, parse_methods, run, table
    from fineq.outputs import check_output, write_text_atomic

    if a.list_methods:
        for name in QUANTIZERS:
            print(name)
        return 0
    if not a.model:
        raise FineQError("--model is required (a folder, a .gguf file, or 'smollm2')")
    rtl = a.backend != "golden"
    if a.cluster and not rtl:
        raise FineQError("--cluster needs --backend verilator or icarus")
    names = parse_methods(a.methods if a.methods or not rtl else ("" if a.quantized else "fineq-paper"),
                          allow_none=bool(a.quantized))
    if rtl and (gm := [n for n in names if get(n).group is not None]):
        raise FineQError(f"{gm[0]}: --backend {a.backend} runs the spec's per-row scales; group scales are costed, "
                         "not built in the RTL")
    check_engine_options(a)
    rules = rules_of(a)
    _texts_exist(a.text, a.calib_text)
    for f in a.quantized or ():
        if not Path(f).is_file():
            raise FineQError(f"--quantized file {f} does not exist")
    outs = [Path(p) for p in (a.json, a.chart) if p]
    for p in outs:
        check_output(p, force=a.force, inputs=[t for t in (a.text, a.calib_text, *(a.quantized or ())) if t])
    if a.chart and Path(a.chart).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise FineQError(f"--chart {a.chart}: use a .png, .svg or .pdf file name")
    if rtl:
        from fineq.apps import rtl_model
        from fineq.engine.config import EngineConfig
        from fineq.hw.cluster import parse

        parse(a.cluster)  # a bad address fails before the model loads
        a.int8_activations = True
        doc = rtl_model.run(a.model, a.text, names, a.seq or [256], a.max_windows, a.max_tokens, a.calib_samples,
                            a.calib_seq, tuple(a.skip or ()), a.calib_text, tuple(a.quantized or ()), a.backend,
                            EngineConfig(a.rows, a.cols, a.psum_depth), a.cluster, a.jobs,
                            _work_folder(a, rtl), a.synth, rules, a.coding)
    else:
        doc = run(a.model, a.text, names, a.seq or [256], a.max_windows, a.max_tokens, a.int8_activations,
                  a.calib_samples, a.calib_seq, tuple(a.skip or ()), a.calib_text, quantized=tuple(a.quantized or ()),
                  rules=rules, work=_work_folder(a, rtl))
    print(table(doc))
    if a.json:
        write_text_atomic(Path(a.json), json.dumps(doc, indent=1))
        log(f"wrote {a.json}")
    if a.chart:
        chart(doc, Path(a.chart))
        log(f"wrote {a.chart}")
    line = {"model": doc["model"], "reference": doc["reference"], "tokens": doc["tokens"],
            "results": [{k: r[k] for k in ("method", "bits", "seq", "ppl", *(("ppl_int8",) if a.int8_activations
                                                                                else ()), *RTL_LINE_KEYS) if k in r}
                        for r in doc["results"]]}
    print(json.dumps(line))
    return 0


def cmd_quantize_model(a: argparse.Namespace) -> int:
    """``fineq quantize-model``: quantize a model's decoder linears with a FineQ mode and save them."""
    import sys
    import time

    from fineq.engine.cycles import level_stats
    from fineq.llm import corpus, models
    from fineq.llm.apply import bits_per_weight, timed_apply
    from fineq.llm.modelfile import save_model
    from fineq.llm.models import load
    from fineq.llm.recon import block_loss_stats
    from fineq.llm.rotate import canonical as parse_transform_spec
    from fineq.llm.stream import load_streamed, resolve_device
    from fineq.llm.workdir import BlockStore, fingerprint
    from fineq.outputs import check_output
    from fineq.quant.registry import for_mode, variant

    out = Path(a.output)
    check_output(out, force=a.force, inputs=[a.text] if a.text else [])
    m = for_mode(a.mode)
    if a.group is not None or a.codebook != SPEC_CODEBOOK:
        m = variant(m, group=a.group, codebook=a.codebook)
    rules = rules_of(a)
    if a.transform is not None:
        m = dataclasses.replace(m, transform=parse_transform_spec(a.transform))
    _texts_exist(a.text)
    need_cal = m.calibrated or any(for_mode(x).calibrated for x in rules.modes)
    raw, desc = corpus.read_text(a.text) if need_cal else ("", "")  # checked before the model loads
    device = a.device if a.device == "auto" else resolve_device(a.device)
    t0 = time.perf_counter()
    lm = load(a.model) if a.whole or m.transform is not None else load_streamed(a.model, head=False)
    print(f"model {lm.name}: {lm.reference}, loaded in {time.perf_counter() - t0:.1f} s"
          + ("; decoder blocks read one at a time" if lm.blocks is not None else "") + f"; device {device}",
          file=sys.stderr)
    calib = None
    if need_cal:
        calib = corpus.split(corpus.tokenize(lm.tokenizer, raw), a.calib_samples, a.calib_seq).calib
        print(f"calibration: {calib.shape[0]} x {calib.shape[1]} tokens of {desc}", file=sys.stderr)
    store = None
    if calib is not None:  # the calibrated pass keeps finished blocks beside the output (resumed by the same command)
        grp = ((m.group,) if m.group else ()) + ((m.codebook,) if m.codebook != SPEC_CODEBOOK else ())  # the spec's
        # per-row runs keep their keys
        store = BlockStore(Path(f"{out}.work"), fingerprint("quantize-model", lm.path, a.mode, *grp, m.transform,
                                                            rules.rules, tuple(a.skip or ()), calib),
                           f"{a.mode} for {out}")
        if store.done:
            print(f"resuming: {store.done} finished block(s) in {store.folder}", file=sys.stderr)
    res, sec = timed_apply(lm.model, m, calib, tuple(a.skip or ()), rules, store, device, lm.blocks)
    qms = {n: r.qmatrix for n, r in res.items()}
    if not qms:
        raise FineQError("every linear is skipped (--skip, --rule ...=skip): nothing to save")
    by_rule = {n: d for n in qms if (d := rules.decide(n)) is not None and d != a.mode}
    save_model(out, qms, a.mode, a.model if str(a.model) == "smollm2" else str(Path(a.model).resolve()),
               m.transform, by_rule)
    if store is not None:
        store.remove()  # every block is in the output now
    if rules:
        print(f"rules: {len(by_rule)} linears quantized by a rule's mode ({', '.join(sorted(set(by_rule.values())))}"
              f"), {sum(rules.skipped(n) for n in models.decoder_linears(lm.model))} left float by skip",
              file=sys.stderr)
    bits = bits_per_weight(res, lm.model)
    from fineq.engine.config import EngineConfig, coding_for

    coding = coding_for(m.codebook)
    hw = level_stats((q.levels(keep=False) for q in qms.values()), EngineConfig(coding=coding))  # one at a time
    st = block_loss_stats(res)
    print(f"wrote {out}: {len(qms)} linears, mode {a.mode}" + (f", transform {m.transform}" if m.transform else "")
          + f", {bits:.3f} bits/weight, quantized in {sec:.1f} s; "
          f"{100 * hw['nonzero_levels']:.1f}% non-zero levels, {hw['cycles_per_vector']:.2f} {coding} cycles "
          f"per 64-weight vector" + (f" ({m.codebook} levels, outside the spec)" if m.codebook != SPEC_CODEBOOK else "")
          + (f"; {st['recon_blocks_trained']} of {st['recon_blocks']} blocks trained, mean "
             f"block loss {st['recon_loss_start']:.4g} (start) -> {st['recon_loss']:.4g}" if st else ""))
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    """``fineq export FILE --dequantized OUT_DIR``: a standard Hugging Face folder for other runtimes."""
    import sys

    from fineq.llm.modelfile import export_dequantized

    if not Path(a.file).is_file():
        raise FineQError(f"model file {a.file} does not exist")
    if Path(a.dequantized).resolve() == Path(a.file).resolve():
        raise FineQError(f"--dequantized {a.dequantized} is the input file")
    out = export_dequantized(a.file, a.dequantized, a.model, a.force)
    print(f"wrote {out}: a Hugging Face folder (transformers loads it as it is) with the FineQ levels of {a.file} "
          "dequantized to float32", file=sys.stderr)
    return 0


def cmd_rtl_layer(a: argparse.Namespace) -> int:
    from fineq.apps.rtl_layer import run_layer
    from fineq.engine.config import EngineConfig, coding_for

    check_engine_options(a)

    def report(row: dict[str, object]) -> None:
        print(f"{row['linear']:<36}{row['m']:>6}{row['k']:>6}  bit-exact {row['bit_exact']}  cycles "
              f"{row['cycles']:>9,} (model {row['model_cycles']:,})  {row['sim_seconds']:.2f} s sim  "
              f"rel. error {row['rel_error_vs_float']:.4f}", flush=True)

    doc = run_layer(a.model, a.layer, a.tokens, a.text, a.mode, a.backend,
                    EngineConfig(a.rows, a.cols, a.psum_depth, coding_for(a.codebook, a.coding)), a.jobs, report,
                    codebook=a.codebook)
    tot = doc["total"]
    print(f"layer {a.layer}: {tot['cycles']:,} cycles, {tot['sim_seconds']} s of simulation, "
          f"bit-exact {tot['all_bit_exact']}, cycles = model {tot['all_cycles_match']}, {tot['wall_seconds']} s in all")
    print(json.dumps(doc))
    return 0 if tot["all_bit_exact"] and tot["all_cycles_match"] else 1
