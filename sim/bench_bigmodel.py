"""Peak memory and time of ``fineq quantize-model`` on a ~1B-parameter model (``make bench-big``).

The model is **synthetic**: LLaMA-shaped (TinyLlama-1.1B's shapes by default: hidden 2048, MLP 5632, 22 layers,
32 heads, 4 KV heads) with SmolLM2's tokenizer and vocabulary (49,152), random weights (normal, std 0.02; norms
1), written as sharded bfloat16 safetensors with an index, as Hugging Face checkpoints are. It is built once into
``--folder`` (kept for the next run; rebuilt when its shapes differ), tensor by tensor, so building it never
holds the whole model.

Each run is ``fineq quantize-model`` in a child process; its peak resident memory is the child's ``ru_maxrss``
(``os.wait4``), set against the model's float32 size (parameters x 4 bytes) and the target of 40% of it. The
default run reads one decoder block at a time; ``--baseline`` also runs the same command with ``--whole`` (the
whole model loaded) in the same session, for comparison. Random weights say nothing about accuracy: this
measures memory and time only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fineq.outputs import write_text_atomic

TARGET = 0.40  # peak resident memory / float32 size (issue 20)
SHAPES = {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
          "num_key_value_heads": 4, "max_position_embeddings": 2048, "tie_word_embeddings": False}
SHARD_BYTES = 500 * 2**20


@dataclass
class Run:
    how: str
    command: str
    seconds: float
    peak_rss_bytes: int
    fp32_bytes: int
    exit_code: int

    @property
    def ratio(self) -> float:
        return self.peak_rss_bytes / self.fp32_bytes


def build_model(folder: Path, layers: int) -> int:
    """Write the synthetic model into ``folder`` (unless already there with these shapes); returns its parameter
    count."""
    import torch
    from accelerate import init_empty_weights
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    from fineq.llm.models import load

    tok = load("smollm2").tokenizer
    cfg = LlamaConfig(**{**SHAPES, "num_hidden_layers": layers}, vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id)
    with init_empty_weights():
        skeleton = LlamaForCausalLM(cfg)
    shapes = {n: tuple(p.shape) for n, p in skeleton.named_parameters()}
    count = sum(int(torch.Size(s).numel()) for s in shapes.values())
    stamp = folder / "fineq_bench.json"
    want = {"shapes": {n: list(s) for n, s in shapes.items()}, "seed": 0}
    if stamp.is_file() and json.loads(stamp.read_text()) == want:
        return count
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("model-*.safetensors"):
        old.unlink()
    gen = torch.Generator().manual_seed(0)
    shard: dict[str, torch.Tensor] = {}
    size, files, wmap = 0, [], {}

    def flush() -> None:
        nonlocal shard, size
        name = f"model-{len(files) + 1:05d}.safetensors"
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        files.append(name)
        wmap.update(dict.fromkeys(shard, name))
        shard, size = {}, 0

    t0 = time.perf_counter()
    for n, s in shapes.items():
        t = torch.ones(s) if len(s) == 1 else torch.randn(s, generator=gen) * 0.02
        shard[n] = t.to(torch.bfloat16)
        size += shard[n].numel() * 2
        if size >= SHARD_BYTES:
            flush()
    if shard:
        flush()
    write_text_atomic(folder / "model.safetensors.index.json", json.dumps(
        {"metadata": {"total_size": count * 2}, "weight_map": wmap}, indent=1))
    cfg.save_pretrained(folder)
    tok.save_pretrained(folder)
    write_text_atomic(stamp, json.dumps(want))
    print(f"built the synthetic model in {folder}: {count / 1e9:.3f} B parameters, {len(files)} shards, "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return count


def run(how: str, args: list[str], fp32: int) -> Run:
    cmd = [sys.executable, "-m", "fineq.cli.main", *args]
    print(f"$ {shlex.join(['fineq', *args])}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
    sec = time.perf_counter() - t0
    return Run(how, shlex.join(["fineq", *args]), sec, int(usage.ru_maxrss) * 1024, fp32,
               os.waitstatus_to_exitcode(status))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", default="build/bench-big/model", help="where the synthetic model is built and kept")
    p.add_argument("--layers", type=int, default=SHAPES["num_hidden_layers"], help="decoder layers (default 22)")
    p.add_argument("--mode", default="gptq-ord", help="FineQ mode (default gptq-ord, calibrated)")
    p.add_argument("--calib-samples", type=int, default=8, help="calibration windows (default 8)")
    p.add_argument("--calib-seq", type=int, default=512, help="calibration window length (default 512)")
    p.add_argument("--baseline", action="store_true", help="also run with --whole (the whole model in memory)")
    p.add_argument("--json", default="build/bench-big/bench.json", help="write the figures here")
    a = p.parse_args()
    folder = Path(a.folder)
    n = build_model(folder, a.layers)
    fp32 = 4 * n
    out = folder.parent / f"{a.mode}.fineq.safetensors"
    common = ["quantize-model", "--model", str(folder), "--mode", a.mode, "--calib-samples", str(a.calib_samples),
              "--calib-seq", str(a.calib_seq), "--device", "cpu", "-o", str(out), "--force"]
    runs = [run("block by block", common, fp32)]
    if a.baseline:
        runs.append(run("whole model (--whole)", [*common, "--whole"], fp32))
    print(f"\nsynthetic LLaMA-shaped model, {n / 1e9:.3f} B parameters ({a.layers} layers), float32 size "
          f"{fp32 / 2**30:.2f} GiB; mode {a.mode}, {a.calib_samples} x {a.calib_seq} calibration tokens")
    print(f"{'run':24s} {'exit':>4s} {'time':>9s} {'peak RSS':>10s} {'/ fp32':>7s}  target <= {TARGET:.0%}")
    for r in runs:
        verdict = "met" if r.ratio <= TARGET else "NOT met"
        print(f"{r.how:24s} {r.exit_code:4d} {r.seconds / 60:7.1f} min {r.peak_rss_bytes / 2**30:6.2f} GiB "
              f"{r.ratio:6.1%}  {verdict if r.how == 'block by block' else ''}")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(a.json, json.dumps({"parameters": n, "fp32_bytes": fp32, "target_ratio": TARGET,
                                        "runs": [{**asdict(r), "ratio": r.ratio} for r in runs]}, indent=1))
    return 0 if all(r.exit_code == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
