"""Every route of the app, every kind of caller, bad input of every shape: never a 500, never
a stack trace, never an "unhandled error" or a traceback in the log. The route list is read from the running
app, so a route added later is covered without touching this file."""

import json
import logging
import re
import secrets
import time

import pytest

from teleconsult import consultations as cs
from teleconsult.jitsi.events import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from conftest import add_api_clinician, csrf_from, fill_path, login, sealed
from drop_client import upload

pytestmark = pytest.mark.timeout(400)

# bodies a confused client or an attacker sends: (content type, bytes)
BAD_BODIES = [
    (None, b""),
    ("application/json", b"{"),
    ("application/json", b"null"),
    ("application/json", b"[]"),
    ("application/json", b'"text"'),
    ("application/json", json.dumps({"size": "big", "expires_in": [], "max_downloads": {"a": 1},
                                     "sdp": 5, "type": None, "name": 7, "consent": "no"}).encode()),
    ("application/json", json.dumps({"size": 10 ** 30, "expires_in": -1, "max_downloads": 0,
                                     "sdp": "v=0\r\nnonsense", "type": "offer"}).encode()),
    ("application/json", b'{"event_name": "muc-room-destroyed", "room_name": {"$gt": ""}}'),
    ("application/x-www-form-urlencoded", b"email=%FF%FE&password=&code=abc&name=" + b"x" * 500),
    ("application/x-www-form-urlencoded", b"email=dr%00@example.org&password=a%00b&code=1%00&name=%00"),
    # NUL characters, which PostgreSQL's text cannot hold (a 400, not a 500)
    ("application/json", json.dumps({"event_name": "muc-occupant-joined", "room_name": "r\u0000",
                                     "id": "\u0000" * 22, "sealed_name": "\u0000", "name": "\u0000"}).encode()),
    ("application/octet-stream", secrets.token_bytes(3000)),
    ("text/plain; charset=utf-8", "é\u0000\ud7ff".encode("utf-8", "surrogatepass")),
    # malformed forms: no boundary, no starting boundary, a part header that is not a header,
    # an unknown transfer encoding, an unknown charset
    ("multipart/form-data", b"csrf_token=x"),
    ("multipart/form-data; boundary=zz", b"garbage"),
    ("multipart/form-data; boundary=zz", b"--zz\r\nbad \xff header\r\n\r\nx\r\n--zz--\r\n"),
    ("multipart/form-data; boundary=zz",
     b"--zz\r\nContent-Disposition: form-data; name=a\r\nContent-Transfer-Encoding: nope\r\n\r\nx\r\n--zz--\r\n"),
    ("application/x-www-form-urlencoded; charset=nope", b"csrf_token=x"),
    # JSON that the parser cannot take: nested 100,000 deep (over the 64 KiB body limit, under
    # the events endpoint's 1 MiB), 30,000 deep (under both), an integer of 5,000 digits
    # (Python's int limit is 4,300), a constant that is not JSON
    ("application/json", b"[" * 100_000 + b"]" * 100_000),
    ("application/json", b'{"size": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"),
    ("application/json", b'{"size": 1' + b"0" * 5_000 + b', "event_name": "muc-room-created", "sdp": 1' +
     b"0" * 5_000 + b"}"),
    ("application/json", b'{"size": NaN, "expires_in": Infinity}'),
]
# path parameters that are not what the route expects
# "%00" inside an id of a valid length: PostgreSQL's text cannot hold a NUL (a 400, not a 500)
BAD_PARAMS = ["A" * 22, "0", "-1", "..%2F..%2Fetc%2Fpasswd", "%00", "A" * 21 + "%00", "x" * 300,
              "%C3%A9%E2%80%AE", "null"]
BAD_HEADERS = [{}, {"Upload-Offset": "-5"}, {"Upload-Offset": "abc"}, {"Upload-Offset": str(10 ** 20)},
               {"Content-Range": "bytes */*"}, {"Range": "bytes=9-1"}]
STREAMS = re.compile(r"/events$")
TRACE = re.compile(r"Traceback|File \"/|line \d+, in ")


def _routes(app):
    for route in app.router.routes():
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path and route.method not in ("HEAD", "*"):
            yield route.method, path


async def _world(app, http):
    """A clinician (browser session and API token), a consultation, a knocking patient, a
    document: the real ids, so that handlers get past their lookups and meet bad bodies."""
    doctor, token = await add_api_clinician(app.engine)
    auth = {"Authorization": f"Bearer {token}"}
    api = http()
    async with api.post(app.url + "/api/consultations", headers=auth) as r:
        consultation = await r.json()
    join_token = consultation["patient_url"].rsplit("/", 1)[1]
    row = await cs.consultation_by_join_token(app.engine, join_token)
    knock = await cs.knock(app.engine, row, sealed("Camille"), app.services.hub)
    doc = await upload(api, app.url, f"/api/consultations/{consultation['id']}/documents",
                       secrets.token_bytes(32), b"%PDF-1.7", "a.pdf", "clinician", headers=auth)
    browser = http()
    clinician_csrf = await login(browser, app.url, doctor)
    patient = http()
    async with patient.get(app.url + "/j/" + join_token) as r:
        patient_csrf = csrf_from(await r.text())
    callers = {
        "anonymous": (http(), {}),
        "clinician": (browser, {"X-CSRF-Token": clinician_csrf}),
        "api": (api, auth),
        "patient": (patient, {"X-CSRF-Token": patient_csrf}),
    }
    values = {"id": consultation["id"], "knock_id": knock.id, "token": join_token, "doc": doc["id"],
              "kind": "signature"}
    return callers, values


def _signed(secret: str, body: bytes) -> dict:
    """Prosody's signature headers: bad bodies reach the events endpoint's parser."""
    timestamp = int(time.time())
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret.encode(), timestamp, body)}


