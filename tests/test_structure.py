"""The package's structure: its import graph (imports inside functions included) has no cycle, goes only
downward through the layers of docs/architecture.md, and never reaches into tb/, synth/ or sim/; no module
is over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "golden" / "fineq"
#: The layers, lowest first (docs/architecture.md). A module may import its own layer and the layers below.
LAYERS = [
    ("fineq.errors", "fineq.outputs", "fineq.progress", "fineq.synthetic", "fineq.version"),
    ("fineq.format",),
    ("fineq.quant",),
    ("fineq.engine",),
    ("fineq.hw",),
    ("fineq.llm",),
    ("fineq.perf",),
    ("fineq.apps",),
    ("fineq.cli",),
]


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _imports(name: str, path: Path) -> list[str]:
    """Every module named by an import statement anywhere in the file (absolute, resolved)."""
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append(target)
            out += [f"{target}.{a.name}" for a in node.names]
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: {t for t in _imports(m, p) if t in mods and t != m} for m, p in mods.items()}


def _layer(mod: str) -> int | None:
    for i, names in enumerate(LAYERS):
        if any(mod == n or mod.startswith(n + ".") for n in names):
            return i
    return None


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a package's ``__init__`` importing its own submodules does not count)."""
    def edges(v: str) -> set[str]:
        return {w for w in graph[v] if not w.startswith(v + ".")}  # a package re-exporting its own modules

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(edges(v)):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (c := visit(w)):
                return c
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (c := visit(v)):
            return c
    return None


def test_no_import_cycle():
    assert find_cycle(_graph()) is None


def test_cycle_finder_catches_an_injected_cycle():
    g = _graph()
    g["fineq.format.codec"] = g["fineq.format.codec"] | {"fineq.cli.main"}  # codec -> cli -> ... -> codec
    assert find_cycle(g) is not None


def test_every_module_in_a_layer_and_imports_go_down():
    bad = []
    for m, deps in _graph().items():
        if m == "fineq":  # the package's public names are re-exported from the layers
            continue
        lm = _layer(m)
        assert lm is not None, f"{m} is in no layer of LAYERS (docs/architecture.md)"
        for d in deps:
            ld = _layer(d)
            if d == "fineq" or ld is None or ld > lm:
                bad.append(f"{m} (layer {lm}) imports {d} (layer {ld})")
    assert not bad, "\n".join(bad)


def test_package_never_imports_tb_synth_sim():
    bad = [(m, t) for m, p in _modules().items() for t in _imports(m, p)
           if t.split(".")[0] in ("tb", "synth", "sim", "fineq_tb")]
    assert not bad


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_size(name):
    assert len(_modules()[name].read_text().splitlines()) <= 400
