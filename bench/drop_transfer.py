#!/usr/bin/env python
"""Drop box transfers: our server path vs a bare aiohttp handler, measured side by side.

Servers (each a subprocess pinned to core 0, so its RSS and CPU can be read from /proc):

* ours: the real app, `teleconsult serve`, on loopback: standalone drop created with a
  clinician's API token, parts PATCHed with the owner token (filedrop/http.py -> store.py
  -> storage.py: database row, offset checks, temporary file, fsync + atomic publish on
  completion), anonymous streaming download;
* bare: an aiohttp app that only writes the PATCHed bytes at the given offset and streams
  them back, with the same chunk size (filedrop.storage.CHUNK_SIZE), the same kind of
  os.write/os.read loop and the same disk (both data directories under --dir). Its
  "bare + fsync" variant also fsyncs the file and its directory before the upload ends,
  the durability our publish gives (without it the bare handler's bytes are still only in
  the page cache when its clock stops).

The client (this process, pinned to core 1) sends the same parts (8 MiB, filedrop.client
.PART_SIZE) to both. Before every timed transfer, os.sync() writes back what earlier ones
left dirty, so that no transfer pays for another's.

1. "server path": the ciphertext is encrypted before the clock starts and held in memory;
   upload = create + parts + complete, download = the streamed GET, read and dropped.
2. "with client crypto": filedrop.client end to end (read the file, encrypt while
   uploading; download while decrypting into a temporary file, fsync, rename) vs the same
   file I/O without crypto against the bare handler (read the file in parts; write the
   download to a file and fsync it).

Ratios are bare time / our time for the same transfer in the same run (1.0 = as fast as the
bare handler; the aim is >= 0.8); each figure is the median of --reps runs, ours and bare
alternating. During the first up+down of each size through our server, its VmRSS is sampled
every 10 ms from /proc/PID/status (and VmHWM read after).

3. Browser (Chromium, on a page of the real app so that fetch is same-origin under its CSP):
   raw WebCrypto AES-128-GCM over 65520-byte records (what RFC 8188 does, nothing else),
   static/js/ece.js encryptStream alone, ece.js encrypt + upload in 4 MiB parts (as the
   documents panel does), and the same upload without encryption, all over the same
   --browser-mib of random bytes. Chromium is not pinned.

    .venv/bin/python bench/drop_transfer.py [--sizes 16,512] [--reps 5] [--browser-mib 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from cores import CLIENT_CORE, SERVER_CORE, pin_to  # noqa: E402  (bench/ is sys.path[0])

from filedrop import client, ece
from filedrop.storage import CHUNK_SIZE

MiB = 1024 * 1024
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
                "TELECONSULT_PORT": str(port), "TELECONSULT_DOCUMENTS_MAX_MIB": str(max_mib)})
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
        argv = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "teleconsult.cli", "serve"]
    return Server("ours", argv, env, port, work / "ours.log"), token


def start_bare(work: Path) -> Server:
    port = free_port()
    (work / "bare").mkdir()
    argv = [sys.executable, __file__, "--role", "bare", "--port", str(port), "--dir", str(work / "bare")]
    return Server("bare", argv, dict(os.environ), port, work / "bare.log")


# --------------------------------------------------------------------------
# transfers (client side)
# --------------------------------------------------------------------------


async def _ok(response: aiohttp.ClientResponse) -> dict:
    if response.status >= 400:
        raise RuntimeError(f"{response.method} {response.url.path}: {response.status} {await response.text()}")
    return await response.json(content_type=None)


async def _drain(response: aiohttp.ClientResponse) -> int:
    total = 0
    async for chunk in response.content.iter_chunked(CHUNK_SIZE):
        total += len(chunk)
    return total


def settle() -> None:
    """Write back every dirty page before a timed transfer, so that no transfer pays for the
    previous one's (the bare handler never syncs; its pages would be flushed on our clock)."""
    os.sync()


