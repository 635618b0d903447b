"""`teleconsult migrate-database --to URL`: a single-machine instance (SQLite in its data
directory) moved to PostgreSQL by the real command, then served from PostgreSQL on the same data
directory: nobody notices. The target is a database of the throwaway cluster
(tests/postgres_cluster.py), whichever database the rest of the run uses."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

import postgres_cluster
from conftest import TEST_JITSI_SECRET, TEST_SECRET, add_clinician, login, patient_knocks
from drop_client import download, upload
from test_accounts import next_code
from test_clinician_keys import login_with_proposal, proposal
from teleconsult import accounts, db
from teleconsult.database_move import tables_in_order

pytestmark = [pytest.mark.timeout(120)]

TELECONSULT = [str(Path(sys.executable).parent / "teleconsult")]


def migrate_database(data_dir: Path, target: str) -> subprocess.CompletedProcess:
    """The real command, as a host runs it on the stopped instance's settings (here: environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update({"TELECONSULT_DATA_DIR": str(data_dir), "TELECONSULT_SESSION_SECRET": TEST_SECRET,
                "TELECONSULT_JITSI_DOMAIN": "meet.example.org", "TELECONSULT_JITSI_APP_ID": "teleconsult-test",
                "TELECONSULT_JITSI_APP_SECRET": TEST_JITSI_SECRET})
    return subprocess.run([*TELECONSULT, "migrate-database", "--to", target], env=env, capture_output=True,
                          text=True, timeout=60)


async def counts(url: str) -> dict[str, int]:
    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            return {t.name: await conn.scalar(sa.select(sa.func.count()).select_from(t)) for t in tables_in_order()}
    finally:
        await engine.dispose()


async def test_an_instance_moved_from_sqlite_to_postgresql_keeps_its_clinicians_tokens_sessions_consultations_and_documents(
        live, http, tmp_path):
    data = tmp_path / "data"
    before = await live(database_url="", data_dir=data)  # SQLite in the data directory
    assert db.is_sqlite(before.engine)
    doctor = await add_clinician(before.engine)
    token = await accounts.issue_api_token(before.engine, doctor.email)
    auth = {"Authorization": f"Bearer {token}"}
    api = http()
    async with api.post(before.url + "/api/consultations", headers=auth) as r:
        assert r.status == 201
        consultation = await r.json()
    prefix = f"/api/consultations/{consultation['id']}/documents"
    secret, pdf = secrets.token_bytes(32), os.urandom(5000)
    document = await upload(api, before.url, prefix, secret, pdf, "ordonnance.pdf", "clinician", headers=auth)
    patient, patient_csrf = await patient_knocks(http, consultation)
    browser = http()  # the clinician's browser: logged in, its key pair made at this login
    public_key, wrapped = proposal()
    await login_with_proposal(browser, before.url, doctor, public_key, wrapped)
    await before.server.close()
    source = await counts(before.settings.sqlalchemy_url)
    assert source["clinicians"] == source["consultations"] == source["knocks"] == source["drop_files"] == 1
    assert source["sessions"] == 1 and source["drop_audit"] >= 2

    target = postgres_cluster.cluster().database_for(str(tmp_path / "target"))
    result = migrate_database(data, target)
    assert result.returncode == 0, result.stderr
    assert "counts checked" in result.stdout and "Traceback" not in result.stderr
    assert await counts(target) == source

    after = await live(database_url=target, data_dir=data)  # PostgreSQL, the same data directory
    assert not db.is_sqlite(after.engine)
    async with browser.get(after.url + "/dashboard/state") as r:  # the session goes on: nobody signed out
        assert r.status == 200
        state = await r.json()
    listed = next(c for c in state["consultations"] if c["id"] == consultation["id"])
    assert listed["status"] == consultation["status"] and [k["status"] for k in listed["knocks"]] == ["waiting"]
    assert state["key"]["public_key"] == public_key
    async with api.get(after.url + f"/api/consultations/{consultation['id']}", headers=auth) as r:
        assert r.status == 200, "the API token still works"
        assert len((await r.json())["knocks"]) == 1
    async with api.get(after.url + "/api/clinician/key", headers=auth) as r:
        assert (await r.json())["public_key"] == public_key
    meta, plaintext = await download(api, after.url, prefix, secret, document["id"], headers=auth)
    assert plaintext == pdf and meta["name"] == "ordonnance.pdf"  # a download adds an audit line: its sequence goes on
    await login(http(), after.url, doctor, code=next_code(doctor))  # password and second factor, moved
    async with api.post(after.url + "/api/consultations", headers=auth) as r:
        assert r.status == 201, "new rows go in beside the moved ones"


async def test_the_move_refuses_a_target_that_is_not_empty_and_one_that_fails_writes_nothing(live, tmp_path):
    data = tmp_path / "data"
    before = await live(database_url="", data_dir=data)
    await add_clinician(before.engine)
    await before.server.close()
    target = postgres_cluster.cluster().database_for(str(tmp_path / "target"))
    assert migrate_database(data, target).returncode == 0
    again = migrate_database(data, target)
    assert again.returncode == 1 and "not empty" in again.stderr and "Traceback" not in again.stderr
    assert (await counts(target))["clinicians"] == 1, "nothing copied twice"

    # a source with a table this version does not know: stopped before anything is written
    with sqlite3.connect(data / "teleconsult.sqlite3") as conn:
        conn.execute("CREATE TABLE from_the_future (x INTEGER)")
    other = postgres_cluster.cluster().database_for(str(tmp_path / "other"))
    refused = migrate_database(data, other)
    assert refused.returncode == 1 and "from_the_future" in refused.stderr
    assert set((await counts(other)).values()) == {0}
    with psycopg.connect(other.replace("+psycopg", ""), autocommit=True) as conn:  # another application's
        conn.execute("CREATE TABLE invoices (id integer)")
    for leftover in data.glob("teleconsult.sqlite3*"):  # a fresh source: only the target is wrong now
        leftover.unlink()
    foreign = migrate_database(data, other)
    assert foreign.returncode == 1 and "not ours (invoices)" in foreign.stderr
    bad = migrate_database(data, "mysql://somewhere/db")
    assert bad.returncode == 1 and "PostgreSQL URL" in bad.stderr
