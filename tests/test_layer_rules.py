"""Per-layer rules (``--rule REGEX=MODE|skip``, ``--rules FILE``): parsing, first match wins, and their effect in
apply, quantize-model, eval and perf, each checked against the quantizers called directly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fineq.errors import FineQError
from fineq.quant.layer_rules import LayerRules, load_rules, parse_rule
from fineq.quant.registry import quantize


def test_first_matching_rule_decides_and_the_file_comes_after_the_command_line(tmp_path):
    f = tmp_path / "rules.txt"
    f.write_text("# keep the MLP output precise\nmlp\\.down_proj = search\n\nlayers\\.0\\. = skip  # the first block\n")
    r = load_rules(["layers\\.1\\.mlp\\.down_proj=paper"], str(f))
    assert r.rules == (("layers\\.1\\.mlp\\.down_proj", "paper"), ("mlp\\.down_proj", "search"),
                       ("layers\\.0\\.", "skip"))
    assert r.decide("model.layers.1.mlp.down_proj") == "paper"
    assert r.decide("model.layers.0.mlp.down_proj") == "search"  # before the skip of layer 0
    assert r.skipped("model.layers.0.self_attn.q_proj")
    assert r.decide("model.layers.1.self_attn.q_proj") is None
    assert r.modes == {"paper", "search"} and not LayerRules()


@pytest.mark.parametrize("text,msg", [
    ("down_proj", "expected REGEX=MODE"),
    ("=paper", "expected REGEX=MODE"),
    ("down_proj=", "expected REGEX=MODE"),
    ("down_proj=nope", "mode 'nope' is not one of"),
    ("down_proj=recon", "a whole-model mode: give it as --mode"),
    ("down_(proj=paper", "is not a regular expression"),
])
def test_bad_rules_are_one_clear_error(text, msg):
    with pytest.raises(FineQError, match=msg.replace("(", r"\(")):
        parse_rule(text)


def test_a_bad_line_of_a_rules_file_is_named(tmp_path):
    f = tmp_path / "r.txt"
    f.write_text("q_proj = paper\nk_proj paper\n")
    with pytest.raises(FineQError, match=r"r.txt line 2: 'k_proj paper'"):
        load_rules(None, str(f))


@pytest.fixture
def tiny(tiny_llama):
    return tiny_llama


def test_rules_in_quantize_model_against_the_quantizers(tiny, tmp_path):
    """paper by default, search for down_proj, o_proj float, gptq-ord (calibrated) for layer 1's up_proj: every
    linear's levels equal its mode's called here (the calibrated one differs from paper), the modes recorded."""
    import torch

    from fineq.cli.main import main
    from fineq.llm import models
    from fineq.llm.modelfile import read_model_file

    folder, text = tiny
    out = tmp_path / "q.fineq.safetensors"
    assert main(["quantize-model", "--model", str(folder), "--mode", "paper", "--rule", r"mlp\.down_proj=search",
                 "--rule", r"o_proj=skip", "--rule", r"layers\.1\.mlp\.up_proj=gptq-ord", "--text", str(text),
                 "--calib-samples", "4", "--calib-seq", "32", "-o", str(out)]) == 0
    qms, meta = read_model_file(out)
    lm = models.load(str(folder))
    lins = models.decoder_linears(lm.model)
    assert set(qms) == {n for n in lins if not n.endswith("o_proj")}
    modes = json.loads(meta["linear_modes"])
    assert modes == {**{n: "search" for n in lins if n.endswith("down_proj")},
                     "model.layers.1.mlp.up_proj": "gptq-ord"}
    for n, q in qms.items():
        w = lins[n].weight.detach().float()
        if n == "model.layers.1.mlp.up_proj":
            assert not np.array_equal(q.levels(), quantize(w, "paper").levels())
        else:
            want = quantize(w, "search" if n.endswith("down_proj") else "paper")
            assert np.array_equal(q.levels(), want.levels()) and np.array_equal(q.scales, want.scales), n
    del torch


def test_rules_in_eval_skip_and_mode(tiny, tmp_path):
    from fineq.cli.main import main

    folder, text = tiny
    base = ["eval", "--model", str(folder), "--text", str(text), "--methods", "fineq-paper,rtn", "--seq", "32",
            "--max-windows", "2"]
    assert main([*base, "--json", str(tmp_path / "a.json")]) == 0
    assert main([*base, "--rule", "down_proj=skip", "--rule", "q_proj=search", "--json", str(tmp_path / "b.json")]) == 0
    a = {r["method"]: r for r in json.loads((tmp_path / "a.json").read_text())["results"]}
    b = {r["method"]: r for r in json.loads((tmp_path / "b.json").read_text())["results"]}
    assert b["fineq-paper"]["bits"] != a["fineq-paper"]["bits"] and b["fineq-paper"]["ppl"] != a["fineq-paper"]["ppl"]
    assert b["rtn"]["bits"] != a["rtn"]["bits"]  # skip applies to every method, modes only to FineQ ones


def test_rules_in_perf(tiny, tmp_path, capsys):
    from fineq.cli.main import main

    folder, _ = tiny
    assert main(["perf", "--weights", str(folder), "--seq", "32", "--rule", "down_proj=skip"]) == 2
    assert "no float path" in capsys.readouterr().err
    assert main(["perf", "--weights", str(folder), "--seq", "32", "--rule", "down_proj=gptq"]) == 2
    assert "data-free modes paper or search" in capsys.readouterr().err
    assert main(["perf", "--weights", str(folder), "--seq", "32", "--rule", "down_proj=search"]) == 0
    assert "FineQ paper with rules" in capsys.readouterr().out
