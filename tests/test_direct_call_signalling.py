"""The direct call's signalling over HTTP (real app on loopback, real SQLite): messages go only
between the two parties of one consultation, only after admission, never after the end; anything
malformed or oversized is refused and never relayed, and nothing answers 500."""

import asyncio
import json
import re

import pytest

from conftest import add_clinician, before_subscribing, csrf_from, login, sealed
from teleconsult import consultations as cs
from teleconsult import direct_call as dc

NO_JITSI = {"jitsi_domain": "", "jitsi_app_id": "", "jitsi_app_secret": ""}
OFFER = {"kind": "description", "session": "s1", "description": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}
ANSWER = {"kind": "description", "session": "s1", "description": {"type": "answer", "sdp": "v=0\r\n"}}
CANDIDATE = {"kind": "candidate", "session": "s1", "candidate": {
    "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0,
    "usernameFragment": "abcd"}}


class Stream:
    """An open server-sent events stream, read in the background."""

    def __init__(self, response):
        self.response = response
        self.events: list[dict] = []
        self.task = asyncio.ensure_future(self._read())

    async def _read(self):
        async for line in self.response.content:
            if line.startswith(b"data: "):
                self.events.append(json.loads(line[6:]))

    def signals(self) -> list[dict]:
        return [e["message"] for e in self.events if e["type"] == "signal"]

    async def wait_for(self, predicate, timeout=5.0):
        for _ in range(int(timeout / 0.02)):
            found = [e for e in self.events if predicate(e)]
            if found:
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no such event; got {self.events}")

    async def close(self):
        self.task.cancel()
        self.response.close()
        await asyncio.sleep(0.05)


async def _open(session, url) -> Stream:
    response = await session.get(url, headers={"Accept": "text/event-stream"})
    assert response.status == 200, response.status
    stream = Stream(response)
    await stream.wait_for(lambda e: e["type"] == "hello")
    return stream


class Call:
    """A consultation with a logged-in clinician and a patient who knocked (admitted or not)."""

    def __init__(self, app, doctor_http, doctor_csrf, consultation, patient_http, patient_csrf, token, knock_id):
        self.app, self.doctor, self.doctor_csrf = app, doctor_http, doctor_csrf
        self.id, self.consultation = consultation["id"], consultation
        self.patient, self.patient_csrf, self.token, self.knock_id = patient_http, patient_csrf, token, knock_id

    def clinician_url(self, tail=""):
        return f"{self.app.url}/consultations/{self.id}/signal{tail}"

    def patient_url(self, tail=""):
        return f"{self.app.url}/j/{self.token}/signal{tail}"

    async def admit(self):
        async with self.doctor.post(f"{self.app.url}/consultations/{self.id}/knocks/{self.knock_id}/admit",
                                    headers={"X-CSRF-Token": self.doctor_csrf}) as r:
            assert r.status == 200

    async def clinician_sends(self, body, **headers):
        return await _post(self.doctor, self.clinician_url(), body, self.doctor_csrf, headers)

    async def patient_sends(self, body, **headers):
        return await _post(self.patient, self.patient_url(), body, self.patient_csrf, headers)


async def _post(session, url, body, csrf, headers):
    data = json.dumps(body) if isinstance(body, dict) else body
    async with session.post(url, data=data, headers={"X-CSRF-Token": csrf, "Content-Type": "application/json",
                                                     "Accept": "application/json", **headers}) as r:
        return r.status


async def _ended_soon(engine, consultation_id, seconds: float = 5.0):
    """The consultation as soon as it is ended, or as it is after `seconds` (for the caller to assert)."""
    for _ in range(int(seconds / 0.05)):
        consultation = await cs.consultation_by_id(engine, consultation_id)
        if consultation.status == cs.ENDED:
            break
        await asyncio.sleep(0.05)
    return consultation


