"""What one slow or greedy client can hold: a request head, a request body, connections.

aiohttp bounds the size of a request head, not the time it takes to arrive, and has no read
timeout for bodies; a reverse proxy usually bounds both (docs/operations.md), but the app does
not rely on one:

- head: aiohttp's keep-alive timer runs from the moment a connection opens and from the end of
  each response, and closes the connection if no complete head has arrived when it fires; the
  server runs it with http_header_timeout_seconds (server.py).
- body: `body_timeout_middleware` watches a body being received; when no byte has arrived for
  http_body_timeout_seconds, the pending read fails, and the client gets 408 and a closed
  connection. A slow upload that keeps sending is never cut.
- connections: `CappedSite` wraps each connection's protocol and counts open connections per
  peer address; one more than http_max_connections_per_address gets a 503 and is closed before
  aiohttp sees a byte (peers in trusted_proxies are not capped: the proxy caps per client).

Written here because aiohttp offers none of the three and a wrapper around its protocol, on
asyncio's stable Protocol interface, is smaller than a fork of its request handler.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from collections.abc import Callable, Iterable

from aiohttp import web
from aiohttp.streams import StreamReader

from .appkeys import services_of

log = logging.getLogger("teleconsult.http")

REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 10\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 37\r\n\r\n"
           b"Too many connections from one address")


class SlowBody(TimeoutError):
    """No byte of the request body arrived within the body timeout. A TimeoutError: after the
    408, aiohttp's own reading of the rest of the body stops on it quietly and closes."""


async def _watch(content: StreamReader, timeout: float) -> None:
    """Fail the body's pending and next reads once it has not grown for `timeout` seconds."""
    loop = asyncio.get_running_loop()
    step = min(1.0, timeout / 4)
    received, since = content.total_bytes, loop.time()
    while not content.is_eof():
        await asyncio.sleep(step)
        if content.total_bytes != received:
            received, since = content.total_bytes, loop.time()
        elif loop.time() - since >= timeout:
            content.set_exception(SlowBody())
            return


@web.middleware
async def body_timeout_middleware(request: web.Request, handler):
    """408 and a closed connection for a client that stops sending its body (see module doc).
    Sits inside the error middleware and outside CSRF (which may read a form body)."""
    if not request.body_exists or request.content.is_eof():
        return await handler(request)
    timeout = services_of(request).settings.http_body_timeout_seconds
    watchdog = asyncio.ensure_future(_watch(request.content, timeout))
    try:
        return await handler(request)
    except SlowBody:
        log.info("request body too slow, refused (408): %s", request.match_info.route.name or "?")
        response = web.json_response({"error": "request body too slow", "status": 408}, status=408)
        response.force_close()
        return response
    finally:
        watchdog.cancel()


class ConnectionCap:
    """Open connections per peer address, at most `limit` each (0: no limit)."""

    def __init__(self, limit: int, exempt: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()):
        self.limit, self.exempt = limit, tuple(exempt)
        self.open: Counter[str] = Counter()

    def _capped(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return True
        return not any(ip in network for network in self.exempt)

    def admit(self, address: str) -> bool:
        if self.limit and self.open[address] >= self.limit and self._capped(address):
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


class _CappedProtocol(asyncio.Protocol):
    """Stands between the transport and aiohttp's request handler, which it creates only for an
    admitted connection."""

    def __init__(self, make_handler: Callable[[], asyncio.Protocol], cap: ConnectionCap):
        self._make_handler, self._cap = make_handler, cap
        self._inner: asyncio.Protocol | None = None
        self._address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) and peer else "unknown"
        if not self._cap.admit(address):
            log.warning("connection refused (503): too many from one address")
            transport.write(REFUSED)  # type: ignore[attr-defined]
            transport.close()
            return
        self._address = address
        self._inner = self._make_handler()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._cap.release(self._address)
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class CappedSite(web.TCPSite):
    """aiohttp's TCP site, each connection counted against a ConnectionCap."""

    __slots__ = ("cap",)

    def __init__(self, runner: web.BaseRunner, host: str, port: int, cap: ConnectionCap, **kwargs):
        super().__init__(runner, host, port, **kwargs)
        self.cap = cap

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _CappedProtocol(server, self.cap), self._host, self._port,
            backlog=self._backlog, reuse_address=self._reuse_address)
