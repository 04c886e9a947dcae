"""A scoreboard that compares observed transactions with the model's, in order.

``inject_error_at=i`` corrupts the i-th observed transaction before comparing
it (``corrupt`` says how): the tests that use it prove that a mismatch is seen.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

Equal = Callable[[Any, Any], bool]


class Scoreboard:
    def __init__(
        self,
        name: str,
        log: logging.Logger | None = None,
        equal: Equal | None = None,
        inject_error_at: int | None = None,
        corrupt: Callable[[Any], Any] | None = None,
    ) -> None:
        self.name = name
        self.log = log or logging.getLogger(name)
        self.equal: Equal = equal or (lambda a, b: a == b)
        self.expected: deque[Any] = deque()
        self.inject_error_at = inject_error_at
        self.corrupt = corrupt or (lambda v: v ^ 1)
        self.compared = 0
        self.errors: list[str] = []

    def expect(self, item: Any) -> None:
        self.expected.append(item)

    def observe(self, item: Any) -> None:
        if self.inject_error_at is not None and self.compared == self.inject_error_at:
            item = self.corrupt(item)
            self.log.warning("%s: injected an error into observation %d", self.name, self.compared)
        if not self.expected:
            self.errors.append(f"observation {self.compared} has no expected value: {item!r}")
        else:
            exp = self.expected.popleft()
            if not self.equal(exp, item):
                self.errors.append(f"observation {self.compared}: expected {exp!r}, got {item!r}")
        self.compared += 1

    def report(self) -> str:
        return f"{self.name}: {self.compared} compared, {len(self.errors)} mismatches, {len(self.expected)} unmatched"

    def check(self, min_compared: int = 1) -> None:
        """Raise AssertionError unless every expected item was observed and all matched."""
        for e in self.errors[:10]:
            self.log.error("%s: %s", self.name, e)
        if self.expected:
            self.errors.append(f"{len(self.expected)} expected items never observed")
        assert not self.errors, self.report()
        assert self.compared >= min_compared, f"{self.name}: only {self.compared} comparisons"
        self.log.info(self.report())
