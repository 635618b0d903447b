"""An S3 endpoint for the tests: moto's standalone server (`moto[server]`, from PyPI), run as
a subprocess on loopback.

No S3 server binary (Garage, MinIO, SeaweedFS) is installable from the registries these
machines reach, so moto stands in for the bucket, and only for it: it speaks the S3 protocol
over real HTTP, and the code under test is the real client (aiobotocore) signing real requests.

TELECONSULT_TEST_STORE=s3 runs the app's tests with their documents in a bucket of this server
(tests/conftest.py); the default is the local directory.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

ACCESS_KEY_ID = "moto-test-access-key"
SECRET_ACCESS_KEY = "moto-test-secret-key-" + "s" * 20  # 32+ characters, as the setting requires
REGION = "us-east-1"

_server: dict[str, object] = {}  # one server per test process, started on first use


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    """A new moto server on a free loopback port; returns (process, endpoint URL)."""
    port = _free_port()
    command = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    process = subprocess.Popen([command, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("moto_server exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("moto_server did not listen within 30 s")


def endpoint() -> str:
    """The shared server's URL (started on first use, stopped at exit)."""
    if "url" not in _server:
        process, url = start_server()
        atexit.register(lambda: (process.terminate(), process.wait(10)))
        _server.update(process=process, url=url)
    return _server["url"]


def client(url: str | None = None):
    """A plain boto3 client, for the tests' own look at the bucket (never the code under test)."""
    return boto3.client("s3", endpoint_url=url or endpoint(), region_name=REGION, aws_access_key_id=ACCESS_KEY_ID,
                        aws_secret_access_key=SECRET_ACCESS_KEY, config=Config(s3={"addressing_style": "path"}))


def bucket_for(key: str, url: str | None = None) -> str:
    """A bucket named after `key` (a data directory: two apps on the same data share it), created if new."""
    name = "tc-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    s3 = client(url)
    try:
        s3.head_bucket(Bucket=name)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=name)
    return name


def objects(bucket: str, url: str | None = None) -> list[str]:
    """Every key in the bucket, and every multipart upload still open (as "upload:{key}")."""
    s3 = client(url)
    keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])]
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sorted(keys + [f"upload:{u['Key']}" for u in uploads])


def s3_settings(data_dir: Path) -> dict[str, object]:
    """Settings putting an app's documents in the test server's bucket for `data_dir`."""
    return {"documents_store": "s3", "s3_endpoint": endpoint(), "s3_bucket": bucket_for(str(data_dir)),
            "s3_region": REGION, "s3_access_key_id": ACCESS_KEY_ID, "s3_secret_access_key": SECRET_ACCESS_KEY}


def wanted() -> bool:
    """TELECONSULT_TEST_STORE=s3: the app's tests keep their documents in a bucket."""
    return os.environ.get("TELECONSULT_TEST_STORE", "local") == "s3"


def stored(settings) -> list[str]:
    """What an app's document store holds, whichever it is: file paths under data_dir/documents,
    or the bucket's keys and open multipart uploads."""
    if settings.documents_store == "s3":
        return objects(settings.s3_bucket, settings.s3_endpoint)
    return sorted(str(p) for p in (Path(settings.data_dir) / "documents").rglob("*") if p.is_file())


def stored_bytes(settings, doc: str) -> bytes:
    """The published ciphertext of `doc`, read from the store itself (not through the app)."""
    if settings.documents_store == "s3":
        s3 = client(settings.s3_endpoint)
        return s3.get_object(Bucket=settings.s3_bucket, Key=f"{settings.s3_prefix}ready/{doc}")["Body"].read()
    return (Path(settings.data_dir) / "documents" / "ready" / doc).read_bytes()


def held_bytes(settings) -> int:
    """Ciphertext bytes the store holds, finished or not (S3: objects and open uploads' parts)."""
    if settings.documents_store != "s3":
        return sum(p.stat().st_size for p in (Path(settings.data_dir) / "documents").rglob("*") if p.is_file())
    s3 = client(settings.s3_endpoint)
    total = sum(item["Size"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket)
                for item in page.get("Contents", []))
    for upload in s3.list_multipart_uploads(Bucket=settings.s3_bucket).get("Uploads", []):
        parts = s3.list_parts(Bucket=settings.s3_bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        total += sum(part["Size"] for part in parts.get("Parts", []))
    return total


def bucket_bytes(settings) -> bytes:
    """Every object's bytes in an app's bucket (b"" for the local store: its files are in data_dir)."""
    if settings.documents_store != "s3":
        return b""
    s3 = client(settings.s3_endpoint)
    return b"".join(s3.get_object(Bucket=settings.s3_bucket, Key=key)["Body"].read()
                    for key in objects(settings.s3_bucket, settings.s3_endpoint) if not key.startswith("upload:"))


def replace_stored(settings, doc: str, data: bytes) -> None:
    """Write `data` as the published ciphertext of `doc` in either store (a tampering test)."""
    if settings.documents_store == "s3":
        client(settings.s3_endpoint).put_object(Bucket=settings.s3_bucket, Key=f"{settings.s3_prefix}ready/{doc}",
                                                Body=data)
    else:
        (Path(settings.data_dir) / "documents" / "ready" / doc).write_bytes(data)


def plant_orphan(settings, file_id: str, data: bytes) -> None:
    """Ciphertext with no row (what a crash before the row was written would leave)."""
    replace_stored(settings, file_id, data)


def is_published(settings, doc: str) -> bool:
    """Whether the store holds the published ciphertext of `doc`."""
    if settings.documents_store == "s3":
        return f"{settings.s3_prefix}ready/{doc}" in objects(settings.s3_bucket, settings.s3_endpoint)
    return (Path(settings.data_dir) / "documents" / "ready" / doc).exists()
