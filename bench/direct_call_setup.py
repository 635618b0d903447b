"""Time from "admit" to the first decoded remote video frame in a direct call (no Jitsi), on
loopback: the real app on a loopback port, Debian's Chromium with fake camera and microphone, the
clinician (call page open, waiting) and the patient (waiting room, on a phone viewport) in two
browser contexts. Baseline, measured in the same runs: admit -> the patient's waiting room shows
"admitted" (the live event, before any media). Prints medians and their ratio.

    .venv/bin/python bench/direct_call_setup.py [--runs 10]      # about a minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestServer  # noqa: E402

from browser import PHONE, chromium, login_in_browser  # noqa: E402  (tests/browser.py)
from conftest import add_clinician, free_port, make_settings  # noqa: E402
from teleconsult.web.app import create_app  # noqa: E402

RECORD_CONNECTIONS = """
window.__pcs = [];
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) { super(...args); window.__pcs.push(this); }
};
"""
FRAME = """(async () => {
  for (const pc of window.__pcs || []) {
    const stats = await pc.getStats();
    let frames = 0;
    stats.forEach((r) => { if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0; });
    if (frames > 0) return true;
  }
  return false;
})()"""
ADMITTED = "document.body.dataset.status === 'admitted'"
POLL_SECONDS = 0.01


async def _when(page, expression: str, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await page.evaluate(expression):
                return time.monotonic()
        except Exception:  # a navigation in between: ask again
            pass
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(expression)


async def one_run(browser, base: str, dashboard) -> dict[str, float]:
    await dashboard.click("#new-consultation")
    link = ""
    while not link:
        link = await dashboard.input_value("#new-link-url")
        await asyncio.sleep(POLL_SECONDS)
    await dashboard.evaluate("document.getElementById('new-link-url').value = ''")  # the next run waits for its own
    state = await dashboard.evaluate("fetch('/dashboard/state').then((r) => r.json())")
    consultation = next(c for c in state["consultations"] if link.startswith(c["patient_url"]))
    call = await dashboard.context.new_page()
    call.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await call.goto(f"{base}/consultations/{consultation['id']}")
    patient_ctx = await browser.new_context(**PHONE)
    await patient_ctx.add_init_script(RECORD_CONNECTIONS)
    patient = await patient_ctx.new_page()
    await patient.goto(link)
    await patient.fill("#display_name", "Camille")
    await patient.check("#consent")
    await patient.click("button[type=submit]")
    await dashboard.wait_for_selector("[data-action=admit]", timeout=30_000)
    started = time.monotonic()
    await dashboard.click("[data-action=admit]")
    admitted, patient_frame, clinician_frame = await asyncio.gather(
        _when(patient, ADMITTED), _when(patient, FRAME), _when(call, FRAME))
    await call.click("#end-call")
    await patient_ctx.close()
    await call.close()
    return {"admitted": admitted - started, "patient_frame": patient_frame - started,
            "clinician_frame": clinician_frame - started}


async def main(runs: int) -> dict:
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        settings = make_settings(Path(data), host="127.0.0.1", port=port, public_url=f"http://127.0.0.1:{port}",
                                 jitsi_domain="", jitsi_app_id="", jitsi_app_secret="")
        app = create_app(settings)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        base = f"http://127.0.0.1:{port}"
        from teleconsult.web.appkeys import services_key
        try:
            doctor = await add_clinician(app[services_key].engine)
            async with chromium() as browser:
                clinician_ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
                await clinician_ctx.add_init_script(RECORD_CONNECTIONS)
                dashboard = await clinician_ctx.new_page()
                await login_in_browser(dashboard, base, doctor)
                await one_run(browser, base, dashboard)  # warm-up, not counted
                results = [await one_run(browser, base, dashboard) for _ in range(runs)]
                version = browser.version
        finally:
            app[services_key].stopping.set()  # the pages' event streams end before the server
            await asyncio.sleep(0.1)
            await server.close()
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    return {"runs": runs, "chromium": version, "median_seconds": median,
            "all_seconds": results,
            "ratio_patient_frame_to_admitted": median["patient_frame"] / median["admitted"],
            "ratio_clinician_frame_to_admitted": median["clinician_frame"] / median["admitted"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    report = asyncio.run(main(args.runs))
    m = report["median_seconds"]
    print(f"Chromium {report['chromium']}, {args.runs} runs, medians from admit:")
    print(f"  waiting room shows admitted (baseline): {m['admitted'] * 1000:7.0f} ms")
    print(f"  patient decodes the first video frame:  {m['patient_frame'] * 1000:7.0f} ms"
          f"  ({report['ratio_patient_frame_to_admitted']:.1f}x baseline)")
    print(f"  clinician decodes the first frame:      {m['clinician_frame'] * 1000:7.0f} ms"
          f"  ({report['ratio_clinician_frame_to_admitted']:.1f}x baseline)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
