#!/usr/bin/env python
"""Peak memory of `teleconsult serve --demo`, from its launch through a transfer of a large
document (512 MiB by default) up and down through the drop box, against a bare aiohttp handler
(bench/transfer_servers.py) moving the same bytes in the same run.

The server runs pinned to the server core; this process (the client, pinned to the other core)
reads the server's VmRSS from /proc every 10 ms from its launch on, and its VmHWM (the kernel's
own high-water mark, which misses nothing between samples) after start-up and after the
transfer. The document is a standalone drop: created with the demo clinician's API token, sent
in 8 MiB PATCH parts of ciphertext-sized random bytes (the server never decrypts), completed,
then downloaded whole and dropped (filedrop/client/blocking.py's Session).

    .venv/bin/python bench/serve_memory.py [--mib 512] [--compare /work/main]

With --compare DIR, the same run is made with another checkout's server (e.g. main) first."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cores import CLIENT_CORE, SERVER_CORE, pin_to  # noqa: E402
from transfer_servers import free_port  # noqa: E402

from filedrop import ece  # noqa: E402
from filedrop.client import blocking  # noqa: E402

TELECONSULT = str(Path(sys.executable).parent / "teleconsult")
PART = 8 * 1024 * 1024
MiB = 1024 * 1024


def status(pid: int) -> dict[str, int]:
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


class Sampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stopped = pid, 0, False

    def run(self) -> None:
        while not self.stopped:
            self.peak = max(self.peak, status(self.pid).get("VmRSS", 0))
            time.sleep(0.01)


def wait_healthy(url: str, process: subprocess.Popen) -> None:
    import urllib.request
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit("the server exited at start-up")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return
        time.sleep(0.05)
    raise SystemExit("the server did not start")


def transfer(url: str, create: str, write: str, read: str, headers: dict, mib: int, durable: bool) -> None:
    block = memoryview(os.urandom(PART))
    size = ece.padded_size(mib * MiB) if durable else mib * MiB  # ours checks it is a ciphertext's size
    with blocking.Session() as session:
        created = blocking.request_json(session, "POST", url + create, "create", json_body={"size": size},
                                        headers=headers)
        doc = created["id"]
        owner = {**headers, "X-Owner-Token": created.get("owner_token", "")}
        for offset in range(0, size, PART):
            blocking.request_json(session, "PATCH", f"{url}{write}/{doc}" + ("/upload" if durable else ""), "part",
                                  data=block[:min(PART, size - offset)], headers={**owner, "Upload-Offset": str(offset),
                                                       "Content-Type": "application/octet-stream"})
        if durable:
            blocking.request_json(session, "POST", f"{url}{write}/{doc}/complete", "complete", data=os.urandom(200),
                                  headers={**owner, "Content-Type": "application/octet-stream"})
        with session.open("GET", f"{url}{read}/{doc}") as response:
            received = 0
            while chunk := response.read(MiB):
                received += len(chunk)
        if received != size:
            raise SystemExit(f"downloaded {received} bytes of {size}")


def run_ours(tree: Path, work: Path, mib: int) -> dict:
    data = work / f"demo-{tree.name}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update(PYTHONPATH=str(tree), TELECONSULT_DOCUMENTS_MAX_MIB=str(mib + 64))
    log = open(work / f"serve-{tree.name}.log", "wb")
    process = subprocess.Popen([TELECONSULT, "serve", "--demo", "--data-dir", str(data), "--port", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    pin_to(SERVER_CORE, process.pid)
    sampler = Sampler(process.pid)
    sampler.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        time.sleep(1.0)  # let start-up settle (migrations, the demo set-up's child)
        after_start = status(process.pid)
        token = subprocess.run([TELECONSULT, "clinician", "token", "demo@teleconsult.invalid", "--data-dir", str(data)],
                               env=env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        transfer(url, "/api/drop/files", "/api/drop/files", "/d/files", {"Authorization": f"Bearer {token}"}, mib,
                 durable=True)
        after = status(process.pid)
    finally:
        sampler.stopped = True
        process.terminate()
        process.wait(timeout=30)
        log.close()
    return {"rss_after_start": after_start["VmRSS"], "hwm_after_start": after_start["VmHWM"],
            "rss_after_transfer": after["VmRSS"], "hwm_after_transfer": after["VmHWM"], "sampled_peak": sampler.peak}


def run_bare(work: Path, mib: int) -> dict:
    port = free_port()
    (work / "bare").mkdir(exist_ok=True)
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "transfer_servers.py"), "--port", str(port),
                                "--dir", str(work / "bare")], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    pin_to(SERVER_CORE, process.pid)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        after_start = status(process.pid)
        transfer(url, "/files", "/files", "/files", {}, mib, durable=False)
        after = status(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"rss_after_start": after_start["VmRSS"], "hwm_after_start": after_start["VmHWM"],
            "rss_after_transfer": after["VmRSS"], "hwm_after_transfer": after["VmHWM"], "sampled_peak": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--compare", metavar="DIR")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    pin_to(CLIENT_CORE)
    work = Path(tempfile.mkdtemp(prefix="serve-memory-"))
    results = {}
    if args.compare:
        results["compare"] = run_ours(Path(args.compare).resolve(), work, args.mib)
    results["this"] = run_ours(ROOT, work, args.mib)
    results["bare aiohttp"] = run_bare(work, args.mib)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}; {args.mib} MiB up then down")
    print(f"{'server':14s} {'RSS start':>10s} {'HWM start':>10s} {'RSS after':>10s} {'HWM after':>10s} {'peak sampled':>13s}"
          "  (MiB)")
    for name, r in results.items():
        print(f"{name:14s} {r['rss_after_start'] / MiB:10.1f} {r['hwm_after_start'] / MiB:10.1f} "
              f"{r['rss_after_transfer'] / MiB:10.1f} {r['hwm_after_transfer'] / MiB:10.1f} {r['sampled_peak'] / MiB:13.1f}")
    ours, bare = results["this"], results["bare aiohttp"]
    print(f"peak (VmHWM) of serve --demo through the transfer: {ours['hwm_after_transfer'] / MiB:.1f} MiB "
          f"(aim < 110); ratio to the bare handler's: {ours['hwm_after_transfer'] / bare['hwm_after_transfer']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
