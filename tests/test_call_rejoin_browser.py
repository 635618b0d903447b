"""A call that survives a refused reconnect, in real Chromium (clinician, patient on a phone).

Jitsi's web app cannot run here (no videobridge, no jicofo): the stand-in external_api.js of
tests/browser.py records every call the page embeds and emits the IFrame API event the real one
emits when Prosody refuses a token at login: `errorOccurred` with name
`connection.passwordRequired` (or, for a refused room join, `conference.connectionError.notAllowed`).
"""

import asyncio
import time

import jwt
import sqlalchemy as sa

from browser import admitted_pair, chromium, wait_until
from teleconsult import consultations as cs
from teleconsult.db_tables import consultations, knocks

REFUSED_LOGIN = ('{name: "connection.passwordRequired", type: "CONNECTION", isFatal: true, '
                 'message: "Not acceptable by exp"}')
REFUSED_JOIN = '{name: "conference.connectionError.notAllowed", type: "CONFERENCE", isFatal: true}'


def _watch_call_access(page, seen: list):
    """(method, status) of every answer to a call-access endpoint and every knock."""
    def on_response(response):
        path = response.url.split("?", 1)[0]
        if path.endswith("/call") or path.endswith("/knock"):
            seen.append((response.request.method, path.rsplit("/", 1)[1], response.status))
    page.on("response", on_response)


async def _admitted_and_watched(browser, app, doctor):
    """admitted_pair, with both pages' call-access requests recorded: (clinician, patient, seen)."""
    clinician, patient, _ = await admitted_pair(browser, app.url, doctor)
    seen = []
    _watch_call_access(patient, seen)
    _watch_call_access(clinician, seen)
    return clinician, patient, seen


def _claims(app, token):
    return jwt.decode(token, app.settings.jitsi_app_secret, algorithms=["HS256"], audience=app.settings.jitsi_app_id)


async def test_after_a_refused_reconnect_both_pages_rejoin_with_a_fresh_token_and_no_new_knock(app_with_jitsi):
    app, doctor = app_with_jitsi
    async with chromium() as browser:
        clinician, patient, seen = await _admitted_and_watched(browser, app, doctor)
        first = await patient.evaluate("window.__jitsi")
        await asyncio.sleep(1.1)  # a token minted a second later differs (nbf), so "fresh" is visible

        # an error that is not a refusal (no bridge for a moment) does not make the page rejoin
        assert await patient.evaluate(
            'window.__jitsi_emit("errorOccurred", {name: "conference.videobridgeNotAvailable", '
            'type: "CONFERENCE", isFatal: false})') == 1
        await asyncio.sleep(0.5)
        assert await patient.evaluate("window.__jitsi_embeds.length") == 1 and seen == []

        # Prosody refuses the patient's login after a blip: the page fetches a fresh token and rejoins
        assert await patient.evaluate(f"window.__jitsi_emit('errorOccurred', {REFUSED_LOGIN})") == 1
        await wait_until(patient, "window.__jitsi_embeds.length === 2")
        again = await patient.evaluate("window.__jitsi")
        assert await patient.evaluate("window.__jitsi_disposed") is True  # the refused call was left
        assert again["roomName"] == first["roomName"] and again["domain"] == app.settings.jitsi_domain
        assert again["jwt"] != first["jwt"], "the refused token was handed to Jitsi again"
        fresh = _claims(app, again["jwt"])
        assert "name" not in fresh["context"]["user"] and fresh["context"]["user"]["moderator"] is False
        assert again["displayName"] == "Camille"  # the rejoining page hands the name to Jitsi again
        assert fresh["nbf"] >= time.time() - 35
        assert seen == [("GET", "call", 200)], seen  # one fresh call access, no knock
        async with app.engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(knocks)) == 1
            assert await conn.scalar(sa.select(knocks.c.status)) == cs.KNOCK_ADMITTED
        assert await patient.is_visible("#jitsi") and not await patient.is_visible("#waiting")

        # the clinician's page does the same when the room join is refused
        owner = await clinician.evaluate("window.__jitsi")
        assert await clinician.evaluate(f"window.__jitsi_emit('errorOccurred', {REFUSED_JOIN})") == 1
        await wait_until(clinician, "window.__jitsi_embeds.length === 2")
        renewed = await clinician.evaluate("window.__jitsi")
        assert renewed["jwt"] != owner["jwt"] and renewed["roomName"] == owner["roomName"]
        assert _claims(app, renewed["jwt"])["context"]["user"]["moderator"] is True
        assert await clinician.text_content("#call-status") == "Vous êtes dans l’appel."


async def test_after_the_end_a_refused_reconnect_gets_no_token_and_the_old_one_is_not_used_again(app_with_jitsi):
    app, doctor = app_with_jitsi
    async with chromium() as browser:
        clinician, patient, seen = await _admitted_and_watched(browser, app, doctor)
        # the consultation ends without telling either page (no live event reaches them)
        async with app.engine.connect() as conn:
            consultation_id = await conn.scalar(sa.select(consultations.c.id))
        record = await cs.get_consultation(app.engine, consultation_id, await _clinician(app, doctor))
        await cs.end_consultation(app.engine, record, "clinician", hub=None)

        # Jitsi refuses both reconnects: the server hands out nothing, the pages embed nothing
        await clinician.evaluate(f"window.__jitsi_emit('errorOccurred', {REFUSED_LOGIN})")
        await wait_until(clinician, "document.getElementById('end-call').disabled === true")
        assert await clinician.text_content("#call-status") == "La consultation est terminée."
        assert await clinician.evaluate("window.__jitsi_embeds.length") == 1
        assert await clinician.evaluate("window.__jitsi_disposed") is True

        await patient.evaluate(f"window.__jitsi_emit('errorOccurred', {REFUSED_LOGIN})")
        await wait_until(patient, "(document.querySelector('h1') || {}).textContent"
                                  " === 'Cette consultation est terminée'")
        assert await patient.evaluate("window.__jitsi === undefined")  # the ended page embeds nothing
        assert sorted(seen) == [("GET", "call", 409), ("GET", "call", 409)], seen


async def test_a_host_that_refuses_every_fresh_token_stops_the_rejoins_and_says_so(app_with_jitsi):
    app, doctor = app_with_jitsi
    async with chromium() as browser:
        clinician, _, _ = await admitted_pair(browser, app.url, doctor)
        for embeds in (2, 3, 4):
            await clinician.evaluate(f"window.__jitsi_emit('errorOccurred', {REFUSED_LOGIN})")
            await wait_until(clinician, f"window.__jitsi_embeds.length === {embeds}")
        await clinician.evaluate(f"window.__jitsi_emit('errorOccurred', {REFUSED_LOGIN})")
        await wait_until(clinician, "window.__jitsi_disposed === true")
        await asyncio.sleep(0.5)
        assert await clinician.evaluate("window.__jitsi_embeds.length") == 4  # no fifth attempt
        assert await clinician.text_content("#call-status") == \
            "L’appel n’a pas pu s’ouvrir. Rechargez la page."


async def _clinician(app, doctor):
    from teleconsult.accounts import get_clinician
    return await get_clinician(app.engine, doctor.id)
