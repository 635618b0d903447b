#!/usr/bin/env python
"""The servers bench/drop_transfer.py measures, each a subprocess pinned to one core: ours
(`teleconsult serve`) and a bare aiohttp handler that only writes PATCHed bytes at their offset
and streams them back (run as `python bench/transfer_servers.py --port P --dir DIR`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from cores import SERVER_CORE, pin_to  # noqa: E402  (bench/ is sys.path[0])

from filedrop.storage import CHUNK_SIZE  # noqa: E402

TELECONSULT = str(Path(sys.executable).parent / "teleconsult")
SESSION_SECRET = "bench-session-secret-" + "x" * 40
JITSI_SECRET = "bench-jitsi-app-secret-" + "y" * 40


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# the bare handler (run in a subprocess: --role bare)
# --------------------------------------------------------------------------


def bare_app(directory: Path) -> web.Application:
    app = web.Application()

    async def create(request: web.Request) -> web.Response:
        file_id = secrets.token_hex(16)
        (directory / file_id).touch()
        return web.json_response({"id": file_id}, status=201)

    async def patch(request: web.Request) -> web.Response:
        offset = int(request.headers["Upload-Offset"])
        fd = os.open(directory / request.match_info["id"], os.O_WRONLY)
        try:
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            position = offset
            async for chunk in request.content.iter_chunked(CHUNK_SIZE):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
                position += len(chunk)
        finally:
            os.close(fd)
        return web.json_response({"offset": position})

    async def get(request: web.Request) -> web.StreamResponse:
        path = directory / request.match_info["id"]
        fd = os.open(path, os.O_RDONLY)
        try:
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream",
                                                   "Content-Length": str(os.fstat(fd).st_size)})
            await response.prepare(request)
            while chunk := os.read(fd, CHUNK_SIZE):
                await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            os.close(fd)

    async def complete(request: web.Request) -> web.Response:
        """The durable variant: fsync the file and its directory, as a publish must."""
        path = directory / request.match_info["id"]
        for target, flags in ((path, os.O_RDONLY), (directory, os.O_RDONLY)):
            fd = os.open(target, flags)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return web.json_response({"ok": True})

    async def delete(request: web.Request) -> web.Response:
        with contextlib.suppress(FileNotFoundError):
            (directory / request.match_info["id"]).unlink()
        return web.json_response({"deleted": True})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_post("/files", create)
    app.router.add_patch("/files/{id}", patch)
    app.router.add_get("/files/{id}", get)
    app.router.add_post("/files/{id}/complete", complete)
    app.router.add_delete("/files/{id}", delete)
    app.router.add_get("/healthz", healthz)
    return app


# --------------------------------------------------------------------------
# servers as subprocesses
# --------------------------------------------------------------------------


class Server:
    def __init__(self, name: str, argv: list[str], env: dict, port: int, log: Path):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log, "wb")
        self.process = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        pin_to(SERVER_CORE, self.process.pid)  # before it starts any thread (they inherit it)

    async def ready(self, session: aiohttp.ClientSession) -> None:
        for _ in range(300):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} server exited; see {self.log.name}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(self.url + "/healthz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} server did not start")

    def status(self) -> dict[str, int]:
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
        return values

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class RSSSampler:
    def __init__(self, server: Server, interval: float = 0.01):
        self.server, self.interval = server, interval
        self.peak = 0
        self.samples = 0

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.server.status()["VmRSS"])
            self.samples += 1
            await asyncio.sleep(self.interval)

    async def __aenter__(self):
        self.task = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def teleconsult_env(data_dir: Path, port: int, max_mib: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update({"TELECONSULT_DATA_DIR": str(data_dir), "TELECONSULT_SESSION_SECRET": SESSION_SECRET,
                "TELECONSULT_JITSI_DOMAIN": "meet.example.org", "TELECONSULT_JITSI_APP_ID": "bench",
                "TELECONSULT_JITSI_APP_SECRET": JITSI_SECRET, "TELECONSULT_HOST": "127.0.0.1",
                "TELECONSULT_PORT": str(port), "TELECONSULT_DOCUMENTS_MAX_MIB": str(max_mib),
                # every client of a benchmark comes from 127.0.0.1, where real patients and clinicians
                # come from as many addresses: the per-address cap (64) would refuse a burst's connections
                "TELECONSULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS": "4096"})
    return env


def start_ours(work: Path, max_mib: int, profile: str | None = None) -> tuple[Server, str]:
    port = free_port()
    env = teleconsult_env(work / "ours", port, max_mib)
    run = dict(env=env, capture_output=True, text=True, check=True, timeout=120)
    subprocess.run([TELECONSULT, "clinician", "add", "bench@example.org", "--name", "Dr Bench"],
                   input="a long enough bench password\n", **run)
    token = subprocess.run([TELECONSULT, "clinician", "token", "bench@example.org"], **run).stdout.strip()
    argv = [TELECONSULT, "serve"]
    if profile:  # cProfile of the whole server run, written when it stops
        argv = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "teleconsult.cli", "serve"]  # cli/__main__.py
    return Server("ours", argv, env, port, work / "ours.log"), token


def start_bare(work: Path) -> Server:
    port = free_port()
    (work / "bare").mkdir()
    argv = [sys.executable, __file__, "--port", str(port), "--dir", str(work / "bare")]
    return Server("bare", argv, dict(os.environ), port, work / "bare.log")


def main() -> None:
    parser = argparse.ArgumentParser(description="the bare handler, alone")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    web.run_app(bare_app(Path(args.dir)), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
