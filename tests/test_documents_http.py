"""The drop box over real HTTP, with real files in the data directory."""

import asyncio
import os
import secrets
import time
from pathlib import Path


from filedrop import ece
from aiohttp.test_utils import TestServer

from teleconsult.ending import sweep_once
from teleconsult.web.app import create_app
from conftest import add_api_clinician, api_consultation, gone_at
from drop_client import download, upload
import s3_server

NAME = "ordonnance-camille-dupont.pdf"


def _all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


def _files(settings) -> list[str]:
    """What the document store holds (the directory's files, or the bucket's objects)."""
    return s3_server.stored(settings)


async def test_clinician_sends_and_reads_back_identical_bytes_and_the_disk_holds_only_ciphertext(live, http):
    app = await live()
    client, auth, consultation = await api_consultation(app, http)
    secret = secrets.token_bytes(32)
    plaintext = b"%PDF-1.7 prescription " + os.urandom(300_000) + b"MARKER-PLAINTEXT"
    prefix = f"/api/consultations/{consultation['id']}/documents"
    sent = await upload(client, app.url, prefix, secret, plaintext, NAME, "clinician", headers=auth,
                        part_size=100_000)
    async with client.get(app.url + prefix, headers=auth) as r:
        listed = (await r.json())["documents"]
    assert [d["id"] for d in listed] == [sent["id"]] and listed[0]["uploaded_by"] == "clinician"
    meta, received = await download(client, app.url, prefix, secret, sent["id"], auth)
    assert received == plaintext and meta["name"] == NAME
    data_dir = Path(app.settings.data_dir)
    everything = _all_bytes(data_dir) + s3_server.bucket_bytes(app.settings)
    assert b"MARKER-PLAINTEXT" not in everything and plaintext[:4096] not in everything
    assert NAME.encode() not in everything and b"camille" not in everything.lower()
    assert not any("ordonnance" in p.name for p in data_dir.rglob("*"))


async def test_oversized_upload_is_refused_with_413_and_leaves_no_partial_file(live, http):
    app = await live(documents_max_mib=1)
    client, auth, consultation = await api_consultation(app, http)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    async with client.post(app.url + prefix, json={"size": ece.padded_size(2 << 20)}, headers=auth) as r:
        assert r.status == 413
    # a declared size within limits, then more bytes than declared: 413 and the part is dropped
    size = ece.padded_size(100)
    async with client.post(app.url + prefix, json={"size": size}, headers=auth) as r:
        doc = (await r.json())["id"]

    async def too_much():
        for _ in range(20):
            yield os.urandom(64 * 1024)
    async with client.patch(f"{app.url}{prefix}/{doc}/upload", data=too_much(),
                            headers={**auth, "Upload-Offset": "0"}) as r:
        assert r.status == 413
    async with client.patch(f"{app.url}{prefix}/{doc}/upload", data=os.urandom(size + 1),
                            headers={**auth, "Upload-Offset": "0"}) as r:
        assert r.status == 413
    assert s3_server.held_bytes(app.settings) == 0
    async with client.get(f"{app.url}{prefix}/{doc}/upload", headers=auth) as r:
        assert (await r.json())["offset"] == 0


async def test_interrupted_upload_resumes_from_the_offset_the_server_reports(live, http):
    app = await live()
    client, auth, consultation = await api_consultation(app, http)
    secret = secrets.token_bytes(32)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    plaintext = os.urandom(200_000)
    size = ece.padded_size(len(plaintext))
    async with client.post(app.url + prefix, json={"size": size}, headers=auth) as r:
        doc = (await r.json())["id"]
    ciphertext = ece.encrypt(plaintext, ece.derive_content_ikm(secret, doc))
    async with client.patch(f"{app.url}{prefix}/{doc}/upload", data=ciphertext[:100_000],
                            headers={**auth, "Upload-Offset": "0"}) as r:
        assert (await r.json())["offset"] == 100_000
    # the connection drops in the middle of the next part
    reader, writer = await asyncio.open_connection("127.0.0.1", app.server.port)
    head = (f"PATCH {prefix}/{doc}/upload HTTP/1.1\r\nHost: x\r\nAuthorization: {auth['Authorization']}\r\n"
            f"Upload-Offset: 100000\r\nContent-Length: 100000\r\n\r\n").encode()
    writer.write(head + ciphertext[100_000:150_000])
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.3)
    async with client.get(f"{app.url}{prefix}/{doc}/upload", headers=auth) as r:
        offset = (await r.json())["offset"]
    assert offset == 100_000
    # a part past the received bytes is refused with the right offset
    async with client.patch(f"{app.url}{prefix}/{doc}/upload", data=b"x",
                            headers={**auth, "Upload-Offset": str(offset + 10)}) as r:
        assert r.status == 409 and (await r.json())["offset"] == offset
    # the same part sent twice (a retry) is idempotent
    for _ in range(2):
        async with client.patch(f"{app.url}{prefix}/{doc}/upload", data=ciphertext[offset:],
                                headers={**auth, "Upload-Offset": str(offset)}) as r:
            assert (await r.json())["offset"] == size
    meta = ece.encrypt_metadata(ece.derive_metadata_key(secret, doc), {"name": "a", "type": "b", "size": 1, "role": "clinician"})
    async with client.post(f"{app.url}{prefix}/{doc}/complete", data=meta, headers=auth) as r:
        assert r.status == 200
    _, received = await download(client, app.url, prefix, secret, doc, auth)
    assert received == plaintext


