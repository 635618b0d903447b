"""A database held by another process makes writes wait, then answer 503 with Retry-After: never
a 500, nothing lost, and the same request succeeds once the lock is gone. Reads keep working
meanwhile. On SQLite the holder is `BEGIN EXCLUSIVE` (a backup tool or a stuck CLI; reads go on
thanks to WAL), and writers of the app itself never meet a busy database: they take turns
(teleconsult/db_sqlite.py, SerializedWrites). On PostgreSQL (TELECONSULT_TEST_DATABASE=postgresql) the
holder is another connection's lock on every table (`LOCK TABLE ... IN EXCLUSIVE MODE`, as a
host's psql or a migration takes: reads go on, writes wait) kept past the app's lock_timeout."""

import asyncio
import subprocess
import sys
import time

import aiohttp
import pytest
import sqlalchemy as sa

from teleconsult import db, db_busy, db_tables

from teleconsult import accounts
from teleconsult import consultations as cs
from conftest import NAME_SECRET, add_clinician, csrf_from, sealed
from teleconsult import names

HOLD_SECONDS = 7  # longer than the app's busy timeout (5 s)

HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""

PG_HOLDER = """
import psycopg, sys, time
db = psycopg.connect(sys.argv[1])
tables = [row[0] for row in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
db.execute("LOCK TABLE " + ", ".join('"%s"' % t for t in tables) + " IN EXCLUSIVE MODE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.rollback()
"""


def hold_exclusive_lock(url, seconds) -> subprocess.Popen:
    """Another process holds the database at `url` (the app's sqlalchemy_url) for `seconds`:
    nobody else may write meanwhile, everybody may read."""
    if url.startswith("sqlite"):
        script, target = HOLDER, url.split("///", 1)[1]
    else:
        script, target = PG_HOLDER, url.replace("+psycopg", "", 1)
    holder = subprocess.Popen([sys.executable, "-c", script, target, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


async def test_a_knock_on_a_locked_database_answers_503_then_succeeds_and_reads_keep_working(live, http, caplog):
    app = await live()
    doctor = await add_clinician(app.engine)
    clinician = await accounts.get_clinician(app.engine, doctor.id)
    consultation = await cs.create_consultation(app.engine, app.settings, clinician, app.services.hub)
    patient = http()
    async with patient.get(f"{app.url}/j/{consultation.join_token}") as r:
        csrf = csrf_from(await r.text())
    form = {"sealed_name": sealed("Camille"), "consent": "yes", "csrf_token": csrf}
    holder = hold_exclusive_lock(app.settings.sqlalchemy_url, HOLD_SECONDS)
    try:
        async with patient.get(f"{app.url}/j/{consultation.join_token}") as r:
            assert r.status == 200  # a read
        started = time.monotonic()
        async with patient.post(f"{app.url}/j/{consultation.join_token}/knock", data=form,
                                allow_redirects=False) as r:
            assert r.status == 503, r.status
            assert r.headers["Retry-After"] == "2"
            assert "Le serveur est occupé" in await r.text()
        assert time.monotonic() - started < HOLD_SECONDS
    finally:
        holder.wait(timeout=30)
    assert await cs.list_knocks(app.engine, consultation) == []  # nothing half-written
    async with patient.post(f"{app.url}/j/{consultation.join_token}/knock", data=form,
                            allow_redirects=False) as r:
        assert r.status == 303
    assert [names.open_text(NAME_SECRET, k.sealed_name)
            for k in await cs.list_knocks(app.engine, consultation)] == ["Camille"]
    assert "Traceback" not in caplog.text and "unhandled error" not in caplog.text


async def test_an_api_write_on_a_locked_database_answers_json_503(live, http):
    from conftest import add_api_clinician
    app = await live()
    _, token = await add_api_clinician(app.engine)
    client = http()
    holder = hold_exclusive_lock(app.settings.sqlalchemy_url, HOLD_SECONDS)
    try:
        async with client.post(app.url + "/api/consultations", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 503
            assert (await r.json())["status"] == 503 and r.headers["Retry-After"] == "2"
    finally:
        holder.wait(timeout=30)


async def test_a_burst_of_200_simultaneous_creates_all_succeed(live):
    from conftest import add_api_clinician
    app = await live()
    _, token = await add_api_clinician(app.engine)
    auth = {"Authorization": f"Bearer {token}"}

    async def create(session):
        async with session.post(app.url + "/api/consultations", headers=auth) as r:
            await r.read()
            return r.status
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        statuses = await asyncio.gather(*(create(session) for _ in range(200)))
    assert statuses == [201] * 200
    async with app.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(db_tables.consultations))).scalar() == 200


@pytest.mark.sqlite_only
async def test_write_transactions_holding_the_database_longer_than_the_busy_timeout_together_all_pass_in_order(
        tmp_path):
    """60 transactions that each keep the write lock 0.1 s: 6 s in all, longer than SQLite's busy
    timeout (5 s). Left to SQLite's busy handler, the last ones fail with "database is locked";
    queued in the app, each waits its turn, in the order it asked."""
    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    await db.migrate(engine)
    order = []

    async def write(i):
        async with engine.begin() as conn:
            await conn.execute(db_tables.used_rooms.insert().values(room_name=f"room-{i:03d}"))
            order.append(i)
            await asyncio.sleep(0.1)
    try:
        count = 6 * 10 * db_busy.BUSY_TIMEOUT_SECONDS // 5
        await asyncio.gather(*(write(i) for i in range(count)))
        assert order == list(range(count))
        async with engine.connect() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(db_tables.used_rooms))).scalar() == count
    finally:
        await engine.dispose()

