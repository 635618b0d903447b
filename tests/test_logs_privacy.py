"""What a host's log holds after a whole consultation: routes, statuses and counts; never a
name, an email, a link, a room, a token, a password or a secret. The app runs as a host runs
it (`teleconsult serve`, its real access logger), and the log is everything it printed."""

import base64
import secrets
import subprocess
import time
from types import SimpleNamespace

import aiohttp
import jwt

from teleconsult import db
from conftest import PASSWORD, add_clinician, csrf_from, free_port, login, make_settings, sealed
from drop_client import download, upload
from room_event_client import EVENTS_SECRET, Poster, event, occupant
from test_cli import TELECONSULT, _env, wait_until_up

PATIENT = "Camille Patientnom"
DOCTOR_NAME = "Dr Nomdelamedecin"
DOCTOR_EMAIL = "nomdelamedecin@example.org"
DOCUMENT = "ordonnance-patientnom.pdf"


async def test_a_whole_consultation_leaves_no_name_link_token_or_secret_in_the_log(tmp_path):
    engine = db.make_engine(make_settings(tmp_path).sqlalchemy_url)  # the database `serve` will use
    await db.migrate(engine)
    doctor = await add_clinician(engine, DOCTOR_EMAIL, DOCTOR_NAME)
    await engine.dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(tmp_path, TELECONSULT_PORT=str(port), TELECONSULT_JITSI_EVENTS_SECRET=EVENTS_SECRET,
               TELECONSULT_DOCUMENTS_GRACE_SECONDS="0")
    server = subprocess.Popen(TELECONSULT + ["serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    secret = secrets.token_bytes(32)
    seen = {}
    try:
        jar = lambda: aiohttp.CookieJar(unsafe=True)  # noqa: E731
        async with aiohttp.ClientSession(cookie_jar=jar()) as clinician, \
                aiohttp.ClientSession(cookie_jar=jar()) as patient, aiohttp.ClientSession() as other:
            await wait_until_up(other, base)
            async with other.post(base + "/login", data={"email": DOCTOR_EMAIL, "password": "wrong password!!",
                                                         "csrf_token": "x"}) as r:
                assert r.status == 403  # no session yet: CSRF refused, and logged
            csrf = await login(clinician, base, doctor)
            async with clinician.post(base + "/consultations", headers={"X-CSRF-Token": csrf}) as r:
                consultation = await r.json()
            link = consultation["patient_url"]
            async with patient.get(link) as r:
                patient_csrf = csrf_from(await r.text())
            async with patient.post(link + "/knock", data={"sealed_name": sealed(PATIENT), "consent": "yes",
                                                          "csrf_token": patient_csrf}) as r:
                assert r.status == 200
            async with clinician.get(base + "/dashboard/state") as r:
                knock_id = (await r.json())["consultations"][0]["knocks"][0]["id"]
            async with clinician.post(f"{base}/consultations/{consultation['id']}/knocks/{knock_id}/admit",
                                      headers={"X-CSRF-Token": csrf}) as r:
                assert r.status == 200
            async with patient.get(link + "/call") as r:
                access = await r.json()
            room, token = access["room"], access["jwt"]
            assert jwt.decode(token, options={"verify_signature": False})["room"] == room
            sent = await upload(patient, base, "/j/" + link.rsplit("/", 1)[1] + "/documents", secret,
                                b"%PDF-1.7 " + PATIENT.encode(), DOCUMENT, "patient",
                                headers={"X-CSRF-Token": patient_csrf})
            meta, _ = await download(clinician, base, f"/consultations/{consultation['id']}/documents", secret,
                                     sent["id"], {"X-CSRF-Token": csrf})
            assert meta["name"] == DOCUMENT
            poster = Poster(SimpleNamespace(url=base), other)
            t = int(time.time())
            who = occupant(knock_id, "patient@meet.example.org/web", t, name=PATIENT)
            assert (await poster.send(event("muc-occupant-joined", room, occupant=who)))[0] == 200
            assert (await poster.send(event("muc-room-destroyed", room,
                                            all_occupants=[{**who, "left_at": t + 1}])))[0] == 200
            async with other.get(link.replace("/j/", "/j/x")) as r:
                assert r.status == 404  # a guessed link: logged as a route, not as the path
            seen.update(room=room, jwt=token, doc=sent["id"], join=link.rsplit("/", 1)[1])
    finally:
        server.terminate()
        log = server.communicate(timeout=20)[0].decode()

    assert "patient_knock" in log and "knock_admit" in log and "jitsiEvent" in log, log[-2000:]
    forbidden = {
        "patient's name": PATIENT, "its parts": "Patientnom", "clinician's name": "Nomdelamedecin",
        "clinician's email": DOCTOR_EMAIL, "password": PASSWORD, "document name": "ordonnance",
        "patient link token": seen["join"], "room name": seen["room"], "Jitsi token": seen["jwt"],
        "document id": seen["doc"], "consultation secret": base64.urlsafe_b64encode(secret).decode().rstrip("="),
        "events secret": EVENTS_SECRET,
    }
    for what, value in forbidden.items():
        assert value not in log, f"the {what} reached the log"