async def ours_server_path(session, server: Server, token: str, ciphertext: memoryview,
                           meta: bytes) -> tuple[float, float]:
    size = len(ciphertext)
    settle()
    auth = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    async with session.post(server.url + "/api/drop/files", json={"size": size}, headers=auth) as r:
        created = await _ok(r)
    doc, owner = created["id"], {"X-Owner-Token": created["owner_token"]}
    for offset in range(0, size, client.PART_SIZE):
        async with session.patch(f"{server.url}/api/drop/files/{doc}/upload",
                                 data=ciphertext[offset:offset + client.PART_SIZE],
                                 headers={**owner, "Upload-Offset": str(offset)}) as r:
            await _ok(r)
    async with session.post(f"{server.url}/api/drop/files/{doc}/complete", data=meta, headers=owner) as r:
        await _ok(r)
    uploaded = time.perf_counter()
    async with session.get(f"{server.url}/d/files/{doc}") as r:
        assert await _drain(r) == size
    downloaded = time.perf_counter()
    async with session.delete(f"{server.url}/api/drop/files/{doc}", headers=owner) as r:
        await _ok(r)
    return uploaded - started, downloaded - uploaded


async def bare_server_path(session, server: Server, ciphertext: memoryview,
                           durable: bool = False) -> tuple[float, float]:
    size = len(ciphertext)
    settle()
    started = time.perf_counter()
    async with session.post(server.url + "/files") as r:
        doc = (await _ok(r))["id"]
    for offset in range(0, size, client.PART_SIZE):
        async with session.patch(f"{server.url}/files/{doc}", data=ciphertext[offset:offset + client.PART_SIZE],
                                 headers={"Upload-Offset": str(offset)}) as r:
            await _ok(r)
    if durable:
        async with session.post(f"{server.url}/files/{doc}/complete") as r:
            await _ok(r)
    uploaded = time.perf_counter()
    async with session.get(f"{server.url}/files/{doc}") as r:
        assert await _drain(r) == size
    downloaded = time.perf_counter()
    async with session.delete(f"{server.url}/files/{doc}") as r:
        await _ok(r)
    return uploaded - started, downloaded - uploaded


async def ours_with_crypto(session, server: Server, token: str, source: Path, out: Path) -> tuple[float, float]:
    settle()
    started = time.perf_counter()
    link, sent = await client.send_drop(session, server.url, token, source)
    uploaded = time.perf_counter()
    got = await client.download(session, client.Box.standalone_drops(server.url), sent.id, link.secret,
                                output=out, force=True)
    downloaded = time.perf_counter()
    assert got.size == source.stat().st_size
    await client.delete_drop(session, server.url, sent.id, sent.owner_token)
    out.unlink()
    return uploaded - started, downloaded - uploaded


async def bare_with_file_io(session, server: Server, source: Path, out: Path) -> tuple[float, float]:
    """The same file I/O as our client (read in parts; write the download, fsync), no crypto."""
    settle()
    started = time.perf_counter()
    async with session.post(server.url + "/files") as r:
        doc = (await _ok(r))["id"]
    offset = 0
    with open(source, "rb") as f:
        while part := f.read(client.PART_SIZE):
            async with session.patch(f"{server.url}/files/{doc}", data=part,
                                     headers={"Upload-Offset": str(offset)}) as r:
                await _ok(r)
            offset += len(part)
    uploaded = time.perf_counter()
    with open(out, "wb") as f:
        async with session.get(f"{server.url}/files/{doc}") as r:
            async for chunk in r.content.iter_chunked(CHUNK_SIZE):
                f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    downloaded = time.perf_counter()
    async with session.delete(f"{server.url}/files/{doc}") as r:
        await _ok(r)
    out.unlink()
    return uploaded - started, downloaded - uploaded


def mib_s(nbytes: int, seconds: float) -> float:
    return nbytes / MiB / seconds


# --------------------------------------------------------------------------
# browser
# --------------------------------------------------------------------------

