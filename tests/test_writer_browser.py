"""Writing a document during the call, in real Chromium: the clinician asks the patient for their
identity (the patient's page answers through the box, encrypted), fills a prescription in the
documents panel, sees the server's reasons, previews the PDF (a blob: frame the call page's CSP
allows), sends it; the patient's page receives it and saves it. Jitsi is the stand-in of
tests/browser.py (no videobridge here); the server, its SQLite files and Chromium are real."""

from __future__ import annotations

import io
import logging
import re
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from browser import (PHONE, admitted_pair, axe_violations, chromium, horizontal_overflow, login_in_browser,
                     saved_by_click, stand_in_jitsi, wait_until)
import stored
from conftest import add_clinician
from documents_samples import LIMITS, PRESCRIBER, png
from teleconsult.documents.profile import set_image, update_profile

pytestmark = pytest.mark.timeout(180)

DRUG = "Zyrtaquolex"  # an invented drug name: a marker nothing else on the server contains
SURNAME = "Quenaudière-Brizoux"  # the patient's surname as typed on the patient's phone


async def _profile_without_phone(engine, clinician_id):
    await update_profile(engine, clinician_id, {**PRESCRIBER, "phone": ""})
    await set_image(engine, clinician_id, "signature", png(), LIMITS)


def _watch(page, sink):
    """A page's CSP violations and uncaught script errors (a 400 logged by the console is expected)."""
    page.on("console", lambda m: sink.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda exc: sink.append(str(exc)))


async def _fill_line(page, n, **values):
    for name, value in values.items():
        await page.fill(f"#writer-lines > li:nth-child({n}) [data-name={name}]:not(label)", value)


def _pdf_text(data: bytes) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).split())


