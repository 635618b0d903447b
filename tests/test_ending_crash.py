"""A crash while a consultation ends never keeps its documents past end + grace.

Ending writes two things: the consultation ended, and its documents' deadline in the drop box.
A process killed between the two (simulated: the second write raises, as a SIGKILL there would
stop it) must leave both or neither; and a database where only the first was written (by an
older version that crashed there) is mended by the sweeper of the next process on the same data."""

import asyncio
import os
import secrets
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import s3_server
from conftest import api_consultation
from drop_client import upload
from filedrop.schema import files
from teleconsult import consultations as cs
from teleconsult import ending
from teleconsult.db_tables import consultations


class Killed(BaseException):
    """What the process would see of a SIGKILL: nothing after this point runs."""


async def _consultation_with_a_document(app, http):
    client, auth, consultation = await api_consultation(app, http)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    await upload(client, app.url, prefix, secrets.token_bytes(32), os.urandom(3000), "r.pdf", "clinician",
                 headers=auth)
    return client, auth, consultation, prefix


def _stored(app) -> list[str]:
    return s3_server.stored(app.settings)  # the directory's files, or the bucket's keys


async def _state(app, consultation_id):
    async with app.engine.connect() as conn:
        status = await conn.scalar(sa.select(consultations.c.status).where(consultations.c.id == consultation_id))
        deadlines = (await conn.execute(sa.select(files.c.delete_at).where(
            files.c.box_id == consultation_id))).scalars().all()
    return status, deadlines


async def _listed(client, base, prefix, auth):
    async with client.get(base + prefix, headers=auth) as r:
        assert r.status == 200
        return (await r.json())["documents"]


async def _gone_by(app, client, base, prefix, auth, deadline: float) -> float:
    """Poll until nothing is listed nor stored; returns when, and fails past `deadline`."""
    while await _listed(client, base, prefix, auth) or _stored(app):
        assert time.time() < deadline, "the documents outlived end + grace"
        await asyncio.sleep(0.1)
    return time.time()


async def test_a_crash_between_ending_and_scheduling_the_deletion_leaves_neither_and_ending_again_deletes_on_time(
        live, http, monkeypatch):
    app = await live(documents_grace_seconds=2, documents_sweep_seconds=3600)
    client, auth, consultation, prefix = await _consultation_with_a_document(app, http)
    scheduled = app.services.drops.schedule_box_deletion

    async def killed_after_the_first_write(*args, **kwargs):
        raise Killed()
    monkeypatch.setattr(app.services.drops, "schedule_box_deletion", killed_after_the_first_write)
    async with app.engine.connect() as conn:
        row = (await conn.execute(sa.select(consultations).where(consultations.c.id == consultation["id"]))).first()
    record = cs._consultation(row)
    with pytest.raises(Killed):
        await ending.end(app.services, record, "clinician")
    status, deadlines = await _state(app, consultation["id"])
    assert (status, deadlines) == ("waiting", [None]) or (status == "ended" and None not in deadlines), \
        f"half an end was written: consultation {status}, document deadlines {deadlines}"
    monkeypatch.setattr(app.services.drops, "schedule_box_deletion", scheduled)

    # the next process on the same data: ending works, and the documents go at end + grace
    restarted = await live(data_dir=Path(app.settings.data_dir), documents_grace_seconds=2,
                           documents_sweep_seconds=3600)
    async with client.post(restarted.url + f"/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert r.status == 200
        ended_at = (await r.json())["ended_at"]
    assert await _listed(client, restarted.url, prefix, auth)  # kept during the grace period
    gone = await _gone_by(restarted, client, restarted.url, prefix, auth, ended_at + 2 + 3)
    assert gone >= ended_at + 2 - 0.05


async def test_the_sweeper_of_the_next_process_deletes_the_documents_of_an_ended_consultation_that_had_no_deadline(
        live, http):
    app = await live(documents_grace_seconds=3, documents_sweep_seconds=3600)
    client, auth, consultation, prefix = await _consultation_with_a_document(app, http)
    async with app.engine.connect() as conn:
        row = (await conn.execute(sa.select(consultations).where(consultations.c.id == consultation["id"]))).first()
    # only the first write of "end" happened (the process died before the second)
    ended = await cs.end_consultation(app.engine, cs._consultation(row), "clinician", app.services.hub)
    assert await _state(app, consultation["id"]) == ("ended", [None])
    assert await _listed(client, app.url, prefix, auth)

    restarted = await live(data_dir=Path(app.settings.data_dir), documents_grace_seconds=3,
                           documents_sweep_seconds=3600)
    await asyncio.sleep(0.5)  # the start-up sweep
    status, deadlines = await _state(restarted, consultation["id"])
    assert status == "ended" and deadlines == [pytest.approx(ended.ended_at + 3)]
    gone = await _gone_by(restarted, client, restarted.url, prefix, auth, ended.ended_at + 3 + 3)
    assert gone >= ended.ended_at + 3 - 0.05  # not before the grace period is over either
