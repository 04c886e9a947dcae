"""End-to-end demo (``fineq demo``, run by the README's first command).

Quantizes a heavy-tailed weight matrix with outlier channels, shows what the
format did with it (codes, levels, one block bit by bit, error against plain
2-bit and 3-bit round-to-nearest), then runs a GEMM through the RTL engine on
the chosen simulator and checks it bit-exactly against the golden model.
"""

from __future__ import annotations

import json

import numpy as np

from fineq.engine.gemm import gemm
from fineq.format.codec import block_word
from fineq.format.info import info_dict
from fineq.quant.registry import quantize
from fineq.synthetic import heavy_tailed, int8_activations


def _rtn(w: np.ndarray, bits: int) -> np.ndarray:
    qmax = 2 ** (bits - 1) - 1
    s = np.abs(w).max(axis=1, keepdims=True) / qmax
    return np.clip(np.rint(w / s), -qmax, qmax) * s


def run_demo(backend: str = "verilator") -> int:
    m, k, n = 64, 200, 8
    w = heavy_tailed(m, k, seed=7)
    q = quantize(w)
    d = info_dict(q)
    print(f"== FineQ demo: quantize a {m}x{k} heavy-tailed float32 matrix (1% outlier channels)")
    print(f"   {d['bits_per_weight']} bits/weight ({d['bits_per_weight_packed_only']} packed + 16-bit row scale)")
    tot = sum(d["code_histogram"].values())  # type: ignore[union-attr]
    print("   pair codes: " + ", ".join(f"{c}: {100 * v / tot:.1f}%" for c, v in d["code_histogram"].items()))  # type: ignore[union-attr]
    err = {name: float(np.sqrt(np.mean((wh - w) ** 2)))
           for name, wh in (("FineQ 2.33b", q.dequantize()), ("RTN 2b", _rtn(w, 2)), ("RTN 3b", _rtn(w, 3)))}
    print("   RMS error: " + ", ".join(f"{a} {b:.4g}" for a, b in err.items()))
    blk = bytes(q.packed[0, :7])
    word = block_word(blk)
    print(f"== row 0, block 0: bytes {blk.hex(' ')} (56-bit word 0x{word:014x})")
    for p in range(4):
        code = (word >> (2 * p)) & 3
        for j in (2 * p, 2 * p + 1):
            f = (word >> (6 * j + 8)) & 0x3F
            lv = q.levels()[0, 3 * j : 3 * j + 3].tolist()
            ws = ", ".join(f"{v:+.4f}" for v in w[0, 3 * j : 3 * j + 3])
            print(f"   cluster {j}: w=({ws})  code {code:02b}  field {f:06b}  levels {lv}")
    x = int8_activations(k, n, seed=3)
    x[0, 0], x[1, 0] = -128, 127
    if backend == "golden":
        from fineq.hw.run import run_gemm

        res = run_gemm(q, x, "golden")
    else:
        from fineq.hw.run import run_gemm

        print(f"== running Y = V @ X ({m}x{k} @ {k}x{n}) on the 64x64 RTL engine ({backend}); "
              "the first run builds the native Verilator simulator (about 15 s; cached after) ...", flush=True)
        res = run_gemm(q, x, backend, rows=64, cols=64)
    y = res.pop("y")
    res["bit_exact"] = bool(np.array_equal(y, gemm(q, x)))
    print(f"== {backend}: {res['cycles']} cycles, bit-exact against the golden model: {res['bit_exact']}")
    print(json.dumps(res))
    return 0 if res["bit_exact"] else 1
