"""`teleconsult move-documents`: an instance on its local directory moves to an S3 bucket, losing
no published document and no upload in progress. The bucket is moto's standalone server
(tests/s3_server.py), a stand-in for Garage, MinIO or SeaweedFS whose binaries cannot be installed
here; the command under test runs the real client."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path

import postgres_cluster
import s3_server
from conftest import TEST_JITSI_SECRET, TEST_SECRET
from test_s3_store import _complete, _create, _ciphertext, _download, _patch
from filedrop import ece

TELECONSULT = str(Path(sys.executable).parent / "teleconsult")
MiB = 1024 * 1024


async def _move(data_dir: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    settings = {"data_dir": str(data_dir), "session_secret": TEST_SECRET, "jitsi_domain": "meet.example.org",
                "jitsi_app_id": "teleconsult-test", "jitsi_app_secret": TEST_JITSI_SECRET,
                **s3_server.s3_settings(data_dir)}
    if postgres_cluster.wanted():  # the same database as the app's (tests/conftest.py)
        settings["database_url"] = postgres_cluster.cluster().database_for(str(Path(data_dir).resolve()))
    env.update({f"TELECONSULT_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in settings.items()})
    process = await asyncio.create_subprocess_exec(TELECONSULT, "move-documents", env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


async def test_move_documents_takes_published_documents_and_uploads_in_progress_to_the_bucket(live, http, tmp_path):
    data_dir = tmp_path / "data"
    local = await live(data_dir=data_dir, documents_store="local")  # one machine: documents in data_dir/documents
    session, secret = http(), secrets.token_bytes(16)
    published, owner_p, _ = await _create(session, local, ece.padded_size(3 * MiB))
    first = _ciphertext(secret, published, 3 * MiB)
    await _patch(session, local, published, owner_p, 0, first)
    await _complete(session, local, published, owner_p, secret, 3 * MiB)
    size = ece.padded_size(20 * MiB)
    unfinished, owner_u, _ = await _create(session, local, size)
    second = _ciphertext(secret, unfinished, 20 * MiB)
    await _patch(session, local, unfinished, owner_u, 0, second[:11 * MiB])  # a phone mid-upload
    await local.server.close()  # every instance stopped

    code, out, err = await _move(data_dir)
    assert code == 0 and "Traceback" not in err, err
    assert "1 published documents and 1 unfinished uploads" in out

    moved = await live(data_dir=data_dir, **s3_server.s3_settings(data_dir))
    assert await _download(session, moved, published) == first
    async with session.get(f"{moved.url}/api/drop/files/{unfinished}/upload", headers=owner_u) as r:
        assert (await r.json())["offset"] == 11 * MiB, "the upload goes on where it was"
    await _patch(session, moved, unfinished, owner_u, 11 * MiB, second[11 * MiB:])
    await _complete(session, moved, unfinished, owner_u, secret, 20 * MiB)
    assert await _download(session, moved, unfinished) == second


async def test_move_documents_refuses_to_run_without_a_bucket_configured(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update({"TELECONSULT_DATA_DIR": str(tmp_path), "TELECONSULT_SESSION_SECRET": TEST_SECRET,
                "TELECONSULT_JITSI_DOMAIN": "meet.example.org", "TELECONSULT_JITSI_APP_ID": "t",
                "TELECONSULT_JITSI_APP_SECRET": TEST_JITSI_SECRET})
    process = await asyncio.create_subprocess_exec(TELECONSULT, "move-documents", env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 2 and "set documents_store = s3" in err.decode()
