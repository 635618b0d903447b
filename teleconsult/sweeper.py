"""The sweeper's clock: a step at start-up, then one at the earliest deadline still to apply
(read from the database after each step: documents' deletion, expiry, abandoned uploads,
consultations' maximum duration), and at least every `interval` seconds.

A deadline written between two steps (a consultation ends: its documents are due at the end +
the grace period) is announced with `wake_at`; when it comes before the planned step, the
step is brought forward. Nothing but the planned moment is kept in memory: the deadlines
themselves live in the database, so a restart forgets none and is late for none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("teleconsult.sweeper")

Step = Callable[[], Awaitable[dict[str, int]]]
NextDeadline = Callable[[], Awaitable[float | None]]
WAKE_MARGIN_SECONDS = 0.01  # just after the deadline, so `deadline <= now` holds in the step
RETRY_PAUSE_SECONDS = 1.0  # a deadline still due after a step (its deletion failed): try again after this


class Sweeper:
    def __init__(self, step: Step, next_deadline: NextDeadline, interval: float,
                 clock: Callable[[], float] = time.time):
        self._step = step
        self._next_deadline = next_deadline
        self._interval = interval
        self._clock = clock
        self._due = asyncio.Event()
        self._planned: float | None = None  # the deadline the timer below is set for
        self._announced = False  # wake_at was called since the current step began
        self._timer: asyncio.TimerHandle | None = None

    def wake_at(self, deadline: float) -> None:
        """A deadline was just written: step just after it, unless a step comes sooner anyway."""
        self._announced = True
        if self._planned is None or deadline < self._planned:
            self._plan(deadline, self._clock())

    def _plan(self, deadline: float, not_before: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._planned = deadline
        delay = max(deadline, not_before) - self._clock() + WAKE_MARGIN_SECONDS
        self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._due.set)

    async def _run_step(self) -> None:
        self._announced = False
        started = self._clock()
        try:
            counts = await self._step()
            if any(counts.values()):
                log.info("sweeper: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if v))
            upcoming = await self._next_deadline()
        except Exception:
            log.exception("sweeper step failed")
            upcoming = None  # the periodic step tries again
        # a deadline announced while the step ran may have been written after the step read
        # the database: keep it planned, and step again at once if it is due
        announced = self._planned if self._announced else None
        soonest = min((at for at in (upcoming, announced) if at is not None), default=None)
        if soonest is None:
            self.close()
        elif soonest <= started and not self._announced:  # known to this step, still there: it failed
            self._plan(soonest, not_before=self._clock() + RETRY_PAUSE_SECONDS)
        else:
            self._plan(soonest, not_before=0.0)

    async def run(self) -> None:
        while True:
            self._due.clear()
            await self._run_step()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancellation that
            # arrives as the event is set (a deadline announced at shutdown), and the app's
            # cleanup then waited for this task forever
            try:
                async with asyncio.timeout(self._interval):
                    await self._due.wait()
            except TimeoutError:
                pass

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._planned = None, None
