"""The direct call (no Jitsi configured) in real Chromium: two browser contexts (the clinician on a
desktop, the patient on a phone) with Chromium's fake camera and microphone, WebRTC over loopback,
our real server relaying the signalling. Nothing is a stand-in here.

The pages' RTCPeerConnections are read through an init script that records every one created
(window.__pcs); getStats() of the latest says whether media really arrive."""

import asyncio
from types import SimpleNamespace

from browser import axe_violations, chromium, horizontal_overflow, knocked_pair, wait_until
from conftest import add_clinician
from fault_proxy import FaultProxy
from teleconsult import consultations as cs

NO_JITSI = {"jitsi_domain": "", "jitsi_app_id": "", "jitsi_app_secret": ""}
RECORD_CONNECTIONS = """
window.__pcs = [];
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) { super(...args); window.__pcs.push(this); }
};
"""
# inbound video frames decoded and audio samples received on the page's latest connection
MEDIA = """(async () => {
  const pc = (window.__pcs || []).at(-1);
  if (!pc) return {video: 0, audio: 0};
  const stats = await pc.getStats();
  let video = 0, audio = 0;
  stats.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") video += r.framesDecoded || 0;
    if (r.type === "inbound-rtp" && r.kind === "audio") audio += r.totalSamplesReceived || 0;
  });
  return {video, audio, connections: window.__pcs.length};
})()"""
MEDIA_FLOWS = f"(async () => {{ const m = await {MEDIA}; return m.video > 5 && m.audio > 1000; }})()"
MEDIA_TIMEOUT = 45  # seconds: the machine is shared; on an idle one media flow within 2 s
HEARTBEAT = 4  # seconds between the pings of an event stream, where a test waits for a silent death


async def _pages(browser, app, doctor, **knock):
    """The clinician admits the knocking patient and opens the call page (no Jitsi: the direct call)."""
    clinician, patient, _ = await knocked_pair(browser, app.url, doctor, init_script=RECORD_CONNECTIONS, timeout=30,
                                               **knock)
    await clinician.click("[data-action=admit]")
    await clinician.click("a.button.primary")  # the call page
    return clinician, patient


async def test_a_direct_call_carries_video_and_sound_both_ways_survives_a_reload_and_stops_at_the_end(live):
    app = await live(**NO_JITSI)
    doctor = await add_clinician(app.engine)
    async with chromium() as browser:
        clinician, patient = await _pages(browser, app, doctor)
        clinician.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))

        # after admission, each side decodes the other's video and receives its sound
        await wait_until(patient, MEDIA_FLOWS, timeout=MEDIA_TIMEOUT)
        await wait_until(clinician, MEDIA_FLOWS, timeout=MEDIA_TIMEOUT)
        assert await patient.is_visible("video.direct-remote") and await patient.is_visible("video.direct-self")
        assert await clinician.is_visible("#direct-hang-up") and await clinician.is_visible("#direct-camera")
        assert await patient.get_attribute("html", "lang") == "fr"
        assert await patient.text_content("#direct-hang-up") == "Raccrocher"
        # the patient's own page shows the name it typed (no name travels in the signalling)
        assert await patient.text_content("#direct-self-name") == "Camille"
        assert not await clinician.is_visible("#direct-self-name")
        assert await horizontal_overflow(patient) <= 0
        assert await axe_violations(patient) == []
        assert await axe_violations(clinician) == []

        # the microphone toggle mutes what the other side hears (the track is disabled, not renegotiated)
        mic = "document.querySelector('.direct-controls button')"
        await patient.click(".direct-controls button >> nth=0")
        assert await patient.evaluate(f"{mic}.getAttribute('aria-pressed')") == "true"
        assert await patient.evaluate(
            "document.querySelector('video.direct-self').srcObject.getAudioTracks()[0].enabled") is False
        await patient.click(".direct-controls button >> nth=0")

        # a reload of the patient's page: no new knock, media flow again on a fresh connection
        before = (await clinician.evaluate(MEDIA))["connections"]
        await patient.reload()
        await wait_until(patient, MEDIA_FLOWS, timeout=MEDIA_TIMEOUT)
        await wait_until(clinician, f"(async () => (await {MEDIA}).connections > {before})()", timeout=MEDIA_TIMEOUT)
        await wait_until(clinician, MEDIA_FLOWS, timeout=MEDIA_TIMEOUT)
        knocks = await cs.list_knocks(app.engine, (await cs.list_consultations(app.engine, _as(doctor)))[0])
        assert [k.status for k in knocks] == [cs.KNOCK_ADMITTED]
        patient_signal = await patient.evaluate("JSON.parse(document.getElementById('page-data').textContent).direct")

        # the clinician ends the consultation: both sides stop, later signalling is refused
        await clinician.click("#end-call")
        await wait_until(clinician, "window.__pcs.every((pc) => pc.connectionState === 'closed')", timeout=20)
        await wait_until(patient, "document.title !== '' && !document.querySelector('video.direct-remote')",
                         timeout=20)
        await wait_until(patient, "window.__pcs.length === 0 || window.__pcs.every((pc) => pc.connectionState === 'closed')",
                         timeout=20)
        assert await clinician.evaluate("document.querySelector('video.direct-self') === null")
        status = await patient.evaluate(
            "(async (d) => (await fetch(d.signal_url, {method: 'POST', headers: {'X-CSRF-Token': d.csrf, "
            "'Content-Type': 'application/json'}, body: JSON.stringify({kind: 'restart', session: 'x'})})).status)",
            patient_signal)
        assert status == 409
        ended = (await cs.list_consultations(app.engine, _as(doctor)))[0]
        assert ended.status == cs.ENDED and ended.end_reason == "clinician"


