"""Faults a patient on a phone meets every day, driven for real in Chromium: the network cut
(Playwright's set_offline, and a loopback proxy that resets every open connection, event streams
included), a request aborted on its way (page.route), a database locked by another process.
Every page recovers by itself, and nothing is lost.

Jitsi's web app cannot run here (no videobridge, no Jicofo): the stand-in external_api.js of
tests/browser.py records what the page embeds."""

import asyncio
import os

import pytest
import sqlalchemy as sa

from browser import PHONE, chromium, knocked_pair, wait_until
from fault_proxy import FaultProxy
from filedrop.schema import files
from teleconsult import consultations as cs
from teleconsult.db_tables import knocks

SLOW = 40.0  # generous: the machine running the tests is shared
BACK = 15.0  # "within a few seconds of coming back online", with room for a loaded machine
HEARTBEAT = 4  # seconds between the pings of an event stream, where a test waits for a silent death


async def _knock_is(app, status, timeout=SLOW):
    async def read():
        async with app.engine.connect() as conn:
            return await conn.scalar(sa.select(knocks.c.status))
    deadline = asyncio.get_running_loop().time() + timeout
    while (now := await read()) != status:
        assert asyncio.get_running_loop().time() < deadline, f"the knock is {now}, not {status}"
        await asyncio.sleep(0.1)


async def _admitted_while_away(app, clinician, patient, away: float = 3) -> None:
    """The clinician admits; the server has the knock admitted; `away` seconds later the
    patient's page is still not in the call."""
    await clinician.click("[data-action=admit]")
    await _knock_is(app, cs.KNOCK_ADMITTED)
    await asyncio.sleep(away)
    assert await patient.evaluate("window.__jitsi === undefined")


async def _in_the_call_with_one_knock(app, patient, timeout: float = BACK) -> None:
    """The patient's page enters the call by itself (no reload by hand), on the same knock:
    nothing was asked twice."""
    await wait_until(patient, "window.__jitsi !== undefined", timeout)
    assert await patient.is_visible("#call") and not await patient.is_visible("#waiting")
    async with app.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(knocks)) == 1


async def test_a_patient_admitted_while_offline_enters_the_call_when_the_network_returns(app_with_jitsi):
    """set_offline as soon as the knock is sent, whatever the waiting room had loaded by then
    (this raced on main: offline before the page's module arrived left a page without script)."""
    app, doctor = app_with_jitsi
    async with chromium() as browser:
        clinician, patient, _ = await knocked_pair(browser, app.url, doctor, timeout=SLOW)
        await patient.context.set_offline(True)
        await _admitted_while_away(app, clinician, patient)  # offline for a while: a few attempts fail
        await patient.context.set_offline(False)
        await _in_the_call_with_one_knock(app, patient)


async def test_a_patient_who_went_offline_while_the_waiting_room_loaded_enters_the_call_when_back_online(app_with_jitsi):
    """set_offline at the moment the waiting room asks for its script: the page has no script
    running at all (the module failed to load), so nothing in it could ever retry. The small
    classic script loaded first (static/js/script_guard.js) notices and reloads the page once
    the network is back."""
    app, doctor = app_with_jitsi
    async with chromium() as browser:
        cut = []

        async def prepare(patient):
            # the browser asks for the page's scripts in parallel: the network goes when the
            # page's module is asked for, once the waiting room's own script_guard.js has run
            # (before it, nothing could help). It has run once the parser is in the body (a
            # classic script in <head> holds the parser; the deferred module does not): waiting
            # for "a script_guard.js arrived" instead also counted the join page's, which let the
            # cut land before the waiting room's guard arrived, and nothing ever retried
            async def offline_now(route):
                if not cut:
                    cut.append(route.request.url)
                    await wait_until(patient, "document.getElementById('patient-status') !== null", SLOW)
                    await patient.context.set_offline(True)
                    await route.abort("internetdisconnected")
                else:
                    await route.continue_()
            await patient.route("**/static/js/patient.js*", offline_now)
        clinician, patient, _ = await knocked_pair(browser, app.url, doctor, timeout=SLOW, prepare_patient=prepare)
        assert cut
        await _admitted_while_away(app, clinician, patient)  # offline for a while
        await patient.context.set_offline(False)
        await _in_the_call_with_one_knock(app, patient)


async def test_a_patient_admitted_while_offline_with_a_silently_dead_stream_enters_the_call_when_back_online(app_with_jitsi):
    """The phone goes offline (set_offline: new requests fail) and its open event stream dies
    silently (the proxy keeps it open and passes nothing, as a carrier's NAT that forgot it):
    the admission never arrives on it. Back online, the page opens a new stream."""
    app, doctor = app_with_jitsi
    proxy = FaultProxy(app.server.port)
    await proxy.start()
    try:
        async with chromium() as browser:
            clinician, patient, _ = await knocked_pair(browser, app.url, doctor, patient_base=proxy.url, timeout=SLOW)
            await proxy.stream_opened(SLOW)
            assert proxy.streams == 1, "the waiting room's stream never opened"
            await patient.context.set_offline(True)
            proxy.freeze()
            await _admitted_while_away(app, clinician, patient)
            proxy.restore()
            await patient.context.set_offline(False)
            await _in_the_call_with_one_knock(app, patient)
    finally:
        await proxy.close()