async def _consultation(app, doctor_http, doctor_csrf, patient_http, name="Camille") -> Call:
    async with doctor_http.post(app.url + "/consultations", headers={"X-CSRF-Token": doctor_csrf}) as r:
        assert r.status == 201
        consultation = await r.json()
    link = consultation["patient_url"]
    token = link.rsplit("/", 1)[1]
    async with patient_http.get(link) as r:
        patient_csrf = csrf_from(await r.text())
    async with patient_http.post(link + "/knock", data={
            "sealed_name": sealed(name), "consent": "yes", "csrf_token": patient_csrf}) as r:
        assert r.status == 200
    async with doctor_http.get(app.url + "/dashboard/state") as r:
        state = await r.json()
    item = next(c for c in state["consultations"] if c["id"] == consultation["id"])
    return Call(app, doctor_http, doctor_csrf, consultation, patient_http, patient_csrf, token, item["knocks"][0]["id"])


@pytest.fixture
async def direct(live, http):
    async def start(**overrides):
        app = await live(**{**NO_JITSI, **overrides})
        doctor = await add_clinician(app.engine)
        doctor_http = http()
        csrf = await login(doctor_http, app.url, doctor)
        return app, doctor_http, csrf
    return start


async def test_once_admitted_each_side_receives_exactly_what_the_other_sent_and_the_call_access_is_direct(direct, http):
    app, doctor_http, csrf = await direct(direct_ice_servers='[{"urls": "stun:127.0.0.1:3478"}]')
    call = await _consultation(app, doctor_http, csrf, http())
    await call.admit()
    async with call.patient.get(f"{app.url}/j/{call.token}/call", headers={"Accept": "application/json"}) as r:
        assert r.status == 200
        assert await r.json() == {"engine": "direct", "ice_servers": [{"urls": "stun:127.0.0.1:3478"}],
                                  "role": "patient"}
    clinician = await _open(doctor_http, call.clinician_url("/events"))
    patient = await _open(call.patient, call.patient_url("/events"))
    await clinician.wait_for(lambda e: e == {"type": "peer", "present": True})  # the patient came
    assert await call.clinician_sends(OFFER) == 204
    assert await call.clinician_sends(CANDIDATE) == 204
    assert await call.patient_sends(ANSWER) == 204
    await patient.wait_for(lambda e: e.get("message") == CANDIDATE)
    await clinician.wait_for(lambda e: e.get("message") == ANSWER)
    assert patient.signals() == [OFFER, CANDIDATE]  # in order, exactly, and nothing of its own
    assert clinician.signals() == [ANSWER]
    await patient.close()
    await clinician.wait_for(lambda e: e == {"type": "peer", "present": False})
    await clinician.close()


async def test_a_patient_arriving_while_the_clinicians_stream_opens_is_seen_on_that_stream(direct, http):
    """The patient's stream opens (and is announced) after the clinician's stream handler was
    called but before it listens for news: the clinician's page must still learn the patient is
    there, in its hello or in a peer event after it (else it never makes an offer)."""
    app, doctor_http, csrf = await direct()
    call = await _consultation(app, doctor_http, csrf, http())
    await call.admit()
    patient = []

    async def patient_arrives():
        patient.append(await _open(call.patient, call.patient_url("/events")))
    before_subscribing(app.services.hub, dc.clinician_topic(call.id), patient_arrives)
    clinician = await _open(doctor_http, call.clinician_url("/events"))
    await clinician.wait_for(lambda e: e.get("peer") is True or e == {"type": "peer", "present": True}, timeout=2)
    await clinician.close()
    await patient[0].close()


async def test_before_admission_the_patient_can_neither_send_nor_listen_nor_be_reached(direct, http):
    app, doctor_http, csrf = await direct()
    call = await _consultation(app, doctor_http, csrf, http())
    clinician = await _open(doctor_http, call.clinician_url("/events"))
    assert await call.patient_sends(OFFER) == 403
    async with call.patient.get(call.patient_url("/events")) as r:
        assert r.status == 403
    async with call.patient.get(f"{app.url}/j/{call.token}/call", headers={"Accept": "application/json"}) as r:
        assert r.status == 403  # no ICE servers (nor TURN credentials) before admission
    topics = [t for t in app.services.hub._subscribers if t.startswith("signal:")]
    assert await call.clinician_sends(OFFER) == 204  # the clinician may talk; nobody is admitted to hear it
    assert topics == [dc.clinician_topic(call.id)]  # no patient topic exists to carry it
    await asyncio.sleep(0.3)
    assert clinician.signals() == []
    await clinician.close()


