"""A database held by another process (SQLite `BEGIN EXCLUSIVE`, e.g. a backup tool or a stuck
CLI) makes writes wait, then answer 503 with Retry-After: never a 500, nothing lost, and the
same request succeeds once the lock is gone. Reads keep working meanwhile (WAL)."""

import subprocess
import sys
import time

from teleconsult import accounts
from teleconsult import consultations as cs
from conftest import add_clinician, csrf_from

HOLD_SECONDS = 7  # longer than the app's busy timeout (5 s)

HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


def hold_exclusive_lock(path, seconds) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
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
    form = {"display_name": "Camille", "consent": "yes", "csrf_token": csrf}
    holder = hold_exclusive_lock(app.settings.sqlalchemy_url.split("///", 1)[1], HOLD_SECONDS)
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
    assert [k.display_name for k in await cs.list_knocks(app.engine, consultation)] == ["Camille"]
    assert "Traceback" not in caplog.text and "unhandled error" not in caplog.text


async def test_an_api_write_on_a_locked_database_answers_json_503(live, http):
    from conftest import add_api_clinician
    app = await live()
    _, token = await add_api_clinician(app.engine)
    client = http()
    holder = hold_exclusive_lock(app.settings.sqlalchemy_url.split("///", 1)[1], HOLD_SECONDS)
    try:
        async with client.post(app.url + "/api/consultations", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 503
            assert (await r.json())["status"] == 503 and r.headers["Retry-After"] == "2"
    finally:
        holder.wait(timeout=30)
