"""Consultation secrets that follow the clinician (issue 13), in real Chromium: several browser
contexts stand for several devices (each its own storage), the patient on a phone. Jitsi is the
stand-in of tests/browser.py (no videobridge here); everything else is the real app on loopback."""

import asyncio
import os

import aiohttp
import pyotp

from browser import PHONE, chromium, saved_by_click, stand_in_jitsi, wait_until
from conftest import add_api_clinician
from filedrop.ece import b64url_encode
from teleconsult import accounts, clinician_keys, ids, sealing
from teleconsult import consultations as cs
from test_accounts import next_code

PDF = b"%PDF-1.4\n" + os.urandom(120_000) + b"\n%%EOF\n"
NEW_PASSWORD = "un nouveau mot de passe sûr"


async def device(browser):
    """A fresh browser context: a device with nothing stored."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    return await context.new_page()


async def log_in(page, base, doctor, code=None, password=None):
    await page.goto(base + "/login")
    await page.fill("#email", doctor.email)
    await page.fill("#password", password or doctor.password)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/login/totp")
    await page.fill("#code", code or pyotp.TOTP(doctor.totp_secret).now())
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/")


async def create_in_dashboard(page) -> tuple[str, str]:
    """(consultation id, patient link with its fragment)."""
    await page.click("#new-consultation")
    await wait_until(page, "document.getElementById('new-link-url').value !== ''")
    link = await page.input_value("#new-link-url")
    consultation_id = await page.evaluate("""async (url) => {
      const state = await (await fetch('/dashboard/state', { headers: { Accept: 'application/json' } })).json();
      return state.consultations.find((c) => c.patient_url === url).id;
    }""", link.split("#")[0])
    await wait_until(page, f"document.querySelector(\"li[data-id='{consultation_id}']\") !== null")
    return consultation_id, link


async def office_with_consultation(browser, base, doctor) -> tuple[object, str, str]:
    """The clinician's first device, logged in, and a consultation it created there:
    (page, consultation id, patient link with its fragment)."""
    office = await device(browser)
    await log_in(office, base, doctor)
    return (office, *await create_in_dashboard(office))


async def link_shown(page, consultation_id) -> str:
    """The link this device's dashboard shows for the consultation (its 'Patient link' button)."""
    button = f"li[data-id='{consultation_id}'] .actions button.secondary"
    await wait_until(page, f"document.querySelector(\"{button}\") !== null")
    await page.click(button)
    return await page.input_value("#new-link-url")


async def patient_reads_what_the_clinician_sends(browser, clinician, consultation_id, link, tmp_path):
    """The patient knocks and is admitted; the clinician, on the call page, sends a PDF; the
    patient saves it: identical bytes."""
    patient = await (await browser.new_context(**PHONE, accept_downloads=True)).new_page()
    await patient.goto(link)
    await patient.fill("#display_name", "Camille")
    await patient.check("#consent")
    await patient.click("button[type=submit]")
    admit = f"li[data-id='{consultation_id}'] [data-action=admit]"
    await wait_until(clinician, f"document.querySelector(\"{admit}\") !== null")
    # the knock's name arrives sealed: this device opens it with S, opened from its sealed form
    assert await clinician.text_content(f"li[data-id='{consultation_id}'] .knock strong") == "Camille"
    await clinician.click(admit)
    await wait_until(patient, "window.__jitsi !== undefined")
    await clinician.goto(clinician.url.rstrip("/") + f"/consultations/{consultation_id}")
    await wait_until(clinician, "window.__jitsi !== undefined")
    pdf = tmp_path / "compte-rendu.pdf"
    pdf.write_bytes(PDF)
    await clinician.set_input_files("#document-file", str(pdf))
    await wait_until(patient, "document.querySelectorAll('#documents-list button.save').length === 1", timeout=20)
    assert await saved_by_click(patient, "#documents-list button.save") == ("compte-rendu.pdf", PDF)
    # and the clinician's own panel reads the name back (it decrypted the metadata with S)
    await wait_until(clinician, "(document.querySelector('#documents-list .document-name') || {})"
                                ".textContent === 'compte-rendu.pdf'")


async def test_a_consultation_made_on_one_device_is_used_from_another_after_login(app_with_jitsi, tmp_path):
    app, doctor = app_with_jitsi
    async with chromium() as browser:
        office, consultation_id, link = await office_with_consultation(browser, app.url, doctor)
        laptop = await device(browser)
        await log_in(laptop, app.url, doctor, code=next_code(doctor))
        assert await link_shown(laptop, consultation_id) == link
        assert await laptop.evaluate("localStorage.length") >= 1  # a cache, rebuilt from the sealed S
        await patient_reads_what_the_clinician_sends(browser, laptop, consultation_id, link, tmp_path)


