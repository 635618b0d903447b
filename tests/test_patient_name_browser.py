"""The patient's name, in a whole consultation in real Chromium (issue 17): the server never holds it
in clear. A marker name is typed on the patient's phone; afterwards it is in no database file (WAL
included), no file of the data directory, no log line, no Jitsi token and no request the server
received (every request of both pages, recorded by the browser); yet the page handed it to Jitsi,
and the clinician's dashboard rang with it within a second of the knock.

Jitsi cannot run here (no videobridge, no Jicofo): the stand-in external_api.js of tests/browser.py
records what the page hands to the IFrame API. Prosody's side (no name in any room event, with a
named occupant) is checked with a real Prosody in test_prosody_events.py and
test_jitsi_events_prosody.py.
"""

import base64
import json
import logging
import time
from pathlib import Path

from browser import PHONE, chromium, login_in_browser, stand_in_jitsi, wait_until
import stored
from conftest import add_clinician

MARKER = "Zorglub Quetzalcoatl"
RING_WITHIN_SECONDS = 1.0


def _jwt_text(token: str) -> str:
    """A JWT's header and claims as text (base64url decoded), and the token itself."""
    parts = token.split(".")
    decoded = [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)).decode("utf-8", "replace") for p in parts[:2]]
    return token + "\n" + "\n".join(decoded)


def _files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_the_patients_name_reaches_the_clinician_and_jitsi_but_nothing_the_server_keeps_or_logs(
        live, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every level
    jitsi_server, jitsi_domain = await stand_in_jitsi()
    app = await live(jitsi_domain=jitsi_domain, jitsi_scheme="http")
    doctor = await add_clinician(app.engine)
    sent = []  # (page, method, url, headers, body) of every request either page made
    try:
        async with chromium() as browser:
            clinician = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
            patient = await (await browser.new_context(**PHONE)).new_page()
            for who, page in (("clinician", clinician), ("patient", patient)):
                page.on("request", lambda req, who=who: sent.append(
                    (who, req.method, req.url, json.dumps(req.headers), req.post_data_buffer or b"")))
            await login_in_browser(clinician, app.url, doctor)
            await clinician.click("#new-consultation")
            await wait_until(clinician, "document.getElementById('new-link-url').value !== ''")
            link = await clinician.input_value("#new-link-url")

            # the patient knocks with the marker name; the dashboard rings with it: measured from
            # the click on the patient's button to the name in the clinician's badge
            await patient.goto(link)
            await patient.fill("#display_name", MARKER)
            await patient.check("#consent")
            started = time.monotonic()
            await patient.click("button[type=submit]")
            await wait_until(clinician, f"(document.getElementById('knock-badge').textContent || '')"
                                        f".includes({json.dumps(MARKER)})", timeout=10)
            rang_after = time.monotonic() - started
            print(f"dashboard rang with the name {rang_after * 1000:.0f} ms after the knock")
            assert rang_after < RING_WITHIN_SECONDS, f"rang {rang_after:.2f} s after the knock"
            assert MARKER in await clinician.text_content(".knock strong")

            # admitted: the page hands the name to Jitsi itself; the token has none
            await clinician.click("[data-action=admit]")
            await wait_until(patient, "window.__jitsi !== undefined")
            assert await patient.evaluate("window.__jitsi.displayName") == MARKER
            await clinician.click("a.button.primary")  # the clinician's call page
            await wait_until(clinician, "window.__jitsi !== undefined")
            tokens = [e["jwt"] for page in (patient, clinician)
                      for e in await page.evaluate("window.__jitsi_embeds")]
            assert len(tokens) == 2

            clinician.on("dialog", lambda dialog: dialog.accept())
            await clinician.click("#end-call")
            await wait_until(patient, "(document.querySelector('h1') || {}).textContent"
                                      " === 'Cette consultation est terminée'")
    finally:
        await jitsi_server.close()

    needle = MARKER.encode()
    for token in tokens:
        assert MARKER not in _jwt_text(token)
    knocks = [s for s in sent if s[1] == "POST" and s[2].split("#")[0].endswith("/knock")]
    assert len(knocks) == 1 and b"sealed_name=" in knocks[0][4]  # the knock went, sealed
    for who, method, url, headers, body in sent:
        assert MARKER not in url and MARKER not in headers and needle not in body, (who, method, url)
        assert MARKER.replace(" ", "+").encode() not in body and b"Zorglub" not in body, (who, method, url)
    data_dir = Path(app.settings.data_dir)
    assert _files_holding(data_dir, needle) == []  # documents, and SQLite's database and WAL: every file
    assert _files_holding(data_dir, b"Zorglub") == []
    # the database's backup (SQLite: its files after a checkpoint; PostgreSQL: its dump)
    backup = stored.backup_bytes(app.settings.sqlalchemy_url)
    assert doctor.email.encode() in backup and needle not in backup and b"Zorglub" not in backup
    assert caplog.records and "Zorglub" not in caplog.text
