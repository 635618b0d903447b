"""`teleconsult serve` killed (SIGKILL, no clean-up of any kind) while parts are being written and
while documents are being published: after a restart the database and the documents directory
agree. A published row always has its whole file (the bytes that were sent, decryptable), an
unfinished upload resumes where its row says, a publish cut between the file's rename and the
row's commit can be completed again, and after a sweep no file is left without its row.

This is what SQLite at synchronous=NORMAL (teleconsult/db_sqlite.py) must keep: a killed process loses
no committed transaction. (A power cut cannot be simulated here; the justification for it is in
db_sqlite.py's docstring and docs/benchmarks.md.) On PostgreSQL (TELECONSULT_TEST_DATABASE=postgresql)
the same kills hold the same answers: the rows are read from the server the instance used."""

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

import postgres_cluster
import stored
from conftest import TEST_JITSI_SECRET, TEST_SECRET, free_port, make_settings
from filedrop import ece

TELECONSULT = [str(Path(sys.executable).parent / "teleconsult")]
PART = 64 * 1024
ROUNDS = 3


def _env(data_dir: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update(postgres_cluster.cli_environ(data_dir))
    env.update({"TELECONSULT_DATA_DIR": str(data_dir), "TELECONSULT_SESSION_SECRET": TEST_SECRET,
                "TELECONSULT_JITSI_DOMAIN": "meet.example.org", "TELECONSULT_JITSI_APP_ID": "tc",
                "TELECONSULT_JITSI_APP_SECRET": TEST_JITSI_SECRET, "TELECONSULT_PORT": str(port),
                "TELECONSULT_DOCUMENTS_MIN_FREE_MIB": "0", "TELECONSULT_DOCUMENTS_SWEEP_SECONDS": "1"})
    return env


def _cli(args, env, stdin="") -> str:
    result = subprocess.run(TELECONSULT + args, env=env, input=stdin, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def _start(env) -> subprocess.Popen:
    server = subprocess.Popen(TELECONSULT + ["serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{env['TELECONSULT_PORT']}"
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(base + "/healthz") as r:
                    if r.status == 200:
                        return server
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    server.kill()
    raise AssertionError("the server did not start: " + server.stderr.read().decode()[-2000:])


def _kill(server: subprocess.Popen) -> str:
    server.send_signal(signal.SIGKILL)
    stderr = server.communicate(timeout=20)[1].decode()
    assert server.returncode == -signal.SIGKILL
    return stderr


class Uploads:
    """Standalone drops sent through the HTTP API; what was sent is kept to compare."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str):
        self.http, self.base, self.token = http, base + "/api/drop/files", token
        self.sent: dict[str, tuple[bytes, bytes, str]] = {}  # id -> (secret, ciphertext, owner token)

    async def create(self, size_plain: int) -> str:
        plaintext = random.randbytes(size_plain)
        async with self.http.post(self.base, json={"size": ece.padded_size(size_plain)},
                                  headers={"Authorization": f"Bearer {self.token}"}) as r:
            assert r.status == 201, await r.text()
            created = await r.json()
        secret = os.urandom(32)
        ciphertext = ece.encrypt(plaintext, ece.derive_content_ikm(secret, created["id"]))
        self.sent[created["id"]] = (secret, ciphertext, created["owner_token"])
        return created["id"]

    def _headers(self, doc: str, **extra) -> dict:
        return {"X-Owner-Token": self.sent[doc][2], **extra}

    async def offset(self, doc: str) -> int:
        async with self.http.get(f"{self.base}/{doc}/upload", headers=self._headers(doc)) as r:
            assert r.status == 200, (r.status, await r.text())
            return (await r.json())["offset"]

    async def send_from(self, doc: str, offset: int, *, stall_after: int | None = None) -> None:
        """Parts from `offset`; with `stall_after`, the last part sends that many bytes then hangs
        (the server is inside its write when it is killed)."""
        ciphertext = self.sent[doc][1]
        while offset < len(ciphertext):
            part = ciphertext[offset:offset + PART]
            if stall_after is not None and offset + PART >= len(ciphertext) // 2:
                async def body(part=part):
                    yield part[:stall_after]
                    await asyncio.sleep(3600)
                data = body()
            else:
                data = part
            async with self.http.patch(f"{self.base}/{doc}/upload", data=data,
                                       headers=self._headers(doc, **{"Upload-Offset": str(offset)})) as r:
                assert r.status == 200, (r.status, await r.text())
            offset += len(part)

    async def complete(self, doc: str) -> int:
        secret = self.sent[doc][0]
        meta = ece.encrypt_metadata(ece.derive_metadata_key(secret, doc),
                                    {"name": "a.pdf", "type": "application/pdf", "size": 1, "role": "standalone"})
        async with self.http.post(f"{self.base}/{doc}/complete", data=meta, headers=self._headers(doc)) as r:
            await r.read()
            return r.status


def _rows(data_dir: Path) -> dict[str, tuple[str, int, int]]:
    """drop_files as the database `serve` on data_dir uses holds it (SQLite file or PostgreSQL)."""
    url = make_settings(data_dir).sqlalchemy_url
    return {i: (state, size, received) for i, state, size, received
            in stored.query(url, "SELECT id, state, size, received FROM drop_files")}


def _on_disk(data_dir: Path) -> dict[str, Path]:
    root = data_dir / "documents"
    return {p.name: p for d in ("partial", "ready") for p in (root / d).iterdir()}


async def test_a_server_killed_mid_upload_and_mid_publish_restarts_consistent(tmp_path):
    port = free_port()
    env = _env(tmp_path, port)
    _cli(["clinician", "add", "dr@example.org", "--name", "Dr C"], env, stdin="a long enough password\n")
    token = _cli(["clinician", "token", "dr@example.org"], env).strip()
    base = f"http://127.0.0.1:{port}"
    completed_before_kill: set[str] = set()
    cut_while_publishing: set[str] = set()
    stalled: set[str] = set()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        uploads = Uploads(http, base, token)
        for _ in range(ROUNDS):
            server = await _start(env)
            # some uploads fully sent, waiting to be published; others stopped inside a part
            whole = [await uploads.create(random.randrange(100_000, 400_000)) for _ in range(12)]
            await asyncio.gather(*(uploads.send_from(doc, 0) for doc in whole))
            halfway = [await uploads.create(300_000) for _ in range(3)]
            stalls = [asyncio.create_task(uploads.send_from(doc, 0, stall_after=PART // 3)) for doc in halfway]
            completes = {doc: asyncio.create_task(uploads.complete(doc)) for doc in whole}
            # killed as soon as one publish is answered: the others are under way
            await asyncio.wait(completes.values(), return_when=asyncio.FIRST_COMPLETED)
            stderr = _kill(server)
            assert "Traceback" not in stderr
            for doc, task in completes.items():
                try:
                    status = await task
                except aiohttp.ClientError:
                    cut_while_publishing.add(doc)
                    continue
                assert status == 200, status
                completed_before_kill.add(doc)
            for task in stalls:
                task.cancel()
            await asyncio.gather(*stalls, return_exceptions=True)
            stalled.update(halfway)

            # restarted: every answer given before the kill holds, and nothing is half-made
            server = await _start(env)
            try:
                rows, disk = _rows(tmp_path), _on_disk(tmp_path)
                for doc, (state, size, received) in rows.items():
                    if state == "ready":
                        path = disk[doc]
                        assert path.parent.name == "ready"
                        assert path.read_bytes() == uploads.sent[doc][1]
                        secret = uploads.sent[doc][0]
                        ece.decrypt(path.read_bytes(), ece.derive_content_ikm(secret, doc))  # authentic
                    else:
                        assert state == "uploading", state
                        assert doc in disk and disk[doc].stat().st_size >= received
                assert all(rows[doc][0] == "ready" for doc in completed_before_kill)
                # publishes cut short: completed now (answers 200 or "already complete"), never a 500
                for doc in cut_while_publishing & {d for d, r in rows.items() if r[0] == "uploading"}:
                    assert await uploads.complete(doc) == 200
                # uploads cut inside a part resume where the server says and publish
                for doc in stalled & {d for d, r in rows.items() if r[0] == "uploading"}:
                    await uploads.send_from(doc, await uploads.offset(doc))
                    assert await uploads.complete(doc) == 200
                rows = _rows(tmp_path)
                assert {state for state, _, _ in rows.values()} == {"ready"}
                for doc in rows:
                    assert (tmp_path / "documents" / "ready" / doc).read_bytes() == uploads.sent[doc][1]
                # an orphan (a file whose row is gone) goes at the next sweep; every file keeps its row
                orphan = tmp_path / "documents" / "partial" / ("o" * 22)
                orphan.write_bytes(b"x")
                for _ in range(100):
                    if not orphan.exists():
                        break
                    await asyncio.sleep(0.05)
                assert not orphan.exists()
                assert set(_on_disk(tmp_path)) <= set(_rows(tmp_path))
            finally:
                server.terminate()
                server.wait(timeout=20)
    # the kills did fall among the publishes (some answered, some cut) and inside parts,
    assert completed_before_kill and cut_while_publishing and stalled
    assert len(rows) == ROUNDS * 15  # and every document sent is there, published
