"""Documents in the call, in real Chromium with two browser contexts (clinician, patient on a
phone). Jitsi is the stand-in of tests/browser.py (no videobridge here)."""

import asyncio
import os
import time
from pathlib import Path

import pytest

from browser import admitted_pair, axe_violations, chromium, saved_by_click, wait_until
from teleconsult.ending import sweep_once

PDF = b"%PDF-1.4\n" + os.urandom(200_000) + b"\n%%EOF\n"
PHOTO = b"\xff\xd8\xff\xe0" + os.urandom(90_000) + b"\xff\xd9"


def _record_requests(page, sink):
    page.on("request", lambda req: sink.append((req.url, str(req.headers), req.post_data_buffer or b"")))


async def _text_of(page, doc_selector):
    return await page.evaluate(f"(document.querySelector({doc_selector!r}) || {{}}).textContent || ''")


@pytest.mark.app_settings(documents_grace_seconds=1)
async def test_clinician_sends_patient_saves_identical_bytes_and_sends_back_and_secret_never_leaves(app_with_jitsi, tmp_path):
    app, doctor = app_with_jitsi
    requests = []
    pdf = tmp_path / "ordonnance.pdf"
    pdf.write_bytes(PDF)
    photo = tmp_path / "photo-resultat.jpg"
    photo.write_bytes(PHOTO)
    async with chromium() as browser:
        clinician, patient, link = await admitted_pair(browser, app.url, doctor, downloads=True)
        secret = link.split("#", 1)[1]
        for page in (clinician, patient):
            _record_requests(page, requests)

        # the clinician sends a PDF; the patient's panel shows it within a second
        await clinician.set_input_files("#document-file", str(pdf))
        sent_at = time.monotonic()
        await wait_until(patient, "document.querySelectorAll('#documents-list .document-name').length === 1")
        latency = time.monotonic() - sent_at
        assert await _text_of(patient, "#documents-list .document-name") == "ordonnance.pdf"
        # on the phone the panel is below the call: a banner announces the document
        await wait_until(patient, "!document.getElementById('documents-new').hidden")
        assert "ordonnance.pdf" in await _text_of(patient, "#documents-new")
        await patient.click("#documents-new")
        await wait_until(clinician, "(document.querySelector('#documents-list .document-state') || {})"
                                    ".textContent === 'Envoyé'")

        # one tap saves it with its real name; the bytes are identical
        assert await saved_by_click(patient, "#documents-list button.save") == ("ordonnance.pdf", PDF)
        await wait_until(clinician, "(document.querySelector('#documents-list .document-state') || {})"
                                    ".textContent === 'Téléchargé'")
        assert await axe_violations(patient) == []

        # the patient sends a photo back; the clinician opens it
        await patient.set_input_files("#document-file", str(photo))
        await wait_until(clinician, "document.querySelectorAll('#documents-list .document-name').length === 2")
        names = await clinician.evaluate(
            "[...document.querySelectorAll('#documents-list .document-name')].map(e => e.textContent)")
        assert names == ["ordonnance.pdf", "photo-resultat.jpg"]
        _, saved = await saved_by_click(clinician, "#documents-list li:nth-child(2) button.save")
        assert saved == PHOTO
        assert await axe_violations(clinician) == []

        # the end: after the grace period the clinician sees the deletion confirmed
        clinician.on("dialog", lambda dialog: dialog.accept())
        await clinician.click("#end-call")
        await asyncio.sleep(1.1)
        await sweep_once(app.services)
        await wait_until(clinician, "document.querySelectorAll('#documents-list .document.deleted').length === 2")
        assert await _text_of(clinician, "#documents-list .document-state") == "Supprimé"
    assert latency < 1.0, f"the patient saw the document after {latency:.2f} s"
    # the secret of the link never travelled to our server: no URL, header or body carried it
    assert len(requests) > 10
    raw_secret = __import__("base64").urlsafe_b64decode(secret + "=")
    for url, headers, body in requests:
        assert secret not in url and secret not in headers
        assert secret.encode() not in body and raw_secret not in body
    # gone from the disk and the API
    data_dir = Path(app.settings.data_dir)
    assert [p for p in (data_dir / "documents").rglob("*") if p.is_file()] == []
    everything = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert PDF[100:200] not in everything and b"ordonnance" not in everything


async def test_tampered_document_shows_a_decryption_error_and_saves_nothing(app_with_jitsi, tmp_path):
    app, doctor = app_with_jitsi
    pdf = tmp_path / "compte-rendu.pdf"
    pdf.write_bytes(PDF)
    async with chromium() as browser:
        clinician, patient, _link = await admitted_pair(browser, app.url, doctor, downloads=True)
        await clinician.set_input_files("#document-file", str(pdf))
        await wait_until(patient, "document.querySelectorAll('#documents-list button.save').length === 1")
        stored = [p for p in (Path(app.settings.data_dir) / "documents" / "ready").iterdir()]
        assert len(stored) == 1
        data = bytearray(stored[0].read_bytes())
        data[70_000] ^= 0x01  # one bit in the second record
        stored[0].write_bytes(bytes(data))
        downloads = []
        patient.on("download", lambda d: downloads.append(d))
        await patient.click("#documents-list button.save")
        await wait_until(patient, "document.getElementById('documents-status').textContent.includes('altéré')")
        assert "error" in await patient.get_attribute("#documents-status", "class")
        await asyncio.sleep(0.3)
        assert downloads == []