async def _connections(page) -> int:
    return (await page.evaluate(MEDIA))["connections"]


async def test_a_direct_call_whose_patient_signal_stream_died_silently_renegotiates_once_the_page_opens_a_new_one(live):
    """The patient's connections to our server go through a loopback proxy that then stops passing
    anything on its open event streams, without closing them (a carrier's NAT that forgot them; new
    connections pass at once). Media go peer to peer and keep flowing, but the signalling stream is
    dead: the clinician's page reloads and its new offer never reaches the patient. After three
    heartbeats of silence (HEARTBEAT s each here, 15 by default), the patient's page opens a new signal stream
    as its other live streams do (static/js/page.js listen): the clinician's page learns the patient
    came back and offers again, and media flow on a fresh connection. Nobody reloads the patient."""
    app = await live(**NO_JITSI, live_heartbeat_seconds=HEARTBEAT)
    doctor = await add_clinician(app.engine)
    proxy = FaultProxy(app.server.port)
    await proxy.start()
    try:
        async with chromium() as browser:
            clinician, patient = await _pages(browser, app, doctor, patient_base=proxy.url)
            clinician.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await wait_until(patient, MEDIA_FLOWS, timeout=MEDIA_TIMEOUT)
            await wait_until(clinician, MEDIA_FLOWS, timeout=MEDIA_TIMEOUT)
            streams, before = proxy.streams, await _connections(patient)
            proxy.freeze()
            proxy.restore()  # new connections pass again at once; the open streams stay dead

            await clinician.reload()  # a fresh connection, offered on the patient's dead stream
            await asyncio.sleep(HEARTBEAT + 1)  # more than a heartbeat: the offer has not arrived
            assert await _connections(patient) == before
            await wait_until(patient, f"(async () => (await {MEDIA}).connections > {before})()",
                             timeout=4 * HEARTBEAT + MEDIA_TIMEOUT)  # 3 missed, the watchdog's check, margin
            await wait_until(patient, MEDIA_FLOWS, timeout=MEDIA_TIMEOUT)
            await wait_until(clinician, MEDIA_FLOWS, timeout=MEDIA_TIMEOUT)
            assert proxy.streams > streams
            knocks = await cs.list_knocks(app.engine, (await cs.list_consultations(app.engine, _as(doctor)))[0])
            assert [k.status for k in knocks] == [cs.KNOCK_ADMITTED]  # no new knock
    finally:
        await proxy.close()


def _as(doctor):
    return SimpleNamespace(id=doctor.id)  # what list_consultations reads of a clinician
