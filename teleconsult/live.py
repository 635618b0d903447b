"""In-process publish/subscribe for live pages (dashboard, waiting room).

Topics: "clinician:{id}" (everything a dashboard shows) and "knock:{id}" (one patient page).
Queues are bounded: a subscriber too slow to read loses old events and reloads its state.
On PostgreSQL, events also reach the other instances' subscribers (live_postgres.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator

QUEUE_SIZE = 100


class Hub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue]] = defaultdict(set)

    def publish(self, topic: str, event: dict) -> None:
        self.deliver(topic, event)

    def deliver(self, topic: str, event: dict) -> None:
        """Hand `event` to this process's subscribers of `topic`."""
        for queue in list(self._subscribers.get(topic, ())):
            if queue.qsize() >= QUEUE_SIZE - 1:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"type": "resync"})
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[asyncio.Queue]:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[topic].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[topic].discard(queue)
            if not self._subscribers[topic]:
                del self._subscribers[topic]

    def topics(self) -> list[str]:
        return list(self._subscribers)

    async def close(self) -> None:
        """Nothing to release in process; a hub spanning instances stops listening."""

    def subscriber_count(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))
