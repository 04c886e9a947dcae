"""Per-layer rules: an ordered list of ``regular expression -> FineQ mode | skip`` over linear names, as
GPTQModel's dynamic config and llama.cpp's ``--tensor-type`` do.

On the command line ``--rule 'REGEX=MODE'`` (repeatable) and ``--rules FILE``
(one ``REGEX = MODE`` per line; blank lines and ``#`` comments ignored; the
file's rules come after the command line's). For each linear the first rule
whose expression matches its module name (``re.search``) decides: a FineQ
matrix mode (``paper``, ``search``, ``gptq-ord``, ...; :data:`MATRIX_MODES`)
quantizes it with that mode instead of the method's, ``skip`` leaves it float;
a linear no rule matches takes the method's mode. Rules are checked (each
expression compiles, each mode exists) before any model loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fineq.errors import FineQError
from fineq.quant.registry import FINEQ_MODES, MATRIX_MODES

SKIP = "skip"


@dataclass(frozen=True)
class LayerRules:
    """``(pattern, mode or 'skip')`` in order; empty: every linear takes the method's mode."""

    rules: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def decide(self, name: str) -> str | None:
        """The first matching rule's mode or ``'skip'``; None when no rule matches."""
        for pat, mode in self.rules:
            if re.search(pat, name):
                return mode
        return None

    def skipped(self, name: str) -> bool:
        return self.decide(name) == SKIP

    @property
    def modes(self) -> set[str]:
        return {m for _, m in self.rules if m != SKIP}

    def __bool__(self) -> bool:
        return bool(self.rules)


def parse_rule(text: str, where: str = "--rule") -> tuple[str, str]:
    pat, eq, mode = text.rpartition("=")
    pat, mode = pat.strip(), mode.strip()
    if not eq or not pat or not mode:
        raise FineQError(f"{where} {text!r}: expected REGEX=MODE (MODE a FineQ mode or skip)")
    if mode != SKIP and mode not in MATRIX_MODES:
        hint = " (a whole-model mode: give it as --mode)" if mode in FINEQ_MODES else ""
        raise FineQError(f"{where} {text!r}: mode {mode!r} is not one of {', '.join((*MATRIX_MODES, SKIP))}{hint}")
    try:
        re.compile(pat)
    except re.error as e:
        raise FineQError(f"{where} {text!r}: {pat!r} is not a regular expression ({e})") from e
    return pat, mode


def load_rules(cli: list[str] | None = None, file: str | None = None) -> LayerRules:
    """The rules of ``--rule`` (in order), then those of ``--rules FILE``."""
    out = [parse_rule(r) for r in cli or ()]
    if file is not None:
        p = Path(file)
        if not p.is_file():
            raise FineQError(f"rules file {file} does not exist")
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as e:
            raise FineQError(f"rules file {file} is not a readable UTF-8 text ({e})") from e
        if "\x00" in text:
            raise FineQError(f"rules file {file} holds NUL bytes: binary data, not rules")
        for i, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(parse_rule(line, f"{file} line {i}:"))
    return LayerRules(tuple(out))
