"""Server-sent events: a stream of JSON events from a Hub topic, with heartbeats.

The heartbeat is a named `ping` event (not a comment, which a page's EventSource never sees),
sent every `live_heartbeat_seconds` and once right after the first event; it says its period
(`every`, seconds), so a page that hears nothing for three of them knows its stream died silently
(a phone whose connection outlived its signal) and opens a new one (static/js/page.js listen()).

A stream opened by a login session asks `still_allowed` at every heartbeat: it ends when the
session has ended (logout, password change, idle timeout), and while it runs it keeps the
session alive (an open dashboard or call page is activity)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .appkeys import services_of


def _ping(every: int) -> bytes:
    return f'event: ping\ndata: {{"type":"ping","every":{every}}}\n\n'.encode()


First = dict | Callable[[], Awaitable[dict]]


async def stream(request: web.Request, topic: str, first: First,
                 still_allowed: Callable[[], Awaitable[bool]] | None = None,
                 held: contextlib.AbstractAsyncContextManager | None = None) -> web.StreamResponse:
    """Send `first`, then every event published on `topic`, until the client or the server leaves
    (or `still_allowed`, asked at every heartbeat, says no). `held` is entered once the topic
    is subscribed and left when the stream ends (the direct call's presence: what the other party
    says in reply to the news is already listened to).

    A `first` that tells a state (a knock's status, whether the other party is there) is a coroutine
    function, awaited only once the topic is subscribed and `held` entered: a change made while the
    stream opens is then either in that state or among the events that follow, never lost between
    the two (a patient admitted as the waiting room's stream opened would wait for ever)."""
    stopping = services_of(request).stopping
    heartbeat = services_of(request).settings.live_heartbeat_seconds
    ping = _ping(heartbeat)
    async with services_of(request).hub.subscribe(topic) as queue, _held(held):
        # read before the response starts: a refusal here (the link gone meanwhile) is still an answer
        opening = first if isinstance(first, dict) else await first()
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        await response.write(_frame(opening) + ping)
        checked = time.monotonic()
        while not stopping.is_set():
            if still_allowed is not None and time.monotonic() - checked >= heartbeat:
                if not await still_allowed():
                    break
                checked = time.monotonic()
            getter = asyncio.ensure_future(queue.get())
            stopper = asyncio.ensure_future(stopping.wait())
            done, _ = await asyncio.wait({getter, stopper}, timeout=heartbeat,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in (getter, stopper):
                if task not in done:
                    task.cancel()
            try:
                if getter in done:
                    await response.write(_frame(getter.result()))
                elif not done:
                    await response.write(ping)
            except (ConnectionResetError, ConnectionError):
                break
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


def _held(held: contextlib.AbstractAsyncContextManager | None) -> contextlib.AbstractAsyncContextManager:
    return held if held is not None else contextlib.nullcontext()


def _frame(event: dict) -> bytes:
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode()
