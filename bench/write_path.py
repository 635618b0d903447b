#!/usr/bin/env python
"""The write path of `teleconsult serve`, against baselines measured in the same run.

The server is a `teleconsult serve` subprocess pinned to core 0, this client to core 1
(bench/cores.py). With --compare DIR, a second server runs the same code from another checkout
(e.g. main before a change), and every step alternates between the two: before/after in one run.

1. upload: a 256 MiB standalone drop (--mib) sent in 8 MiB PATCH parts (filedrop.client
   .PART_SIZE), the ciphertext made before the clock starts; the median PATCH time and the
   upload rate (create + parts + complete). Each PATCH writes its part, starts its write-back
   and commits the part's `received` value to SQLite.
2. server CPU per request: the server's utime+stime (from /proc) over --requests sequential
   GET /healthz (one SELECT 1: the baseline of the same server), then as many
   POST /api/consultations (createConsultation); ratio create / healthz.
3. burst: --burst createConsultation requests sent at once (one connection each): answers
   other than 201, and the time until the last answer.

    .venv/bin/python bench/write_path.py [--mib 256] [--reps 3] [--requests 300] [--burst 200]
                                         [--compare /work/main]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "bench", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from cores import CLIENT_CORE, pin_to  # noqa: E402
from transfer_servers import start_ours  # noqa: E402

from filedrop import client, ece  # noqa: E402

MiB = 1024 * 1024


async def _ok(response: aiohttp.ClientResponse) -> dict:
    if response.status >= 400:
        raise RuntimeError(f"{response.method} {response.url.path}: {response.status} {await response.text()}")
    return await response.json(content_type=None)


async def upload(session, url: str, token: str, ciphertext: memoryview, meta: bytes) -> tuple[float, list[float]]:
    os.sync()  # no upload pays for the previous one's dirty pages
    auth = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    async with session.post(url + "/api/drop/files", json={"size": len(ciphertext)}, headers=auth) as r:
        created = await _ok(r)
    doc, owner = created["id"], {"X-Owner-Token": created["owner_token"]}
    parts = []
    for offset in range(0, len(ciphertext), client.PART_SIZE):
        part_started = time.perf_counter()
        async with session.patch(f"{url}/api/drop/files/{doc}/upload", data=ciphertext[offset:offset + client.PART_SIZE],
                                 headers={**owner, "Upload-Offset": str(offset)}) as r:
            await _ok(r)
        parts.append(time.perf_counter() - part_started)
    async with session.post(f"{url}/api/drop/files/{doc}/complete", data=meta, headers=owner) as r:
        await _ok(r)
    elapsed = time.perf_counter() - started
    async with session.delete(f"{url}/api/drop/files/{doc}", headers=owner) as r:
        await _ok(r)
    return elapsed, parts


async def cpu_per_request(session, server, method: str, url: str, headers: dict, n: int) -> float:
    before = server.cpu_seconds()
    for _ in range(n):
        async with session.request(method, url, headers=headers) as r:
            await r.read()
            assert r.status < 300, r.status
    return (server.cpu_seconds() - before) / n


async def burst(url: str, token: str, n: int) -> tuple[int, float]:
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one() -> int:
            async with session.post(url + "/api/consultations", headers=auth) as r:
                await r.read()
                return r.status
        started = time.perf_counter()
        statuses = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        elapsed = time.perf_counter() - started
    return sum(1 for s in statuses if s != 201), elapsed


async def main(args) -> None:
    pin_to(CLIENT_CORE)
    work = Path(tempfile.mkdtemp(prefix="write-path-"))
    trees = {"this": ROOT} | ({"compare": Path(args.compare).resolve()} if args.compare else {})
    servers = {}
    for name, tree in trees.items():
        (work / name).mkdir()
        os.environ["PYTHONPATH"] = str(tree)  # the server (and the CLI that makes its clinician) run that tree
        servers[name] = start_ours(work / name, max_mib=2 * args.mib + 16)  # padded to its size bucket
    size = ece.padded_size(args.mib * MiB - 4096)
    ciphertext = memoryview(os.urandom(size))
    meta = ece.encrypt_metadata(os.urandom(32), {"name": "bench.bin", "type": "application/octet-stream",
                                                  "size": 1, "role": "standalone"})
    results: dict[str, dict[str, list[float]]] = {name: {} for name in servers}

    def add(name: str, key: str, value: float) -> None:
        results[name].setdefault(key, []).append(value)
    async with aiohttp.ClientSession() as session:
        for server, _ in servers.values():
            await server.ready(session)
        for _ in range(args.reps):
            for name, (server, token) in servers.items():
                elapsed, parts = await upload(session, server.url, token, ciphertext, meta)
                add(name, "upload MiB/s", size / MiB / elapsed)
                add(name, "PATCH 8 MiB median ms", statistics.median(parts) * 1000)
            for name, (server, token) in servers.items():
                healthz = await cpu_per_request(session, server, "GET", server.url + "/healthz", {}, args.requests)
                create = await cpu_per_request(session, server, "POST", server.url + "/api/consultations",
                                               {"Authorization": f"Bearer {token}"}, args.requests)
                add(name, "CPU ms per /healthz", healthz * 1000)
                add(name, "CPU ms per createConsultation", create * 1000)
                add(name, "CPU create / healthz", create / healthz)
            for name, (server, token) in servers.items():
                errors, elapsed = await burst(server.url, token, args.burst)
                add(name, f"burst of {args.burst} creates: errors", errors)
                add(name, f"burst of {args.burst} creates: s to the last", elapsed)
    for server, _ in servers.values():
        server.stop()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (cpus: {os.cpu_count()}); "
          f"medians of {args.reps} alternating runs")
    names = list(servers)
    print("| measure | " + " | ".join(names) + (" | this / compare |" if args.compare else " |"))
    print("|---" * (len(names) + 1 + bool(args.compare)) + "|")
    for key in results["this"]:
        medians = {name: statistics.median(results[name][key]) for name in names}
        row = f"| {key} | " + " | ".join(f"{medians[n]:.2f}" for n in names)
        if args.compare:
            row += f" | {medians['this'] / medians['compare']:.2f}" if medians["compare"] else " | -"
        print(row + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--compare", metavar="DIR", help="another checkout whose server runs beside this one")
    asyncio.run(main(parser.parse_args()))