async def test_unknown_expired_and_deleted_documents_get_the_same_answer(live, http):
    app = await live(documents_grace_seconds=0)
    client, auth, consultation = await api_consultation(app, http)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    secret = secrets.token_bytes(32)
    deleted = await upload(client, app.url, prefix, secret, b"a", "a.pdf", "clinician", headers=auth)
    other_box = await _other_consultation_doc(app, http)
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert r.status == 200
    await sweep_once(app.services)
    answers = set()
    for doc in ("A" * 22, deleted["id"], other_box):
        async with client.get(f"{app.url}{prefix}/{doc}", headers=auth) as r:
            answers.add((r.status, await r.text()))
    assert len(answers) == 1 and answers.pop()[0] == 404


async def _other_consultation_doc(app, http):
    _, token = await add_api_clinician(app.engine, "other@example.org")
    client, auth = http(), {"Authorization": f"Bearer {token}"}
    async with client.post(app.url + "/api/consultations", headers=auth) as r:
        other = await r.json()
    sent = await upload(client, app.url, f"/api/consultations/{other['id']}/documents", secrets.token_bytes(32),
                        b"b", "b.pdf", "clinician", headers=auth)
    return sent["id"]


async def test_documents_are_deleted_from_api_and_disk_when_the_grace_period_ends(live, http):
    # the periodic sweep is an hour away: deletion on time comes from the deadline itself
    app = await live(documents_grace_seconds=1, documents_sweep_seconds=3600)
    client, auth, consultation = await api_consultation(app, http)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    secret = secrets.token_bytes(32)
    sent = await upload(client, app.url, prefix, secret, os.urandom(5000), "r.pdf", "clinician", headers=auth)
    data_dir = Path(app.settings.data_dir)
    assert len(_files(app.settings)) == 1
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert r.status == 200
    ended = time.monotonic()
    await sweep_once(app.services)
    async with client.get(f"{app.url}{prefix}/{sent['id']}/metadata", headers=auth) as r:
        assert r.status == 200, "still there during the grace period"
    deleted_after = await gone_at(client, f"{app.url}{prefix}/{sent['id']}", auth,
                                  lambda: _files(app.settings)) - ended
    assert 0.9 <= deleted_after < 2.0, f"deleted {deleted_after:.2f} s after the end, for a 1 s grace period"
    async with client.get(app.url + prefix, headers=auth) as r:
        assert (await r.json())["documents"] == []
    assert _files(app.settings) == []
    import sqlalchemy as sa
    from filedrop.schema import audit
    async with app.engine.connect() as conn:
        rows = (await conn.execute(sa.select(audit.c.action, audit.c.box_id, audit.c.reason))).all()
    assert ("deleted", consultation["id"], "scheduled") in [tuple(r) for r in rows]


async def test_a_crash_between_deadline_and_removal_is_finished_by_the_next_sweep(live, http):
    app = await live()
    client, auth, consultation = await api_consultation(app, http)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    sent = await upload(client, app.url, prefix, secrets.token_bytes(32), b"x" * 100, "r.pdf", "clinician",
                        headers=auth)
    box = app.services.drops
    # simulate a crash right after the row was marked `deleting`, before the file was removed
    from filedrop.schema import files
    async with app.engine.begin() as conn:
        await conn.execute(files.update().values(state="deleting"))
    # and an orphan ciphertext with no row at all (a crash before the row was written)
    s3_server.plant_orphan(app.settings, "O" * 22, b"junk")
    counts = await box.sweep()
    assert counts == {"resumed": 1, "orphan": 1}
    assert _files(app.settings) == []
    async with client.get(f"{app.url}{prefix}/{sent['id']}", headers=auth) as r:
        assert r.status == 404