async def test_the_clinician_writes_previews_and_sends_a_prescription_the_patient_saves_and_the_server_never_reads_it(
        live, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    jitsi, domain = await stand_in_jitsi()
    app = await live(jitsi_domain=domain, jitsi_scheme="http")
    doctor = await add_clinician(app.engine)
    await _profile_without_phone(app.engine, doctor.id)
    errors: list[str] = []
    rendered: list[bytes] = []
    try:
        async with chromium() as browser:
            clinician, patient, _ = await admitted_pair(browser, app.url, doctor, name="Zoé", downloads=True)
            _watch(clinician, errors)
            _watch(patient, errors)

            async def keep_render(response):
                if response.url.endswith("/render") and response.status == 200:
                    rendered.append(await response.body())
            clinician.on("response", keep_render)

            # the writer opens in the panel, French by default
            assert await clinician.is_hidden("#writer")
            await clinician.click("#writer-toggle")
            assert await clinician.get_attribute("#writer-toggle", "aria-expanded") == "true"
            assert await clinician.text_content("#writer-toggle") == "Rédiger un document"
            assert await clinician.input_value("#writer-lang") == "fr"

            # the clinician asks for the patient's identity; the patient's page shows a short form
            await clinician.click("#writer-ask-identity")
            await patient.wait_for_selector("#identity:not([hidden])")
            assert "Votre soignant vous demande votre identité" in await patient.text_content("#identity-asked")
            assert await axe_violations(patient) == []
            assert await horizontal_overflow(patient) <= 0
            await patient.click("#identity button[type=submit]")  # empty: refused with its reason
            assert await patient.text_content("#identity-error") == "Indiquez votre nom et vos prénoms."
            assert await patient.get_attribute("#identity-last-name", "aria-invalid") == "true"
            await patient.fill("#identity-last-name", SURNAME)
            await patient.fill("#identity-first-names", "Zoé  Anaïs")
            await patient.select_option("#identity-sex", "F")
            await patient.fill("#identity-birth-date", "1980-03-12")
            await patient.click("#identity button[type=submit]")
            await patient.wait_for_selector("#identity[hidden]", state="attached")
            assert await patient.text_content("#identity-status") == "Envoyé à votre soignant, chiffré."

            # the clinician's writer fills in what the patient typed
            await wait_until(clinician, f"document.getElementById('writer-last-name').value === {SURNAME!r}")
            assert await clinician.input_value("#writer-first-names") == "Zoé Anaïs"
            assert await clinician.input_value("#writer-sex") == "F"
            assert await clinician.input_value("#writer-birth-date") == "1980-03-12"
            assert "Rempli avec ce que le patient a saisi" in await clinician.text_content("#writer-identity-status")
            # the request and the answer are messages, not files: neither panel lists them
            for page in (clinician, patient):
                assert await page.locator("#documents-list li").count() == 0
                assert await page.is_visible("#documents-empty")

            # drug lines added and removed, a free-text line, the ALD two-zone option
            await _fill_line(clinician, 1, drug=DRUG, dosage="10 mg", form="comprimé",
                             directions="1 comprimé le soir", renewals="2")  # no duration: refused
            await clinician.click("#writer-add-drug")
            await _fill_line(clinician, 2, drug="Paracétamol", dosage="500 mg",
                             directions="1 à 2 comprimés si douleur", packs="2")
            await clinician.click("#writer-add-drug")
            await _fill_line(clinician, 3, drug="Retiré-Exprès", dosage="1 mg", directions="x", duration="1 jour")
            await clinician.click("#writer-add-text")
            await _fill_line(clinician, 4, text="Radiographie du thorax de face")
            await clinician.click("#writer-lines > li:nth-child(3) [data-remove]")
            legends = await clinician.eval_on_selector_all("#writer-lines legend", "ls => ls.map(l => l.textContent)")
            assert legends == ["Ligne 1", "Ligne 2", "Ligne 3"]
            assert await clinician.is_hidden("#writer-lines > li:nth-child(1) [data-ald]")
            await clinician.check("#writer-bizone")
            await clinician.check("#writer-lines > li:nth-child(1) input[data-name=ald]")

            # the server refuses, with every reason beside its field
            await clinician.click("#writer button[type=submit]")
            await clinician.wait_for_selector("#writer-problems li")
            problems = await clinician.text_content("#writer-problems")
            assert "Ligne 1, Durée (p. ex. 7 jours) : indiquez la durée du traitement" in problems
            assert await clinician.get_attribute("#writer-problems", "role") == "alert"
            assert await clinician.get_attribute(
                "#writer-lines > li:nth-child(1) input[data-name=duration]", "aria-invalid") == "true"
            assert await clinician.is_hidden("#writer-preview")
            assert await axe_violations(clinician) == []

            # the form is right, the profile lacks the phone a prescription prints: said, with a link
            await _fill_line(clinician, 1, duration="30 jours")
            await clinician.click("#writer button[type=submit]")
            await wait_until(clinician, "document.getElementById('writer-problems').textContent"
                                        ".includes('ajoutez votre numéro de téléphone')")
            assert "Durée" not in await clinician.text_content("#writer-problems")
            assert await clinician.get_attribute("#writer-problems a", "href") == "/profile"
            assert await clinician.get_attribute("#writer-problems a", "target") == "_blank"
            assert await clinician.get_attribute(
                "#writer-lines > li:nth-child(1) input[data-name=duration]", "aria-invalid") is None
            assert await axe_violations(clinician) == []

            # profile completed (in another tab, say): the preview shows the PDF
            await update_profile(app.engine, doctor.id, {"phone": PRESCRIBER["phone"]})
            await clinician.click("#writer button[type=submit]")
            await clinician.wait_for_selector("#writer-preview:not([hidden])")
            assert await clinician.text_content("#writer-problems") == ""
            assert (await clinician.get_attribute("#writer-frame", "src")).startswith("blob:" + app.url)
            for _ in range(200):  # the response's body is read by an event handler: give it time
                if rendered:
                    break
                await clinician.wait_for_timeout(25)
            assert len(rendered) == 1 and rendered[0].startswith(b"%PDF-")
            for _ in range(100):  # the frame shows the PDF (Chromium's viewer inside the blob: frame)
                if any(f.url.startswith("blob:") for f in clinician.frames[1:]) and len(clinician.frames) > 2:
                    break
                await clinician.wait_for_timeout(50)
            assert any(f.url.startswith("blob:") for f in clinician.frames)

            # a change after the preview asks for a new one before anything is sent
            await clinician.fill("#writer-weight", "70,5")
            assert await clinician.is_hidden("#writer-preview")
            assert "refaites l’aperçu" in await clinician.text_content("#writer-status")
            await clinician.click("#writer button[type=submit]")
            await clinician.wait_for_selector("#writer-preview:not([hidden])")

            # sent: encrypted in the clinician's browser, dropped into the box like any file
            await clinician.click("#writer-send")
            name = f"ordonnance-{date.today().isoformat()}.pdf"
            await wait_until(clinician, "(document.getElementById('writer-status').textContent || '')"
                                        f".includes({name!r})")
            await wait_until(patient, "document.querySelectorAll('#documents-list .document-name').length === 1")
            assert await patient.text_content("#documents-list .document-name") == name
            _, saved = await saved_by_click(patient, "#documents-list button.save")
            assert len(rendered) == 2 and saved == rendered[-1], "the patient saves the PDF previewed last"
            assert await clinician.locator("#documents-list li").count() == 1
    finally:
        await jitsi.close()

    text = _pdf_text(saved)
    assert f"{DRUG} 10 mg, comprimé" in text and "1 comprimé le soir" in text and "Durée : 30 jours" in text
    assert "Paracétamol 500 mg" in text and "2 boîtes" in text
    assert "Radiographie du thorax de face" in text and "Retiré-Exprès" not in text
    assert SURNAME.upper() in text and "Zoé Anaïs" in text and "Poids : 70,5 kg" in text
    # bizone: the ALD line above the separation, the others below it
    zone_ald, zone_other = text.index("EXONÉRANTE"), text.index("MALADIES INTERCURRENTES")
    assert zone_ald < text.index(DRUG) < zone_other < text.index("Paracétamol")
    assert errors == [], errors  # no CSP violation, no script error, on either page

    # the server holds no plaintext of the document or the identity: not in its files, its
    # database (SQLite: files in the data directory, WAL and shared memory included; PostgreSQL:
    # its dump), nor its log
    files = [p for p in Path(app.settings.data_dir).rglob("*") if p.is_file()]
    assert len([p for p in files if p.parent.name == "ready"]) == 3, "request, identity, PDF: three ciphertexts"
    contents = {path.name: path.read_bytes() for path in files}
    contents["the database's backup"] = stored.backup_bytes(app.settings.sqlalchemy_url)
    assert PRESCRIBER["name"].encode() in contents["the database's backup"], "the scan reads the database"
    for marker in (DRUG, SURNAME, "Radiographie du thorax", "Anaïs"):
        for encoded in (marker.encode(), marker.encode("utf-16-le")):
            for name, content in contents.items():
                assert encoded not in content, f"{marker!r} in {name}"
        assert marker not in caplog.text


async def test_the_writer_on_a_phone_is_axe_clean_fits_360_px_and_its_texts_are_english_on_request(app_with_jitsi):
    app, doctor = app_with_jitsi
    await _profile_without_phone(app.engine, doctor.id)
    errors: list[str] = []
    async with chromium() as browser:
        page = await (await browser.new_context(**PHONE)).new_page()
        _watch(page, errors)
        await login_in_browser(page, app.url, doctor)
        await page.click("#new-consultation")
        await wait_until(page, "document.getElementById('new-link-url').value !== ''")
        await page.click("a.button.primary")
        await wait_until(page, "window.__jitsi !== undefined")
        # what the other side sends keeps only the expected shape (it may send anything)
        cleaned = await page.evaluate("""import('/static/js/box_messages.js').then(m => [
            m.cleanIdentity({last_name: 'Du\\u202erand\\n\\u0007 Martin', first_names: 42, sex: 'female',
                             birth_date: '2999-01-01', html: '<img src=x>'}, new Date(2026, 10, 23)),
            m.cleanIdentity({last_name: 'x'.repeat(500), first_names: 'Léa', sex: 'X', birth_date: '1990-01-02'}),
            m.isMessage(m.IDENTITY), m.isMessage('application/pdf'), m.isMessage('application/json')])""")
        assert cleaned[0] == {"last_name": "Durand Martin", "first_names": "", "sex": "", "birth_date": ""}
        assert cleaned[1] == {"last_name": "x" * 120, "first_names": "Léa", "sex": "X", "birth_date": "1990-01-02"}
        assert cleaned[2:] == [True, False, False]

        await page.click("#writer-toggle")
        await page.click("#writer-add-text")
        await page.check("#writer-bizone")
        assert await axe_violations(page) == []
        assert await horizontal_overflow(page) <= 0
        for template in ("report", "certificate", "receipt"):
            await page.select_option("#writer-template", template)
            assert await page.is_visible(f"[data-for={template}]")
            assert await page.is_hidden("#writer-lines")
            assert await axe_violations(page) == []
            assert await horizontal_overflow(page) <= 0
        await page.select_option("#writer-template", "prescription")
        await page.click("#writer button[type=submit]")  # empty lines, no names, no phone
        await page.wait_for_selector("#writer-problems li")
        assert await axe_violations(page) == []
        assert await horizontal_overflow(page) <= 0

        await update_profile(app.engine, doctor.id, {"phone": PRESCRIBER["phone"]})
        await page.fill("#writer-last-name", "Durand")
        await page.fill("#writer-first-names", "Léa")
        await page.select_option("#writer-sex", "X")
        await page.fill("#writer-birth-date", "1990-01-02")
        await _fill_line(page, 1, drug="Amoxicilline", dosage="1 g", directions="matin et soir", duration="6 jours")
        await _fill_line(page, 2, text="NFS")
        await page.click("#writer button[type=submit]")
        await page.wait_for_selector("#writer-preview:not([hidden])")
        assert await axe_violations(page) == []
        assert await horizontal_overflow(page) <= 0

        # English on request: the page's texts and the document's default language
        await page.goto(page.url.split("?")[0] + "?lang=en")
        await wait_until(page, "window.__jitsi !== undefined")
        assert await page.text_content("#writer-toggle") == "Write a document"
        assert await page.input_value("#writer-lang") == "en"
        await page.click("#writer-toggle")
        await page.click("#writer button[type=submit]")
        await page.wait_for_selector("#writer-problems li")
        assert re.search(r"Line 1, Drug \(brand or INN\): this field is required",
                         await page.text_content("#writer-problems"))
    assert errors == [], errors
