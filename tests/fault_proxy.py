"""A loopback TCP proxy in front of the app that can cut the network for real.

`cut()` closes every open connection (event streams included, which Playwright's set_offline leaves
alone) and refuses new ones until `restore()`, as a phone losing its signal behind a carrier's NAT
would when the NAT answers with a reset. `freeze()` is the silent kind of loss: open event streams
stay open but carry nothing any more, in either direction, for good (the NAT forgot them: no reset
ever comes), the other open connections are reset and new ones refused until `restore()`."""

from __future__ import annotations

import asyncio
import contextlib

from conftest import free_port


class _Connection:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter):
        self.writers = (client, upstream)
        self.stream = False  # answered with text/event-stream
        self.frozen = False


class FaultProxy:
    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.down = False
        self.refused = 0  # connections refused while cut
        self.streams = 0  # event streams opened through the proxy
        self._open: set[_Connection] = set()
        self._closing = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self.url

    def cut(self) -> None:
        self.down = True
        for connection in list(self._open):
            for writer in connection.writers:
                writer.transport.abort()  # a reset, not a polite close: the other side learns nothing
        self._open.clear()

    def freeze(self) -> None:
        self.down = True
        for connection in list(self._open):
            if connection.stream:
                connection.frozen = True
            else:
                for writer in connection.writers:
                    writer.transport.abort()
                self._open.discard(connection)

    def restore(self) -> None:
        self.down = False

    async def stream_opened(self, timeout: float) -> None:
        """Wait until a page has opened its event stream through the proxy."""
        for _ in range(int(timeout * 10)):
            if self.streams:
                return
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        self._closing.set()
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader, writer) -> None:
        if self.down:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        connection = _Connection(writer, up_writer)
        self._open.add(connection)

        async def pipe(src, dst, answers: bool):
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if answers and not connection.stream and b"text/event-stream" in data:
                        connection.stream = True
                        self.streams += 1
                    if connection.frozen:
                        await self._closing.wait()  # nothing passes any more, nothing is closed
                        break
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort() if self.down or self._closing.is_set() else dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
        self._open.discard(connection)