@pytest.mark.app_settings(live_heartbeat_seconds=HEARTBEAT)
async def test_a_waiting_room_whose_stream_dies_silently_without_going_offline_opens_a_new_one_by_itself(app_with_jitsi):
    """No "online" event this time (a phone moving from one network to another): the stream
    stays open and carries nothing, not even the server's heartbeat (every HEARTBEAT s here, 15 by
    default); after three heartbeats of silence the page opens a new stream and the patient
    admitted meanwhile enters the call."""
    app, doctor = app_with_jitsi
    proxy = FaultProxy(app.server.port)
    await proxy.start()
    try:
        async with chromium() as browser:
            clinician, patient, _ = await knocked_pair(browser, app.url, doctor, patient_base=proxy.url, timeout=SLOW)
            await proxy.stream_opened(SLOW)
            assert proxy.streams == 1, "the waiting room's stream never opened"
            proxy.freeze()
            proxy.restore()  # new connections pass again at once; the old stream stays dead
            # more than a heartbeat: the page still waits on its dead stream
            await _admitted_while_away(app, clinician, patient, away=HEARTBEAT + 1)
            await _in_the_call_with_one_knock(app, patient, 4 * HEARTBEAT + BACK)  # 3 missed, the check, margin
            assert proxy.streams >= 2  # a new waiting-room stream (then the call page's documents stream)
    finally:
        await proxy.close()


async def test_a_patient_whose_call_request_fails_when_admitted_enters_the_call_once_it_gets_through(app_with_jitsi):
    """The waiting room's event stream stays open (as through set_offline, or a phone whose old
    connection outlives its signal) but the call request gets no answer: it is asked again."""
    app, doctor = app_with_jitsi
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


async def _in_the_call(browser, app, doctor):
    clinician, patient, _ = await knocked_pair(browser, app.url, doctor, timeout=SLOW)
    await clinician.click("[data-action=admit]")
    await wait_until(patient, "window.__jitsi !== undefined", SLOW)
    await clinician.click("a.button.primary")
    await wait_until(clinician, "window.__jitsi !== undefined", SLOW)
    return clinician, patient


LISTED = "document.querySelectorAll('#documents-list .document-name').length"


async def test_a_document_sent_while_the_patient_was_offline_appears_when_the_network_returns(app_with_jitsi, tmp_path):
    app, doctor = app_with_jitsi
    pdf = tmp_path / "ordonnance.pdf"
    pdf.write_bytes(b"%PDF-1.4 prescription")
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


async def test_a_document_sent_while_the_patients_connections_were_cut_appears_when_they_return(app_with_jitsi, tmp_path):
    app, doctor = app_with_jitsi
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


async def test_an_upload_whose_last_request_gets_no_answer_is_published_all_the_same(app_with_jitsi, tmp_path):
    app, doctor = app_with_jitsi
    scan = tmp_path / "scanner.bin"
    scan.write_bytes(os.urandom(9 * 1024 * 1024))  # three parts
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


async def test_an_upload_cut_for_forty_seconds_resumes_when_the_network_returns(app_with_jitsi, tmp_path):
    app, doctor = app_with_jitsi
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


async def test_an_admit_refused_by_a_locked_database_is_tried_again_said_and_the_patient_gets_in(app_with_jitsi):
    from test_database_busy import HOLD_SECONDS, hold_exclusive_lock
    app, doctor = app_with_jitsi
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


async def test_two_dashboard_tabs_both_admitting_both_show_the_patient_admitted_and_an_end_in_one_ends_the_other(app_with_jitsi):
    """The clinician has the dashboard open in two tabs; both click "Admit" at once, then both
    open the call, and one ends it: the other tab leaves the (stand-in) Jitsi and says it ended."""
    app, doctor = app_with_jitsi
    async with chromium() as browser:
        first, patient, _ = await knocked_pair(browser, app.url, doctor, timeout=SLOW)
        second = await first.context.new_page()
        await second.goto(app.url + "/")
        await second.wait_for_selector("[data-action=admit]", timeout=SLOW * 1000)
        answers, asked, both = [], [], asyncio.Event()

        async def together(route):  # each tab's admit leaves once both were clicked
            asked.append(route.request.url)
            if len(asked) == 2:
                both.set()
            await asyncio.wait_for(both.wait(), SLOW)
            await route.continue_()
        for tab in (first, second):
            tab.on("response", lambda r: answers.append(r.status) if r.url.endswith("/admit") else None)
            await tab.route("**/admit", together)
        await asyncio.gather(*(tab.evaluate("document.querySelector('[data-action=admit]').click()")
                               for tab in (first, second)))
        await wait_until(patient, "window.__jitsi !== undefined", SLOW)
        for tab in (first, second):
            await wait_until(tab, "document.querySelector('[data-action=admit]') === null"
                                  " && document.querySelector('.consultation.status-in_call') !== null", SLOW)
        assert sorted(answers) == [200, 200], answers  # the same wish twice: both done
        assert await second.text_content("#dashboard-status") == ""

        for tab in (first, second):
            await tab.click("a.button.primary")
            await wait_until(tab, "window.__jitsi !== undefined", SLOW)
        first.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await first.click("#end-call")
        await wait_until(first, "document.getElementById('call-status').textContent"
                                " === 'La consultation est terminée.'", SLOW)
        await wait_until(second, "window.__jitsi_disposed === true", BACK)  # no reload, no click
        assert await second.text_content("#call-status") == "La consultation est terminée."
        assert await second.is_disabled("#end-call")