BROWSER_JS = """async ([token, mib]) => {
  const ece = await import('/static/js/ece.js');
  const size = mib * 1024 * 1024;
  const plain = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(plain.subarray(i, Math.min(size, i + 65536)));
  const blob = new Blob([plain]);
  const out = {};

  // 1. raw WebCrypto AES-128-GCM over records of 65520 bytes (RFC 8188's unit of work)
  const key = await crypto.subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(16)), 'AES-GCM', false, ['encrypt']);
  const iv = new Uint8Array(12);
  let t = performance.now();
  for (let offset = 0, seq = 0; offset < size; offset += 65519, seq += 1) {
    new DataView(iv.buffer).setUint32(8, seq);
    const record = new Uint8Array(65520);
    record.set(plain.subarray(offset, offset + 65519));
    await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, record);
  }
  out.rawAesGcm = performance.now() - t;

  // 2. ece.js encryptStream alone (blob -> ciphertext, discarded)
  const ikm = crypto.getRandomValues(new Uint8Array(16));
  t = performance.now();
  const reader = ece.encryptStream(blob.stream(), ikm).getReader();
  let produced = 0;
  for (;;) { const { value, done } = await reader.read(); if (done) break; produced += value.length; }
  out.eceEncrypt = performance.now() - t;
  out.ciphertextBytes = produced;

  // 3. ece.js encrypt + upload to the real app (standalone drop, 4 MiB parts, sequential)
  const part = 4 * 1024 * 1024;
  t = performance.now();
  const auth = { Authorization: `Bearer ${token}` };
  const created = await (await fetch('/api/drop/files', { method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ size: ece.paddedSize(size) }) })).json();
  const owner = { 'X-Owner-Token': created.owner_token };
  const secret = crypto.getRandomValues(new Uint8Array(16));
  const stream = ece.encryptStream(blob.stream(), await ece.deriveContentIkm(secret, created.id)).getReader();
  let buffer = new Uint8Array(part), filled = 0, offset = 0;
  const flush = async () => {
    if (!filled) return;
    const r = await fetch(`/api/drop/files/${created.id}/upload`, { method: 'PATCH',
      headers: { ...owner, 'Upload-Offset': String(offset) }, body: buffer.subarray(0, filled) });
    if (!r.ok) throw new Error(`PATCH ${r.status}`);
    offset += filled; filled = 0; buffer = new Uint8Array(part);
  };
  for (;;) {
    const { value, done } = await stream.read();
    if (done) break;
    let chunk = value;
    while (chunk.length) {
      const take = Math.min(chunk.length, part - filled);
      buffer.set(chunk.subarray(0, take), filled);
      filled += take; chunk = chunk.subarray(take);
      if (filled === part) await flush();
    }
  }
  await flush();
  const meta = await ece.encryptMetadata(await ece.deriveMetadataKey(secret, created.id),
    { name: 'bench.bin', type: 'application/octet-stream', size, role: 'sender' });
  const done = await fetch(`/api/drop/files/${created.id}/complete`, { method: 'POST', headers: owner, body: meta });
  if (!done.ok) throw new Error(`complete ${done.status}`);
  out.encryptUpload = performance.now() - t;
  await fetch(`/api/drop/files/${created.id}`, { method: 'DELETE', headers: owner });

  // 4. the same upload without encryption: random bytes of the ciphertext's size, same parts
  t = performance.now();
  const plainDrop = await (await fetch('/api/drop/files', { method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ size: ece.paddedSize(size) }) })).json();
  const bytes = new Uint8Array(ece.paddedSize(size));
  bytes.set(plain);
  for (let offset = 0; offset < bytes.length; offset += part) {
    const r = await fetch(`/api/drop/files/${plainDrop.id}/upload`, { method: 'PATCH',
      headers: { 'X-Owner-Token': plainDrop.owner_token, 'Upload-Offset': String(offset) },
      body: bytes.subarray(offset, offset + part) });
    if (!r.ok) throw new Error(`PATCH ${r.status}`);
  }
  out.rawUpload = performance.now() - t;
  await fetch(`/api/drop/files/${plainDrop.id}`, { method: 'DELETE', headers: { 'X-Owner-Token': plainDrop.owner_token } });
  out.userAgent = navigator.userAgent;
  return out;
}"""


