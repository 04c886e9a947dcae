"""Output files: checked before the work starts, written atomically, never over an input.

:func:`check_output` also claims the output for the run (a lock outside the
output's folder): a second fineq run naming the same output while the first
works gets a clear error, never a file written by both.

Every file the CLI writes goes through :func:`atomic_path`: the data goes to a
temporary file in the target's folder (same suffix, so writers that add
extensions do not rename it), which is renamed onto the target only when
complete; on failure the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fineq.errors import FineQError

_written: list[Path] = []
_claims: dict[Path, int] = {}
_notes: dict[str, str] = {}


def written() -> list[Path]:
    """Every output this process has completed (through :func:`atomic_path`), in order."""
    return list(_written)


def keep_note(key: str, text: str | None) -> None:
    """Say (or, with ``None``, stop saying) what partial work a stopped command keeps, e.g. finished windows in a
    work folder; the CLI prints :func:`notes` when a command is interrupted."""
    if text is None:
        _notes.pop(key, None)
    else:
        _notes[key] = text


def notes() -> list[str]:
    return list(_notes.values())


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
    claim(p)
    return p


def lock_dir() -> Path:
    """Where output claims are locked (``FINEQ_LOCK_DIR``, default a per-user folder in the temporary
    directory): nothing is created beside the outputs."""
    d = Path(os.environ.get("FINEQ_LOCK_DIR") or Path(tempfile.gettempdir()) / f"fineq-locks-{os.getuid()}")
    d.mkdir(parents=True, exist_ok=True)
    return d


def claim(path: str | os.PathLike[str]) -> None:
    """Claim ``path`` for this process until :func:`release` (or the process ends): another fineq run that
    claims the same file meanwhile gets a FineQError instead of both writing it."""
    p = Path(path).resolve()
    if p in _claims:
        return
    key = hashlib.sha256(str(p).encode()).hexdigest()[:32]
    fd = os.open(lock_dir() / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FineQError(f"output {path} is being written by another fineq run; wait for it or choose another name"
                         ) from None
    _claims[p] = fd


def release() -> None:
    """Give up every claim of this process (the CLI does when a command ends)."""
    while _claims:
        _, fd = _claims.popitem()
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str], register: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds. The file gets the
    permissions a plain ``open`` would give it (mkstemp's are owner-only). ``register=False``: not one of
    :func:`written` (a work folder's record, which :func:`keep_note` describes instead)."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=f".tmp{p.suffix}", dir=p.parent if str(p.parent) else ".")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
        if register:
            _written.append(p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str, register: bool = True) -> Path:
    with atomic_path(path, register) as tmp:
        tmp.write_text(text)
    return Path(path)
