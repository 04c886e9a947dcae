"""Output files: checked before the work starts, written atomically, never over an input.

Every file the CLI writes goes through :func:`atomic_path`: the data goes to a
temporary file in the target's folder (same suffix, so writers that add
extensions do not rename it), which is renamed onto the target only when
complete; on failure the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fineq.errors import FineQError


def check_output(path: str | os.PathLike[str], force: bool = False,
                 inputs: Sequence[str | os.PathLike[str] | None] = ()) -> Path:
    """Refuse an output that is a folder, an input, exists (unless ``force``) or cannot be written."""
    p = Path(path)
    if p.is_dir():
        raise FineQError(f"output {p} is a directory; give a file name")
    for i in inputs:
        if i is not None and Path(i).exists() and p.exists() and os.path.samefile(i, p):
            raise FineQError(f"output {p} is also an input; choose another name")
    if p.exists() and not force:
        raise FineQError(f"output {p} exists; use --force to replace it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise FineQError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FineQError(f"output folder {parent} is not writable")
    return p


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds. The file gets the
    permissions a plain ``open`` would give it (mkstemp's are owner-only)."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=f".tmp{p.suffix}", dir=p.parent if str(p.parent) else ".")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
