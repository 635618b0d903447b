"""`teleconsult serve`: the app on a listening socket, until SIGINT or SIGTERM.

aiohttp's runner with the bounds of slow_clients.py (head timeout, connection cap per address),
the route-naming access log, and aiohttp's own error log without the bytes of malformed requests.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..settings import Settings
from .access_log import RouteAccessLogger
from .slow_clients import CappedSite, ConnectionCap


BACKLOG = 1024  # connections the kernel queues before the app accepts them (nginx: 511)


class ServerLog(logging.LoggerAdapter):
    """aiohttp's server log, minus the raw bytes: a malformed request (bad request line, a header
    with bytes 0x80-0xff, a head too long) is logged as one line naming the kind of error; its
    message, which quotes the client's bytes, and its traceback are left out."""

    def log(self, level, msg, *args, exc_info=None, **kwargs):
        error = sys.exc_info()[1] if exc_info is True else exc_info
        if isinstance(error, HttpProcessingError):
            self.logger.info("malformed HTTP request refused (%s): %s", error.code, type(error).__name__)
            return
        super().log(level, msg, *args, exc_info=exc_info, **kwargs)


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    return web.AppRunner(app, handle_signals=False, access_log_class=RouteAccessLogger,
                         keepalive_timeout=settings.http_header_timeout_seconds,
                         logger=ServerLog(logging.getLogger("teleconsult.http"), {}))


async def start(app: web.Application, settings: Settings) -> tuple[web.AppRunner, CappedSite]:
    runner = make_runner(app, settings)
    await runner.setup()
    cap = ConnectionCap(settings.http_max_connections_per_address, settings.trusted_proxy_networks)
    site = CappedSite(runner, settings.host, settings.port, cap, backlog=BACKLOG)
    await site.start()
    return runner, site


async def serve(app: web.Application, settings: Settings, say: Callable[[str], None] = print) -> None:
    runner, site = await start(app, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    say(f"======== Running on {site.name} ========\n(Press CTRL+C to quit)")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
