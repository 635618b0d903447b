"""Fixed-window failure counters kept in memory, one per (scope, key).

In-process on purpose: one app instance per host is the embedded default; a multi-instance
deployment would move this to the database (noted in docs/operations.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import RateLimited

MAX_KEYS = 100_000  # bound on memory under a flood of distinct keys


@dataclass
class RateLimiter:
    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _hits: dict[str, list[float]] = field(default_factory=dict)

    def _recent(self, key: str) -> list[float]:
        now = self.clock()
        hits = [t for t in self._hits.get(key, ()) if now - t < self.window]
        if hits:
            self._hits[key] = hits
        else:
            self._hits.pop(key, None)
        return hits

    def check(self, key: str) -> None:
        """Raise RateLimited when `key` has used up its allowance."""
        hits = self._recent(key)
        if len(hits) >= self.limit:
            raise RateLimited(retry_after=self.window - (self.clock() - hits[0]))

    def hit(self, key: str) -> None:
        if len(self._hits) >= MAX_KEYS:
            self._hits.pop(next(iter(self._hits)))
        self._hits.setdefault(key, []).append(self.clock())

    def hit_and_check(self, key: str) -> None:
        self.check(key)
        self.hit(key)

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)