async def test_a_patient_of_another_consultation_cannot_signal_into_this_one(direct, http):
    app, doctor_http, csrf = await direct()
    mine = await _consultation(app, doctor_http, csrf, http())
    await mine.admit()
    other_patient = http()
    theirs = await _consultation(app, doctor_http, csrf, other_patient, name="Dominique")
    await theirs.admit()
    clinician = await _open(doctor_http, mine.clinician_url("/events"))
    # the other patient, admitted in their own consultation, uses this consultation's link
    assert await _post(other_patient, mine.patient_url(), OFFER, theirs.patient_csrf, {}) == 403
    async with other_patient.get(mine.patient_url("/events")) as r:
        assert r.status == 403
    # and what they send in their own consultation stays there
    assert await theirs.patient_sends(ANSWER) == 204
    await asyncio.sleep(0.3)
    assert clinician.signals() == []
    await clinician.close()


async def test_after_the_end_signalling_is_refused_and_the_open_streams_are_told(direct, http):
    app, doctor_http, csrf = await direct()
    call = await _consultation(app, doctor_http, csrf, http())
    await call.admit()
    clinician = await _open(doctor_http, call.clinician_url("/events"))
    async with doctor_http.post(f"{app.url}/consultations/{call.id}/end", headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 200
    await clinician.wait_for(lambda e: e["type"] == "ended")
    assert await call.clinician_sends(OFFER) == 409
    assert await call.patient_sends(ANSWER) == 409
    for session, url in ((doctor_http, call.clinician_url("/events")), (call.patient, call.patient_url("/events"))):
        async with session.get(url) as r:
            assert r.status == 409
    assert clinician.signals() == []
    await clinician.close()


MALFORMED = [
    b"not json", b"[1, 2]", b"\xff\xfe", b'"offer"', b"{}", json.dumps({"kind": "bye", "session": "s"}),
    json.dumps({**OFFER, "extra": 1}), json.dumps({"kind": "description", "description": OFFER["description"]}),
    json.dumps({**OFFER, "description": {"type": "pranswer", "sdp": "v=0"}}),
    json.dumps({**OFFER, "description": {"type": "offer", "sdp": 5}}),
    json.dumps({**OFFER, "description": {"type": "offer", "sdp": "v=0", "x": 1}}),
    json.dumps({**OFFER, "description": {"type": "offer", "sdp": "v" * (dc.MAX_SDP_CHARS + 1)}}),
    json.dumps({**OFFER, "session": ["s1"]}), json.dumps({**OFFER, "session": "s" * 65}),
    json.dumps({**CANDIDATE, "candidate": {**CANDIDATE["candidate"], "sdpMLineIndex": "0"}}),
    json.dumps({**CANDIDATE, "candidate": {**CANDIDATE["candidate"], "sdpMLineIndex": True}}),
    json.dumps({**CANDIDATE, "candidate": {**CANDIDATE["candidate"], "sdpMLineIndex": -1}}),
    json.dumps({**CANDIDATE, "candidate": {"sdpMid": "0"}}),
    json.dumps({**CANDIDATE, "candidate": "candidate:1 1 udp"}),
    json.dumps({"kind": "restart", "session": "s1", "description": OFFER["description"]}),
]


async def test_malformed_and_oversized_messages_are_refused_from_either_side_and_never_relayed(direct, http):
    app, doctor_http, csrf = await direct()
    call = await _consultation(app, doctor_http, csrf, http())
    await call.admit()
    clinician = await _open(doctor_http, call.clinician_url("/events"))
    patient = await _open(call.patient, call.patient_url("/events"))
    oversized = json.dumps({**OFFER, "description": {"type": "offer", "sdp": "v" * dc.MAX_MESSAGE_BYTES}})

    async def chunked():  # no Content-Length: the limit holds while reading
        for _ in range(20):
            yield b"x" * 8192
    for send in (call.clinician_sends, call.patient_sends):
        for body in MALFORMED:
            assert await send(body) == 400, body[:80]
        assert await send(oversized) == 413
        assert await send(chunked()) == 413
        assert await send(b"{" + b" " * dc.MAX_MESSAGE_BYTES + b"}") == 413
    await asyncio.sleep(0.3)
    assert clinician.signals() == [] and patient.signals() == []
    # a message without the CSRF token is refused too
    async with call.patient.post(call.patient_url(), data=json.dumps(ANSWER)) as r:
        assert r.status == 403
    async with doctor_http.post(call.clinician_url(), data=json.dumps(OFFER)) as r:
        assert r.status == 403
    assert clinician.signals() == [] and patient.signals() == []
    await clinician.close()
    await patient.close()


async def test_another_clinician_cannot_signal_or_listen_in_a_consultation(direct, http):
    app, doctor_http, csrf = await direct()
    call = await _consultation(app, doctor_http, csrf, http())
    await call.admit()
    patient = await _open(call.patient, call.patient_url("/events"))
    intruder = await add_clinician(app.engine, email="other@example.org", name="Dr Other")
    intruder_http = http()
    intruder_csrf = await login(intruder_http, app.url, intruder)
    assert await _post(intruder_http, call.clinician_url(), OFFER, intruder_csrf, {}) == 404
    async with intruder_http.get(call.clinician_url("/events")) as r:
        assert r.status == 404
    await asyncio.sleep(0.2)
    assert patient.signals() == []
    await patient.close()


async def test_with_a_jitsi_domain_the_signalling_routes_answer_404_and_the_csp_names_jitsi(live, http):
    app = await live()  # conftest's settings name meet.example.org
    doctor = await add_clinician(app.engine)
    doctor_http = http()
    csrf = await login(doctor_http, app.url, doctor)
    call = await _consultation(app, doctor_http, csrf, http())
    await call.admit()
    assert await call.clinician_sends(OFFER) == 404
    assert await call.patient_sends(ANSWER) == 404
    async with doctor_http.get(f"{app.url}/consultations/{call.id}") as r:
        assert "https://meet.example.org" in r.headers["Content-Security-Policy"]
        assert '"direct": null' in await r.text()


async def test_without_jitsi_no_page_names_any_origin_but_ours(direct, http):
    app, doctor_http, csrf = await direct()
    call = await _consultation(app, doctor_http, csrf, http())
    await call.admit()
    for session, url in ((doctor_http, f"{app.url}/consultations/{call.id}"), (call.patient, f"{app.url}/j/{call.token}")):
        async with session.get(url) as r:
            csp, policy = r.headers["Content-Security-Policy"], r.headers["Permissions-Policy"]
            assert "script-src 'self';" in csp
            assert not re.search(r"https?://", csp + policy), csp + policy
            assert "camera=(self)" in policy and "microphone=(self)" in policy
            assert '"signal_url"' in await r.text()  # the page runs the direct call


async def test_both_parties_gone_longer_than_the_grace_period_ends_the_consultation(direct, http):
    app, doctor_http, csrf = await direct(direct_leave_grace_seconds=1)
    call = await _consultation(app, doctor_http, csrf, http())
    await call.admit()
    clinician = await _open(doctor_http, call.clinician_url("/events"))
    patient = await _open(call.patient, call.patient_url("/events"))
    await patient.close()
    await clinician.close()
    await asyncio.sleep(0.5)
    # back within the grace period (a reload): the consultation goes on
    patient = await _open(call.patient, call.patient_url("/events"))
    await asyncio.sleep(1.5)
    assert (await cs.consultation_by_id(app.engine, call.id)).status != cs.ENDED
    await patient.close()
    ended = await _ended_soon(app.engine, call.id)
    assert ended.status == cs.ENDED and ended.end_reason == "both_left"
    assert await call.patient_sends(ANSWER) == 409


async def test_a_call_only_the_clinician_ever_joined_is_not_ended_when_they_leave(direct, http):
    app, doctor_http, csrf = await direct(direct_leave_grace_seconds=1)
    call = await _consultation(app, doctor_http, csrf, http())
    clinician = await _open(doctor_http, call.clinician_url("/events"))
    await clinician.close()
    await asyncio.sleep(1.6)
    assert (await cs.consultation_by_id(app.engine, call.id)).status == cs.WAITING
