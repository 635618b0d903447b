"""Names shown to someone else lose their bidirectional controls (hostile review, item 9):
"Camille\u202efdp.exe" would display as "Camilleexe.pdf"."""

import secrets

from teleconsult import accounts
from teleconsult import consultations as cs
from teleconsult.ids import b64url
from browser import chromium
from conftest import NAME_SECRET, add_api_clinician, add_clinician, sealed
from teleconsult import names
from drop_client import upload

RLO = "\u202e"


async def test_a_knocking_patient_s_name_loses_bidi_controls_and_keeps_right_to_left_letters(live):
    app = await live()
    doctor = await add_clinician(app.engine)
    clinician = await accounts.get_clinician(app.engine, doctor.id)
    consultation = await cs.create_consultation(app.engine, app.settings, clinician, app.services.hub)
    knock = await cs.knock(app.engine, consultation, sealed(f"Camille{RLO}fdp.exe \u2067ليلى\u2069"), app.services.hub)
    assert names.open_text(NAME_SECRET, knock.sealed_name) == "Camillefdp.exe ليلى"


async def test_a_clinician_name_loses_bidi_controls(live):
    app = await live()
    clinician = await accounts.create_clinician(app.engine, "rtl@example.org", f"Dr {RLO}nitraM", "a long enough password")
    assert clinician.name == "Dr nitraM"


async def test_the_browser_shows_a_document_name_without_its_bidi_controls(live, http):
    app = await live()
    _, token = await add_api_clinician(app.engine)
    auth = {"Authorization": f"Bearer {token}"}
    client = http()
    async with client.post(app.url + "/api/consultations", headers=auth) as r:
        consultation = await r.json()
    secret = secrets.token_bytes(32)
    prefix = f"/api/consultations/{consultation['id']}/documents"
    doc = await upload(client, app.url, prefix, secret, b"%PDF-1.4 x", f"ordonnance{RLO}fdp.exe", "clinician",
                       headers=auth)
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(app.url + "/login")
        name = await page.evaluate("""async ([prefix, token, id, secret]) => {
            const { DropEndpoint } = await import('/static/js/dropbox.js');
            const { b64urlDecode } = await import('/static/js/ece.js');
            const box = new DropEndpoint(prefix, { Authorization: `Bearer ${token}` });
            return (await box.metadata(id, b64urlDecode(secret))).name;
        }""", [prefix, token, doc["id"], b64url(secret)])
    assert name == "ordonnancefdp.exe"
