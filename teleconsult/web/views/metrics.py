"""GET /metrics for the host's Prometheus: off unless `metrics_token` is set, then Bearer only."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ..auth import bearer_token
from ...errors import AuthenticationFailed
from ..appkeys import services_of
from ...metrics import exposition


async def metrics(request: web.Request) -> web.Response:
    expected = services_of(request).settings.metrics_token
    if not expected:
        raise web.HTTPNotFound()  # not configured: nothing to show, nothing to guess
    given = bearer_token(request)
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthenticationFailed("metrics token required")
    return web.Response(body=await exposition(services_of(request)), headers={"Content-Type": CONTENT_TYPE_LATEST})
