#!/usr/bin/env python
"""50 patients waiting in 50 consultations, admitted at the same instant: how long until every
patient's waiting room hears it, against the same server's /healthz in the same run.

The server is `teleconsult serve` pinned to core 0, the clients this process on core 1
(bench/cores.py). Each patient opens its patient link, knocks through the join form (CSRF
cookie and token, as a browser does) and keeps its event stream open (GET /j/TOKEN/events,
server-sent events). Then the clinician's integrator sends the --patients admits at once
(POST /api/consultations/{id}/knocks/{knock}/admit, Bearer token); t0 = when they are sent,
"reached" = when the last patient stream has received `admitted` (of the admits answered
200; refused ones, 503 when the database was busy, are counted). The baseline: --patients
GET /healthz sent at once, until the last answer. Median of --reps rounds; with --compare DIR,
a second server from another checkout takes its turn in each round.

    .venv/bin/python bench/admit_burst.py [--patients 50] [--reps 5] [--compare /work/main]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "bench", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from cores import CLIENT_CORE, pin_to  # noqa: E402
from teleconsult import names  # noqa: E402
from transfer_servers import start_ours  # noqa: E402

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Patient:
    def __init__(self, patient_url: str):
        self.url = patient_url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.admitted = asyncio.get_running_loop().create_future()

    async def knock(self) -> None:
        async with self.session.get(self.url) as r:
            csrf = CSRF.search(await r.text()).group(1)
        # the name sealed as the patient's page seals it (teleconsult/names.py)
        form = {"sealed_name": names.seal_text(os.urandom(32), "Patient"), "consent": "yes", "csrf_token": csrf}
        async with self.session.post(self.url + "/knock", data=form, allow_redirects=False) as r:
            assert r.status == 303, r.status

    async def listen(self, ready: asyncio.Event) -> None:
        async with self.session.get(self.url + "/events", timeout=aiohttp.ClientTimeout(total=None)) as r:
            async for line in r.content:
                if not line.startswith(b"data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("status") == "waiting":
                    ready.set()
                if event.get("status") == "admitted":
                    self.admitted.set_result(time.perf_counter())
                    return


async def round_for(url: str, token: str, patients: int) -> tuple[float, float]:
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as api:
        created = []
        for _ in range(patients):
            async with api.post(url + "/api/consultations", headers=auth) as r:
                created.append(await r.json())
        people = [Patient(c["patient_url"]) for c in created]
        for person in people:
            await person.knock()
        readies = [asyncio.Event() for _ in people]
        listeners = [asyncio.create_task(p.listen(e)) for p, e in zip(people, readies)]
        await asyncio.gather(*(e.wait() for e in readies))
        knocks = []
        for c in created:
            async with api.get(f"{url}/api/consultations/{c['id']}", headers=auth) as r:
                knocks.append((c["id"], (await r.json())["knocks"][0]["id"]))

        async def admit(consultation, knock) -> int:
            async with api.post(f"{url}/api/consultations/{consultation}/knocks/{knock}/admit", headers=auth) as r:
                await r.read()
                return r.status

        async def healthz():
            async with api.get(url + "/healthz") as r:
                await r.read()
        started = time.perf_counter()
        await asyncio.gather(*(healthz() for _ in range(patients)))
        baseline = time.perf_counter() - started
        started = time.perf_counter()
        statuses = await asyncio.gather(*(admit(c, k) for c, k in knocks))
        told = [p.admitted for p, status in zip(people, statuses) if status == 200]
        reached = max(await asyncio.gather(*told)) - started if told else float("nan")
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for person in people:
            await person.session.close()
    refused = [status for status in statuses if status != 200]
    if refused:
        print(f"admits not answered 200: {sorted(set(refused))} x {len(refused)}")
    return reached, baseline, len(refused)


async def main(args) -> None:
    pin_to(CLIENT_CORE)
    work = Path(tempfile.mkdtemp(prefix="admit-burst-"))
    trees = {"this": ROOT} | ({"compare": Path(args.compare).resolve()} if args.compare else {})
    servers = {}
    for name, tree in trees.items():
        (work / name).mkdir()
        os.environ["PYTHONPATH"] = str(tree)
        servers[name] = start_ours(work / name, max_mib=16)
    results = {name: ([], [], []) for name in servers}
    async with aiohttp.ClientSession() as session:
        for server, _ in servers.values():
            await server.ready(session)
    for _ in range(args.reps):
        for name, (server, token) in servers.items():
            reached, baseline, failed = await round_for(server.url, token, args.patients)
            results[name][0].append(reached)
            results[name][1].append(baseline)
            results[name][2].append(failed)
    for server, _ in servers.values():
        server.stop()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (cpus: {os.cpu_count()}); "
          f"median of {args.reps} rounds")
    for name, (reached, baseline, failed) in results.items():
        print(f"[{name}] {args.patients} admits at once, all patients told: median {statistics.median(reached) * 1000:.0f} ms "
              f"(runs: {', '.join(f'{x * 1000:.0f}' for x in reached)}); {args.patients} /healthz at once: "
              f"{statistics.median(baseline) * 1000:.0f} ms; ratio {statistics.median(reached) / statistics.median(baseline):.1f}; "
              f"admits refused per round: {failed}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--compare", metavar="DIR", help="another checkout whose server takes its turn")
    asyncio.run(main(parser.parse_args()))