async def _request(session, method, url, headers, content_type, body):
    headers = dict(headers)
    if content_type:
        headers["Content-Type"] = content_type
    async with session.request(method, url, headers=headers, data=body, allow_redirects=False) as r:
        if r.content_type == "text/event-stream":
            return r.status, ""
        return r.status, (await r.read()).decode("utf-8", "replace")


async def test_no_route_answers_500_or_a_stack_trace_to_bad_input_from_any_caller(live, http, caplog):
    caplog.set_level(logging.WARNING)
    events_secret = "events-" + "e" * 40
    app = await live(link_guess_max=100_000, login_max_failures=100_000, knock_max=100_000,
                     precall_offers_max=100_000, jitsi_events_secret=events_secret,
                     metrics_token="metrics-" + "m" * 40)
    callers, values = await _world(app, http)
    # the ones that end something go last, so that the others meet a live consultation and session
    routes = sorted(set(_routes(app.app)), key=lambda r: (r[1].endswith(("/end", "/logout")), r))
    assert len(routes) > 60, "the route table was read"
    seen = []
    for method, path in routes:
        real = fill_path(path, values)
        garbage = [fill_path(path, {name: bad for name in values}) for bad in BAD_PARAMS] if "{" in path else []
        for caller, (session, headers) in callers.items():
            if method == "GET":
                tries = [(url, None, b"", {}) for url in [real, *garbage]]
            else:
                extras = BAD_HEADERS if method == "PATCH" else [{}]
                tries = [(real, ct, body, extra) for ct, body in BAD_BODIES for extra in extras]
                tries += [(url, ct, body, {}) for url in garbage for ct, body in BAD_BODIES[:2]]
            for url, content_type, body, extra in tries:
                if path == "/api/jitsi/events":
                    extra = {**extra, **_signed(events_secret, body)}
                status, text = await _request(session, method, app.url + url, {**headers, **extra},
                                              content_type, body)
                seen.append(status)
                assert status < 500, (method, url, caller, content_type, body[:80], extra, status, text[:300])
                assert not TRACE.search(text), (method, url, caller, text[:300])
    assert "unhandled error" not in caplog.text
    assert not TRACE.search(caplog.text), caplog.text[:3000]
    assert len(seen) > 2000 and {400, 401, 403, 404} <= set(seen)
