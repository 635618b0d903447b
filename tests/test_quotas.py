"""Quotas on documents (hostile review, item 5): an admitted patient or a clinician cannot fill
the disk. Per box and per clinician limits on count and bytes hold under concurrency; unfinished
uploads go after minutes without a part; under the free-space floor uploads get 507, reads go on.
Malformed creation values are refused, never truncated (item 9)."""

import asyncio
import shutil

import pytest

from filedrop import ece
from filedrop.storage import Storage
from filedrop.store import DropBox, DropConfig, Quota, StorageFull
from teleconsult import db
from conftest import add_api_clinician, make_settings
from drop_client import upload

KIB = 1024
SMALL = ece.padded_size(1000)  # one bucket, a few KiB


async def _api(app, http, email="doc@example.org"):
    _, token = await add_api_clinician(app.engine, email)
    return http(), {"Authorization": f"Bearer {token}"}


async def _new_consultation(client, app, auth) -> dict:
    async with client.post(app.url + "/api/consultations", headers=auth) as r:
        assert r.status == 201
        return await r.json()


async def _create(client, url, auth, body) -> int:
    async with client.post(url, json=body, headers=auth) as r:
        await r.read()
        return r.status


async def test_forty_uploads_started_at_once_in_one_box_reserve_only_the_box_quota(live, http):
    app = await live(documents_box_max_files=5)
    client, auth = await _api(app, http)
    consultation = await _new_consultation(client, app, auth)
    url = f"{app.url}/api/consultations/{consultation['id']}/documents"
    statuses = await asyncio.gather(*(_create(client, url, auth, {"size": SMALL}) for _ in range(40)))
    assert sorted(statuses) == [201] * 5 + [409] * 35
    async with client.post(url, json={"size": SMALL}, headers=auth) as r:
        assert r.status == 409 and "5 documents" in (await r.json())["error"]


async def test_the_box_quota_counts_reserved_bytes_too(live, http):
    app = await live(documents_box_max_mib=1)
    client, auth = await _api(app, http)
    consultation = await _new_consultation(client, app, auth)
    url = f"{app.url}/api/consultations/{consultation['id']}/documents"
    half = ece.padded_size(600 * KIB)
    assert await _create(client, url, auth, {"size": half}) == 201
    assert await _create(client, url, auth, {"size": half}) == 409  # 1.2 MiB > 1 MiB
    assert await _create(client, url, auth, {"size": SMALL}) == 201


async def test_a_clinician_quota_spans_consultations_and_standalone_drops(live, http):
    app = await live(documents_clinician_max_files=3)
    client, auth = await _api(app, http)
    first, second = [await _new_consultation(client, app, auth) for _ in range(2)]
    base = f"{app.url}/api/consultations"
    assert await _create(client, f"{base}/{first['id']}/documents", auth, {"size": SMALL}) == 201
    assert await _create(client, f"{base}/{second['id']}/documents", auth, {"size": SMALL}) == 201
    assert await _create(client, f"{app.url}/api/drop/files", auth, {"size": SMALL, "max_downloads": 1}) == 201
    assert await _create(client, f"{base}/{second['id']}/documents", auth, {"size": SMALL}) == 409
    other_client, other_auth = await _api(app, http, "other@example.org")  # another clinician is unaffected
    third = await _new_consultation(other_client, app, other_auth)
    assert await _create(other_client, f"{base}/{third['id']}/documents", other_auth, {"size": SMALL}) == 201


@pytest.mark.parametrize("body, reason", [
    ({"size": SMALL + 0.5}, "whole number"),
    ({"size": str(SMALL)}, "whole number"),
    ({"size": True}, "whole number"),
    ({"size": SMALL, "max_downloads": 0}, "between 1 and 1000"),
    ({"size": SMALL, "max_downloads": 1.5}, "between 1 and 1000"),
])
async def test_creation_values_are_refused_rather_than_truncated_or_read_as_unlimited(live, http, body, reason):
    app = await live()
    client, auth = await _api(app, http)
    async with client.post(f"{app.url}/api/drop/files", json=body, headers=auth) as r:
        assert r.status == 400
        assert reason in (await r.json())["error"]


async def test_under_the_free_space_floor_uploads_get_507_and_documents_can_still_be_read(live, http, tmp_path):
    app = await live(documents_store="local")  # the free-space floor is the local disk's (a bucket has its own quota)
    client, auth = await _api(app, http)
    consultation = await _new_consultation(client, app, auth)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    secret = b"k" * 32
    sent = await upload(client, app.url, prefix, secret, b"%PDF-1.7 kept", "cr.pdf", "clinician", headers=auth)
    # the same data directory, now with a floor above the disk's free space
    free_mib = shutil.disk_usage(tmp_path).free // (1024 * 1024)
    full = await live(documents_min_free_mib=free_mib + 1024, data_dir=app.settings.data_dir, documents_store="local")
    async with client.post(full.url + prefix, json={"size": SMALL}, headers=auth) as r:
        assert r.status == 507 and "full" in (await r.json())["error"]
    async with client.get(f"{full.url}{prefix}/{sent['id']}", headers=auth) as r:
        assert r.status == 200 and len(await r.read()) == ece.padded_size(len(b"%PDF-1.7 kept"))


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


async def _box(tmp_path, clock, **config) -> DropBox:
    engine = db.make_engine(make_settings(tmp_path).sqlalchemy_url)  # SQLite, or the run's PostgreSQL
    await db.migrate(engine)
    return DropBox(engine, Storage(tmp_path / "documents"), DropConfig(max_size=1 << 20, **config), clock=clock)


async def _one_part(data: bytes):
    yield data


async def test_an_unfinished_upload_goes_after_minutes_without_a_part_while_a_slow_one_goes_on(tmp_path):
    clock = Clock()
    box = await _box(tmp_path, clock, upload_ttl=15 * 60)
    try:
        idle, _ = await box.create(size=SMALL, uploaded_by="guest", box_id="b1")
        slow, _ = await box.create(size=SMALL, uploaded_by="guest", box_id="b1")
        for _ in range(3):  # a part every 10 minutes: 30 minutes in all
            clock.now += 10 * 60
            received = (await box.get(slow.id, "b1")).received
            await box.upload_part(slow.id, "b1", received, _one_part(b"x" * 100))
        counts = await box.sweep()
        assert counts == {"abandoned": 1}
        assert [f.id for f in [await box.get(slow.id, "b1")]] == [slow.id]
        with pytest.raises(Exception, match="no such file"):
            await box.get(idle.id, "b1")
        assert await box.next_deadline() == clock.now + 15 * 60
    finally:
        await box.engine.dispose()


async def test_quota_and_floor_hold_in_filedrop_alone(tmp_path):
    clock = Clock()
    box = await _box(tmp_path, clock, box_quota=Quota(files=2, bytes=1 << 30), min_free_bytes=0)
    try:
        await asyncio.gather(*(box.create(size=SMALL, uploaded_by="guest", box_id="b1") for _ in range(2)))
        with pytest.raises(Exception, match="2 documents"):
            await box.create(size=SMALL, uploaded_by="guest", box_id="b1")
        floor = DropBox(box.engine, box.storage, DropConfig(max_size=1 << 20, min_free_bytes=box.storage.free_bytes() + 1),
                        clock=clock)
        with pytest.raises(StorageFull):
            await floor.create(size=SMALL, uploaded_by="guest", box_id="b2")
    finally:
        await box.engine.dispose()
