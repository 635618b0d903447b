"""The live pages in real Chromium apply the events they receive instead of fetching their whole
state again, and the consultation secrets and keys this browser kept go at logout (a new login
opens the sealed secrets again: issue 13, tests/test_clinician_keys_browser.py).

The patient's side is played from Python by the domain functions the patient's requests call
(consultations.knock and decide, the drop box's create/upload_part/complete/start_download/finish_download):
they publish the same events. Jitsi is the stand-in of tests/browser.py (no videobridge here).
"""

import asyncio
import os
import time

import pyotp
import pytest

from filedrop import ece
from teleconsult import accounts, ending
from teleconsult import consultations as cs
from teleconsult.ending import sweep_once
from browser import chromium, login_in_browser, wait_until
from conftest import sealed

pytestmark = [pytest.mark.timeout(90)]

SECRETS = "localStorage.getItem('teleconsult.consultationSecrets')"
PDF = b"%PDF-1.4\n" + b"resultats " * 2000 + b"\n%%EOF\n"


def _text(selector: str) -> str:
    return f"((document.querySelector({selector!r}) || {{}}).textContent || '')"


class Requests:
    """The page's GET requests to one path, counted from when `mark` was called."""

    def __init__(self, page, origin: str):
        self.paths: list[str] = []
        page.on("request", lambda req: self.paths.append(req.url[len(origin):])
                if req.method == "GET" and req.url.startswith(origin) else None)

    def count(self, path: str) -> int:
        return self.paths.count(path)

    def ending_with(self, suffix: str) -> int:
        return len([p for p in self.paths if p.endswith(suffix)])


async def _patient_sends(app, consultation_id: str, secret: bytes, name: str) -> str:
    """What the patient's page does through its HTTP calls: reserve, upload, attach the metadata."""
    drops = app.services.drops
    created, _ = await drops.create(size=ece.padded_size(len(PDF)), uploaded_by="patient", box_id=consultation_id)
    ciphertext = ece.encrypt(PDF, ece.derive_content_ikm(secret, created.id))

    async def chunks():
        yield ciphertext
    await drops.upload_part(created.id, consultation_id, 0, chunks(), len(ciphertext))
    meta = ece.encrypt_metadata(ece.derive_metadata_key(secret, created.id),
                                {"name": name, "type": "application/pdf", "size": len(PDF), "role": "patient"})
    await drops.complete(created.id, consultation_id, meta)
    return created.id


@pytest.mark.app_settings(documents_grace_seconds=0)
async def test_knocks_decisions_and_documents_appear_from_their_events_without_fetching_the_state_again(app_with_jitsi):
    app, doctor = app_with_jitsi
    clinician = await accounts.get_clinician_by_email(app.engine, doctor.email)
    async with chromium() as browser:
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
        seen = Requests(page, app.url)
        # the stream's "hello" fetches the state once: that is the only fetch of it
        async with page.expect_response(lambda r: r.url == app.url + "/dashboard/state"):
            await login_in_browser(page, app.url, doctor)
        assert seen.count("/dashboard/state") == 1

        # a consultation created in this browser: the link (secret in the fragment) and the item
        await page.click("#new-consultation")
        await wait_until(page, "document.getElementById('new-link-url').value !== ''")
        link = await page.input_value("#new-link-url")
        secret = ece.b64url_decode(link.split("#", 1)[1])
        consultation_id = await page.get_attribute(".consultation", "data-id")
        consultation = await cs.get_consultation(app.engine, consultation_id, clinician)
        # a consultation created elsewhere (the API, another device) arrives by its event
        other = await cs.create_consultation(app.engine, app.settings, clinician, app.services.hub)
        await wait_until(page, f"document.querySelector('.consultation[data-id=\"{other.id}\"]') !== null")
        assert "créé sur un autre appareil" in await page.evaluate(
            _text(f".consultation[data-id=\"{other.id}\"]"))

        # a patient knocks: the badge rings and the item offers Admit, from the event alone
        knock = await cs.knock(app.engine, consultation, sealed("Camille Dupont", secret), app.services.hub)
        await wait_until(page, "!document.getElementById('knock-badge').hidden")
        assert "Camille Dupont" in await page.text_content("#knock-badge")
        await wait_until(page, "document.querySelector('[data-action=admit]') !== null")
        # admitted (here from another tab): the item follows, the badge goes
        await cs.decide(app.engine, consultation, knock.id, True, app.services.hub)
        await wait_until(page, "document.querySelector('.consultation.status-in_call .knock-admitted') !== null")
        await wait_until(page, "document.getElementById('knock-badge').hidden")
        # the other one ends: its item says so
        await ending.end(app.services, other, "clinician")
        await wait_until(page, f"document.querySelector('.consultation.status-ended[data-id=\"{other.id}\"]')"
                               " !== null")
        assert seen.count("/dashboard/state") == 1, "no event made the page fetch the whole state"

        # the hub dropped events for this slow page ("resync"): then, and only then, one fetch
        async with page.expect_response(lambda r: r.url == app.url + "/dashboard/state"):
            for _ in range(150):
                app.services.hub.publish(f"clinician:{clinician.id}", {
                    "type": "presence", "consultation_id": consultation.id, "status": "in_call",
                    "presence": {"patient": True, "clinician": False}})
        await wait_until(page, f"{_text('.consultation.status-in_call .presence')} === 'Patient dans l’appel'")
        await asyncio.sleep(0.3)
        assert seen.count("/dashboard/state") == 2, "one fetch per resync"

        # the call page: the documents panel lists the box once, at its stream's "hello"
        box = f"/consultations/{consultation_id}/documents"
        async with page.expect_response(lambda r: r.url == app.url + box):
            await page.click(f".consultation[data-id=\"{consultation_id}\"] a.button.primary")
        await wait_until(page, "window.__jitsi !== undefined")
        # the patient sends a document: named (decrypted here, bidi controls gone), from its event alone
        doc = await _patient_sends(app, consultation_id, secret, "resultats\u202e-analyse.pdf")
        row = f"#documents-list .document[data-id=\"{doc}\"]"
        await wait_until(page, f"{_text(row + ' .document-name')} === 'resultats-analyse.pdf'")
        assert await page.evaluate(_text(row + " .document-state")) == "Reçu"
        # downloaded by the patient, then deleted at the end: the item follows
        await app.services.drops.start_download(doc, consultation_id, downloader="patient")
        await asyncio.sleep(1)  # started is not downloaded: the item waits for the last byte
        assert await page.evaluate(_text(row + " .document-state")) == "Reçu"
        await app.services.drops.finish_download(doc, consultation_id, downloader="patient")
        await wait_until(page, f"{_text(row + ' .document-state')} === 'Téléchargé'")
        await ending.end(app.services, consultation, "clinician")
        await sweep_once(app.services)
        await wait_until(page, f"document.querySelector({row + '.deleted'!r}) !== null")
        assert await page.evaluate(_text(row + " .document-state")) == "Supprimé"
        assert seen.count(box) == 1, "no event made the panel list the box again"
        assert seen.ending_with("/metadata") == 0, "the event's listing carries the metadata"