async def test_standalone_drop_respects_its_download_limit_and_owner_delete(live, http):
    app = await live()
    _, token = await add_api_clinician(app.engine)
    client = http()
    secret = secrets.token_bytes(16)
    sent = await upload(client, app.url, "/api/drop/files", secret, b"hello " * 1000, "note.txt", "standalone",
                        headers={"Authorization": f"Bearer {token}"},
                        body_extra={"expires_in": 3600, "max_downloads": 1})
    anonymous = http()
    meta, data = await download(anonymous, app.url, "/d/files", secret, sent["id"])
    assert data == b"hello " * 1000 and meta["name"] == "note.txt"
    async with anonymous.get(f"{app.url}/d/files/{sent['id']}") as r:
        assert r.status == 404  # used up
    second = await upload(client, app.url, "/api/drop/files", secret, b"x", "y", "standalone",
                          headers={"Authorization": f"Bearer {token}"})
    async with anonymous.delete(f"{app.url}/api/drop/files/{second['id']}", headers={"X-Owner-Token": "wrong"}) as r:
        assert r.status == 403
    async with anonymous.delete(f"{app.url}/api/drop/files/{second['id']}",
                                headers={"X-Owner-Token": second["owner_token"]}) as r:
        assert r.status == 200
    async with anonymous.get(f"{app.url}/d/files/{second['id']}") as r:
        assert r.status == 404
    async with anonymous.post(app.url + "/api/drop/files", json={"size": ece.padded_size(1)}) as r:
        assert r.status == 401, "creating a standalone drop needs a clinician"


async def test_guessing_standalone_drop_ids_is_rate_limited(live, http):
    app = await live(link_guess_max=5)
    guesser = http()
    statuses = []
    for i in range(8):
        async with guesser.get(f"{app.url}/d/files/{'G' * 21}{i}/metadata") as r:
            statuses.append(r.status)
    assert statuses == [404] * 5 + [429] * 3


async def test_a_restart_during_the_grace_period_still_deletes_on_time(live, http):
    app = await live(documents_grace_seconds=2, documents_sweep_seconds=3600)
    client, auth, consultation = await api_consultation(app, http)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    sent = await upload(client, app.url, prefix, secrets.token_bytes(32), os.urandom(2000), "r.pdf", "clinician",
                        headers=auth)
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert r.status == 200
    ended = time.monotonic()
    await app.server.close()  # the app stops during the grace period: what it planned in memory is gone
    restarted = create_app(app.settings)  # same data directory, same port
    server = TestServer(restarted, host="127.0.0.1", port=int(app.url.rsplit(":", 1)[1]))
    await server.start_server()
    try:
        data_dir = Path(app.settings.data_dir)
        deleted_after = await gone_at(client, f"{app.url}{prefix}/{sent['id']}", auth,
                                      lambda: _files(app.settings)) - ended
        # the next deadline is read back from the database, not left to the hourly sweep
        assert 1.9 <= deleted_after < 3.0, f"deleted {deleted_after:.2f} s after the end, for a 2 s grace period"
    finally:
        await server.close()


async def test_completing_again_with_the_same_metadata_answers_the_same_document_and_other_metadata_is_refused(
        live, http):
    """A sender whose answer to `complete` was lost asks again: the same document, announced once."""
    app = await live()
    client, auth, consultation = await api_consultation(app, http)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    secret = secrets.token_bytes(32)
    plaintext = os.urandom(2000)
    size = ece.padded_size(len(plaintext))
    async with client.post(app.url + prefix, json={"size": size}, headers=auth) as r:
        doc = (await r.json())["id"]
    async with client.patch(f"{app.url}{prefix}/{doc}/upload", data=ece.encrypt(plaintext, ece.derive_content_ikm(secret, doc)),
                            headers={**auth, "Upload-Offset": "0"}) as r:
        assert r.status == 200
    key = ece.derive_metadata_key(secret, doc)
    meta = ece.encrypt_metadata(key, {"name": "a.pdf", "type": "application/pdf", "size": 1, "role": "clinician"})
    answers = []
    for _ in range(2):
        async with client.post(f"{app.url}{prefix}/{doc}/complete", data=meta, headers=auth) as r:
            assert r.status == 200
            answers.append(await r.json())
    assert answers[0] == answers[1] and answers[0]["id"] == doc
    other = ece.encrypt_metadata(key, {"name": "b.pdf", "type": "application/pdf", "size": 1, "role": "clinician"})
    async with client.post(f"{app.url}{prefix}/{doc}/complete", data=other, headers=auth) as r:
        assert r.status == 400
