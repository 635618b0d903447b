#!/usr/bin/env python
"""A file's round trip through the command line (`teleconsult drop send FILE`, then
`teleconsult drop get LINK`, each launched as a user launches it) against PsiTransfer, a
self-hosted file-sharing server (https://github.com/psi-4ward/psitransfer), on the same bytes
and in the same run.

* ours: `teleconsult serve` pinned to the server core; the two commands pinned to the client
  core, as a host installs them (each checkout's wheel in a virtual environment of its own,
  bench/installed.py; --editable: this venv's command, the checkout on PYTHONPATH); the clock runs from the launch of `send` to the exit of `get` (encryption, upload,
  publish with its fsyncs, download, decryption, the received file fsynced and renamed).
* PsiTransfer, from its public source, run with Node.js pinned to the server core. It has no
  command-line client, so its round trip is the three requests of its own protocol (tus 1.0
  creation, one PATCH with the whole file, then the download) made by curl, the lightest
  terminal client there is, one process per request: no encryption on either side.

PsiTransfer is not part of teleconsult and is never committed: build it once into a cache
directory (the script prints the commands when it is absent, and skips it):

    git clone https://github.com/psi-4ward/psitransfer ~/.cache/teleconsult-bench/psitransfer
    npm install --omit=dev --prefix ~/.cache/teleconsult-bench/psitransfer

    .venv/bin/python bench/cli_roundtrip.py [--mib 16] [--reps 9] [--psitransfer DIR] [--compare /work/main] [--editable]

Each figure is the median of --reps round trips, the variants interleaved. Ratios are
PsiTransfer's time / ours (>= 1.0: ours is at least as fast)."""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from cores import CLIENT_CORE, SERVER_CORE, pin_to  # noqa: E402
from installed import command_env, installed_command  # noqa: E402

DEFAULT_PSITRANSFER = Path.home() / ".cache" / "teleconsult-bench" / "psitransfer"
EDITABLE = str(Path(sys.executable).parent / "teleconsult")  # this venv's (the checkout on PYTHONPATH)
LINK = re.compile(r"^(http://\S+/d/\S+#\S+)$", re.MULTILINE)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, name: str) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"{name} exited at start-up (see its log)")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2):
                return
        time.sleep(0.1)
    raise SystemExit(f"{name} did not start")


