"""The drop box on an S3 bucket: big uploads in parts, two app instances sharing one database
and one bucket, deletion, memory.

The S3 endpoint is moto's standalone server (tests/s3_server.py), a stand-in for Garage, MinIO
or SeaweedFS, whose binaries cannot be installed here; the code under test is the real client
(aiobotocore) over real HTTP on loopback. Both instances are real servers on loopback, on the
same SQLite file (PostgreSQL is another change's) and the same bucket.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import tracemalloc

import pytest

import s3_server
from conftest import add_api_clinician, make_settings
from filedrop import ece
from filedrop.s3storage import S3Storage
from filedrop.storage import Unavailable
from teleconsult.document_store import s3_credentials
from teleconsult.settings import SettingsError

MiB = 1024 * 1024
JS_PART = 4 * MiB  # what browsers send per PATCH (static/js/dropbox.js): not a multiple of an S3 part


async def _instances(live, tmp_path, count=2, **overrides):
    data_dir = tmp_path / "shared"
    return [await live(data_dir=data_dir, **s3_server.s3_settings(data_dir), **overrides) for _ in range(count)]


async def _create(session, app, size: int) -> tuple[str, dict, dict]:
    token = getattr(app, "_token", None) or (await add_api_clinician(app.engine))[1]
    app._token = token
    async with session.post(app.url + "/api/drop/files", json={"size": size},
                            headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201, await r.text()
        created = await r.json()
    return created["id"], {"X-Owner-Token": created["owner_token"]}, {"Authorization": f"Bearer {token}"}


async def _patch(session, app, doc, owner, offset, data) -> int:
    async with session.patch(f"{app.url}/api/drop/files/{doc}/upload", data=data,
                             headers={**owner, "Upload-Offset": str(offset)}) as r:
        assert r.status == 200, (r.status, await r.text())
        return (await r.json())["offset"]


async def _complete(session, app, doc, owner, secret, size) -> None:
    meta = ece.encrypt_metadata(ece.derive_metadata_key(secret, doc),
                                {"name": "scan.bin", "type": "", "size": size, "role": "sender"})
    async with session.post(f"{app.url}/api/drop/files/{doc}/complete", data=meta, headers=owner) as r:
        assert r.status == 200, await r.text()


async def _download(session, app, doc) -> bytes:
    async with session.get(f"{app.url}/d/files/{doc}") as r:
        assert r.status == 200, r.status
        return await r.read()


def _ciphertext(secret: bytes, doc: str, plaintext_size: int) -> bytes:
    return ece.encrypt(os.urandom(plaintext_size), ece.derive_content_ikm(secret, doc))


async def test_a_40_mib_document_sent_in_browser_sized_parts_to_the_bucket_comes_back_byte_identical(live, http, tmp_path):
    (app,) = await _instances(live, tmp_path, count=1)
    session, secret = http(), secrets.token_bytes(16)
    size = ece.padded_size(41 * MiB)
    doc, owner, _ = await _create(session, app, size)
    ciphertext = _ciphertext(secret, doc, 41 * MiB)
    for offset in range(0, size, JS_PART):
        assert await _patch(session, app, doc, owner, offset, ciphertext[offset:offset + JS_PART]) == min(size, offset + JS_PART)
    await _complete(session, app, doc, owner, secret, 41 * MiB)
    assert await _download(session, app, doc) == ciphertext
    # one object, published whole: no unfinished part, no open multipart upload, nothing on the local disk
    assert s3_server.stored(app.settings) == [f"documents/ready/{doc}"]
    assert s3_server.stored_bytes(app.settings, doc) == ciphertext
    assert not (tmp_path / "shared" / "documents").exists() or not any((tmp_path / "shared" / "documents").rglob("*"))


async def test_parts_alternating_between_two_instances_complete_and_download_through_either(live, http, tmp_path):
    a, b = await _instances(live, tmp_path)
    session, secret = http(), secrets.token_bytes(16)
    size = ece.padded_size(30 * MiB)
    doc, owner, _ = await _create(session, a, size)
    ciphertext = _ciphertext(secret, doc, 30 * MiB)
    # 3 MiB parts: most end inside an S3 part, so the next instance must pick up the unfinished part
    for number, offset in enumerate(range(0, size, 3 * MiB)):
        await _patch(session, (a, b)[number % 2], doc, owner, offset, ciphertext[offset:offset + 3 * MiB])
    await _complete(session, b, doc, owner, secret, 30 * MiB)
    assert await _download(session, a, doc) == ciphertext
    assert await _download(session, b, doc) == ciphertext
    async with session.delete(f"{a.url}/api/drop/files/{doc}", headers=owner) as r:
        assert r.status == 200, await r.text()
    assert s3_server.stored(a.settings) == [], "deleting on A left objects in the bucket"
    async with session.get(f"{b.url}/d/files/{doc}") as r:
        assert r.status == 404


async def test_a_stale_request_on_one_instance_cannot_undo_the_part_sent_again_through_the_other(live, http, tmp_path):
    """A phone's PATCH stays half open on A (a 4G drop) after it sent more than one S3 part;
    the phone sends the whole file again through B. When A's request finally dies, its roll-back
    must record nothing: B's bytes stay, the upload completes."""
    a, b = await _instances(live, tmp_path)
    session, secret = http(), secrets.token_bytes(16)
    size = ece.padded_size(12 * MiB)
    doc, owner, _ = await _create(session, a, size)
    ciphertext = _ciphertext(secret, doc, 12 * MiB)
    reader, writer = await asyncio.open_connection("127.0.0.1", a.server.port)
    writer.write((f"PATCH /api/drop/files/{doc}/upload HTTP/1.1\r\nHost: x\r\nX-Owner-Token: {owner['X-Owner-Token']}\r\n"
                  f"Upload-Offset: 0\r\nContent-Length: {size}\r\n\r\n").encode() + ciphertext[:9 * MiB])
    await writer.drain()
    for _ in range(100):  # A's request is inside the server, past its first S3 part, waiting for more
        if doc in a.services.drops._writers:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)
    assert await _patch(session, b, doc, owner, 0, ciphertext) == size
    writer.transport.abort()  # the stale request dies now, after B took over
    await asyncio.sleep(1)
    async with session.get(f"{a.url}/api/drop/files/{doc}/upload", headers=owner) as r:
        assert (await r.json())["offset"] == size, "the stale request's roll-back undid B's bytes"
    await _complete(session, a, doc, owner, secret, 12 * MiB)
    assert await _download(session, b, doc) == ciphertext


