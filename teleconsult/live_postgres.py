"""Live events across instances: the Hub, published through PostgreSQL's LISTEN/NOTIFY.

Every instance LISTENs on one channel over a connection of its own. `publish` hands the event
to this instance's subscribers at once (as the in-process Hub does) and queues a NOTIFY, which
one sender task sends in publishing order; each instance's listener delivers the notifications
of the *other* instances to its own subscribers. Nothing polls: PostgreSQL pushes each
notification as it commits.

A notification's payload is limited (8000 bytes): a bigger event goes out as a "resync" on its
topic (the pages then reload their state, as after a lost event). When the listening connection
breaks, the listener reconnects and sends "resync" to every topic it serves, since events may
have passed meanwhile. psycopg 3 (the database driver) gives LISTEN/NOTIFY in asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets

import psycopg
import sqlalchemy as sa

from .live import Hub

log = logging.getLogger("teleconsult.live")

CHANNEL = "teleconsult_live"
MAX_PAYLOAD = 7900  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
RECONNECT_SECONDS = 1.0
SEND_QUEUE = 10_000  # events waiting for the sender; beyond, the oldest are dropped (pages resync)


def conninfo(sqlalchemy_url: str) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL URL (postgresql+psycopg://... -> postgresql://...)."""
    return sa.engine.make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresHub(Hub):
    def __init__(self, sqlalchemy_url: str) -> None:
        super().__init__()
        self._conninfo = conninfo(sqlalchemy_url)
        self._origin = secrets.token_hex(8)  # this instance: its own notifications come back too
        self._outbox: asyncio.Queue[str] = asyncio.Queue(SEND_QUEUE)
        self._tasks: list[asyncio.Task] = []
        self._listening = asyncio.Event()

    async def start(self) -> None:
        """Listen and send; returns once the channel is listened to (events published by other
        instances from then on are delivered here)."""
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._send())]
        listening = asyncio.ensure_future(self._listening.wait())
        done, _ = await asyncio.wait([listening, self._tasks[0]], return_when=asyncio.FIRST_COMPLETED)
        if listening not in done:
            listening.cancel()
            self._tasks[0].result()  # the listener died before listening: say why

    def publish(self, topic: str, event: dict) -> None:
        self.deliver(topic, event)
        payload = json.dumps({"o": self._origin, "t": topic, "e": event}, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            payload = json.dumps({"o": self._origin, "t": topic, "e": {"type": "resync"}})
        if self._outbox.full():
            self._outbox.get_nowait()
        self._outbox.put_nowait(payload)

    def _received(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            origin, topic, event = message["o"], message["t"], message["e"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed live notification")
            return
        if origin != self._origin and isinstance(topic, str) and isinstance(event, dict):
            self.deliver(topic, event)

    async def _listen(self) -> None:
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    if not first:  # events may have passed while not listening
                        for topic in self.topics():
                            self.deliver(topic, {"type": "resync"})
                    first = False
                    async for notify in conn.notifies():
                        self._received(notify.payload)
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                if first and not self._listening.is_set():
                    raise
                log.warning("live events: listening connection lost (%s), reconnecting", type(exc).__name__)
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _send(self) -> None:
        conn = None
        try:
            while True:
                payload = await self._outbox.get()
                for attempt in range(2):  # a broken connection is replaced once per event
                    try:
                        if conn is None or conn.closed:
                            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                        break
                    except psycopg.Error as exc:
                        log.warning("live events: could not notify (%s)", type(exc).__name__)
                        if conn is not None:
                            await conn.close()
                        conn = None
                        if attempt:
                            await asyncio.sleep(RECONNECT_SECONDS)
        finally:
            if conn is not None:
                await conn.close()

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until every event published so far has been sent (tests, shutdown)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._outbox.empty() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.flush(1.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                await task
        self._tasks = []
