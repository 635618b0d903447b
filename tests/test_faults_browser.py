"""Faults a patient on a phone meets every day, driven for real in Chromium: the network cut
(Playwright's set_offline, and a loopback proxy that resets every open connection, event streams
included), a request aborted on its way (page.route), a database locked by another process.
Every page recovers by itself, and nothing is lost.

Jitsi's web app cannot run here (no videobridge, no Jicofo): the stand-in external_api.js of
tests/browser.py records what the page embeds."""

import asyncio
import os

import sqlalchemy as sa

from browser import chromium, knocked_pair, stand_in_jitsi, wait_until
from conftest import add_clinician
from fault_proxy import FaultProxy
from filedrop.schema import files
from teleconsult import consultations as cs
from teleconsult.db import knocks

SLOW = 40.0  # generous: the machine running the tests is shared


async def _knock_is(app, status, timeout=SLOW):
    async def read():
        async with app.engine.connect() as conn:
            return await conn.scalar(sa.select(knocks.c.status))
    deadline = asyncio.get_running_loop().time() + timeout
    while (now := await read()) != status:
        assert asyncio.get_running_loop().time() < deadline, f"the knock is {now}, not {status}"
        await asyncio.sleep(0.1)


async def test_a_patient_whose_call_request_fails_when_admitted_enters_the_call_once_it_gets_through(live):
    """The waiting room's event stream stays open (as through set_offline, or a phone whose old
    connection outlives its signal) but the call request gets no answer: it is asked again."""
    jitsi_server, domain = await stand_in_jitsi()
    app = await live(jitsi_domain=domain, jitsi_scheme="http")
    doctor = await add_clinician(app.engine)
    try:
        async with chromium() as browser:
            clinician, patient, _ = await knocked_pair(browser, app.url, doctor, timeout=SLOW)
            aborted = []

            async def no_answer(route):
                aborted.append(route.request.url)
                await route.abort("internetdisconnected")
            await patient.route("**/call", no_answer)
            await clinician.click("[data-action=admit]")
            await wait_until(patient, "document.getElementById('patient-status').textContent"
                                      " === 'Connexion perdue. Nouvelle tentative…'", SLOW)
            await asyncio.sleep(3)
            assert aborted and await patient.evaluate("window.__jitsi === undefined")

            await patient.unroute("**/call")
            await wait_until(patient, "window.__jitsi !== undefined", SLOW)  # no reload
            assert await patient.is_visible("#call") and not await patient.is_visible("#waiting")
    finally:
        await jitsi_server.close()


async def _in_the_call(browser, app, doctor):
    clinician, patient, _ = await knocked_pair(browser, app.url, doctor, timeout=SLOW)
    await clinician.click("[data-action=admit]")
    await wait_until(patient, "window.__jitsi !== undefined", SLOW)
    await clinician.click("a.button.primary")
    await wait_until(clinician, "window.__jitsi !== undefined", SLOW)
    return clinician, patient


LISTED = "document.querySelectorAll('#documents-list .document-name').length"


async def test_a_document_sent_while_the_patient_was_offline_appears_when_the_network_returns(live, tmp_path):
    jitsi_server, domain = await stand_in_jitsi()
    app = await live(jitsi_domain=domain, jitsi_scheme="http")
    doctor = await add_clinician(app.engine)
    pdf = tmp_path / "ordonnance.pdf"
    pdf.write_bytes(b"%PDF-1.4 prescription")
    try:
        async with chromium() as browser:
            clinician, patient = await _in_the_call(browser, app, doctor)
            await patient.context.set_offline(True)
            await wait_until(patient, "!document.getElementById('documents-offline').hidden", SLOW)
            assert await patient.is_visible("#documents-offline")  # on the call page, not the hidden waiting room
            await clinician.set_input_files("#document-file", str(pdf))
            await wait_until(clinician, f"{LISTED} === 1", SLOW)

            # back online, the first list requests still get no answer: the panel asks again
            failed = []

            async def no_answer(route):
                if route.request.method == "GET" and len(failed) < 2:
                    failed.append(route.request.url)
                    await route.abort("connectionreset")
                else:
                    await route.continue_()
            await patient.route("**/j/*/documents", no_answer)
            await patient.context.set_offline(False)
            await wait_until(patient, "document.getElementById('documents-offline').hidden", SLOW)
            assert len(failed) == 2  # the notice goes once the list came through
            assert await patient.evaluate(LISTED) == 1
            assert await patient.text_content("#documents-list .document-name") == "ordonnance.pdf"
    finally:
        await jitsi_server.close()


