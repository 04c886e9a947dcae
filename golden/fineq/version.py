"""The package version (pyproject.toml holds the same), and the environment a measurement ran in."""

from __future__ import annotations

import hashlib
import platform
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

__version__ = "0.1.0"


def _cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, str]:
    """The CPU's model name and a short hash of its feature flags (the kernels math libraries pick follow them)."""
    model, flags = platform.processor() or platform.machine(), ""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "model name" and val.strip():
                model = val.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = " ".join(sorted(val.split()))
    except OSError:
        pass
    return model, hashlib.sha256(flags.encode()).hexdigest()[:12] if flags else ""


def environment() -> dict[str, str]:
    """What a perplexity may depend on besides the code and the inputs: GPTQ-class modes at 2-3 bits amplify tiny
    float differences, and results have been seen to move between environments (docs/accuracy.md). Recorded in
    ``fineq eval``'s JSON and in the fingerprints of work folders; ``fineq pareto`` notes evals from different
    environments."""
    return dict(_environment())


@lru_cache(maxsize=1)
def _environment() -> tuple[tuple[str, str], ...]:
    model, flags = _cpu()
    env = {"fineq": __version__, "python": platform.python_version(), "cpu": model, "cpu_flags": flags,
           "platform": sys.platform}
    for pkg in ("numpy", "torch", "transformers"):
        try:
            env[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            env[pkg] = ""
    return tuple(env.items())