KEYS = """async () => {
  const db = await new Promise((ok, ko) => {
    const open = indexedDB.open('teleconsult-keys', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('keys');
    open.onsuccess = () => ok(open.result);
    open.onerror = () => ko(open.error);
  });
  const count = await new Promise((ok) => {
    const q = db.transaction('keys').objectStore('keys').count();
    q.onsuccess = () => ok(q.result);
  });
  db.close();
  return count;
}"""


async def test_logging_out_forgets_the_secrets_and_keys_a_new_login_opens_the_sealed_ones_and_a_link_brings_back_the_others(app_with_jitsi):
    app, doctor = app_with_jitsi
    await _logout_then_recover(app, doctor)


async def _logout_then_recover(app, doctor):
    clinician = await accounts.get_clinician_by_email(app.engine, doctor.email)
    async with chromium() as browser:
        page = await (await browser.new_context()).new_page()
        await login_in_browser(page, app.url, doctor)
        # one consultation created here (S sealed to the clinician's key, issue 13) ...
        await page.click("#new-consultation")
        await wait_until(page, "document.getElementById('new-link-url').value !== ''")
        link = await page.input_value("#new-link-url")
        secret = link.split("#", 1)[1]
        assert secret in await page.evaluate(SECRETS)
        assert await page.evaluate(KEYS) >= 1, "the clinician's key is kept in this browser"
        sealed_id = await page.get_attribute(".consultation", "data-id")
        # ... and one whose S was sealed to no key (created through the API without a sealed
        # secret): only its link, given by whoever created it, brings it here
        other = await cs.create_consultation(app.engine, app.settings, clinician, app.services.hub)
        other_secret = ece.b64url_encode(os.urandom(32))
        other_link = cs.patient_url(app.settings.public_url, other.join_token) + "#" + other_secret
        doc = await _patient_sends(app, other.id, ece.b64url_decode(other_secret), "radio.pdf")
        await wait_until(page, f"document.querySelector('.consultation[data-id=\"{other.id}\"]') !== null")

        # the account page's logout forgets the secrets and the keys, as the dashboard's does
        await page.click("#account-link")
        await page.wait_for_url(app.url + "/account")
        await page.click("form.logout button")
        await page.wait_for_url(app.url + "/login")
        assert await page.evaluate(SECRETS) is None
        assert await page.evaluate(KEYS) == 0
        # back on the dashboard (a new login takes the next TOTP step: a code is good once): the
        # sealed one shows its link again, opened with the key this login unwrapped; the other not
        await page.fill("#email", doctor.email)
        await page.fill("#password", doctor.password)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/login/totp")
        await page.fill("#code", pyotp.TOTP(doctor.totp_secret).at(time.time() + 30))
        await page.click("button[type=submit]")
        await page.wait_for_url(app.url + "/")
        button = f".consultation[data-id=\"{sealed_id}\"] .actions button.secondary"
        await wait_until(page, f"document.querySelector({button!r}) !== null")
        await page.click(button)
        assert await page.input_value("#new-link-url") == link
        assert "créé sur un autre appareil" in await page.evaluate(_text(f".consultation[data-id=\"{other.id}\"]"))
        assert other_secret not in await page.content()

        # on the other's call page the panel cannot read the document until its patient link is pasted
        seen = Requests(page, app.url)
        box = f"/consultations/{other.id}/documents"
        async with page.expect_response(lambda r: r.url == app.url + box):
            await page.click(f".consultation[data-id=\"{other.id}\"] a.button.primary")
        name = f"#documents-list .document[data-id=\"{doc}\"] .document-name"
        await wait_until(page, f"{_text(name)} === '(document illisible)'")
        await wait_until(page, "!document.getElementById('documents-recover').hidden")
        await page.fill("#documents-recover-link", other_link[:-12])  # a link cut short: not a whole secret
        await page.click("#documents-recover button[type=submit]")
        await wait_until(page, f"{_text('#documents-status')} === 'Ce n’est pas le lien de cette consultation.'")
        await page.fill("#documents-recover-link", other_link)
        await page.click("#documents-recover button[type=submit]")
        await wait_until(page, f"{_text(name)} === 'radio.pdf'")
        assert await page.is_hidden("#documents-recover")
        assert other_secret in await page.evaluate(SECRETS), "remembered again in this browser"
        assert seen.count(box) == 1 and seen.ending_with("/metadata") == 0
