"""`teleconsult serve` as a host runs it: a real process on a loopback port, its log in a file,
and what it uses (resident memory, open file descriptors) read from /proc."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import postgres_cluster
from conftest import TEST_JITSI_SECRET, TEST_SECRET, free_port

TELECONSULT = str(Path(sys.executable).parent / "teleconsult")


@dataclass
class Served:
    base: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "backslashreplace")

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))


def _wait_until_up(base: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(base + "/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        time.sleep(0.1)
    raise AssertionError("the server did not start")


@contextlib.contextmanager
def served(tmp_path: Path, **settings):
    """The app served by `teleconsult serve`; settings as keyword arguments (environment)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update(postgres_cluster.cli_environ(tmp_path / "data"))
    env.update({"TELECONSULT_DATA_DIR": str(tmp_path / "data"), "TELECONSULT_SESSION_SECRET": TEST_SECRET,
                "TELECONSULT_JITSI_DOMAIN": "meet.example.org", "TELECONSULT_JITSI_APP_ID": "tc",
                "TELECONSULT_JITSI_APP_SECRET": TEST_JITSI_SECRET, "TELECONSULT_PORT": str(port),
                **{f"TELECONSULT_{name.upper()}": str(value) for name, value in settings.items()}})
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([TELECONSULT, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process)
        yield Served(base=base, port=port, process=process, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
