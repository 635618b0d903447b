#!/usr/bin/env python
"""The server's side of a standalone drop, request by request: what `teleconsult drop send
FILE` then `teleconsult drop get LINK` ask of `teleconsult serve` (create, one PATCH of the
whole ciphertext, complete, metadata, download), made --reps times by filedrop.client.blocking
in one warm process, so that the figures are the server's and the requests' own, not the
launch of two interpreters (bench/cli_roundtrip.py measures those).

For each request: the server's time from its access log (`aiohttp.access: POST createDrop 201
4.1ms`: from the request's start to the last byte of its answer written) and the client's (from
sending the request to the answer read; for the download, also its decryption and the received
file's fsync and rename, which happen while reading). `teleconsult serve` is pinned to the
server core, this process to the client core (bench/cores.py).

    .venv/bin/python bench/drop_requests.py [--mib 16] [--reps 15] [--compare DIR]

--compare DIR runs another checkout's server (e.g. `git archive main | tar -x -C /tmp/before`)
the same way, the two interleaved drop by drop. Figures are medians of --reps drops after one
warm-up drop each; ratios are compare / ours (> 1.0: this tree's server is faster)."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cli_roundtrip import Ours  # noqa: E402
from cores import CLIENT_CORE, pin_to  # noqa: E402

from filedrop.client import blocking  # noqa: E402
from teleconsult import drop_links  # noqa: E402

ACCESS = re.compile(rb"aiohttp\.access: (\w+) (\S+) (\d{3}) ([\d.]+)ms")
# the access log's route names of the standalone drop's requests, in the order they are made
ROUTES = {"createDrop": "create", "uploadDropPart": "upload part", "completeDrop": "complete",
          "drop_metadata": "metadata", "drop_download": "download"}


def request_kind(method: str, url: str) -> str:
    path = url.split("?", 1)[0]
    if method == "PATCH":
        return "upload part"
    if method == "POST":
        return "complete" if path.endswith("/complete") else "create"
    return "metadata" if path.endswith("/metadata") else "download"


class TimedSession(blocking.Session):
    """The client's time per request: from sending it to the end of the caller's reading."""

    def __init__(self) -> None:
        super().__init__()
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def open(self, method, url, headers=None, body=None, meanwhile=None):
        started = time.perf_counter()
        try:
            with super().open(method, url, headers, body, meanwhile) as response:
                yield response
        finally:
            self.times[request_kind(method, url)] = (time.perf_counter() - started) * 1000


class Server:
    """One checkout's `teleconsult serve` and the access lines it wrote since the last call."""

    def __init__(self, name: str, tree: Path, work: Path):
        self.ours = Ours(name, tree, work, editable=True)  # the server runs the checkout on PYTHONPATH
        self.log_path = work / f"{name}.log"
        self.read_to = 0
        self.box = drop_links.standalone_box(self.ours.url, self.ours.cli_env["TELECONSULT_API_TOKEN"])

    def new_lines(self) -> dict[str, float]:
        self.ours.log.flush()
        with open(self.log_path, "rb") as log:
            log.seek(self.read_to)
            text = log.read()
        self.read_to += len(text)
        found = {}
        for method, route, status, ms in ACCESS.findall(text):
            kind = ROUTES.get(route.decode())
            if kind is None and route == b"healthz":
                continue  # the start-up check
            if kind is None or not status.startswith(b"2"):
                raise SystemExit(f"unexpected request in the server's log: {method} {route} {status}")
            found[kind] = float(ms)
        return found

    def drop(self, source: Path, out: Path) -> tuple[dict[str, float], dict[str, float]]:
        with TimedSession() as session:
            sent = blocking.send_drop(session, self.box, source)
            blocking.download(session, self.box, sent.id, sent.secret, output=out)
        if out.read_bytes() != source.read_bytes():
            raise SystemExit("the received file differs")
        out.unlink()
        time.sleep(0.05)  # the download's access line is written after its last byte
        return self.new_lines(), session.times

    def stop(self) -> None:
        self.ours.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--compare", metavar="DIR", help="another checkout whose server runs beside this one")
    args = parser.parse_args()
    pin_to(CLIENT_CORE)
    work = Path(tempfile.mkdtemp(prefix="drop-requests-"))
    source = work / "scan.bin"
    source.write_bytes(os.urandom(args.mib * 1024 * 1024))
    servers = {"ours": Server("ours", ROOT, work)}
    if args.compare:
        servers["compare"] = Server("compare", Path(args.compare).resolve(), work)
    server_ms = {name: {kind: [] for kind in ROUTES.values()} for name in servers}
    client_ms = {name: {kind: [] for kind in ROUTES.values()} for name in servers}
    try:
        for rep in range(args.reps + 1):  # the first drop of each is a warm-up, not counted
            for name, server in (servers.items() if rep % 2 else reversed(servers.items())):
                os.sync()
                on_server, on_client = server.drop(source, work / f"received-{name}")
                if rep:
                    for kind in ROUTES.values():
                        server_ms[name][kind].append(on_server[kind])
                        client_ms[name][kind].append(on_client[kind])
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()}); "
          f"{args.mib} MiB standalone drops, medians of {args.reps}")
    names = list(servers)
    header = "".join(f"{name + ' server':>16s}{name + ' client':>16s}" for name in names)
    print(f"{'request (ms)':14s}{header}" + ("   ratio server/client" if args.compare else ""))
    for kind in ROUTES.values():
        row = "".join(f"{statistics.median(server_ms[n][kind]):16.1f}{statistics.median(client_ms[n][kind]):16.1f}"
                      for n in names)
        if args.compare:
            row += (f"   {statistics.median(server_ms['compare'][kind]) / statistics.median(server_ms['ours'][kind]):.2f}"
                    f" / {statistics.median(client_ms['compare'][kind]) / statistics.median(client_ms['ours'][kind]):.2f}")
        print(f"{kind:14s}{row}")
    totals = {n: statistics.median([sum(client_ms[n][k][i] for k in ROUTES.values()) for i in range(args.reps)])
              for n in names}
    print("client total (5 requests): " + ", ".join(f"{n} {totals[n]:.1f} ms" for n in names)
          + (f"; ratio compare / ours {totals['compare'] / totals['ours']:.2f}" if args.compare else ""))


if __name__ == "__main__":
    main()
