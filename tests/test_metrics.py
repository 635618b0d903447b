"""GET /metrics over real HTTP: off by default, Bearer only, aggregate counts and never who."""

import asyncio
import logging
import os
import secrets
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from filedrop.schema import files
from teleconsult import consultations as cs
from teleconsult.ending import sweep_once
from teleconsult.settings import SettingsError
from conftest import add_api_clinician, gone_at, make_settings, sealed
from drop_client import upload

METRICS_TOKEN = "metrics-" + "m" * 40
PATIENT_NAME = "Camille Dupont-Metrics"


async def scrape(session, app, token=METRICS_TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with session.get(app.url + "/metrics", headers=headers) as r:
        return r.status, await r.text()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_answer_404_when_no_token_is_configured(live, http):
    app = await live()
    assert (await scrape(http(), app))[0] == 404
    assert (await scrape(http(), app, token=""))[0] == 404


async def test_metrics_refuse_a_missing_or_wrong_token_with_401_and_a_log_line(live, http, caplog):
    caplog.set_level(logging.WARNING)
    app = await live(metrics_token=METRICS_TOKEN)
    session = http()
    for token in (None, "", "wrong", METRICS_TOKEN[:-1], METRICS_TOKEN + "x"):
        status, body = await scrape(session, app, token)
        assert status == 401 and "teleconsult_" not in body, token
    async with session.get(app.url + "/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"}) as r:
        assert r.status == 401
    assert "metrics refused (401)" in caplog.text and METRICS_TOKEN not in caplog.text


def test_a_short_metrics_token_stops_start_up(tmp_path):
    with pytest.raises(SettingsError, match="metrics_token must be at least 32 characters"):
        make_settings(tmp_path, metrics_token="too-short")


async def test_metrics_count_consultations_patients_and_documents_but_never_say_whose(live, http):
    app = await live(metrics_token=METRICS_TOKEN, documents_grace_seconds=0)
    _, token = await add_api_clinician(app.engine, "dr.metrics@example.org")
    auth = {"Authorization": f"Bearer {token}"}
    client = http()
    made = []
    for _ in range(3):
        async with client.post(app.url + "/api/consultations", headers=auth) as r:
            made.append(await r.json())
    row = await cs.consultation_by_join_token(app.engine, made[0]["patient_url"].rsplit("/", 1)[1])
    await cs.knock(app.engine, row, sealed(PATIENT_NAME), app.services.hub)
    prefix = f"/api/consultations/{made[1]['id']}/documents"
    sent = await upload(client, app.url, prefix, secrets.token_bytes(32), os.urandom(5000), "ordonnance.pdf",
                        "clinician", headers=auth)

    status, text = await scrape(client, app)
    assert status == 200
    values = samples(text)
    assert values[("teleconsult_consultations", (("status", "waiting"),))] == 3
    assert values[("teleconsult_consultations", (("status", "ended"),))] == 0
    assert values[("teleconsult_knocks_waiting", ())] == 1
    assert values[("teleconsult_clinicians", ())] == 1
    assert values[("teleconsult_documents", (("state", "ready"),))] == 1
    assert values[("teleconsult_documents_stored_bytes", ())] >= 5000
    assert values[("teleconsult_precall_sessions", ())] == 0
    for secret_or_name in (PATIENT_NAME, "Dupont", "dr.metrics", "ordonnance", made[0]["id"], made[1]["id"],
                           sent["id"], made[0]["patient_url"].rsplit("/", 1)[1], token):
        assert secret_or_name not in text

    ended = time.monotonic()
    async with client.post(app.url + f"/api/consultations/{made[1]['id']}/end", headers=auth) as r:
        assert r.status == 200
    on_disk = Path(app.settings.data_dir) / "documents" / "ready" / sent["id"]
    await gone_at(client, f"{app.url}{prefix}/{sent['id']}", auth, lambda: [on_disk] if on_disk.exists() else [])
    deleted = ("teleconsult_documents_deleted_total", (("reason", "scheduled"),))
    while not samples((await scrape(client, app))[1]).get(deleted):  # the audit line follows the file
        assert time.monotonic() - ended < 10, "the deletion never showed in the metrics"
        await asyncio.sleep(0.05)
    values = samples((await scrape(client, app))[1])
    assert values[("teleconsult_consultations", (("status", "ended"),))] == 1
    assert values[("teleconsult_documents", (("state", "ready"),))] == 0
    assert values[("teleconsult_documents_stored_bytes", ())] == 0
    assert values[("teleconsult_documents_deleted_total", (("reason", "scheduled"),))] == 1


async def test_documents_kept_past_their_deadline_show_as_overdue_until_a_sweep_removes_them(live, http):
    app = await live(metrics_token=METRICS_TOKEN, documents_sweep_seconds=3600)
    _, token = await add_api_clinician(app.engine)
    auth = {"Authorization": f"Bearer {token}"}
    client = http()
    async with client.post(app.url + "/api/consultations", headers=auth) as r:
        consultation = await r.json()
    await upload(client, app.url, f"/api/consultations/{consultation['id']}/documents", secrets.token_bytes(32),
                 b"x" * 100, "a.pdf", "clinician", headers=auth)
    overdue = ("teleconsult_documents_overdue", ())
    assert samples((await scrape(client, app))[1])[overdue] == 0
    # a deadline passed two minutes ago and nobody deleted it (a sweeper that does not run)
    async with app.engine.begin() as conn:
        await conn.execute(files.update().values(delete_at=time.time() - 120))
    assert samples((await scrape(client, app))[1])[overdue] == 1
    await sweep_once(app.services)
    assert samples((await scrape(client, app))[1])[overdue] == 0