SENDERS = ("[...document.querySelectorAll('#documents-list .document')]"
           ".map((d) => d.querySelector('.document-name').textContent + '|' + d.querySelector('.muted').textContent)")


async def test_one_link_opened_on_two_phones_is_shown_to_the_clinician_and_documents_name_their_device(app_with_jitsi, tmp_path):
    app, doctor = app_with_jitsi
    photo = tmp_path / "photo.pdf"
    photo.write_bytes(b"%PDF-1.4 from the second phone")
    async with chromium() as browser:
        clinician, phone1, link = await knocked_pair(browser, app.url, doctor, timeout=SLOW)
        phone2 = await (await browser.new_context(**PHONE)).new_page()
        await phone2.goto(link)
        await phone2.fill("#display_name", "Camille")
        await phone2.check("#consent")
        await phone2.click("button[type=submit]")
        await wait_until(clinician, "document.querySelectorAll('.knock').length === 2", SLOW)
        notes = await clinician.evaluate(
            "[...document.querySelectorAll('.knock')].map((k) => k.querySelector('.same-link')?.textContent || '')")
        assert notes == ["", "(un autre appareil avec le même lien, n° 2)"], notes

        for _ in range(2):
            await clinician.click("[data-action=admit]")
            await asyncio.sleep(0.5)
        for phone in (phone1, phone2):
            await wait_until(phone, "window.__jitsi !== undefined", SLOW)
        await clinician.click("a.button.primary")
        await wait_until(clinician, "window.__jitsi !== undefined", SLOW)

        await phone2.set_input_files("#document-file", str(photo))
        for page in (phone1, phone2, clinician):
            await wait_until(page, f"{LISTED} === 1", SLOW)
        assert await phone2.evaluate(SENDERS) == ["photo.pdf| envoyé par vous · "]
        assert await phone1.evaluate(SENDERS) == ["photo.pdf| envoyé par un autre appareil avec votre lien · "]
        assert await clinician.evaluate(SENDERS) == ["photo.pdf| envoyé par le patient (appareil n° 2) · "]


async def test_a_reload_in_the_middle_of_an_upload_says_the_document_was_not_sent_and_announces_nothing_old(app_with_jitsi, tmp_path):
    app, doctor = app_with_jitsi
    pdf = tmp_path / "ordonnance.pdf"
    pdf.write_bytes(b"%PDF-1.4 prescription")
    scan = tmp_path / "scanner.bin"
    scan.write_bytes(os.urandom(9 * 1024 * 1024))  # three parts
    async with chromium() as browser:
        clinician, patient = await _in_the_call(browser, app, doctor)
        await clinician.set_input_files("#document-file", str(pdf))
        await wait_until(patient, "document.getElementById('documents-status').textContent"
                                  " === 'Nouveau document : ordonnance.pdf'", SLOW)
        held = asyncio.Event()

        async def hold_the_second_part(route):
            if route.request.method == "PATCH" and route.request.headers.get("upload-offset") != "0":
                held.set()  # never answered: the upload is under way when the page reloads
                return
            await route.continue_()
        await patient.route("**/upload", hold_the_second_part)
        await patient.set_input_files("#document-file", str(scan))
        await asyncio.wait_for(held.wait(), SLOW)
        patient.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))  # "leave this page?"
        await patient.reload()
        await wait_until(patient, "window.__jitsi !== undefined", SLOW)
        await wait_until(patient, f"{LISTED} === 1", SLOW)
        await wait_until(patient, "document.getElementById('documents-status').textContent !== ''", SLOW)
        await asyncio.sleep(2)  # whatever the panel would say after its first list
        assert await patient.text_content("#documents-status") == (
            "scanner.bin n'a pas été envoyé : la page a été rechargée pendant l'envoi. Envoyez-le à nouveau.")
        assert await patient.is_hidden("#documents-new")
        async with app.engine.connect() as conn:
            states = (await conn.execute(sa.select(files.c.state))).scalars().all()
        assert sorted(states) == ["ready", "uploading"]  # the old upload is not published
