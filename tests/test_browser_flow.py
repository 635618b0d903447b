"""The whole flow in real Chromium: two browser contexts, a clinician and a patient on a phone.

Jitsi cannot run here (no videobridge, no Jicofo): a stand-in external_api.js is served on
another loopback port as the "Jitsi domain". It only records what the page hands to
JitsiMeetExternalAPI, which is exactly what the real IFrame API receives.
"""

import base64
import re

import jwt
import pyotp
import sqlalchemy as sa

from teleconsult.db_tables import consultations
from browser import PHONE, axe_violations, chromium, horizontal_overflow, stand_in_jitsi, wait_until
from conftest import PASSWORD, add_clinician

def _claims(token, settings):
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    return jwt.decode(token, settings.jitsi_app_secret, algorithms=["HS256"], audience=settings.jitsi_app_id)


async def test_clinician_admits_a_knocking_patient_and_both_get_the_right_jitsi_token(live):
    jitsi_server, jitsi_domain = await stand_in_jitsi()
    app = await live(jitsi_domain=jitsi_domain, jitsi_scheme="http")
    doctor = await add_clinician(app.engine, name="Dr Martin")
    csp_errors, problems = [], {}
    try:
        async with chromium() as browser:
            clinician_ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
            patient_ctx = await browser.new_context(**PHONE)
            clinician = await clinician_ctx.new_page()
            patient = await patient_ctx.new_page()
            for page in (clinician, patient):
                page.on("console", lambda msg: csp_errors.append(msg.text)
                        if "Content Security Policy" in msg.text else None)
            sent_to_server = []
            patient.on("request", lambda req: sent_to_server.append(
                (req.url, str(req.headers), req.post_data or "")))

            # clinician logs in with password then TOTP
            await clinician.goto(app.url + "/login")
            problems["login"] = await axe_violations(clinician)
            await clinician.fill("#email", doctor.email)
            await clinician.fill("#password", PASSWORD)
            await clinician.click("button[type=submit]")
            await clinician.wait_for_url("**/login/totp")
            problems["totp"] = await axe_violations(clinician)
            await clinician.fill("#code", pyotp.TOTP(doctor.totp_secret).now())
            await clinician.click("button[type=submit]")
            await clinician.wait_for_url(app.url + "/")

            # one click creates a consultation; the link carries a 32-byte secret in its fragment
            await clinician.click("#new-consultation")
            await wait_until(clinician, "document.getElementById('new-link-url').value !== ''")
            link = await clinician.input_value("#new-link-url")
            match = re.fullmatch(re.escape(app.url) + r"/j/([\w-]+)#([\w-]{43})", link)
            assert match, link
            secret = match.group(2)
            assert len(base64.urlsafe_b64decode(secret + "=")) == 32
            assert secret in await clinician.evaluate("localStorage.getItem('teleconsult.consultationSecrets')")
            mail = await clinician.get_attribute("#mail-link", "href")
            assert mail.startswith("mailto:") and secret in mail
            assert (await clinician.get_attribute("#sms-link", "href")).startswith("sms:")

            # the patient opens the link on a phone, gives a name and consent, knocks
            await patient.goto(link)
            assert await patient.evaluate("document.documentElement.lang") == "fr"
            problems["patient join"] = await axe_violations(patient)
            assert await horizontal_overflow(patient) <= 0
            await patient.fill("#display_name", "Camille Dupont")
            await patient.check("#consent")
            await patient.click("button[type=submit]")
            await patient.wait_for_selector("#patient-status")
            assert patient.url == link, "the secret fragment must survive the knock"
            assert "va vous faire entrer" in await patient.text_content("#patient-status")
            problems["waiting room"] = await axe_violations(patient)
            assert await horizontal_overflow(patient) <= 0
            assert await patient.evaluate("window.__jitsi === undefined")

            # the dashboard rings: badge with the name, Admit button
            await clinician.wait_for_selector("#knock-badge:not([hidden])", timeout=10_000)
            assert "Camille Dupont" in await clinician.text_content("#knock-badge")
            problems["dashboard"] = await axe_violations(clinician)
            await clinician.set_viewport_size({"width": 360, "height": 740})
            assert await horizontal_overflow(clinician) <= 0
            problems["dashboard (phone)"] = await axe_violations(clinician)
            await clinician.click("[data-action=admit]")

            # only now the patient page receives the room and a member token
            await wait_until(patient, "window.__jitsi !== undefined")
            given = await patient.evaluate("window.__jitsi")
            async with app.engine.connect() as conn:
                room = await conn.scalar(sa.select(consultations.c.room_name))
            assert given["roomName"] == room and given["domain"] == jitsi_domain
            claims = _claims(given["jwt"], app.settings)
            assert claims["room"] == room and claims["sub"] == jitsi_domain
            # no name in the token (Jitsi copies it to everyone, Prosody logs it): the page hands
            # the name to the IFrame API itself
            assert "name" not in claims["context"]["user"]
            assert given["displayName"] == "Camille Dupont"
            assert claims["context"]["user"]["affiliation"] == "member"
            assert claims["context"]["user"]["moderator"] is False
            async with app.engine.connect() as conn:
                deadline = await conn.scalar(sa.select(consultations.c.deadline_at))
            assert claims["exp"] == int(deadline), "valid until the consultation's maximum duration"

            # a reload during the call re-admits without a new knock
            await patient.reload()
            await wait_until(patient, "window.__jitsi !== undefined")
            assert await patient.evaluate("window.__jitsi.displayName") == "Camille Dupont"

            # the clinician's call page gets an owner/moderator token for the same room
            await clinician.set_viewport_size({"width": 1280, "height": 900})
            await clinician.click("a.button.primary")
            await wait_until(clinician, "window.__jitsi !== undefined")
            owner = _claims((await clinician.evaluate("window.__jitsi"))["jwt"], app.settings)
            assert owner["room"] == room and owner["context"]["user"]["moderator"] is True
            assert owner["context"]["user"]["name"] == "Dr Martin"
            problems["call page"] = await axe_violations(clinician)

            # ending closes the patient's call and the link shows the ended page
            clinician.on("dialog", lambda dialog: dialog.accept())
            await clinician.click("#end-call")
            await wait_until(patient, "(document.querySelector('h1') || {}).textContent"
                                      " === 'Cette consultation est terminée'")
            problems["ended"] = await axe_violations(patient)

            # the secret of the fragment never reached our server
            assert sent_to_server
            for url, headers, body in sent_to_server:
                assert secret not in url and secret not in headers and secret not in body
    finally:
        await jitsi_server.close()
    assert csp_errors == []
    assert {page: found for page, found in problems.items() if found} == {}


async def test_unknown_link_page_is_accessible_on_a_phone(live):
    app = await live()
    async with chromium() as browser:
        page = await (await browser.new_context(**PHONE)).new_page()
        response = await page.goto(app.url + "/j/not-a-real-link")
        assert response.status == 404
        assert "Ce lien n’est pas reconnu" in await page.text_content("h1")
        assert await axe_violations(page) == []
        assert await horizontal_overflow(page) <= 0
        await page.click("a[lang=en]")
        assert "This link is not recognised" in await page.text_content("h1")
