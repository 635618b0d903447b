#!/usr/bin/env python
"""Drop box transfers: our server path vs a bare aiohttp handler, measured side by side.

Servers (each a subprocess pinned to core 0, so its RSS and CPU can be read from /proc):

* ours: the real app, `teleconsult serve`, on loopback: standalone drop created with a
  clinician's API token, parts PATCHed with the owner token (filedrop/http.py -> uploads.py
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
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from cores import CLIENT_CORE, pin_to  # noqa: E402  (bench/ is sys.path[0])

from filedrop import client, ece
from filedrop.storage import CHUNK_SIZE
from teleconsult import drop_links

MiB = 1024 * 1024
from transfer_browser import browser_bench  # noqa: E402
from transfer_servers import RSSSampler, Server, start_bare, start_ours  # noqa: E402



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
    link, sent = await drop_links.send_drop(session, server.url, token, source)
    uploaded = time.perf_counter()
    got = await client.download(session, drop_links.standalone_box(server.url), sent.id, link.secret,
                                output=out, force=True)
    downloaded = time.perf_counter()
    assert got.size == source.stat().st_size
    await client.delete_drop(session, drop_links.standalone_box(server.url), sent.id, sent.owner_token)
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
    args = parser.parse_args()
    started = time.perf_counter()
    results = asyncio.run(run(args))
    report(results)
    print(f"\n(total {time.perf_counter() - started:.0f} s; machine: {os.cpu_count()} CPUs)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
