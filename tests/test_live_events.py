"""Live events carry what changed, as the pages' full fetch shows it: the dashboard and the
documents panel apply them without fetching their whole state again (static/js/dashboard.js,
static/js/documents.js; tests/test_live_pages_browser.py watches the pages do it)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets

import pytest

from teleconsult import accounts, ids, sealing
from teleconsult import consultations as cs
from teleconsult.ending import sweep_once
from conftest import add_api_clinician, api_consultation, login, sealed
from drop_client import download, upload
from test_accounts import next_code
from test_clinician_keys import give_key

pytestmark = [pytest.mark.timeout(60)]


async def _next(queue, kind: str) -> dict:
    """The next event of type `kind` (others, e.g. the dashboard's, are skipped)."""
    while True:
        event = await asyncio.wait_for(queue.get(), 2)
        if event["type"] == kind:
            return event


async def _state_item(dashboard, app, consultation_id: str) -> dict:
    async with dashboard.get(app.url + "/dashboard/state") as r:
        return next(c for c in (await r.json())["consultations"] if c["id"] == consultation_id)


async def test_a_new_consultation_event_carries_the_listing_the_dashboard_state_shows(live, http):
    app = await live()
    doctor, token = await add_api_clinician(app.engine)
    auth = {"Authorization": f"Bearer {token}"}
    dashboard = http()
    await login(dashboard, app.url, doctor)
    async with app.services.hub.subscribe(f"clinician:{doctor.id}") as queue:
        async with http().post(app.url + "/api/consultations", headers=auth) as r:
            created = await r.json()
        event = await _next(queue, "consultation")
    item = await _state_item(dashboard, app, created["id"])
    assert event["consultation_id"] == created["id"] and event["status"] == "waiting"
    assert event["consultation"] == {k: v for k, v in item.items() if k not in ("knocks", "presence")}
    room = (await cs.consultation_by_join_token(app.engine, created["patient_url"].rsplit("/", 1)[1])).room_name
    assert room not in json.dumps(event), "the room name never leaves the server but in a call token"


async def test_a_sealed_secret_reaches_the_dashboards_in_the_creation_event_and_again_when_sealed_anew(live, http):
    """A consultation an integrator sealed: its event carries the sealed secret the state shows.
    After a host reset, a browser that still holds S seals it to the new key: the clinician's
    other dashboards get the new listing (no longer lost) from the event alone."""
    app = await live()
    doctor, token = await add_api_clinician(app.engine)
    auth = {"Authorization": f"Bearer {token}"}
    _, old_key = await give_key(app.engine, doctor)
    dashboard = http()
    await login(dashboard, app.url, doctor)
    secret, consultation_id = os.urandom(32), ids.new_id()
    async with app.services.hub.subscribe(f"clinician:{doctor.id}") as queue:
        async with http().post(app.url + "/api/consultations", headers=auth, json={
                "id": consultation_id, "sealed_secret": sealing.seal_secret(old_key, secret, consultation_id)}) as r:
            assert r.status == 201, await r.text()
        created = await _next(queue, "consultation")
    item = await _state_item(dashboard, app, consultation_id)
    assert created["consultation"] == {k: v for k, v in item.items() if k not in ("knocks", "presence")}
    assert created["consultation"]["sealed_secret"] and created["consultation"]["key_lost"] is False

    await accounts.set_password(app.engine, doctor.email, "the host's new password")  # forgets the key
    doctor.password = "the host's new password"
    new_private, new_key = await give_key(app.engine, doctor, doctor.password)
    csrf = await login(dashboard, app.url, doctor, code=next_code(doctor))
    assert (await _state_item(dashboard, app, consultation_id))["key_lost"] is True
    resealed = sealing.seal_secret(new_key, secret, consultation_id)
    async with app.services.hub.subscribe(f"clinician:{doctor.id}") as queue:
        async with dashboard.post(app.url + f"/consultations/{consultation_id}/sealed-secret",
                                  json={"sealed_secret": resealed},
                                  headers={"X-CSRF-Token": csrf, "Accept": "application/json"}) as r:
            assert r.status == 200, await r.text()
            answer = await r.json()
        again = await _next(queue, "consultation")
    item = await _state_item(dashboard, app, consultation_id)
    assert again["consultation"] == answer == {k: v for k, v in item.items() if k not in ("knocks", "presence")}
    assert again["consultation"]["key_lost"] is False
    assert sealing.open_secret(new_private, again["consultation"]["sealed_secret"], consultation_id) == secret


async def test_knock_and_decision_events_carry_the_knock_the_dashboard_state_shows(live, http):
    app = await live()
    doctor, token = await add_api_clinician(app.engine)
    dashboard = http()
    await login(dashboard, app.url, doctor)
    async with http().post(app.url + "/api/consultations", headers={"Authorization": f"Bearer {token}"}) as r:
        created = await r.json()
    consultation = await cs.consultation_by_join_token(app.engine, created["patient_url"].rsplit("/", 1)[1])
    async with app.services.hub.subscribe(f"clinician:{doctor.id}") as queue:
        knock = await cs.knock(app.engine, consultation, sealed("Camille"), app.services.hub)
        knocked = await _next(queue, "knock")
        (listed,) = (await _state_item(dashboard, app, consultation.id))["knocks"]
        assert knocked["knock"] == listed and knocked["status"] == "waiting"
        await cs.decide(app.engine, consultation, knock.id, True, app.services.hub)
        admitted = await _next(queue, "knock")
        item = await _state_item(dashboard, app, consultation.id)
        assert admitted["knock"] == item["knocks"][0] and admitted["knock"]["status"] == "admitted"
        assert admitted["status"] == item["status"] == "in_call"


async def test_document_events_carry_the_listing_the_box_shows_and_the_download_count(live, http):
    app = await live(documents_grace_seconds=0)
    client, auth, consultation = await api_consultation(app, http)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    secret = secrets.token_bytes(32)
    async with app.services.hub.subscribe(f"box:{consultation['id']}") as queue:
        sent = await upload(client, app.url, prefix, secret, b"%PDF-1.7 ...", "ordonnance.pdf", "clinician",
                            headers=auth)
        added = await _next(queue, "document")
        async with client.get(app.url + prefix, headers=auth) as r:
            (listed,) = (await r.json())["documents"]
        assert added["action"] == "added" and added["id"] == sent["id"]
        assert added["document"] == listed, "the page adds the document from the event alone"
        assert listed["metadata"], "the listing carries the encrypted metadata the page decrypts"
        assert b"ordonnance" not in json.dumps(added).encode()
        for count in (1, 2):
            await download(client, app.url, prefix, secret, sent["id"], auth)
            downloaded = await _next(queue, "document")
            assert (downloaded["action"], downloaded["id"], downloaded["completed_downloads"]) == (
                "downloaded", sent["id"], count)
        async with client.post(app.url + f"/api/consultations/{consultation['id']}/end", headers=auth) as r:
            assert r.status == 200
        await sweep_once(app.services)
        deleted = await _next(queue, "document")
        assert (deleted["action"], deleted["id"]) == ("deleted", sent["id"])


async def test_a_download_cut_midway_is_not_counted_as_downloaded_and_a_whole_one_is(live, http):
    """The patient's phone loses its network halfway through a document: the clinician must not
    read "Downloaded" (the event and the listing count only transfers whose last byte was sent)."""
    app = await live(documents_grace_seconds=0)
    client, auth, consultation = await api_consultation(app, http)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    secret = secrets.token_bytes(32)
    sent = await upload(client, app.url, prefix, secret, os.urandom(24 * 1024 * 1024), "scan.bin", "clinician",
                        headers=auth)
    async with app.services.hub.subscribe(f"box:{consultation['id']}") as queue:
        cutter = http()
        response = await cutter.get(app.url + f"{prefix}/{sent['id']}", headers=auth)
        assert response.status == 200
        await response.content.readexactly(64 * 1024)
        response.close()  # the connection goes, 24 MiB minus a few buffers never sent
        await cutter.close()
        await asyncio.sleep(1)
        seen = []
        while not queue.empty():
            seen.append(queue.get_nowait())
        assert [e for e in seen if e.get("action") == "downloaded"] == [], seen
        async with client.get(app.url + prefix, headers=auth) as r:
            (listed,) = (await r.json())["documents"]
        assert listed["completed_downloads"] == 0 and listed["downloads"] == 1  # started once, finished never

        await download(client, app.url, prefix, secret, sent["id"], auth)
        downloaded = await _next(queue, "document")
        assert (downloaded["action"], downloaded["completed_downloads"]) == ("downloaded", 1)
        async with client.get(app.url + prefix, headers=auth) as r:
            (listed,) = (await r.json())["documents"]
        assert listed["completed_downloads"] == 1 and listed["downloads"] == 2
