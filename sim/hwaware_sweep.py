"""Mode gptq-hw on real layers: relative output error and temporal cycles per 64-weight vector over lambda.

    python sim/hwaware_sweep.py [--model smollm2] [--tokens 1024] [--lambdas 0 0.01 0.02 0.05 0.1] [LINEAR ...]

Each linear's Hessian comes from its real inputs for the first ``--tokens`` tokens of the default corpus;
``gptq-ord`` is printed first as the baseline of the same run (``lambda = 0`` must equal it). SmolLM2's reference
is its Q4_1 GGUF checkpoint dequantized to float32.
"""

from __future__ import annotations

import argparse
import time

DEFAULT_LINEARS = ["model.layers.15.mlp.up_proj", "model.layers.3.self_attn.q_proj", "model.layers.20.mlp.down_proj"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("linears", nargs="*", default=DEFAULT_LINEARS)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.01, 0.02, 0.05, 0.1])
    a = ap.parse_args()
    import torch

    from fineq.engine.cycles import level_stats
    from fineq.llm import corpus, models
    from fineq.llm.capture import capture_inputs
    from fineq.quant.calibrated import hessian_from_inputs
    from fineq.quant.gptq import output_error
    from fineq.quant.registry import quantize

    lm = models.load(a.model)
    raw, desc = corpus.read_text(None)
    toks = corpus.tokenize(lm.tokenizer, raw)[: a.tokens]
    print(f"{lm.name} ({lm.reference}); Hessians from {toks.size} tokens of {desc}")
    mods = dict(lm.model.named_modules())
    for name in a.linears:
        h = hessian_from_inputs(capture_inputs(lm, models.linear_layer_index(name), toks)[name])
        w = mods[name].weight.detach().float()
        ht = torch.as_tensor(h)
        zero = output_error(w, torch.zeros_like(w), ht)
        for mode, lam in [("gptq-ord", None)] + [("gptq-hw", v) for v in a.lambdas]:
            t0 = time.perf_counter()
            q = quantize(w.numpy(), mode, hessian=h, hw_lambda=lam)
            err = output_error(w, torch.from_numpy(q.dequantize()), ht) / zero
            cpv = level_stats([q.levels()])["cycles_per_vector"]
            print(f"{name:<34} {mode:<9} lambda {'-' if lam is None else f'{lam:g}':<6} relative output error "
                  f"{err:.4f}  cycles/vector {cpv:.3f}  ({time.perf_counter() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
