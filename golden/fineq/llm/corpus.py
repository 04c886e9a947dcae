"""Evaluation and calibration text: a user's file or the default corpus, tokenized and split.

Default corpus: *The Devil's Dictionary* by Ambrose Bierce (1911, public
domain), real English prose, as Debian's package ``dict-devil`` ships it
(``devil.dict.dz``, a gzip-readable dictzip file). ``scripts/setup.sh`` unpacks
that package into ``<venv>/share/fineq-corpus/``; a system-wide ``dict-devil``
(``/usr/share/dictd/devil.dict.dz``) or ``FINEQ_CORPUS=<file>`` also work.
About 384 k characters, ~90 k tokens for SmolLM2's tokenizer.

Split (``docs/accuracy.md``): the token stream's first ``calib_tokens`` tokens
are calibration text (for GPTQ, OWQ, PB-LLM and FineQ's calibrated modes);
evaluation windows come only from the tokens after them, so the two never
overlap. Windows are non-overlapping, consecutive from the start of the
evaluation part, the same for every method.
"""

from __future__ import annotations

import gzip
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fineq.errors import FineQError

CORPUS_NAME = "The Devil's Dictionary (A. Bierce, 1911; Debian dict-devil)"
_DEFAULT_FILES = ("devil.dict.dz",)


def default_corpus_path() -> Path:
    """Where the default corpus is installed, or FineQError saying how to get it."""
    env = os.environ.get("FINEQ_CORPUS")
    if env:
        return Path(env)
    cands = [Path(sys.prefix) / "share" / "fineq-corpus" / f for f in _DEFAULT_FILES]
    cands += [Path("/usr/share/dictd") / f for f in _DEFAULT_FILES]
    for c in cands:
        if c.is_file():
            return c
    raise FineQError("the default corpus (Debian package dict-devil) is not installed: run scripts/setup.sh, "
                     "or pass --text FILE")


def clean_devil(raw: str) -> str:
    """The prose of the dictd file: from the preface on, without dictd headers, centering or the index line."""
    start = raw.find("PREFACE")
    body = raw[start:] if start >= 0 else raw
    lines = [ln.strip() for ln in body.splitlines()]
    if lines and re.fullmatch(r"[a-z]{26}", lines[-1] or ""):
        lines.pop()
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def read_text(path: str | os.PathLike[str] | None = None) -> tuple[str, str]:
    """``(text, description)`` of a user's UTF-8 text file, or of the default corpus when ``path`` is None."""
    if path is None:
        p = default_corpus_path()
        try:
            raw = gzip.open(p).read().decode("utf-8") if p.suffix == ".dz" or p.suffix == ".gz" else p.read_text()
        except (OSError, UnicodeDecodeError, EOFError) as e:
            raise FineQError(f"default corpus {p} is unreadable: {e}") from e
        return clean_devil(raw), f"{CORPUS_NAME}, {p}"
    p = Path(path)
    if not p.is_file():
        raise FineQError(f"text file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise FineQError(f"text file {p} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise FineQError(f"text file {p} is unreadable: {e}") from e
    if not text.strip():
        raise FineQError(f"text file {p} is empty")
    if "\x00" in text:
        raise FineQError(f"text file {p} holds NUL bytes: binary data, not text")
    return text, str(p)


def tokenize(tokenizer: Any, text: str) -> np.ndarray:
    """The whole text as one int64 token stream (no special tokens, as perplexity tools do)."""
    ids = tokenizer(text, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return np.asarray(ids, dtype=np.int64)


@dataclass
class Split:
    """Calibration samples and the evaluation token stream, disjoint."""

    calib: np.ndarray  # int64 [n_samples, calib_seq]
    eval_tokens: np.ndarray  # int64 [T]
    total_tokens: int

    def windows(self, seq: int, max_windows: int | None) -> np.ndarray:
        """Non-overlapping evaluation windows ``int64 [W, seq]`` from the start of the evaluation part."""
        if seq < 2:
            raise FineQError(f"--seq must be at least 2, got {seq}")
        n = len(self.eval_tokens) // seq
        if max_windows is not None:
            if max_windows < 1:
                raise FineQError(f"--max-windows must be positive, got {max_windows}")
            n = min(n, max_windows)
        if n < 1:
            raise FineQError(f"the evaluation text has {len(self.eval_tokens)} tokens, fewer than one window of {seq}")
        return self.eval_tokens[: n * seq].reshape(n, seq)


def split(tokens: np.ndarray, calib_samples: int, calib_seq: int, min_eval: int = 64) -> Split:
    """First ``calib_samples * calib_seq`` tokens -> calibration samples; the rest -> evaluation."""
    if calib_samples < 0 or calib_seq < 1:
        raise FineQError(f"calibration must be >= 0 samples of >= 1 tokens, got {calib_samples} x {calib_seq}")
    n_cal = calib_samples * calib_seq
    if len(tokens) - n_cal < min_eval:
        raise FineQError(f"the text has {len(tokens)} tokens: too few for {calib_samples} calibration samples of "
                         f"{calib_seq} tokens and an evaluation part (use a longer text or fewer samples)")
    return Split(tokens[:n_cal].reshape(calib_samples, calib_seq), tokens[n_cal:], len(tokens))


def calibration(tokens: np.ndarray, calib_samples: int, calib_seq: int, desc: str) -> np.ndarray:
    """The first ``calib_samples`` windows of ``calib_seq`` tokens of a calibration-only text (``--calib-text``,
    ``desc`` names it in errors): ``int64 [calib_samples, calib_seq]``."""
    if calib_samples < 1 or calib_seq < 1:
        raise FineQError(f"calibration must be >= 1 samples of >= 1 tokens, got {calib_samples} x {calib_seq}")
    n_cal = calib_samples * calib_seq
    if len(tokens) < n_cal:
        raise FineQError(f"calibration text {desc}: {len(tokens)} tokens, too few for {calib_samples} samples of "
                         f"{calib_seq} tokens (use a longer text, or fewer --calib-samples or a shorter --calib-seq)")
    return tokens[:n_cal].reshape(calib_samples, calib_seq)
