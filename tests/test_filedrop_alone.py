"""filedrop alone, as DESIGN section 1 promises: a bare aiohttp app, with nothing of teleconsult in
it, mounts the drop box with its own migrations, storage and a trivial `authorise`; filedrop's
own client uploads and downloads through it over a real loopback server."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

from conftest import make_settings
from filedrop import client, migrations
from filedrop import storage as storage_module
from filedrop.http import Access, mount, routes
import s3_server
from filedrop.storage import Storage
from filedrop.store import BadUpload, DropBox, DropConfig

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
BOX = "shared-box"


def test_filedrop_imports_nothing_of_teleconsult():
    probe = ("import sys, filedrop.http, filedrop.client, filedrop.migrations, filedrop.store, filedrop.links, "
             "filedrop.deletion; print(sorted(m for m in sys.modules if m.split('.')[0] == 'teleconsult'))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


class Host:
    """The host's side of the bargain: who may do what, as opaque roles (here: anyone, as "guest"),
    and a record of every operation filedrop asked about."""

    def __init__(self):
        self.asked: list[tuple[str, str]] = []
        self.refused: set[str] = set()

    async def box(self, request: web.Request, operation: str) -> Access:
        self.asked.append(("box", operation))
        if operation in self.refused:
            raise web.HTTPForbidden(text="the host says no")
        return Access(box_id=BOX, role="guest")

    async def drops(self, request: web.Request, operation: str) -> Access:
        self.asked.append(("drops", operation))
        return Access(box_id=None, role="ignored")


class Held:
    """What the storage holds, looked at from outside it: a directory, or (TELECONSULT_TEST_STORE=s3)
    a bucket of the tests' moto server."""

    def __init__(self, directory: Path, bucket: str | None):
        self.directory, self.bucket = directory, bucket

    def ready(self, file_id: str) -> bytes:
        if self.bucket:
            return s3_server.client().get_object(Bucket=self.bucket, Key=f"ready/{file_id}")["Body"].read()
        return (self.directory / "ready" / file_id).read_bytes()

    def files(self) -> list[str]:
        if self.bucket:
            return s3_server.objects(self.bucket)
        return sorted(str(p.relative_to(self.directory)) for p in self.directory.rglob("*") if p.is_file())


async def _storage(tmp_path: Path):
    if not s3_server.wanted():
        return Storage(tmp_path / "ciphertext"), Held(tmp_path / "ciphertext", None)
    from filedrop.s3storage import S3Storage
    bucket = s3_server.bucket_for(str(tmp_path))
    storage = await S3Storage.open(endpoint=s3_server.endpoint(), region=s3_server.REGION, bucket=bucket,
                                   access_key_id=s3_server.ACCESS_KEY_ID, secret_access_key=s3_server.SECRET_ACCESS_KEY)
    return storage, Held(tmp_path, bucket)


@pytest.fixture
async def bare(tmp_path):
    """(base URL, Host, DropBox, what the storage holds) of a bare aiohttp app serving filedrop."""
    # a SQLite file, or the run's PostgreSQL (TELECONSULT_TEST_DATABASE=postgresql)
    engine = create_async_engine(make_settings(tmp_path).sqlalchemy_url)
    await migrations.migrate(engine)
    storage, store_dir = await _storage(tmp_path)
    box = DropBox(engine, storage, DropConfig(max_size=64 * MiB))
    host = Host()
    app = web.Application()
    mount(app.router, "/box", host.box, box)
    mount(app.router, "/drops", host.drops, box, standalone=True)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", host, box, store_dir
    finally:
        await runner.cleanup()
        await storage.close()
        await engine.dispose()


async def test_a_file_goes_up_in_parts_and_comes_back_whole_through_a_bare_app(bare, tmp_path):
    base, host, _box, store_dir = bare
    plaintext = os.urandom(3 * MiB + 4321)
    source = tmp_path / "radio du thorax.png"
    source.write_bytes(plaintext)
    secret = secrets.token_bytes(32)
    box = client.Box.at(base + "/box")
    (tmp_path / "out").mkdir()
    async with client.client_session() as session:
        sent = await client.upload(session, box, source, secret, role="guest", part_size=1 * MiB)
        [listed] = await client.list_box(session, box)
        received = await client.download(session, box, sent.id, secret, directory=tmp_path / "out")
    assert received.path == tmp_path / "out" / "radio du thorax.png"
    assert received.path.read_bytes() == plaintext
    assert listed["id"] == sent.id and listed["uploaded_by"] == "guest", "the role is the host's, stored as given"
    stored = store_dir.ready(sent.id)
    assert len(stored) == sent.size and plaintext[:4096] not in stored, "the server holds ciphertext only"
    operations = [operation for mount_name, operation in host.asked if mount_name == "box"]
    assert {"create", "upload_part", "complete", "list", "metadata", "download"} <= set(operations)
    assert operations.count("upload_part") == 4, "asked for every part, not once per file"


async def test_the_hosts_authorise_decides_before_filedrop_does_anything(bare, tmp_path):
    base, host, drop_box, store_dir = bare
    source = tmp_path / "note.txt"
    source.write_bytes(b"x" * 1000)
    box = client.Box.at(base + "/box")
    out = tmp_path / "out"
    out.mkdir()
    host.refused = {"create"}
    async with client.client_session() as session:
        with pytest.raises(client.HTTPError) as refused:
            await client.upload(session, box, source, secrets.token_bytes(32), role="guest")
        assert refused.value.status == 403
        assert store_dir.files() == [], "nothing reserved for a refused request"
        host.refused = {"download"}
        sent = await client.upload(session, box, source, secrets.token_bytes(32), role="guest")
        with pytest.raises(client.HTTPError) as refused:
            await client.download(session, box, sent.id, sent.secret, directory=out)
        assert refused.value.status == 403
    assert (await drop_box.get(sent.id, BOX)).downloads == 0, "a refused download is not counted"
    assert list(out.iterdir()) == [], "neither a file nor a temporary left behind"


