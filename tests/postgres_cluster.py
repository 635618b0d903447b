"""A throwaway PostgreSQL cluster for the tests: Debian's postgresql package (initdb, postgres),
a data directory under a temporary directory, listening on a loopback port and a Unix socket there.

Run as root (CI is), initdb refuses to start: the cluster then belongs to the `postgres` user
and its commands run through `runuser`. As anyone else, the cluster is the caller's. Either way
its superuser is named `postgres` and loopback connections are trusted (nothing but the tests
reaches 127.0.0.1 on this port, and the cluster is deleted at the end of the session).

TELECONSULT_TEST_DATABASE=postgresql makes tests/conftest.py's settings use it: one database
per data directory (two apps given the same data_dir share their database, as they share files).
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

ENV = "TELECONSULT_TEST_DATABASE"


def wanted() -> bool:
    return os.environ.get(ENV, "sqlite").strip().lower() in ("postgresql", "postgres", "pg")


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL's initdb is not installed (Debian: apt install postgresql)")
    return Path(initdb).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="teleconsult-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:  # the postgres user must own the directory (and reach it)
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            os.chmod(self.root, 0o700)
        self._server: subprocess.Popen | None = None
        self._databases: set[str] = set()

    def _command(self, *args: str) -> list[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *command] if self.as_postgres else command

    def start(self) -> Cluster:
        subprocess.run(self._command("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                                     "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._server = subprocess.Popen(
            self._command("postgres", "-D", str(self.data), "-p", str(self.port), "-h", "127.0.0.1",
                          "-k", str(self.root), "-c", "fsync=off", "-c", "synchronous_commit=off",
                          "-c", "full_page_writes=off", "-c", "max_connections=300",
                          "-c", "shared_buffers=32MB"),
            stdout=subprocess.DEVNULL, stderr=open(self.root / "server.log", "wb"))
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("postgres", driver=False), connect_timeout=2):
                    return self
            except psycopg.OperationalError:
                if self._server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("PostgreSQL did not start: "
                                       + (self.root / "server.log").read_text(errors="replace")[-2000:])
                time.sleep(0.1)

    def url(self, database: str, driver: bool = True) -> str:
        scheme = "postgresql+psycopg" if driver else "postgresql"
        return f"{scheme}://postgres@127.0.0.1:{self.port}/{database}"

    def database_for(self, key: str) -> str:
        """The URL of a database of its own for `key` (created on first use, empty)."""
        name = "t_" + hashlib.sha256(key.encode()).hexdigest()[:20]
        if name not in self._databases:
            with psycopg.connect(self.url("postgres", driver=False), autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{name}"')
            self._databases.add(name)
        return self.url(name)

    def stop(self) -> None:
        if self._server is not None and self._server.poll() is None:
            # immediate: the cluster is thrown away, and open clients must not hold the shutdown
            subprocess.run(self._command("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                self._server.wait(10)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
        shutil.rmtree(self.root, ignore_errors=True)


_running: list[Cluster] = []  # the session's cluster, started on first use (tests only)


def cluster() -> Cluster:
    if not _running:
        _running.append(Cluster().start())
    return _running[0]


def stop_all() -> None:
    while _running:
        _running.pop().stop()


def cli_environ(data_dir) -> dict[str, str]:
    """What a `teleconsult` subprocess on `data_dir` needs in its environment to use the same
    database as make_settings(data_dir): nothing on SQLite (the file is in data_dir)."""
    if not wanted():
        return {}
    return {"TELECONSULT_DATABASE_URL": cluster().database_for(str(Path(data_dir).resolve()))}
