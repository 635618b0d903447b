"""The waiting room over real HTTP: nothing about the room before admission, through any endpoint."""

import asyncio
import contextlib
import json

import jwt

from teleconsult.web.routes import ROUTES
from conftest import NAME_SECRET, add_clinician, before_subscribing, csrf_from, fill_path, login, sealed
from teleconsult import names


async def _setup(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    clinician = http()
    csrf = await login(clinician, app.url, doctor)
    async with clinician.post(app.url + "/consultations", headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 201
        consultation = await r.json()
    return app, clinician, csrf, consultation


async def _room_of(app, consultation_id):
    import sqlalchemy as sa
    from teleconsult.db_tables import consultations
    async with app.engine.connect() as conn:
        return await conn.scalar(sa.select(consultations.c.room_name).where(consultations.c.id == consultation_id))


async def _first_knock(app, clinician) -> dict:
    """The first knock on the clinician's first consultation, as the dashboard's state shows it."""
    async with clinician.get(app.url + "/dashboard/state") as r:
        return (await r.json())["consultations"][0]["knocks"][0]


async def _knock(http, patient_url, name="Camille Dupont"):
    patient = http()
    async with patient.get(patient_url) as r:
        assert r.status == 200
        html = await r.text()
        assert "Rejoindre votre téléconsultation" in html
    async with patient.post(patient_url + "/knock", data={
            "sealed_name": sealed(name), "consent": "yes", "csrf_token": csrf_from(html)}) as r:
        assert r.status == 200
        assert "Salle d’attente" in await r.text()
    return patient


async def test_patient_cannot_obtain_room_or_token_before_admission_through_any_endpoint(live, http):
    app, clinician, csrf, consultation = await _setup(live, http)
    room = await _room_of(app, consultation["id"])
    patient = await _knock(http, consultation["patient_url"])
    token = consultation["patient_url"].rsplit("/", 1)[1]
    knock_id = (await _first_knock(app, clinician))["id"]
    values = {"token": token, "id": consultation["id"], "knock_id": knock_id, "doc": "x" * 22, "kind": "logo"}
    stranger = http()
    checked = 0
    for method, path, _handler, name in ROUTES:
        if path.endswith("/events"):
            continue  # streams: checked below with a bounded read
        for who in (patient, stranger):
            headers = {"X-CSRF-Token": "x"} if method != "GET" else {}
            async with who.request(method, app.url + fill_path(path, values), headers=headers,
                                   allow_redirects=False) as r:
                body = await r.text()
                assert room not in body and room not in str(r.headers), (method, path)
                assert "eyJ" not in body, f"a JWT leaked through {method} {path}"
                checked += 1
    async with patient.get(app.url + f"/j/{token}/events") as r:
        first = await r.content.readuntil(b"\n\n")
        assert b'"status":"waiting"' in first and room.encode() not in first
    async with patient.get(app.url + f"/j/{token}/call") as r:
        assert r.status == 403
    assert checked == 2 * len([r for r in ROUTES if not r[1].endswith("/events")])


async def test_admitted_patient_gets_a_member_token_for_the_room_and_is_readmitted_after_reload(live, http):
    app, clinician, csrf, consultation = await _setup(live, http)
    room = await _room_of(app, consultation["id"])
    patient = await _knock(http, consultation["patient_url"])
    knock = await _first_knock(app, clinician)
    # the server relays the name sealed as the page sent it; only the consultation secret opens it
    assert names.open_text(NAME_SECRET, knock["sealed_name"]) == "Camille Dupont" and knock["status"] == "waiting"
    async with clinician.post(app.url + f"/consultations/{consultation['id']}/knocks/{knock['id']}/admit",
                              headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 200
    async with patient.get(consultation["patient_url"] + "/call") as r:
        assert r.status == 200
        access = await r.json()
    assert access["room"] == room and access["domain"] == "meet.example.org"
    claims = jwt.decode(access["jwt"], app.settings.jitsi_app_secret, algorithms=["HS256"],
                        audience=app.settings.jitsi_app_id)
    assert claims["room"] == room
    assert claims["context"]["user"] == {"id": knock["id"], "affiliation": "member", "moderator": False}
    # reload: same browser goes straight back to the call page, no new knock
    async with patient.get(consultation["patient_url"]) as r:
        assert "Salle d’attente" in await r.text()
    async with patient.get(consultation["patient_url"] + "/call") as r:
        assert r.status == 200
    async with clinician.get(app.url + "/dashboard/state") as r:
        assert len((await r.json())["consultations"][0]["knocks"]) == 1
    async with clinician.get(app.url + f"/consultations/{consultation['id']}") as r:
        assert r.status == 200
    async with clinician.get(app.url + f"/consultations/{consultation['id']}/call") as r:
        clinician_claims = jwt.decode((await r.json())["jwt"], options={"verify_signature": False})
    assert clinician_claims["context"]["user"]["moderator"] is True
    assert clinician_claims["room"] == room


async def test_a_patient_admitted_while_the_waiting_rooms_stream_opens_is_told_so_on_that_stream(live, http):
    """The admission lands after the stream's handler has looked at the knock but before it listens
    for news (the window a clinician clicking at once can hit): the stream must still say admitted."""
    app, clinician, csrf, consultation = await _setup(live, http)
    patient = await _knock(http, consultation["patient_url"])
    knock_id = (await _first_knock(app, clinician))["id"]

    async def admit():
        async with clinician.post(app.url + f"/consultations/{consultation['id']}/knocks/{knock_id}/admit",
                                  headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
    before_subscribing(app.services.hub, f"knock:{knock_id}", admit)
    statuses = []
    async with patient.get(consultation["patient_url"] + "/events") as r:
        with contextlib.suppress(asyncio.TimeoutError):
            while "admitted" not in statuses:
                frame = await asyncio.wait_for(r.content.readuntil(b"\n\n"), 3)
                if frame.startswith(b"data: "):  # not the heartbeat's named ping
                    statuses.append(json.loads(frame[6:])["status"])
    assert statuses[-1:] == ["admitted"], f"the stream said {statuses}"


async def test_a_knock_gone_while_its_stream_opens_gets_a_refusal_not_a_broken_stream(live, http):
    """The knock disappears (purged) after the stream's handler found it but before the stream
    reads its status: the answer is a plain 403, not a 500 and not a stream cut after its head."""
    import sqlalchemy as sa
    from teleconsult.db_tables import knocks
    app, clinician, csrf, consultation = await _setup(live, http)
    patient = await _knock(http, consultation["patient_url"])
    knock_id = (await _first_knock(app, clinician))["id"]

    async def purge():
        async with app.engine.begin() as conn:
            await conn.execute(sa.delete(knocks).where(knocks.c.id == knock_id))
    before_subscribing(app.services.hub, f"knock:{knock_id}", purge)
    async with patient.get(consultation["patient_url"] + "/events") as r:
        assert r.status == 403 and r.content_type != "text/event-stream"
        await r.read()


async def test_declined_patient_is_not_admitted_and_cannot_knock_forever(live, http):
    app, clinician, csrf, consultation = await _setup(live, http)
    patient = await _knock(http, consultation["patient_url"])
    knock = await _first_knock(app, clinician)
    async with clinician.post(app.url + f"/consultations/{consultation['id']}/knocks/{knock['id']}/decline",
                              headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 200
    async with patient.get(consultation["patient_url"] + "/call") as r:
        assert r.status == 403
    async with patient.get(consultation["patient_url"] + "/status") as r:
        assert (await r.json())["status"] == "declined"
    async with patient.get(consultation["patient_url"]) as r:
        html = await r.text()
    assert "n’a pas pu vous faire entrer" in html
    form_csrf = csrf_from(html)
    statuses = []
    for _ in range(app.settings.knock_max + 2):
        async with patient.post(consultation["patient_url"] + "/knock", allow_redirects=False, data={
                "sealed_name": sealed("Camille"), "consent": "yes", "csrf_token": form_csrf}) as r:
            statuses.append(r.status)
    assert 429 in statuses, statuses
    assert statuses[-1] == 429


async def test_patient_link_after_the_end_shows_a_calm_ended_page_and_no_token(live, http):
    app, clinician, csrf, consultation = await _setup(live, http)
    patient = await _knock(http, consultation["patient_url"])
    knock = await _first_knock(app, clinician)
    async with clinician.post(app.url + f"/consultations/{consultation['id']}/knocks/{knock['id']}/admit",
                              headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 200
    async with clinician.post(app.url + f"/consultations/{consultation['id']}/end",
                              headers={"X-CSRF-Token": csrf}) as r:
        assert (await r.json())["status"] == "ended"
    async with patient.get(consultation["patient_url"]) as r:
        assert r.status == 200
        assert "Cette consultation est terminée" in await r.text()
    async with patient.get(consultation["patient_url"] + "/call") as r:
        assert r.status == 409
    async with clinician.get(app.url + f"/consultations/{consultation['id']}/call") as r:
        assert r.status == 409


async def test_unknown_link_gets_a_friendly_page_and_guessing_is_rate_limited(live, http):
    app = await live(link_guess_max=5)
    guesser = http()
    statuses = []
    for i in range(8):
        async with guesser.get(app.url + f"/j/guess{i}") as r:
            statuses.append(r.status)
            body = await r.text()
            if r.status == 404:
                assert "Ce lien n’est pas reconnu" in body
    assert statuses[:5] == [404] * 5 and statuses[5:] == [429] * 3


async def test_patient_needs_a_name_and_consent_to_knock(live, http):
    app, clinician, csrf, consultation = await _setup(live, http)
    patient = http()
    async with patient.get(consultation["patient_url"]) as r:
        form_csrf = csrf_from(await r.text())
    async with patient.post(consultation["patient_url"] + "/knock",
                            data={"sealed_name": sealed("Camille"), "csrf_token": form_csrf}) as r:
        assert r.status == 400 and "accepter les conditions" in await r.text()
    async with patient.post(consultation["patient_url"] + "/knock",
                            data={"sealed_name": sealed("x" * 60)[:-1], "consent": "yes", "csrf_token": form_csrf}) as r:
        assert r.status == 400  # not the shape of a sealed name
    async with patient.post(consultation["patient_url"] + "/knock",
                            data={"display_name": "Camille", "consent": "yes", "csrf_token": form_csrf}) as r:
        assert r.status == 400  # a name in clear is not accepted
    async with clinician.get(app.url + "/dashboard/state") as r:
        assert (await r.json())["consultations"][0]["knocks"] == []
