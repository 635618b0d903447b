"""The sweeper's clock: one step at start-up, then every `interval` seconds, and also at each
deadline the drop box announces as it writes it (a consultation's documents at its end + the
grace period, a used-up drop, an expiry), so deletion happens on time instead of up to one
interval late.

The periodic step stays the safety net: announced wake-ups live in memory only, while the
deadlines themselves are in the database, so a restart forgets none of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("teleconsult.sweeper")

Step = Callable[[], Awaitable[dict[str, int]]]
WAKE_MARGIN_SECONDS = 0.01  # just after the deadline, so `deadline <= now` holds in the step


class Sweeper:
    def __init__(self, step: Step, interval: float, clock: Callable[[], float] = time.time):
        self._step = step
        self._interval = interval
        self._clock = clock
        self._due = asyncio.Event()
        self._timers: set[asyncio.TimerHandle] = set()

    def wake_at(self, deadline: float) -> None:
        """Run a step just after `deadline` (a wall-clock timestamp, like every deadline we store)."""
        delay = max(0.0, deadline - self._clock()) + WAKE_MARGIN_SECONDS
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self._due.set()

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def run(self) -> None:
        while True:
            self._due.clear()
            try:
                counts = await self._step()
                if any(counts.values()):
                    log.info("sweeper: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if v))
            except Exception:
                log.exception("sweeper step failed")
            try:
                await asyncio.wait_for(self._due.wait(), self._interval)
            except TimeoutError:
                pass

    def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