async def browser_bench(server: Server, token: str, mib: int) -> dict:
    os.sched_setaffinity(0, range(os.cpu_count() or 1))  # Chromium may use both cores
    sys.path.insert(0, str(ROOT / "tests"))
    from browser import chromium  # tests/browser.py: Debian's Chromium through Playwright
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(server.url + "/login")
        await page.evaluate(BROWSER_JS, [token, 4])  # warm-up
        return await page.evaluate(BROWSER_JS, [token, mib])


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------


def fmt_row(label: str, nbytes: int, ours: tuple[float, float], bare: tuple[float, float]) -> str:
    (ou, od), (bu, bd) = ours, bare
    return (f"| {label} | {mib_s(nbytes, ou):.0f} / {mib_s(nbytes, od):.0f} | {mib_s(nbytes, bu):.0f} / "
            f"{mib_s(nbytes, bd):.0f} | {bu / ou:.2f} | {bd / od:.2f} | **{(bu + bd) / (ou + od):.2f}** |")


def median_pair(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


async def run(args) -> dict:
    pinned = pin_to(CLIENT_CORE)
    work = Path(tempfile.mkdtemp(prefix="drop-bench-", dir=args.dir))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: dict = {"sizes_mib": sizes, "reps": args.reps, "pinned": pinned, "rows": []}
    ours, token = start_ours(work, max_mib=max(sizes) * 2 + 16, profile=args.profile_server)
    bare = start_bare(work)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await ours.ready(session)
            await bare.ready(session)
            base_rss = ours.status()["VmRSS"]
            results["ours_rss_idle"] = base_rss
            lines = [
                "| transfer | ours up / down MiB/s | bare up / down MiB/s | ratio up | ratio down | ratio total |",
                "|---|---|---|---|---|---|",
            ]
            for mib in sizes:
                plaintext_size = mib * MiB
                # 1. server path: real ciphertext, encrypted before the clock starts
                source = work / f"plain-{mib}.bin"
                with open(source, "wb") as f:
                    for _ in range(mib):
                        f.write(os.urandom(MiB))
                secret = secrets.token_bytes(16)
                ikm = ece.derive_content_ikm(secret, "bench-document-id")
                with open(source, "rb") as f:
                    ciphertext = memoryview(b"".join(ece.encrypt_stream(iter(lambda: f.read(MiB), b""), ikm)))
                meta = ece.encrypt_metadata(ece.derive_metadata_key(secret, "bench-document-id"),
                                            {"name": "b", "type": "", "size": plaintext_size, "role": "sender"})
                size = len(ciphertext)
                ours_runs, bare_runs, durable_runs = [], [], []
                cpu_ours = cpu_bare = 0.0
                for rep in range(args.reps):
                    c0 = ours.cpu_seconds()
                    if rep == 0:
                        async with RSSSampler(ours) as sampler:
                            ours_runs.append(await ours_server_path(session, ours, token, ciphertext, meta))
                        results.setdefault("ours_rss_peak_by_size", {})[mib] = sampler.peak
                        results["ours_rss_samples"] = sampler.samples
                        results["ours_vmhwm"] = ours.status()["VmHWM"]
                    else:
                        ours_runs.append(await ours_server_path(session, ours, token, ciphertext, meta))
                    cpu_ours += ours.cpu_seconds() - c0
                    c0 = bare.cpu_seconds()
                    bare_runs.append(await bare_server_path(session, bare, ciphertext))
                    cpu_bare += bare.cpu_seconds() - c0
                    durable_runs.append(await bare_server_path(session, bare, ciphertext, durable=True))
                o, b, d = median_pair(ours_runs), median_pair(bare_runs), median_pair(durable_runs)
                lines.append(fmt_row(f"{mib} MiB, server path", size, o, b))
                lines.append(fmt_row(f"{mib} MiB, server path vs bare + fsync", size, o, d))
                results["rows"].append({"size_mib": mib, "kind": "server path", "ours": o, "bare": b,
                                        "bare_fsync": d, "ours_runs": ours_runs, "bare_runs": bare_runs,
                                        "bare_fsync_runs": durable_runs,
                                        "server_cpu_s_per_rep": {"ours": cpu_ours / args.reps,
                                                                 "bare": cpu_bare / args.reps}})
                del ciphertext
                # 2. with our client's encryption and decryption (and the same file I/O for bare)
                out = work / f"out-{mib}.bin"
                ours_runs, bare_runs = [], []
                for _ in range(args.reps):
                    ours_runs.append(await ours_with_crypto(session, ours, token, source, out))
                    bare_runs.append(await bare_with_file_io(session, bare, source, out))
                o, b = median_pair(ours_runs), median_pair(bare_runs)
                lines.append(fmt_row(f"{mib} MiB, with client crypto", size, o, b))
                results["rows"].append({"size_mib": mib, "kind": "with client crypto", "ours": o, "bare": b,
                                        "ours_runs": ours_runs, "bare_runs": bare_runs})
                source.unlink()
                print("\n".join(lines[-3:]), flush=True)
            results["table"] = lines
            results["ours_rss_after"] = ours.status()
            results["bare_rss_after"] = bare.status()
            if args.browser_mib:
                results["browser"] = await browser_bench(ours, token, args.browser_mib)
                results["browser"]["mib"] = args.browser_mib
    finally:
        ours.stop()
        bare.stop()
        shutil.rmtree(work, ignore_errors=True)
    return results


def report(results: dict) -> None:
    print()
    print("\n".join(results["table"]))
    print()
    mb = MiB
    peaks = ", ".join(f"{mib} MiB transfer {peak / mb:.1f} MiB"
                      for mib, peak in results.get("ours_rss_peak_by_size", {}).items())
    print(f"server RSS (ours): idle {results['ours_rss_idle'] / mb:.1f} MiB; peak VmRSS sampled every 10 ms "
          f"during the first up+down of each size: {peaks}; VmHWM after {results.get('ours_vmhwm', 0) / mb:.1f} MiB "
          "(includes start-up)")
    print(f"server RSS (bare) at the end: {results['bare_rss_after']['VmRSS'] / mb:.1f} MiB, "
          f"VmHWM {results['bare_rss_after']['VmHWM'] / mb:.1f} MiB")
    for row in results["rows"]:
        if "server_cpu_s_per_rep" in row:
            cpu = row["server_cpu_s_per_rep"]
            print(f"server CPU per {row['size_mib']} MiB up+down: ours {cpu['ours']:.2f} s, bare {cpu['bare']:.2f} s")
    if "browser" in results:
        b = results["browser"]
        size = b["mib"]
        raw = size / (b["rawAesGcm"] / 1000)
        enc = size / (b["eceEncrypt"] / 1000)
        up = size / (b["encryptUpload"] / 1000)
        print(f"browser ({b['mib']} MiB, {b['userAgent'].split(' ')[-2] if ' ' in b['userAgent'] else ''}):")
        print(f"  raw WebCrypto AES-GCM, 65520-byte records: {raw:.0f} MiB/s")
        print(f"  ece.js encryptStream:                      {enc:.0f} MiB/s  ({enc / raw:.2f} of raw)")
        print(f"  ece.js encrypt + upload (4 MiB parts):     {up:.0f} MiB/s  ({up / raw:.2f} of raw)")
        plain_up = size / (b["rawUpload"] / 1000)
        print(f"  upload alone, no crypto (4 MiB parts):     {plain_up:.0f} MiB/s  "
              f"(encrypt + upload is {up / plain_up:.2f} of it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="16,512", help="plaintext sizes in MiB, comma-separated")
    parser.add_argument("--reps", type=int, default=5, help="runs per size and server (median kept)")
    parser.add_argument("--browser-mib", type=int, default=64, help="browser data size, MiB (0: skip)")
    parser.add_argument("--dir", default=None, help="where both servers keep their files (same disk)")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--profile-server", metavar="FILE", help="run our server under cProfile, stats to FILE")
    parser.add_argument("--role", choices=["driver", "bare"], default="driver", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "bare":
        web.run_app(bare_app(Path(args.dir)), host="127.0.0.1", port=args.port, access_log=None, print=None)
        return
    started = time.perf_counter()
    results = asyncio.run(run(args))
    report(results)
    print(f"\n(total {time.perf_counter() - started:.0f} s; machine: {os.cpu_count()} CPUs)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
