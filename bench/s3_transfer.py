#!/usr/bin/env python
"""Drop box transfers to an S3 bucket vs the local directory, measured side by side in one run.

Three servers on loopback, each a subprocess pinned to core 0 (the client on core 1):

* local: the real app (`teleconsult serve`), documents in data_dir/documents (the default);
* s3: the same app with documents_store = s3, on a bucket of moto's standalone server (a
  subprocess on loopback: the only S3 endpoint installable here; Garage or MinIO would be
  faster, moto keeps objects in its own Python process's memory);
* bare s3: no app: the same client library (aiobotocore) in this process sending the same
  bytes straight to the same moto as one multipart upload of 8 MiB parts, and reading them
  back: what the bucket alone costs.

Each transfer: a standalone drop created with an API token, the pre-encrypted ciphertext
PATCHed in 4 MiB parts (what browsers send), completed, then downloaded (read and dropped).
MB/s are medians of --reps runs; ratios are against local and against bare s3 in the same
run. The servers' peak VmRSS is sampled every 10 ms during the first transfer of each size.

    PYTHONPATH=. .venv/bin/python bench/s3_transfer.py [--sizes 16,64] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from cores import CLIENT_CORE, pin_to  # noqa: E402  (bench/ is sys.path[0])
from transfer_servers import TELECONSULT, RSSSampler, Server, free_port, teleconsult_env  # noqa: E402

import s3_server  # noqa: E402  (tests/s3_server.py: moto on loopback)
from filedrop import ece  # noqa: E402

MiB = 1024 * 1024
PATCH_SIZE = 4 * MiB


def start_app(work: Path, name: str, max_mib: int, extra: dict[str, str]) -> tuple[Server, str]:
    port = free_port()
    env = {**teleconsult_env(work / name, port, max_mib), **extra}
    run = dict(env=env, capture_output=True, text=True, check=True, timeout=120)
    subprocess.run([TELECONSULT, "clinician", "add", "bench@example.org", "--name", "Dr Bench"],
                   input="a long enough bench password\n", **run)
    token = subprocess.run([TELECONSULT, "clinician", "token", "bench@example.org"], **run).stdout.strip()
    return Server(name, [TELECONSULT, "serve"], env, port, work / f"{name}.log"), token


async def through_app(session: aiohttp.ClientSession, url: str, token: str, ciphertext: bytes) -> tuple[float, float]:
    """(upload seconds, download seconds) of one drop through the app."""
    start = time.perf_counter()
    async with session.post(url + "/api/drop/files", json={"size": len(ciphertext)},
                            headers={"Authorization": f"Bearer {token}"}) as r:
        created = await r.json()
    doc, owner = created["id"], {"X-Owner-Token": created["owner_token"]}
    view = memoryview(ciphertext)
    for offset in range(0, len(ciphertext), PATCH_SIZE):
        async with session.patch(f"{url}/api/drop/files/{doc}/upload", data=bytes(view[offset:offset + PATCH_SIZE]),
                                 headers={**owner, "Upload-Offset": str(offset)}) as r:
            assert r.status == 200, await r.text()
    async with session.post(f"{url}/api/drop/files/{doc}/complete", data=b"m" * 1024, headers=owner) as r:
        assert r.status == 200, await r.text()
    uploaded = time.perf_counter()
    received = 0
    async with session.get(f"{url}/d/files/{doc}") as r:
        async for chunk in r.content.iter_chunked(256 * 1024):
            received += len(chunk)
    done = time.perf_counter()
    assert received == len(ciphertext)
    async with session.delete(f"{url}/api/drop/files/{doc}", headers=owner) as r:
        assert r.status == 200
    return uploaded - start, done - uploaded


async def bare_s3(client, bucket: str, ciphertext: bytes) -> tuple[float, float]:
    key = "bare/" + secrets.token_hex(8)
    start = time.perf_counter()
    upload = (await client.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]
    parts = []
    for number, offset in enumerate(range(0, len(ciphertext), 8 * MiB), start=1):
        answer = await client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                                          Body=ciphertext[offset:offset + 8 * MiB])
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    await client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
    uploaded = time.perf_counter()
    received = 0
    response = await client.get_object(Bucket=bucket, Key=key)
    async for chunk in response["Body"].iter_chunks(256 * 1024):
        received += len(chunk)
    done = time.perf_counter()
    assert received == len(ciphertext)
    await client.delete_object(Bucket=bucket, Key=key)
    return uploaded - start, done - uploaded


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="16,64", help="plaintext MiB, comma-separated")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pin_to(CLIENT_CORE)
    moto, endpoint = s3_server.start_server()
    pin_to(0, moto.pid)
    bucket = s3_server.bucket_for("bench", endpoint)
    s3_env = {"TELECONSULT_DOCUMENTS_STORE": "s3", "TELECONSULT_S3_ENDPOINT": endpoint,
              "TELECONSULT_S3_BUCKET": bucket, "TELECONSULT_S3_ACCESS_KEY_ID": s3_server.ACCESS_KEY_ID,
              "TELECONSULT_S3_SECRET_ACCESS_KEY": s3_server.SECRET_ACCESS_KEY}
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        max_mib = max(sizes) + 16
        local, local_token = start_app(work, "local", max_mib, {})
        s3, s3_token = start_app(work, "s3", max_mib, s3_env)
        try:
            async with aiohttp.ClientSession() as session, get_session().create_client(
                    "s3", endpoint_url=endpoint, region_name=s3_server.REGION,
                    aws_access_key_id=s3_server.ACCESS_KEY_ID, aws_secret_access_key=s3_server.SECRET_ACCESS_KEY,
                    config=AioConfig(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                                     response_checksum_validation="when_required")) as client:
                await local.ready(session)
                await s3.ready(session)
                print(f"{'MiB':>5} {'path':>8} {'up MB/s':>8} {'down MB/s':>9} {'up/local':>8} {'down/local':>10} "
                      f"{'up/bare':>7} {'down/bare':>9} {'peak RSS':>9}")
                for size in sizes:
                    ciphertext = ece.encrypt(secrets.token_bytes(size * MiB), secrets.token_bytes(16))
                    times: dict[str, list[tuple[float, float]]] = {"local": [], "s3": [], "bare s3": []}
                    peaks = {}
                    for rep in range(args.reps):
                        for name, server, token in (("local", local, local_token), ("s3", s3, s3_token)):
                            if rep == 0:
                                async with RSSSampler(server) as sampler:
                                    times[name].append(await through_app(session, server.url, token, ciphertext))
                                peaks[name] = sampler.peak
                            else:
                                times[name].append(await through_app(session, server.url, token, ciphertext))
                        times["bare s3"].append(await bare_s3(client, bucket, ciphertext))
                    mb = len(ciphertext) / 1e6
                    rate = {name: (mb / statistics.median(t[0] for t in runs), mb / statistics.median(t[1] for t in runs))
                            for name, runs in times.items()}
                    for name in ("local", "s3", "bare s3"):
                        up, down = rate[name]
                        peak = f"{peaks[name] / MiB:.0f} MiB" if name in peaks else "-"
                        print(f"{size:>5} {name:>8} {up:>8.0f} {down:>9.0f} {up / rate['local'][0]:>8.2f} "
                              f"{down / rate['local'][1]:>10.2f} {up / rate['bare s3'][0]:>7.2f} "
                              f"{down / rate['bare s3'][1]:>9.2f} {peak:>9}")
        finally:
            local.stop()
            s3.stop()
            moto.terminate()
            moto.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
