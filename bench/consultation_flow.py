"""Figures of the consultation flow, measured side by side in one run:

- time to create a consultation through the API, against GET /healthz (one SELECT 1) as the
  baseline of the same server, same client, same run;
- weight of the patient's pages in Chromium (bytes transferred, requests), the join form and
  the waiting room, on a 360 px phone.

Run: .venv/bin/python bench/consultation_flow.py [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import PHONE, chromium  # noqa: E402
from conftest import add_clinician, free_port, make_settings  # noqa: E402

from teleconsult import accounts  # noqa: E402
from teleconsult.web.app import create_app  # noqa: E402
from teleconsult.web.appkeys import services_key  # noqa: E402

WEIGHT_JS = """() => {
  const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
  return {requests: entries.length, bytes: entries.reduce((n, e) => n + (e.transferSize || e.encodedBodySize || 0), 0)};
}"""


async def timed(session, method, url, headers, n):
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        async with session.request(method, url, headers=headers) as r:
            await r.read()
            assert r.status < 300, r.status
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def main(n: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    settings = make_settings(tmp, port=port, public_url=f"http://127.0.0.1:{port}")
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    base = f"http://127.0.0.1:{port}"
    await add_clinician(app[services_key].engine, "bench@example.org")
    token = await accounts.issue_api_token(app[services_key].engine, "bench@example.org")
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        await timed(session, "GET", base + "/healthz", {}, 20)  # warm-up
        baseline = await timed(session, "GET", base + "/healthz", {}, n)
        create = await timed(session, "POST", base + "/api/consultations", auth, n)
        async with session.post(base + "/api/consultations", headers=auth) as r:
            patient_url = (await r.json())["patient_url"]
    med_b, med_c = statistics.median(baseline), statistics.median(create)
    p95 = lambda xs: sorted(xs)[int(len(xs) * 0.95)]  # noqa: E731
    print(f"create consultation (API, n={n}): median {med_c:.2f} ms, p95 {p95(create):.2f} ms")
    print(f"baseline GET /healthz:           median {med_b:.2f} ms, p95 {p95(baseline):.2f} ms")
    print(f"ratio create / healthz: {med_c / med_b:.2f}")

    async with chromium() as browser:
        page = await (await browser.new_context(**PHONE)).new_page()
        await page.goto(patient_url + "#" + "A" * 43)
        join = await page.evaluate(WEIGHT_JS)
        await page.fill("#display_name", "Bench")
        await page.check("#consent")
        await page.click("button[type=submit]")
        await page.wait_for_selector("#patient-status")
        await asyncio.sleep(0.5)
        wait = await page.evaluate(WEIGHT_JS)
    print(f"patient join page: {join['bytes'] / 1024:.1f} KiB in {join['requests']} requests")
    print(f"patient waiting room: {wait['bytes'] / 1024:.1f} KiB in {wait['requests']} requests "
          "(cold cache; external_api.js of Jitsi loads only after admission)")
    await server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    asyncio.run(main(parser.parse_args().requests))
