"""Documents written in the call, over real HTTP: the API (renderDocument, updateProfile,
setProfileImage) and the call panel's route (session + CSRF). Who may render, what is refused,
and that nothing of a document reaches the server's log."""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader

from conftest import add_api_clinician, csrf_from, login, sealed
from documents_samples import PATIENT, PRESCRIBER, SAMPLES, drug, jpeg, png

PRESCRIPTION = {"template": "prescription", "patient": PATIENT,
                "lines": [drug("Amoxicilline-Zéphyr", dosage="1 g"), {"text": "Radiographie-Quetzal du thorax"}]}


def pdf_text(pdf: bytes) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split())


async def _ready(app, http, email="doc@example.org"):
    """A clinician with a complete profile and an open consultation, through the API."""
    doctor, token = await add_api_clinician(app.engine, email)
    auth = {"Authorization": f"Bearer {token}"}
    client = http()
    async with client.patch(app.url + "/api/profile", json=PRESCRIBER, headers=auth) as r:
        assert r.status == 200, await r.text()
    async with client.put(app.url + "/api/profile/images/signature", data=png(),
                          headers={**auth, "Content-Type": "image/png"}) as r:
        assert r.status == 200 and (await r.json())["signature"] is True
    async with client.post(app.url + "/api/consultations", headers=auth) as r:
        consultation = await r.json()
    return client, auth, consultation, doctor


async def test_an_integrator_renders_each_template_as_a_pdf_for_its_own_consultation(live, http):
    app = await live()
    client, auth, consultation, _ = await _ready(app, http)
    url = f"{app.url}/api/consultations/{consultation['id']}/render"
    async with client.post(url, json=PRESCRIPTION, headers=auth) as r:
        assert r.status == 200 and r.content_type == "application/pdf"
        assert r.headers["Content-Disposition"].startswith('inline; filename="ordonnance-')
        assert "no-store" in r.headers["Cache-Control"]
        text = pdf_text(await r.read())
    assert "Amoxicilline-Zéphyr 1 g" in text and "Radiographie-Quetzal du thorax" in text
    assert "RPPS 10001234567" in text and "Ordonnance" in text
    for template in ("report", "certificate", "receipt"):
        body = {"template": template, "patient": PATIENT, "lang": "en", **SAMPLES[template]}
        async with client.post(url, json=body, headers=auth) as r:
            assert r.status == 200, await r.text()
            assert PRESCRIBER["name"] in pdf_text(await r.read())