async def test_a_document_sent_while_the_patients_connections_were_cut_appears_when_they_return(live, tmp_path):
    jitsi_server, domain = await stand_in_jitsi()
    app = await live(jitsi_domain=domain, jitsi_scheme="http")
    doctor = await add_clinician(app.engine)
    proxy = FaultProxy(app.server.port)
    await proxy.start()
    pdf = tmp_path / "compte-rendu.pdf"
    pdf.write_bytes(b"%PDF-1.4 report")
    try:
        async with chromium() as browser:
            clinician, patient, _ = await knocked_pair(browser, app.url, doctor, patient_base=proxy.url, timeout=SLOW)
            await clinician.click("[data-action=admit]")
            await wait_until(patient, "window.__jitsi !== undefined", SLOW)
            await clinician.click("a.button.primary")
            await wait_until(clinician, "window.__jitsi !== undefined", SLOW)
            proxy.cut()
            await wait_until(patient, "!document.getElementById('documents-offline').hidden", SLOW)
            await clinician.set_input_files("#document-file", str(pdf))
            await wait_until(clinician, f"{LISTED} === 1", SLOW)
            await asyncio.sleep(8)  # long enough for the browser to give its event stream up
            assert await patient.evaluate(LISTED) == 0 and proxy.refused > 0
            proxy.restore()
            await wait_until(patient, f"{LISTED} === 1", SLOW)
            await wait_until(patient, "document.getElementById('documents-offline').hidden", SLOW)
    finally:
        await proxy.close()
        await jitsi_server.close()


async def test_an_upload_whose_last_request_gets_no_answer_is_published_all_the_same(live, tmp_path):
    jitsi_server, domain = await stand_in_jitsi()
    app = await live(jitsi_domain=domain, jitsi_scheme="http")
    doctor = await add_clinician(app.engine)
    scan = tmp_path / "scanner.bin"
    scan.write_bytes(os.urandom(9 * 1024 * 1024))  # three parts
    try:
        async with chromium() as browser:
            clinician, patient = await _in_the_call(browser, app, doctor)
            aborted = []

            async def first_lost(route):
                if not aborted:
                    aborted.append(route.request.url)
                    await route.abort("connectionreset")
                else:
                    await route.continue_()
            await clinician.route("**/complete", first_lost)
            await clinician.set_input_files("#document-file", str(scan))
            await wait_until(clinician, "document.getElementById('documents-status').textContent"
                                        " === 'Envoyé : scanner.bin'", SLOW)
            await wait_until(patient, f"{LISTED} === 1", SLOW)
            assert len(aborted) == 1 and await clinician.evaluate(LISTED) == 1
    finally:
        await jitsi_server.close()


async def test_an_upload_cut_for_forty_seconds_resumes_when_the_network_returns(live, tmp_path):
    jitsi_server, domain = await stand_in_jitsi()
    app = await live(jitsi_domain=domain, jitsi_scheme="http")
    doctor = await add_clinician(app.engine)
    proxy = FaultProxy(app.server.port)
    await proxy.start()
    photo = tmp_path / "radio.bin"
    photo.write_bytes(os.urandom(9 * 1024 * 1024))
    try:
        async with chromium() as browser:
            clinician, patient, _ = await knocked_pair(browser, app.url, doctor, patient_base=proxy.url, timeout=SLOW)
            await clinician.click("[data-action=admit]")
            await wait_until(patient, "window.__jitsi !== undefined", SLOW)
            parts = []

            async def cut_at_the_second_part(route):
                if route.request.method == "PATCH":
                    parts.append(route.request.headers.get("upload-offset"))
                    if len(parts) == 2:
                        proxy.cut()  # this part, and everything after it, gets no answer
                await route.continue_()
            await patient.route("**/upload", cut_at_the_second_part)
            await patient.set_input_files("#document-file", str(photo))
            for _ in range(int(SLOW * 10)):
                if proxy.down:
                    break
                await asyncio.sleep(0.1)
            assert proxy.down, "the upload never reached its second part"
            await asyncio.sleep(40)  # longer than the retries main had (6, about 25 s and their requests): still waiting
            assert (await patient.text_content("#documents-status")).startswith("Connexion perdue")
            proxy.restore()
            await wait_until(patient, "document.getElementById('documents-status').textContent"
                                      " === 'Envoyé : radio.bin'", 60)
            async with app.engine.connect() as conn:
                stored = (await conn.execute(sa.select(files.c.state, files.c.received, files.c.size))).all()
            assert [row.state for row in stored] == ["ready"] and stored[0].received == stored[0].size
    finally:
        await proxy.close()
        await jitsi_server.close()


async def test_an_admit_refused_by_a_locked_database_is_tried_again_said_and_the_patient_gets_in(live):
    from test_database_busy import HOLD_SECONDS, hold_exclusive_lock
    jitsi_server, domain = await stand_in_jitsi()
    app = await live(jitsi_domain=domain, jitsi_scheme="http")
    doctor = await add_clinician(app.engine)
    try:
        async with chromium() as browser:
            clinician, patient, _ = await knocked_pair(browser, app.url, doctor, timeout=SLOW)
            answers = []
            clinician.on("response", lambda r: answers.append(r.status) if r.url.endswith("/admit") else None)
            holder = hold_exclusive_lock(app.settings.sqlalchemy_url, HOLD_SECONDS)
            try:
                await clinician.click("[data-action=admit]")
                await wait_until(clinician, "document.getElementById('dashboard-status').textContent"
                                            " === 'Le serveur est occupé ou injoignable : nouvel essai…'", SLOW)
            finally:
                holder.wait(timeout=SLOW)
            await wait_until(patient, "window.__jitsi !== undefined", SLOW)  # no second click
            await wait_until(clinician, "document.getElementById('dashboard-status').textContent === ''", SLOW)
            assert answers[0] == 503 and answers[-1] == 200, answers
            await _knock_is(app, cs.KNOCK_ADMITTED)
    finally:
        await jitsi_server.close()