async def test_a_consultation_an_integrator_sealed_is_opened_and_used_from_the_dashboard(live, tmp_path):
    jitsi, domain = await stand_in_jitsi()
    app = await live(jitsi_domain=domain, jitsi_scheme="http")
    doctor, token = await add_api_clinician(app.engine)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        async with chromium() as browser:
            page = await device(browser)
            await log_in(page, app.url, doctor)  # the first login makes the clinician's key
            async with aiohttp.ClientSession() as integrator:
                async with integrator.get(app.url + "/api/clinician/key", headers=auth) as r:
                    assert r.status == 200
                    public_key = (await r.json())["public_key"]
                secret, consultation_id = os.urandom(32), ids.new_id()
                sealed = sealing.seal_secret(public_key, secret, consultation_id)
                async with integrator.post(app.url + "/api/consultations", headers=auth,
                                           json={"id": consultation_id, "sealed_secret": sealed}) as r:
                    assert r.status == 201
                    link = (await r.json())["patient_url"] + "#" + b64url_encode(secret)
            # the dashboard hears of it live, opens its secret and shows the very same link
            assert await link_shown(page, consultation_id) == link
            await page.goto(app.url + "/")
            await patient_reads_what_the_clinician_sends(browser, page, consultation_id, link, tmp_path)
    finally:
        await jitsi.close()


async def test_after_a_password_change_another_device_still_opens_the_documents(app_with_jitsi, tmp_path):
    app, doctor = app_with_jitsi
    async with chromium() as browser:
        office, consultation_id, link = await office_with_consultation(browser, app.url, doctor)
        await office.goto(app.url + "/account")
        await office.fill("#current-password", doctor.password)
        await office.fill("#new-password", NEW_PASSWORD)
        await office.fill("#confirm-password", NEW_PASSWORD)
        await office.click("#password-form button[type=submit]")
        await office.wait_for_url("**/account/password")
        assert "Votre mot de passe a été changé" in await office.content()
        laptop = await device(browser)
        await log_in(laptop, app.url, doctor, code=next_code(doctor), password=NEW_PASSWORD)
        assert await link_shown(laptop, consultation_id) == link
        await patient_reads_what_the_clinician_sends(browser, laptop, consultation_id, link, tmp_path)


async def test_after_a_host_reset_the_dashboard_names_the_lost_consultations_and_new_ones_work(app_with_jitsi, tmp_path):
    app, doctor = app_with_jitsi
    async with chromium() as browser:
        office, old_id, old_link = await office_with_consultation(browser, app.url, doctor)
        await accounts.set_password(app.engine, doctor.email, NEW_PASSWORD)  # `clinician password`

        laptop = await device(browser)
        await log_in(laptop, app.url, doctor, code=next_code(doctor), password=NEW_PASSWORD)
        await wait_until(laptop, "!document.getElementById('key-notice').hidden")
        notice = await laptop.inner_text("#key-notice")
        assert "réinitialisé" in notice and notice.strip().endswith("1")
        lost_note = await laptop.inner_text(f"li[data-id='{old_id}'] .key-note")
        assert "perdue lors de la réinitialisation" in lost_note
        assert await laptop.evaluate(f"document.querySelector(\"li[data-id='{old_id}'] .actions button.secondary\")") is None

        new_id, new_link = await create_in_dashboard(laptop)
        assert new_id != old_id
        await patient_reads_what_the_clinician_sends(browser, laptop, new_id, new_link, tmp_path)


async def test_after_a_host_reset_the_browser_that_created_a_consultation_seals_it_again_to_the_new_key(app_with_jitsi):
    """The office browser still holds S in its cache (a login keeps it, a logout does not): once
    it logs in with the host's new password, its dashboard seals S to the new key, which every
    device then opens (tests/test_live_events.py: the other dashboards get it live)."""
    app, doctor = app_with_jitsi
    async with chromium() as browser:
        office, consultation_id, link = await office_with_consultation(browser, app.url, doctor)
        old_key = await clinician_keys.get_key(app.engine, doctor.id)
        await accounts.set_password(app.engine, doctor.email, NEW_PASSWORD)  # `clinician password`
        assert await clinician_keys.get_key(app.engine, doctor.id) is None

        await log_in(office, app.url, doctor, code=next_code(doctor), password=NEW_PASSWORD)
        new_key = None
        for _ in range(100):  # the login makes the new key; the dashboard then seals S to it
            new_key = await clinician_keys.get_key(app.engine, doctor.id)
            consultation = await cs.get_consultation(
                app.engine, consultation_id, await accounts.get_clinician(app.engine, doctor.id))
            if new_key and consultation.sealed_to == new_key.key_id:
                break
            await asyncio.sleep(0.1)
        assert new_key and new_key.key_id != old_key.key_id and consultation.sealed_to == new_key.key_id
        private_key = sealing.unwrap_private_key(new_key.wrapped, new_key.public_key, NEW_PASSWORD)
        secret = sealing.open_secret(private_key, consultation.sealed_secret, consultation_id)
        assert b64url_encode(secret) == link.split("#", 1)[1]
        assert await link_shown(office, consultation_id) == link
        assert await office.is_hidden("#key-notice")
