"""Progress bars on stderr for long steps (tqdm when installed and stderr is a terminal or FINEQ_PROGRESS=1)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def enabled() -> bool:
    flag = os.environ.get("FINEQ_PROGRESS", "")
    if flag:
        return flag not in ("0", "no", "off")
    return sys.stderr.isatty()


def progress(it: Iterable[T], desc: str = "", total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate ``it`` with a progress bar on stderr when enabled; plainly otherwise."""
    if not enabled():
        yield from it
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield from it
        return
    yield from tqdm(it, desc=desc, total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)


class Meter:
    """A progress bar over an amount (cycles, bytes) updated from any thread; a no-op when bars are off."""

    def __init__(self, total: int, desc: str = "", unit: str = "it", initial: int = 0) -> None:
        self.bar = None
        if enabled():
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=True, file=sys.stderr,
                            leave=False, dynamic_ncols=True)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
