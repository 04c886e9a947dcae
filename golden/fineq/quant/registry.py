"""Every quantizer by name, in one registry: FineQ's modes (data-free and calibrated) and the baselines of the
paper's Tables I and II, and :func:`quantize`, the one entry point that turns a float matrix into a
:class:`~fineq.format.qmatrix.QuantizedMatrix`.

A :class:`Quantizer` maps ``(W float32 [M, K] torch, H [K, K] or None) -> QResult``. FineQ quantizers are named
``fineq-<mode>`` (``fineq-paper``, ``fineq-gptq-ord``, ...) and carry their ``mode``; ``fineq quantize --mode``,
``fineq quantize-model --mode`` and ``fineq eval --methods`` all read this table. To add a mode or a baseline:
write its algorithm in a module of :mod:`fineq.quant`, then add one entry here (docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fineq.errors import FineQError
from fineq.format.codec import SPEC_CODEBOOK
from fineq.format.qmatrix import QuantizedMatrix, from_levels
from fineq.quant.baselines import gptq_method, owq, pbllm, rtn, uniform
from fineq.quant.calibrated import CALIBRATED_MODES, quantize_calibrated
from fineq.quant.codebook import check_mode_codebook
from fineq.quant.groups import GROUP_MODES, check_group
from fineq.quant.hwaware import DEFAULT_LAMBDA, HW_MODE, quantize_hw
from fineq.quant.recon import RECON_MODE, ReconConfig
from fineq.quant.result import QResult
from fineq.quant.rules import MODES, quantize_arrays
from fineq.quant.signmag import signmag_method

#: FineQ's modes: data-free (``paper``, ``search``), then calibrated (need a Hessian): hardware-aware, then
#: block-wise reconstruction.
FINEQ_MODES = MODES + CALIBRATED_MODES + (HW_MODE, RECON_MODE)
#: modes that need a Hessian
NEEDS_HESSIAN = CALIBRATED_MODES + (HW_MODE, RECON_MODE)
#: the modes that quantize one matrix alone (``fineq quantize``, :func:`quantize`)
MATRIX_MODES = tuple(m for m in FINEQ_MODES if m != RECON_MODE)


@dataclass(frozen=True)
class Quantizer:
    name: str
    calibrated: bool
    fn: Callable[[Any, Any], QResult] | None  # (W [M, K] float32, H [K, K] or None) -> QResult; None: reference
    mode: str | None  # the FineQ mode (the spec's packed format); None for the reference and the baselines
    about: str
    #: block-wise reconstruction after ``fn`` on a model (mode ``recon``, :mod:`fineq.llm.recon`); None: none
    recon: ReconConfig | None = None
    #: a function-preserving model transform applied before quantizing (``fold`` or ``rotate:<seed>``,
    #: :mod:`fineq.llm.rotate`); None: the model as loaded
    transform: str | None = None
    #: group scales (the format variant outside the spec, :mod:`fineq.quant.groups`): weights per scale; None: the
    #: spec's row scales
    group: int | None = None
    #: the levels a field stands for: the spec's ``int``, or ``pow2`` (the variant outside the spec,
    #: :mod:`fineq.quant.codebook`)
    codebook: str = SPEC_CODEBOOK


def quantize(w: Any, mode: str = "paper", hessian: Any = None, hw_lambda: float | None = None,
             group: int | None = None, codebook: str = SPEC_CODEBOOK) -> QuantizedMatrix:
    """Quantize a float ``[M, K]`` numpy array or torch tensor into the spec's packed format.

    ``mode``: ``"paper"`` (outlier rule, least-error fallback; spec section 4) or ``"search"`` (least error for
    every pair), or a calibrated mode (``"hdiag"``, ``"gptq"``, ``"gptq-clip"``, ``"gptq-ord"``;
    :mod:`fineq.quant.calibrated`), which needs ``hessian``: ``H = 2 X X^T / n`` ``[K, K]`` of the layer's
    calibration inputs (:func:`fineq.quant.calibrated.hessian_from_inputs`). Every mode produces the same packed
    format. ``"gptq-hw"`` (:mod:`fineq.quant.hwaware`) also takes ``hw_lambda``, its price of a temporal cycle.
    ``"recon"`` trains whole decoder blocks and is not available on one matrix (a FineQError says so).
    ``group`` (mode ``gptq-ord``): a float16 scale per ``group`` weights of a row, the format variant outside the
    spec (:mod:`fineq.quant.groups`); None: the spec's row scales. ``codebook``: ``"int"`` (the spec's levels) or
    ``"pow2"`` (levels {0, +-1, +-2, +-4}, the other variant outside the spec, :mod:`fineq.quant.codebook`; every
    mode but ``gptq-hw``).
    Raises :class:`fineq.FineQError` subclasses on bad input (NaN/Inf, float16 scale overflow, wrong rank or
    dtype, missing Hessian).
    """
    if hw_lambda is not None and mode != HW_MODE:
        raise FineQError(f"hw_lambda is the parameter of mode {HW_MODE}, not of {mode!r}")
    group = check_group(group, mode)
    codebook = check_mode_codebook(codebook, mode)
    if mode == RECON_MODE:
        raise FineQError(f"mode {RECON_MODE} trains whole decoder blocks: use `fineq quantize-model --mode {RECON_MODE}` "
                         f"or `fineq eval --methods fineq-{RECON_MODE}` (one matrix alone: mode gptq-ord)")
    if mode in NEEDS_HESSIAN:
        if hessian is None:
            raise FineQError(f"mode {mode!r} needs calibration data: pass hessian=H (2 X X^T / n of the layer's inputs)")
        if mode == HW_MODE:
            levels, codes, scales = quantize_hw(w, hessian, DEFAULT_LAMBDA if hw_lambda is None else hw_lambda)
        else:
            levels, codes, scales = quantize_calibrated(w, mode, hessian, group=group, codebook=codebook)
        q = from_levels(levels, codes, scales, group, codebook)
        return dataclasses.replace(q, mode=mode)
    if mode not in MODES:
        raise FineQError(f"mode must be one of {FINEQ_MODES}, got {mode!r}")
    if hessian is not None:
        raise FineQError(f"mode {mode!r} takes no hessian (calibrated modes: {', '.join(NEEDS_HESSIAN)})")
    packed, scales = quantize_arrays(w, mode, codebook=codebook)
    shape = (int(packed.shape[0]), int(np.shape(w)[1]))
    return QuantizedMatrix(packed, scales, shape, mode, codebook=codebook)


def _fineq(mode: str, hw_lambda: float | None = None, group: int | None = None,
           codebook: str = SPEC_CODEBOOK) -> Callable[[Any, Any], QResult]:
    def run(w: Any, h: Any) -> QResult:
        import torch

        q = quantize(w, mode, hessian=h, hw_lambda=hw_lambda, group=group, codebook=codebook)
        m, k = q.shape
        return QResult(torch.from_numpy(q.dequantize()), q.bits_per_weight * m * k, qmatrix=q)

    return run


def _signmag(bits: int, group: int | None, calibrated: bool) -> Callable[[Any, Any], QResult]:
    def run(w: Any, h: Any) -> QResult:
        return signmag_method(w, h if calibrated else None, bits, group)

    return run


_FINEQ_ABOUT = {
    "paper": "FineQ, the paper's outlier rule (spec section 4)",
    "search": "FineQ, least weight error for every pair",
    "hdiag": "FineQ, scale and codes by diag(H)-weighted error",
    "gptq": "FineQ codebook inside GPTQ's error feedback",
    "gptq-clip": "fineq-gptq with the hdiag row scale",
    "gptq-ord": "fineq-gptq-clip, pairs in act-order, row scales refit by output error",
    HW_MODE: f"fineq-gptq-ord paying lambda per temporal cycle (lambda {DEFAULT_LAMBDA}; fineq-{HW_MODE}@L for another)",
    RECON_MODE: "fineq-gptq-ord, then levels and row scales trained block by block (block-wise reconstruction)",
}


def _registry() -> dict[str, Quantizer]:
    qs = [Quantizer("reference", False, None, None, "nothing quantized")]
    qs += [Quantizer(f"fineq-{m}", m in NEEDS_HESSIAN, _fineq(m), m, _FINEQ_ABOUT[m]) for m in FINEQ_MODES
           if m != RECON_MODE]
    # recon starts every block from gptq-ord, then trains the block (a model mode: no matrix alone)
    qs.append(Quantizer(f"fineq-{RECON_MODE}", True, _fineq("gptq-ord"), RECON_MODE, _FINEQ_ABOUT[RECON_MODE],
                        recon=ReconConfig()))
    qs += [
        Quantizer("rtn", False, lambda w, h: rtn(w, 2), None, "2-bit asymmetric min/max per row"),
        Quantizer("rtn3", False, lambda w, h: rtn(w, 3), None, "3-bit asymmetric min/max per row"),
        Quantizer("rtn4", False, lambda w, h: rtn(w, 4), None, "4-bit asymmetric min/max per row"),
        Quantizer("rtn8", False, lambda w, h: rtn(w, 8), None, "8-bit asymmetric min/max per row"),
        Quantizer("uniform", False, lambda w, h: uniform(w, 2), None, "2-bit symmetric per row"),
        Quantizer("gptq", True, lambda w, h: gptq_method(w, h, 2), None, "GPTQ 2-bit per row"),
        Quantizer("gptq-g128", True, lambda w, h: gptq_method(w, h, 2, 128), None, "GPTQ 2-bit, groups of 128"),
        Quantizer("gptq3", True, lambda w, h: gptq_method(w, h, 3), None, "GPTQ 3-bit per row"),
        Quantizer("gptq3-g128", True, lambda w, h: gptq_method(w, h, 3, 128), None, "GPTQ 3-bit, groups of 128"),
        Quantizer("gptq4", True, lambda w, h: gptq_method(w, h, 4), None, "GPTQ 4-bit per row"),
        Quantizer("gptq4-g128", True, lambda w, h: gptq_method(w, h, 4, 128), None, "GPTQ 4-bit, groups of 128"),
        Quantizer("gptq8", True, lambda w, h: gptq_method(w, h, 8), None, "GPTQ 8-bit per row"),
    ]
    # the MAC array's own grid (fineq.quant.signmag): what the MAC RTL runs bit-exactly at W_W = b
    for b, grp, cal in [(3, None, True), (3, 128, True), (4, None, False), (4, None, True), (4, 128, True),
                        (8, None, False), (8, None, True)]:
        name = f"{'gptq' if cal else 'rtn'}{b}-sm" + (f"-g{grp}" if grp else "")
        about = (f"{'GPTQ' if cal else 'RTN'} {b}-bit sign-magnitude (the MAC array's grid), "
                 + (f"groups of {grp}" if grp else "per row"))
        qs.append(Quantizer(name, cal, _signmag(b, grp, cal), None, about))
    qs += [
        Quantizer("owq", True, lambda w, h: owq(w, h, 2.25), None, "OWQ: weak columns fp16, GPTQ 2-bit g128, 2.25 b"),
        Quantizer("pbllm", True, lambda w, h: pbllm(w, h), None, "PB-LLM: 10% salient 8-bit, rest binary, GPTQ"),
    ]
    # the variants outside the spec: group scales, listed at the literature's group of 128 (fineq-<mode>-g<N> for
    # others), and the power-of-two codebook (fineq-<mode>-pow2, any mode but the cycle-priced ones)
    base = {q.mode: q for q in qs if q.mode is not None}
    qs += [variant(base[m], group=DEFAULT_GROUP) for m in GROUP_MODES]
    qs += [variant(base[m], codebook=POW2) for m in ("paper", "gptq-ord", RECON_MODE)]
    return {q.name: q for q in qs}


#: the group of the listed group-scale methods (``fineq-gptq-ord-g128``): two of the engine's 64-row K tiles
DEFAULT_GROUP = 128
#: the power-of-two codebook (:mod:`fineq.quant.codebook`) and its method-name suffix
POW2 = "pow2"
POW2_SUFFIX = f"-{POW2}"


def variant(q: Quantizer, group: int | None = None, codebook: str | None = None) -> Quantizer:
    """FineQ method ``q`` with a float16 scale per ``group`` weights of a row and/or the levels of ``codebook`` (the
    variants outside the spec), named ``<q>-pow2``, ``<q>-g<group>``, ``<q>-pow2-g<group>`` (or
    ``-g<group>-pow2``). Cycle-priced methods
    (``gptq-hw``, ``recon-hw``) and transformed ones take neither."""
    hw = q.mode == HW_MODE or (q.recon is not None and q.recon.keep_vector_caps)
    if q.mode is None or q.transform is not None or hw:
        raise FineQError(f"method {q.name!r}: '-pow2' and '-g<N>' follow a FineQ method that is neither cycle-priced "
                         f"({HW_MODE}, {RECON_MODE}-hw) nor transformed")
    if (group is not None and q.group is not None) or (codebook is not None and q.codebook != SPEC_CODEBOOK):
        raise FineQError(f"method {q.name!r}: '-pow2' and '-g<N>' come once each")
    group = check_group(q.group if group is None else group, q.mode)
    codebook = check_mode_codebook(q.codebook if codebook is None else codebook, q.mode)
    name, about = q.name, q.about
    if codebook != q.codebook:
        name, about = name + f"-{codebook}", about + f"; levels {{0, +-1, +-2, +-4}} ({codebook}, outside the spec)"
    if group != q.group:
        name, about = name + f"-g{group}", about + f"; a float16 scale per {group} weights of a row (outside the spec)"
    start = "gptq-ord" if q.mode == RECON_MODE else q.mode
    return dataclasses.replace(q, name=name, about=about, fn=_fineq(start, group=group, codebook=codebook),
                               group=group, codebook=codebook)


def grouped(base: str, group: int) -> Quantizer:
    """FineQ method ``base`` (``fineq-gptq-ord``, ``fineq-recon``, ...) with a float16 scale per ``group`` weights of a
    row: the format variant outside the spec, named ``<base>-g<group>``."""
    return variant(get(base), group=group)


QUANTIZERS = _registry()


def _number(name: str, tail: str) -> float:
    """The lambda after '@' in ``name``, or FineQError."""
    try:
        lam = float(tail)
    except ValueError:
        lam = float("nan")
    if not lam >= 0 or lam == float("inf"):
        raise FineQError(f"method {name!r}: lambda after '@' must be a number at least 0")
    return lam


_TRANSFORM_NAMES = ("fold", "rot")


def get(name: str) -> Quantizer:
    """The quantizer called ``name`` (``fineq eval --list-methods`` lists them); ``fineq-gptq-hw@L`` is mode
    ``gptq-hw`` at lambda ``L`` (a float, at least 0), ``fineq-recon@E`` mode ``recon`` with ``E`` epochs per
    block, ``fineq-recon-hw@L`` mode ``recon`` started from ``gptq-hw`` at ``L``, no vector's temporal cycles
    raised. A suffix ``+fold`` (RMSNorm gains folded into the linears) or ``+rot`` / ``+rot:<seed>`` (the
    residual stream rotated, QuaRot's R1) transforms the model first (:mod:`fineq.llm.rotate`). The variants outside
    the spec: ``-pow2`` (levels {0, +-1, +-2, +-4}) and ``-g<N>`` (a scale per N weights), once each, after a
    FineQ method that is not cycle-priced (:func:`variant`)."""
    base, plus, tail = name.rpartition("+")
    if plus:
        q = get(base)
        if q.fn is None or q.transform is not None:
            raise FineQError(f"method {name!r}: '+fold' and '+rot' follow a quantizing method, once")
        kind, colon, seed = tail.partition(":")
        if kind not in _TRANSFORM_NAMES or (colon and (kind != "rot" or not seed.isdigit())):
            raise FineQError(f"method {name!r}: after '+' comes fold, rot or rot:<seed>")
        spec = "fold" if kind == "fold" else f"rotate:{int(seed) if colon else 0}"
        what = "RMSNorm gains folded" if kind == "fold" else f"residual stream rotated (seed {int(seed or 0)})"
        return dataclasses.replace(q, name=name, about=f"{q.about}; {what} first", transform=spec)
    if name.startswith("fineq-") and name.endswith(POW2_SUFFIX) and name not in QUANTIZERS:
        return variant(get(name[: -len(POW2_SUFFIX)]), codebook=POW2)
    gbase, gsep, gtail = name.rpartition("-g")
    if gsep and gbase.startswith("fineq-") and (gtail.isdigit() or gbase in tuple(f"fineq-{m}" for m in GROUP_MODES)):
        if not gtail.isdigit() or int(gtail) < 1:
            raise FineQError(f"method {name!r}: the group after '-g' must be a whole number at least 1")
        return grouped(gbase, int(gtail))
    hprefix = f"fineq-{RECON_MODE}-hw@"
    if name.startswith(hprefix):
        lam = _number(name, name[len(hprefix):])
        return Quantizer(name, True, _fineq(HW_MODE, lam), RECON_MODE,
                         f"fineq-{HW_MODE}@{lam:g}, then trained block by block keeping its vectors' cycles",
                         recon=ReconConfig(keep_vector_caps=True))
    rprefix = f"fineq-{RECON_MODE}@"
    if name.startswith(rprefix):
        tail = name[len(rprefix):]
        if not tail.isdigit():
            raise FineQError(f"method {name!r}: the epochs after '@' must be a whole number at least 0")
        cfg = ReconConfig(epochs=int(tail))
        return Quantizer(name, True, _fineq("gptq-ord"), RECON_MODE,
                         f"fineq-{RECON_MODE} with {cfg.epochs} epochs per block", recon=cfg)
    prefix = f"fineq-{HW_MODE}@"
    if name.startswith(prefix):
        lam = _number(name, name[len(prefix):])
        return Quantizer(name, True, _fineq(HW_MODE, lam), HW_MODE, f"fineq-{HW_MODE} at lambda {lam:g}")
    if name not in QUANTIZERS:
        raise FineQError(f"unknown method {name!r}; `fineq eval --list-methods` lists them")
    return QUANTIZERS[name]


def for_mode(mode: str) -> Quantizer:
    """The FineQ quantizer of ``mode`` (``paper``, ``gptq-ord``, ...)."""
    if mode not in FINEQ_MODES:
        raise FineQError(f"FineQ mode must be one of {', '.join(FINEQ_MODES)}, got {mode!r}")
    return QUANTIZERS[f"fineq-{mode}"]