class Ours:
    def __init__(self, name: str, tree: Path, work: Path, editable: bool):
        from transfer_servers import teleconsult_env
        self.name, self.tree = name, tree
        self.command = EDITABLE if editable else str(installed_command(tree, work, name))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = teleconsult_env(work / name, self.port, 1024)
        self.env.pop("PYTHONPATH", None)
        if editable:
            self.env["PYTHONPATH"] = str(tree)
        run = dict(env=self.env, capture_output=True, text=True, check=True, timeout=120)
        subprocess.run([self.command, "clinician", "add", "bench@example.org", "--name", "Dr Bench"],
                       input="a long enough bench password\n", **run)
        token = subprocess.run([self.command, "clinician", "token", "bench@example.org"], **run).stdout.strip()
        self.log = open(work / f"{name}.log", "wb")
        self.process = subprocess.Popen([self.command, "serve"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        pin_to(SERVER_CORE, self.process.pid)
        wait_for(self.url + "/healthz", self.process, f"teleconsult serve ({name})")
        self.cli_env = command_env(tree if editable else None) | {"TELECONSULT_API_TOKEN": token}

    def round_trip(self, source: Path, out_dir: Path) -> float:
        started = time.perf_counter()
        sent = subprocess.run([self.command, "drop", "send", str(source), "--server", self.url], env=self.cli_env,
                              capture_output=True, text=True, timeout=300)
        match = LINK.search(sent.stdout)
        if sent.returncode or not match:
            raise SystemExit(f"drop send failed: {sent.stderr.strip()}")
        got = subprocess.run([self.command, "drop", "get", match.group(1), "-o", str(out_dir / "received")],
                             env=self.cli_env, capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - started
        if got.returncode:
            raise SystemExit(f"drop get failed: {got.stderr.strip()}")
        return elapsed

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


class PsiTransfer:
    def __init__(self, directory: Path, work: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = work / "psitransfer"
        data.mkdir()
        env = dict(os.environ, NODE_ENV="production", PSITRANSFER_PORT=str(self.port), PSITRANSFER_IFACE="127.0.0.1",
                   PSITRANSFER_UPLOAD_DIR=str(data))
        self.log = open(work / "psitransfer.log", "wb")
        self.process = subprocess.Popen(["node", "app.js"], cwd=directory, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        pin_to(SERVER_CORE, self.process.pid)
        wait_for(self.url + "/config.json", self.process, "PsiTransfer")
        self.curl = shutil.which("curl")

    def round_trip(self, source: Path, out_dir: Path) -> float:
        def b64(text: str) -> str:
            return base64.b64encode(text.encode()).decode()

        metadata = f"name {b64(source.name)},sid {b64(secrets.token_hex(6))},retention {b64('3600')}"
        started = time.perf_counter()
        created = subprocess.run(
            [self.curl, "-sS", "-D", "-", "-o", "/dev/null", "-X", "POST", f"{self.url}/files",
             "-H", "Tus-Resumable: 1.0.0", "-H", f"Upload-Length: {source.stat().st_size}",
             "-H", f"Upload-Metadata: {metadata}"], capture_output=True, text=True, timeout=300)
        location = re.search(r"^location: (\S+)", created.stdout, re.IGNORECASE | re.MULTILINE)
        if not location:
            raise SystemExit(f"PsiTransfer did not create the upload: {created.stdout} {created.stderr}")
        upload_url = location.group(1) if location.group(1).startswith("http") else self.url + location.group(1)
        subprocess.run([self.curl, "-sS", "-f", "-o", "/dev/null", "-X", "PATCH", upload_url,
                        "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0",
                        "-H", "Content-Type: application/offset+octet-stream", "--data-binary", f"@{source}"],
                       check=True, timeout=300)
        subprocess.run([self.curl, "-sS", "-f", "-o", str(out_dir / "received"), upload_url], check=True, timeout=300)
        elapsed = time.perf_counter() - started
        if (out_dir / "received").stat().st_size != source.stat().st_size:
            raise SystemExit("PsiTransfer returned another size")
        return elapsed

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--psitransfer", type=Path, default=DEFAULT_PSITRANSFER,
                        help="a PsiTransfer checkout with its node_modules (default: %(default)s)")
    parser.add_argument("--compare", metavar="DIR", help="another checkout whose CLI and server run beside this one")
    parser.add_argument("--editable", action="store_true",
                        help="run this venv's command with each checkout on PYTHONPATH, not each one's wheel")
    args = parser.parse_args()
    pin_to(CLIENT_CORE)
    work = Path(tempfile.mkdtemp(prefix="cli-roundtrip-"))
    source = work / "scan.bin"
    source.write_bytes(os.urandom(args.mib * 1024 * 1024))
    peers: dict = {"ours": Ours("ours", ROOT, work, args.editable)}
    if args.compare:
        peers["compare"] = Ours("compare", Path(args.compare).resolve(), work, args.editable)
    psi_dir = args.psitransfer
    if (psi_dir / "app.js").is_file() and (psi_dir / "node_modules").is_dir() and shutil.which("node") \
            and shutil.which("curl"):
        peers["psitransfer"] = PsiTransfer(psi_dir, work)
    else:
        print(f"PsiTransfer skipped: no built checkout at {psi_dir} (or no node/curl). To build it:\n"
              f"  git clone https://github.com/psi-4ward/psitransfer {psi_dir}\n"
              f"  npm install --omit=dev --prefix {psi_dir}\n")
    samples: dict[str, list[float]] = {name: [] for name in peers}
    try:
        for rep in range(args.reps + 1):  # the first round is a warm-up, not counted
            for name, peer in peers.items():
                out_dir = work / f"out-{name}-{rep}"
                out_dir.mkdir()
                os.sync()
                elapsed = peer.round_trip(source, out_dir)
                if (out_dir / "received").read_bytes() != source.read_bytes():
                    raise SystemExit(f"{name}: the received file differs")
                if rep:
                    samples[name].append(elapsed)
                shutil.rmtree(out_dir)
    finally:
        for peer in peers.values():
            peer.stop()
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()}); "
          f"{args.mib} MiB, reps={args.reps}")
    print(f"{'round trip (send, then get)':32s} {'median ms':>10s} {'min ms':>8s} {'MiB/s':>7s}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:32s} {median * 1000:10.0f} {min(values) * 1000:8.0f} {args.mib / median:7.1f}")
    ours = statistics.median(samples["ours"])
    for name in ("psitransfer", "compare"):
        if name in samples:
            print(f"ratio {name} / ours (>= 1.0: ours at least as fast): {statistics.median(samples[name]) / ours:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