async def test_deleting_an_unfinished_upload_aborts_its_multipart_upload_and_removes_its_unfinished_part(live, http, tmp_path):
    (app,) = await _instances(live, tmp_path, count=1)
    session, secret = http(), secrets.token_bytes(16)
    size = ece.padded_size(20 * MiB)
    doc, owner, _ = await _create(session, app, size)
    ciphertext = _ciphertext(secret, doc, 20 * MiB)
    await _patch(session, app, doc, owner, 0, ciphertext[:11 * MiB])  # one S3 part and an unfinished one
    held = s3_server.stored(app.settings)
    assert f"upload:documents/ready/{doc}" in held and any(k.startswith(f"documents/tails/{doc}/") for k in held)
    async with session.delete(f"{app.url}/api/drop/files/{doc}", headers=owner) as r:
        assert r.status == 200
    assert s3_server.stored(app.settings) == []


async def test_the_sweeper_removes_objects_and_open_uploads_no_row_knows(live, http, tmp_path):
    (app,) = await _instances(live, tmp_path, count=1)
    s3 = s3_server.client(app.settings.s3_endpoint)
    bucket, orphan = app.settings.s3_bucket, "o" * 22
    await app.services.drops.sweep()  # waits for the start-up sweep: the orphans below are this test's
    s3.put_object(Bucket=bucket, Key=f"documents/ready/{orphan}", Body=b"junk")
    s3.put_object(Bucket=bucket, Key=f"documents/tails/{orphan}/0123", Body=b"junk")
    s3.create_multipart_upload(Bucket=bucket, Key=f"documents/ready/{'p' * 22}")
    s3.put_object(Bucket=bucket, Key="someone-elses/object", Body=b"kept")  # outside s3_prefix: not ours
    counts = await app.services.drops.sweep()
    assert counts == {"orphan": 2}
    assert s3_server.stored(app.settings) == ["someone-elses/object"]


async def test_memory_stays_under_three_s3_parts_while_96_mib_go_up_and_down(live, http, tmp_path):
    (app,) = await _instances(live, tmp_path, count=1, documents_max_mib=200)
    session = http()
    size = ece.padded_size(96 * MiB)
    doc, owner, _ = await _create(session, app, size)
    sent = hashlib.sha256()

    async def body(start: int, end: int):
        for offset in range(start, end, 256 * 1024):
            chunk = hashlib.shake_256(offset.to_bytes(8, "big")).digest(min(256 * 1024, end - offset))
            sent.update(chunk)
            yield chunk
    tracemalloc.start()
    try:
        half = 48 * MiB + 12345  # parts that do not end on an S3 part
        await _patch(session, app, doc, owner, 0, body(0, half))
        await _patch(session, app, doc, owner, half, body(half, size))
        await _complete(session, app, doc, owner, secrets.token_bytes(16), 96 * MiB)
        received = hashlib.sha256()
        async with session.get(f"{app.url}/d/files/{doc}") as r:
            async for chunk in r.content.iter_chunked(256 * 1024):
                received.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received.digest() == sent.digest()
    part = app.settings.s3_part_mib * MiB
    assert peak < 3 * part + 4 * MiB, f"peak {peak / MiB:.1f} MiB for a {size / MiB:.0f} MiB file"


async def test_an_unreachable_bucket_stops_the_start_with_a_clear_message(tmp_path):
    with pytest.raises(Unavailable, match="cannot be used"):
        await S3Storage.open(endpoint=s3_server.endpoint(), region=s3_server.REGION, bucket="no-such-bucket",
                             access_key_id=s3_server.ACCESS_KEY_ID, secret_access_key=s3_server.SECRET_ACCESS_KEY)


