"""POST /api/jitsi/events: room events from Prosody's mod_teleconsult_events (DESIGN section 4).

Thin: authenticate (HMAC signature over timestamp + "." + body, checked in constant time,
within jitsi_events_window_seconds, each signature usable once; or, with
jitsi_events_bearer, `Authorization: Bearer <secret>`), parse, deduplicate by event_id,
then room_sync.apply_event does the rest.

Answers, chosen for the module (it gives up on 4xx, retries on 5xx):
  200  applied, duplicate (a retry of a handled event), or not one of our rooms
  400  signed but not a valid event (retrying would not help)
  401  bad or missing signature or bearer token; 403  stale timestamp or replayed request
  413  body too large; 503  jitsi_events_secret not set (the module retries meanwhile)
Log lines never contain the body, nor a header value.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from ...jitsi import room_sync
from ..appkeys import services_of
from ...jitsi.events import (SIGNATURE_HEADER, TIMESTAMP_HEADER, BadEvent, BadSignature, Replayed,
                           StaleTimestamp, load_event, verify, verify_bearer)

log = logging.getLogger("teleconsult.jitsi_events")

MAX_BODY = 1024 * 1024  # a destroyed event lists every occupant (at most 500 by default)


def _answer(status: int, message: str, **extra) -> web.Response:
    body = {"status": status, **({"error": message} if status >= 400 else {"result": message}), **extra}
    return web.json_response(body, status=status)


async def _read_body(request: web.Request) -> bytes | None:
    if (request.content_length or 0) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _authenticate(request: web.Request, secret: bytes, body: bytes, now: float) -> None:
    settings = services_of(request).settings
    if settings.jitsi_events_bearer:
        verify_bearer(secret, request.headers.get("Authorization"))
        return
    signature = request.headers.get(SIGNATURE_HEADER)
    verify(secret, request.headers.get(TIMESTAMP_HEADER), signature, body, now,
           settings.jitsi_events_window_seconds)
    assert signature is not None  # verify refuses a missing one
    await services_of(request).room_events.signatures.check(signature.lower(), now)


async def jitsi_event(request: web.Request) -> web.Response:
    secret = services_of(request).settings.jitsi_events_secret
    if not secret:
        log.error("room event refused (503): jitsi_events_secret is not set, see docs/configuration.md")
        return _answer(503, "room events are not configured")
    body = await _read_body(request)
    if body is None:
        log.warning("room event refused (413) from %s: body larger than %d bytes", request.remote, MAX_BODY)
        return _answer(413, "body too large")
    now = time.time()
    try:
        await _authenticate(request, secret.encode("utf-8"), body, now)
    except BadSignature as exc:
        log.warning("room event refused (401) from %s: %s", request.remote, exc)
        return _answer(401, "not authenticated")
    except (StaleTimestamp, Replayed) as exc:
        log.warning("room event refused (403) from %s: %s", request.remote, exc)
        return _answer(403, "stale or replayed")
    try:
        event = load_event(body)
    except BadEvent as exc:
        log.warning("room event refused (400): %s", exc)
        return _answer(400, "not a valid room event")

    seen = services_of(request).room_events.event_ids
    if await seen.seen(event.event_id, now):
        log.debug("%s %s: duplicate, acknowledged", event.event_name, event.event_id)
        return _answer(200, "duplicate")
    try:
        outcome = await room_sync.apply_event(services_of(request), event, now)
    except BaseException:
        await seen.forget(event.event_id)  # let the module's retry be processed
        raise
    log.debug("%s %s: %s", event.event_name, event.event_id, outcome)
    return _answer(200, outcome)