async def test_rendering_is_refused_to_nobody_to_a_patient_and_to_another_clinician(live, http):
    app = await live()
    client, auth, consultation, _ = await _ready(app, http)
    path = f"/api/consultations/{consultation['id']}/render"
    async with http().post(app.url + path, json=PRESCRIPTION) as r:
        assert r.status == 401
    async with http().post(app.url + path, json=PRESCRIPTION, headers={"Authorization": "Bearer forged"}) as r:
        assert r.status == 401
    _, other_token = await add_api_clinician(app.engine, "other@example.org")
    async with http().post(app.url + path, json=PRESCRIPTION,
                           headers={"Authorization": f"Bearer {other_token}"}) as r:
        assert r.status == 404, "another clinician's consultation is not found, as a missing one"
    # a patient in the waiting room: their own cookie and CSRF token open no rendering route
    patient = http()
    async with patient.get(consultation["patient_url"]) as r:
        csrf = csrf_from(await r.text())
    async with patient.post(consultation["patient_url"] + "/knock",
                            data={"sealed_name": sealed("Zoé"), "consent": "yes", "csrf_token": csrf}) as r:
        assert r.status == 200
    async with patient.post(f"{app.url}/consultations/{consultation['id']}/render", json=PRESCRIPTION,
                            headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 401
    async with patient.post(consultation["patient_url"] + "/render", json=PRESCRIPTION,
                            headers={"X-CSRF-Token": csrf}) as r:
        assert r.status in (404, 405)


async def test_the_call_panel_renders_with_the_session_and_its_csrf_token_only(live, http):
    app = await live()
    _, _, consultation, doctor = await _ready(app, http)
    browser = http()
    csrf = await login(browser, app.url, doctor)
    url = f"{app.url}/consultations/{consultation['id']}/render"
    async with browser.post(url, json=PRESCRIPTION) as r:
        assert r.status == 403, "no CSRF header"
    async with browser.post(url, json=PRESCRIPTION, headers={"X-CSRF-Token": csrf}) as r:
        assert r.status == 200 and r.content_type == "application/pdf"
        assert "Amoxicilline-Zéphyr" in pdf_text(await r.read())


async def test_an_ended_consultation_renders_nothing(live, http):
    app = await live()
    client, auth, consultation, _ = await _ready(app, http)
    async with client.post(f"{app.url}/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert r.status == 200
    async with client.post(f"{app.url}/api/consultations/{consultation['id']}/render",
                           json=PRESCRIPTION, headers=auth) as r:
        assert r.status == 409


async def test_invalid_fields_and_an_incomplete_profile_are_answered_400_with_each_reason_in_french(live, http):
    app = await live()
    client, auth, consultation, _ = await _ready(app, http)
    url = f"{app.url}/api/consultations/{consultation['id']}/render"
    bad = {**PRESCRIPTION, "patient": {**PATIENT, "birth_date": "2999-01-01"},
           "lines": [drug("Amoxicilline", duration="")]}
    async with client.post(url, json=bad, headers=auth) as r:
        assert r.status == 400
        body = await r.json()
    assert body["problems"] == [
        {"field": "patient.birth_date", "message": "patient.birth_date: cette date est dans le futur"},
        {"field": "lines[1].duration",
         "message": "lines[1].duration: indiquez la durée du traitement (ou le nombre de boîtes)"}]
    async with client.patch(app.url + "/api/profile", json={"rpps": "", "phone": ""}, headers=auth) as r:
        assert r.status == 200
    async with client.post(url, json=PRESCRIPTION, headers=auth) as r:
        assert r.status == 400
        body = await r.json()
    assert body["missing"] == ["rpps", "phone"]
    for bad_body in (b"{", b"[]", b'"x"', b"null"):
        async with client.post(url, data=bad_body, headers={**auth, "Content-Type": "application/json"}) as r:
            assert r.status == 400


async def test_profile_images_are_refused_with_their_reason_over_the_api(live, http):
    app = await live(profile_image_max_kib=64)
    client, auth, _, _ = await _ready(app, http)
    url = app.url + "/api/profile/images/logo"
    cases = [(b"\x7fELF" + b"\x00" * 4000, "ce fichier n’est pas une image PNG ou JPEG"),
             (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "les images SVG ne sont pas acceptées"),
             (jpeg((400, 400))[:3000], "l’image est endommagée ou tronquée"),
             (jpeg((1200, 1200), quality=100), "l’image dépasse 64 Kio")]
    for data, reason in cases:
        async with client.put(url, data=data, headers={**auth, "Content-Type": "image/png"}) as r:
            assert r.status == 400
            assert reason in (await r.json())["problems"][0]["message"]
    async with client.put(app.url + "/api/profile/images/stamp", data=png(), headers=auth) as r:
        assert r.status == 404
    async with client.get(app.url + "/api/profile", headers=auth) as r:
        assert (await r.json())["logo"] is False
    async with client.delete(app.url + "/api/profile/images/signature", headers=auth) as r:
        assert (await r.json())["signature"] is False


async def test_nothing_of_a_document_appears_in_the_server_log(live, http, caplog):
    caplog.set_level(logging.DEBUG)
    app = await live()
    client, auth, consultation, _ = await _ready(app, http)
    caplog.clear()  # from here on: documents only (the profile was saved above)
    url = f"{app.url}/api/consultations/{consultation['id']}/render"
    async with client.post(url, json=PRESCRIPTION, headers=auth) as r:
        assert r.status == 200
    bad = {**PRESCRIPTION, "lines": [drug("Amoxicilline-Zéphyr", duration="")], "held": "Quetzal"}
    async with client.post(url, json=bad, headers=auth) as r:
        assert r.status == 400
    _, other = await add_api_clinician(app.engine, "other@example.org")
    async with client.post(url, json=PRESCRIPTION, headers={"Authorization": f"Bearer {other}"}) as r:
        assert r.status == 404
    logged = caplog.text
    assert caplog.records, "the log was captured"
    for secret in ("Zéphyr", "Quetzal", "Lefèvre", "LEFÈVRE", "Zoé", "1980-03-12", "Amoxicilline",
                   "Œuvray", "10001234567"):
        assert secret not in logged, secret


def _policy(headers) -> dict[str, list[str]]:
    policy = {}
    for directive in headers["Content-Security-Policy"].split(";"):
        key, *values = directive.split()
        policy[key] = values
    return policy


async def test_only_the_call_page_may_frame_a_blob_pdf_preview_and_no_page_may_embed_objects(live, http):
    app = await live()
    _, _, consultation, doctor = await _ready(app, http)
    browser = http()
    await login(browser, app.url, doctor)
    jitsi = app.settings.jitsi_origin
    async with browser.get(f"{app.url}/consultations/{consultation['id']}") as r:
        call = _policy(r.headers)
    assert call["frame-src"] == [jitsi, "blob:"], "the writer's preview is a blob: frame"
    assert "object-src" not in call and call["default-src"] == ["'none'"], "no plugin: the PDF viewer is a frame"
    for who, path in [(browser, "/"), (browser, "/profile"), (http(), "/login"),
                      (http(), consultation["patient_url"].removeprefix(app.url)), (http(), "/static/js/writer.js"),
                      (browser, f"/consultations/{consultation['id']}/documents")]:
        async with who.get(app.url + path) as r:
            policy = _policy(r.headers)
        assert policy["frame-src"] == [jitsi], path
        assert "object-src" not in policy and policy["default-src"] == ["'none'"], path


async def test_the_call_page_carries_the_writer_while_open_and_the_patient_page_the_identity_form(live, http):
    app = await live()
    client, auth, consultation, doctor = await _ready(app, http)
    browser = http()
    await login(browser, app.url, doctor)
    call_url = f"{app.url}/consultations/{consultation['id']}"
    async with browser.get(call_url) as r:
        page = await r.text()
    assert 'id="writer"' in page and '"render_url": "/consultations/' in page
    assert 'id="identity"' not in page
    patient = http()
    async with patient.get(consultation["patient_url"]) as r:
        csrf = csrf_from(await r.text())
    async with patient.post(consultation["patient_url"] + "/knock",
                            data={"sealed_name": sealed("Zoé"), "consent": "yes", "csrf_token": csrf}) as r:
        waiting = await r.text()
    assert 'id="identity"' in waiting and 'id="writer"' not in waiting and "render_url" not in waiting
    async with client.post(f"{app.url}/api/consultations/{consultation['id']}/end", headers=auth) as r:
        assert r.status == 200
    async with browser.get(call_url) as r:
        ended = await r.text()
    assert 'id="writer"' not in ended and '"writer": null' in ended