def _s3(tmp_path, **overrides):
    values = {**s3_server.s3_settings(tmp_path), **overrides}
    return make_settings(tmp_path, **values)


@pytest.mark.parametrize("missing, says", [
    ({"s3_bucket": ""}, "needs s3_bucket"),
    ({"s3_endpoint": "s3.example.org"}, "needs s3_endpoint"),
    ({"s3_secret_access_key": ""}, "credentials one way"),
    ({"s3_credentials_file": "/etc/teleconsult/s3"}, "credentials one way"),  # both ways at once
    ({"s3_secret_access_key": "short"}, "at least 32 characters"),
    ({"documents_store": "ftp"}, "local or s3"),
])
def test_s3_settings_missing_or_ambiguous_stop_the_start_with_what_to_set(tmp_path, missing, says):
    with pytest.raises(SettingsError, match=says):
        _s3(tmp_path, **missing)


async def test_credentials_come_from_a_file_only_the_apps_user_can_read(live, http, tmp_path):
    credentials = tmp_path / "s3-credentials"
    credentials.write_text(f"[teleconsult]\naws_access_key_id = {s3_server.ACCESS_KEY_ID}\n"
                           f"aws_secret_access_key = {s3_server.SECRET_ACCESS_KEY}\n")
    file_settings = {"s3_access_key_id": "", "s3_secret_access_key": "", "s3_credentials_file": str(credentials),
                     "s3_credentials_profile": "teleconsult"}
    credentials.chmod(0o644)
    with pytest.raises(SettingsError, match="readable by others"):
        s3_credentials(_s3(tmp_path, **file_settings))
    credentials.chmod(0o600)
    assert s3_credentials(_s3(tmp_path, **file_settings)) == (s3_server.ACCESS_KEY_ID, s3_server.SECRET_ACCESS_KEY)
    data_dir = tmp_path / "app"
    app = await live(data_dir=data_dir, **{**s3_server.s3_settings(data_dir), **file_settings})
    session, secret = http(), secrets.token_bytes(16)
    size = ece.padded_size(1000)
    doc, owner, _ = await _create(session, app, size)
    ciphertext = _ciphertext(secret, doc, 1000)
    await _patch(session, app, doc, owner, 0, ciphertext)
    await _complete(session, app, doc, owner, secret, 1000)
    assert s3_server.stored_bytes(app.settings, doc) == ciphertext


async def test_a_bucket_gone_mid_upload_answers_503_with_a_message_not_a_500(live, http, tmp_path):
    (app,) = await _instances(live, tmp_path, count=1)
    session = http()
    size = ece.padded_size(10 * MiB)
    doc, owner, _ = await _create(session, app, size)
    s3 = s3_server.client(app.settings.s3_endpoint)
    s3.delete_bucket(Bucket=app.settings.s3_bucket)  # the operator removed it (empty so far)
    async with session.patch(f"{app.url}/api/drop/files/{doc}/upload", data=os.urandom(9 * MiB),
                             headers={**owner, "Upload-Offset": "0"}) as r:
        assert r.status == 503 and "document store" in (await r.json())["error"]
    s3.create_bucket(Bucket=app.settings.s3_bucket)
    async with session.get(f"{app.url}/api/drop/files/{doc}/upload", headers=owner) as r:
        assert (await r.json())["offset"] == 0, "nothing recorded for the failed part"


async def test_a_part_sent_again_resumes_inside_the_unfinished_s3_part_but_not_inside_one_already_sent(live, http, tmp_path):
    (app,) = await _instances(live, tmp_path, count=1)
    session, secret = http(), secrets.token_bytes(16)
    size = ece.padded_size(20 * MiB)
    doc, owner, _ = await _create(session, app, size)
    data = _ciphertext(secret, doc, 20 * MiB)
    assert await _patch(session, app, doc, owner, 0, data[:11 * MiB]) == 11 * MiB  # S3 part 1, and 3 MiB waiting
    # again from 9 MiB (inside the unfinished part): its first MiB is read back from the bucket
    assert await _patch(session, app, doc, owner, 9 * MiB, data[9 * MiB:14 * MiB]) == 14 * MiB
    # again from 4 MiB: inside S3 part 1, which S3 cannot give back: 409 and where to resume
    async with session.patch(f"{app.url}/api/drop/files/{doc}/upload", data=data[4 * MiB:6 * MiB],
                             headers={**owner, "Upload-Offset": str(4 * MiB)}) as r:
        assert r.status == 409 and (await r.json())["offset"] == 14 * MiB
    # again from 8 MiB, where an S3 part starts: fine
    assert await _patch(session, app, doc, owner, 8 * MiB, data[8 * MiB:]) == size
    async with session.patch(f"{app.url}/api/drop/files/{doc}/upload", data=b"",
                             headers={**owner, "Upload-Offset": str(size)}) as r:
        assert r.status == 200 and (await r.json())["offset"] == size, "an empty part at the end is harmless"
    await _complete(session, app, doc, owner, secret, 20 * MiB)
    assert await _download(session, app, doc) == data
    assert s3_server.stored(app.settings) == [f"documents/ready/{doc}"], "superseded unfinished parts are deleted"
