"""A loopback TCP proxy in front of the app that can cut the network for real: `cut()` closes
every open connection (event streams included, which Playwright's set_offline leaves alone) and
refuses new ones until `restore()`, as a phone losing its signal behind a carrier's NAT would."""

from __future__ import annotations

import asyncio
import contextlib

from conftest import free_port


class FaultProxy:
    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.down = False
        self.refused = 0  # connections refused while cut
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self.url

    def cut(self) -> None:
        self.down = True
        for writer in list(self._open):
            writer.transport.abort()  # a reset, not a polite close: the other side learns nothing
        self._open.clear()

    def restore(self) -> None:
        self.down = False

    async def close(self) -> None:
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
        self._open.update((writer, up_writer))

        async def pipe(src, dst):
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort() if self.down else dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._open.discard(writer)
        self._open.discard(up_writer)
