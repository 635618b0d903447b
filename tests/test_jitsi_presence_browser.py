"""The dashboard in real Chromium shows who is in the call as Prosody's room events arrive."""

import time

import pyotp
import pytest
from aiohttp import ClientSession

from teleconsult import accounts
from teleconsult import consultations as cs
from browser import axe_violations, chromium, wait_until
from conftest import PASSWORD, add_clinician, sealed
from room_event_client import EVENTS_SECRET, Poster, event, occupant

pytestmark = [pytest.mark.timeout(60)]

PRESENCE_TEXT = "Array.from(document.querySelectorAll('.presence')).map(p => p.textContent).join('|')"


async def test_dashboard_shows_patient_and_clinician_in_the_call_live(live):
    app = await live(jitsi_events_secret=EVENTS_SECRET)
    doctor = await add_clinician(app.engine, name="Dr Martin")
    clinician = await accounts.get_clinician_by_email(app.engine, doctor.email)
    consultation = await cs.create_consultation(app.engine, app.settings, clinician, app.services.hub)
    knock = await cs.knock(app.engine, consultation, sealed("Camille"), app.services.hub)
    await cs.decide(app.engine, consultation, knock.id, True, app.services.hub)
    async with ClientSession() as session, chromium() as browser:
        poster = Poster(app, session)
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
        await page.goto(app.url + "/login")
        await page.fill("#email", doctor.email)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/login/totp")
        await page.fill("#code", pyotp.TOTP(doctor.totp_secret).now())
        await page.click("button[type=submit]")
        await page.wait_for_url(app.url + "/")
        await wait_until(page, "document.querySelectorAll('.consultation').length === 1")
        assert await page.evaluate(PRESENCE_TEXT) == ""

        t = int(time.time())
        room = consultation.room_name
        doc = occupant(doctor.id, "doc@meet.example.org/a", t)
        patient = occupant(knock.id, "patient@meet.example.org/b", t)
        await poster.send(event("muc-occupant-joined", room, occupant=doc))
        await poster.send(event("muc-occupant-joined", room, occupant=patient))
        await wait_until(page, f"{PRESENCE_TEXT} === 'Patient dans l’appel · Soignant dans l’appel'")
        assert await axe_violations(page) == []
        await poster.send(event("muc-occupant-left", room, occupant={**patient, "left_at": t + 1}))
        await wait_until(page, f"{PRESENCE_TEXT} === 'Soignant dans l’appel'")
        await poster.send(event("muc-room-destroyed", room, all_occupants=[{**doc, "left_at": t + 2},
                                                                         {**patient, "left_at": t + 1}]))
        await wait_until(page, "document.querySelector('.consultation.status-ended') !== null")
        assert await page.evaluate(PRESENCE_TEXT) == ""
