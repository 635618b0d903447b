"""Consultation rules over the integrators' API and the patient pages: a clinician sees and
decides only their own, and nothing is decided or knocked once a consultation has ended."""

from conftest import add_api_clinician, csrf_from, patient_knocks, sealed


async def _clinician(app, http, email):
    _, token = await add_api_clinician(app.engine, email)
    return http(), {"Authorization": f"Bearer {token}"}


async def _create(app, client, auth) -> dict:
    async with client.post(app.url + "/api/consultations", headers=auth) as r:
        assert r.status == 201
        return await r.json()


async def _knocks(app, client, auth, consultation) -> list[dict]:
    async with client.get(app.url + f"/api/consultations/{consultation['id']}", headers=auth) as r:
        return (await r.json())["knocks"]


async def test_a_clinician_lists_only_their_own_consultations(live, http):
    app = await live()
    mine, my_auth = await _clinician(app, http, "a@example.org")
    theirs, their_auth = await _clinician(app, http, "b@example.org")
    own = await _create(app, mine, my_auth)
    await _create(app, theirs, their_auth)
    async with mine.get(app.url + "/api/consultations", headers=my_auth) as r:
        listed = (await r.json())["consultations"]
    assert [c["id"] for c in listed] == [own["id"]]


async def test_a_clinician_cannot_decide_a_knock_of_another_consultation_through_their_own(live, http):
    app = await live()
    mine, my_auth = await _clinician(app, http, "a@example.org")
    theirs, their_auth = await _clinician(app, http, "b@example.org")
    own = await _create(app, mine, my_auth)
    other = await _create(app, theirs, their_auth)
    await patient_knocks(http, other)
    (knock,) = await _knocks(app, theirs, their_auth, other)
    for decision in ("admit", "decline"):
        async with mine.post(app.url + f"/api/consultations/{own['id']}/knocks/{knock['id']}/{decision}",
                             headers=my_auth) as r:
            assert r.status == 404, (decision, r.status)
    assert [k["status"] for k in await _knocks(app, theirs, their_auth, other)] == ["waiting"]


async def test_no_knock_is_admitted_or_declined_after_the_end(live, http):
    app = await live()
    client, auth = await _clinician(app, http, "a@example.org")
    consultation = await _create(app, client, auth)
    await patient_knocks(http, consultation)
    (knock,) = await _knocks(app, client, auth, consultation)
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert r.status == 200
    for decision in ("admit", "decline"):
        async with client.post(app.url + f"/api/consultations/{consultation['id']}/knocks/{knock['id']}/{decision}",
                               headers=auth) as r:
            assert r.status == 409, (decision, r.status)
    assert [k["status"] for k in await _knocks(app, client, auth, consultation)] == ["ended"]


async def test_no_patient_can_knock_after_the_end(live, http):
    app = await live()
    client, auth = await _clinician(app, http, "a@example.org")
    consultation = await _create(app, client, auth)
    patient = http()
    async with patient.get(consultation["patient_url"]) as r:
        csrf = csrf_from(await r.text())  # the page was open before the end
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert r.status == 200
    async with patient.post(consultation["patient_url"] + "/knock", allow_redirects=False, data={
            "sealed_name": sealed("Camille"), "consent": "yes", "csrf_token": csrf}) as r:
        assert r.status == 409
        assert "Traceback" not in await r.text()
    assert await _knocks(app, client, auth, consultation) == []


async def _room_of(app, consultation_id):
    import sqlalchemy as sa
    from teleconsult.db_tables import consultations
    async with app.engine.connect() as conn:
        return await conn.scalar(sa.select(consultations.c.room_name).where(consultations.c.id == consultation_id))


async def test_the_api_and_the_dashboard_never_show_the_room_name(live, http):
    """The room leaves the server only with a token, through the join endpoints."""
    app = await live()
    client, auth = await _clinician(app, http, "a@example.org")
    async with client.post(app.url + "/api/consultations", headers=auth) as r:
        created = await r.text()
    consultation_id = __import__("json").loads(created)["id"]
    room = await _room_of(app, consultation_id)
    answers = [created]
    for path in ("/api/consultations", f"/api/consultations/{consultation_id}"):
        async with client.get(app.url + path, headers=auth) as r:
            answers.append(await r.text())
    assert all(room not in answer for answer in answers)


async def test_another_browser_with_the_same_link_cannot_use_the_admitted_patients_admission(live, http):
    app = await live()
    client, auth = await _clinician(app, http, "a@example.org")
    consultation = await _create(app, client, auth)
    patient, _ = await patient_knocks(http, consultation)
    (knock,) = await _knocks(app, client, auth, consultation)
    async with client.post(app.url + f"/api/consultations/{consultation['id']}/knocks/{knock['id']}/admit",
                           headers=auth) as r:
        assert r.status == 200
    async with patient.get(consultation["patient_url"] + "/call") as r:
        assert r.status == 200  # the admitted browser
    forwarded_to = http()  # the link, forwarded or overheard: the admission stays with the browser
    for suffix in ("/call", "/status", "/documents"):
        async with forwarded_to.get(consultation["patient_url"] + suffix) as r:
            assert r.status == 403, (suffix, r.status)