async def test_a_standalone_drop_keeps_its_limit_and_its_owner_through_a_bare_app(bare, tmp_path):
    base, host, _box, _store = bare
    source = tmp_path / "compte-rendu.pdf"
    source.write_bytes(os.urandom(70_000))
    drops = client.Box.at(base + "/drops", standalone=True)
    async with client.client_session() as session:
        sent = await client.send_drop(session, drops, source, max_downloads=1)
        got = await client.download(session, drops, sent.id, sent.secret, output=tmp_path / "got.pdf")
        assert got.path.read_bytes() == source.read_bytes()
        with pytest.raises(client.NotFound):
            await client.download(session, drops, sent.id, sent.secret, output=tmp_path / "again.pdf")
        other = await client.send_drop(session, drops, source)
        with pytest.raises(client.HTTPError) as wrong:
            await client.delete_drop(session, drops, other.id, "not-the-owner-token")
        assert wrong.value.status == 403
        await client.delete_drop(session, drops, other.id, other.owner_token)
        with pytest.raises(client.NotFound):
            await client.fetch_metadata(session, drops, other.id, other.secret)
    assert sent.document["uploaded_by"] == "standalone", "a standalone mount ignores the host's role"
    assert ("drops", "delete") in host.asked


def test_a_standalone_mount_refuses_to_list_every_drop():
    async def anyone(request, operation):
        return Access(box_id=None, role="x")
    with pytest.raises(ValueError, match="standalone"):
        routes("/drops", anyone, lambda request: None, standalone=True, names={"list": "all_drops"})
    names = [name for *_, name in routes("/drops", anyone, lambda request: None, standalone=True, names="drops")]
    assert "drops_list" not in names and "drops_delete" in names


async def test_a_role_must_be_a_short_name_the_host_chose(bare):
    *_, drop_box, _store = bare
    for role in ("", "Clinician", "a" * 17, "rôle", None):
        with pytest.raises(BadUpload, match="unknown role"):
            await drop_box.create(size=65557, uploaded_by=role, box_id=BOX)
    created, _ = await drop_box.create(size=65557, uploaded_by="pharmacist", box_id=BOX)
    assert created.uploaded_by == "pharmacist"


async def test_a_sweep_deletes_every_due_document_of_many_boxes_each_audited_with_its_reason(bare, monkeypatch):
    """20 rooms ending at once: one sweep deletes all their documents (rows, files, audit and
    events), in groups rather than two transactions per file (filedrop/deletion.py)."""
    import sqlalchemy as sa

    from filedrop import deletion, ece
    from filedrop.schema import audit, files
    _, _, box, store_dir = bare
    told = []
    box.notify = lambda box_id, event: told.append((box_id, event["action"], event["id"]))
    size = ece.padded_size(10)
    made = [(await box.create(size=size, uploaded_by="writer", box_id=f"room-{i:02d}"))[0] for i in range(20)]
    standalone, _ = await box.create(size=size, uploaded_by="writer")  # not due: kept
    now = box.clock()
    for i, doc in enumerate(made):
        await box.schedule_box_deletion(doc.box_id, now - 1 if i % 2 else now - 2)
    monkeypatch.setattr(deletion, "DELETE_BATCH", 7)  # several groups, the last one short
    counts = await box.sweep()
    assert counts == {"scheduled": 20}
    async with box.engine.connect() as conn:
        left = set((await conn.execute(sa.select(files.c.id))).scalars())
        deleted = (await conn.execute(sa.select(audit.c.file_id, audit.c.box_id, audit.c.reason)
                                      .where(audit.c.action == "deleted"))).all()
    assert left == {standalone.id}
    assert sorted(deleted) == sorted((d.id, d.box_id, "scheduled") for d in made)
    assert sorted(told) == sorted((d.box_id, "deleted", d.id) for d in made)
    # the local store made an empty file at creation; a bucket holds nothing before the first part
    assert store_dir.files() == ([] if store_dir.bucket else [f"partial/{standalone.id}"])


async def test_a_part_still_arriving_is_already_being_written_to_disk(tmp_path, monkeypatch):
    """The local store asks the disk to write back what came of a part while the rest arrives, so
    that publishing's fsync finds little left to write (docs/benchmarks.md, fourth pass); the part
    is still answered without waiting for it, and publishing still fsyncs."""
    flushes_before_the_end, arrived = [], {"all": False}
    fdatasync = os.fdatasync

    def watched(fd):
        flushes_before_the_end.append(not arrived["all"])
        fdatasync(fd)

    monkeypatch.setattr(storage_module.os, "fdatasync", watched)
    store = Storage(tmp_path / "ciphertext")
    file_id = secrets.token_urlsafe(16)
    await store.create(file_id)
    data = os.urandom(12 * MiB)

    async def arriving():
        for start in range(0, len(data), 256 * 1024):
            yield data[start:start + 256 * 1024]
            await asyncio.sleep(0.002)  # a network's pace: the write-back thread gets to run
        arrived["all"] = True

    try:
        received, _ = await store.write_at(file_id, 0, arriving(), len(data))
        assert received == len(data)
        assert any(flushes_before_the_end)
        await store.publish(file_id, len(data))
        assert (tmp_path / "ciphertext" / "ready" / file_id).read_bytes() == data
    finally:
        await store.close()
