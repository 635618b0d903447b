"""Fixed-window attempt counters kept in memory, one list of timestamps per key.

`attempt(*keys)` checks every key and counts the attempt on each in one step, with no await in
between: requests sent at once cannot all pass the check before any of them is counted (the
event loop runs one at a time). A success may then be forgiven (`Attempt.forgive`), so only
failures use up the allowance.

In-process on purpose: one app instance per host is the embedded default; a multi-instance
deployment moves this to the database (docs/operations.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import RateLimited

MAX_KEYS = 100_000  # bound on memory under a flood of distinct keys


@dataclass
class Attempt:
    """One counted attempt; `forgive()` takes it back (the credential was right)."""
    limiter: RateLimiter
    keys: tuple[str, ...]
    stamp: float

    def forgive(self) -> None:
        for key in self.keys:
            hits = self.limiter._hits.get(key)
            if hits and self.stamp in hits:
                hits.remove(self.stamp)
                if not hits:
                    del self.limiter._hits[key]


@dataclass
class RateLimiter:
    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _hits: dict[str, list[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> list[float]:
        hits = [t for t in self._hits.get(key, ()) if now - t < self.window]
        if hits:
            self._hits[key] = hits
        else:
            self._hits.pop(key, None)
        return hits

    def attempt(self, *keys: str) -> Attempt:
        """Count one attempt on every key, or raise RateLimited (counting nothing) when any key
        has used up its allowance. Check and count are one step."""
        now = self.clock()
        for key in keys:
            hits = self._recent(key, now)
            if len(hits) >= self.limit:
                raise RateLimited(retry_after=self.window - (now - hits[0]))
        for key in keys:
            if key not in self._hits and len(self._hits) >= MAX_KEYS:
                self._hits.pop(next(iter(self._hits)))
            self._hits.setdefault(key, []).append(now)
        return Attempt(self, keys, now)

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)
