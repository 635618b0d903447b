"""filedrop.client (at teleconsult's mount points, teleconsult.drop_links) against the real app on loopback: resumable upload through a connection
that drops, decrypt-as-you-go download that leaves nothing behind on failure, link parsing."""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import pytest

import s3_server
from conftest import add_api_clinician, polled_until
from drop_client import download as reference_download
from filedrop import client, ece
from filedrop import store
from filedrop.store import typeable_token
from teleconsult import drop_links

MiB = 1024 * 1024


async def _clinician_token(app) -> str:
    return (await add_api_clinician(app.engine))[1]


class CuttingProxy:
    """A loopback TCP proxy in front of the app that, once, cuts the connection (both ways,
    at once) after `cut_after` bytes have gone from the client to the server, then calls
    `on_cut` (if given). What the client sent is kept in `before_cut` and `after_cut`, whole
    once close() has returned."""

    def __init__(self, target_port: int, cut_after: int, on_cut=None):
        self.target_port, self.cut_after, self.on_cut = target_port, cut_after, on_cut
        self.before_cut, self.after_cut = bytearray(), bytearray()
        self.upstream_bytes = 0
        self.cuts = 0
        self.connections = 0
        self._handlers: set[asyncio.Task] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def close(self, timeout: float = 10) -> None:
        """Stop listening and wait until every connection has ended. A client that closed its
        connection may have sent bytes this proxy has not read yet (on a busy machine): they are
        in after_cut only once its connection is read to the end. (Python 3.11's wait_closed
        does not wait for the connections; 3.12's does.)"""
        self.server.close()
        await self.server.wait_closed()
        if self._handlers:
            await asyncio.wait_for(asyncio.gather(*self._handlers), timeout)

    async def _serve(self, reader, writer):
        self.connections += 1
        handler = asyncio.current_task()
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        def cut():
            writer.transport.abort()
            up_writer.transport.abort()

        async def pipe(src, dst, upstream: bool):
            try:
                while data := await src.read(65536):
                    if upstream and not self.cuts and self.upstream_bytes + len(data) > self.cut_after:
                        keep = self.cut_after - self.upstream_bytes
                        dst.write(data[:keep])
                        self.before_cut += data[:keep]
                        self.upstream_bytes += keep
                        self.cuts += 1
                        cut()
                        if self.on_cut:
                            self.on_cut()
                        return
                    if upstream:
                        self.upstream_bytes += len(data)
                        (self.after_cut if self.cuts else self.before_cut).extend(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if not dst.transport.is_closing():
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))


async def test_an_upload_cut_mid_part_resumes_from_the_servers_offset_and_decrypts_whole(live, http, tmp_path):
    app = await live()
    token = await _clinician_token(app)
    plaintext = os.urandom(10 * MiB + 12345)
    source = tmp_path / "scan.pdf"
    source.write_bytes(plaintext)
    proxy = CuttingProxy(app.server.port, cut_after=5 * MiB + 777)  # inside the second 4 MiB part
    base = await proxy.start()
    seen = []
    try:
        async with client.client_session() as session:
            link, sent = await drop_links.send_drop(session, base, token, source, part_size=4 * MiB,
                                                retry_delay=0.05, progress=lambda done, total: seen.append(done))
    finally:
        await proxy.close()
    assert proxy.cuts == 1 and proxy.connections >= 2
    assert any(b < a for a, b in zip(seen, seen[1:])), "progress went back: a part was sent again"
    assert sent.size == ece.padded_size(len(plaintext)) and seen[-1] == sent.size
    meta, received = await reference_download(http(), app.url, "/d/files", link.secret, sent.id)
    assert received == plaintext and meta["name"] == "scan.pdf" and meta["size"] == len(plaintext)


async def test_a_stale_half_open_upload_does_not_corrupt_the_part_sent_again(live, http, tmp_path):
    """A phone drops off 4G: its PATCH stays half open on the server while the phone sends
    the same part again on a new connection and completes. When the stale connection finally
    dies, the file must stay whole."""
    app = await live()
    token = await _clinician_token(app)
    auth = {"Authorization": f"Bearer {token}"}
    secret = secrets.token_bytes(16)
    plaintext = os.urandom(300_000)
    size = ece.padded_size(len(plaintext))
    session = http()
    async with session.post(app.url + "/api/drop/files", json={"size": size}, headers=auth) as r:
        created = await r.json()
    doc, owner = created["id"], {"X-Owner-Token": created["owner_token"]}
    ciphertext = ece.encrypt(plaintext, ece.derive_content_ikm(secret, doc))
    reader, writer = await asyncio.open_connection("127.0.0.1", app.server.port)
    writer.write((f"PATCH /api/drop/files/{doc}/upload HTTP/1.1\r\nHost: x\r\nX-Owner-Token: {owner['X-Owner-Token']}\r\n"
                  f"Upload-Offset: 0\r\nContent-Length: {size}\r\n\r\n").encode() + ciphertext[:100_000])
    await writer.drain()
    writers = app.services.drops._writers
    await polled_until(lambda: doc in writers, 10)  # the stale request is inside the server, waiting for more body
    async with session.patch(f"{app.url}/api/drop/files/{doc}/upload", data=ciphertext,
                             headers={"X-Owner-Token": "not-the-owner", "Upload-Offset": "0"}) as r:
        assert r.status == 403
    assert doc in writers, "a request without the owner token cannot stop the upload in progress"
    async with session.patch(f"{app.url}/api/drop/files/{doc}/upload", data=ciphertext,
                             headers={**owner, "Upload-Offset": "0"}) as r:
        assert r.status == 200 and (await r.json())["offset"] == size
    meta = ece.encrypt_metadata(ece.derive_metadata_key(secret, doc),
                                {"name": "a.bin", "type": "", "size": len(plaintext), "role": "sender"})
    async with session.post(f"{app.url}/api/drop/files/{doc}/complete", data=meta, headers=owner) as r:
        assert r.status == 200, await r.text()
    writer.transport.abort()  # the stale connection dies at last
    await asyncio.sleep(0.3)
    assert len(s3_server.stored_bytes(app.settings, doc)) == size, "the stale request's roll-back cut the published file"
    _, received = await reference_download(http(), app.url, "/d/files", secret, doc)
    assert received == plaintext


async def test_download_of_a_tampered_record_raises_and_leaves_neither_file_nor_temporary(live, http, tmp_path):
    app = await live()
    token = await _clinician_token(app)
    source = tmp_path / "report.pdf"
    source.write_bytes(os.urandom(500_000))
    async with client.client_session() as session:
        link, sent = await drop_links.send_drop(session, app.url, token, source)
        data = bytearray(s3_server.stored_bytes(app.settings, sent.id))
        data[ece.HEADER_SIZE + 3 * ece.RECORD_SIZE + 100] ^= 0x01  # inside record 3
        s3_server.replace_stored(app.settings, sent.id, bytes(data))
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(ece.TamperedRecord, match="record 3"):
            await client.download(session, drop_links.standalone_box(link.server), sent.id, link.secret,
                                  directory=out)
    assert list(out.iterdir()) == []


async def test_an_existing_output_is_refused_before_the_download_is_counted(live, tmp_path):
    app = await live()
    token = await _clinician_token(app)
    source = tmp_path / "note.txt"
    source.write_bytes(b"only once")
    async with client.client_session() as session:
        link, sent = await drop_links.send_drop(session, app.url, token, source, max_downloads=1)
        box = drop_links.standalone_box(link.server)
        existing = tmp_path / "existing.txt"
        existing.write_bytes(b"mine")
        with pytest.raises(client.OutputExists):
            await client.download(session, box, sent.id, link.secret, output=existing)
        assert existing.read_bytes() == b"mine"
        got = await client.download(session, box, sent.id, link.secret, output=tmp_path / "fresh.txt")
        assert got.path.read_bytes() == b"only once" and got.metadata["name"] == "note.txt"
        with pytest.raises(client.NotFound, match="unknown, expired or deleted"):
            await client.download(session, box, sent.id, link.secret, output=tmp_path / "again.txt")


async def test_wrong_secret_fails_on_the_metadata_before_any_download(live, tmp_path):
    app = await live()
    token = await _clinician_token(app)
    source = tmp_path / "a.txt"
    source.write_bytes(b"x" * 1000)
    async with client.client_session() as session:
        link, sent = await drop_links.send_drop(session, app.url, token, source, max_downloads=1)
        box = drop_links.standalone_box(link.server)
        with pytest.raises(ece.WrongKey):
            await client.download(session, box, sent.id, secrets.token_bytes(16), directory=tmp_path)
        # the download was not spent by the failed attempt
        got = await client.download(session, box, sent.id, link.secret, output=tmp_path / "b.txt")
        assert got.path.read_bytes() == b"x" * 1000


def test_links_are_parsed_with_their_server_prefix_and_secret():
    secret = secrets.token_bytes(16)
    link = drop_links.parse_link(f"https://consult.example.org/tc/d/AbC_d-123456789012#{ece.b64url_encode(secret)}")
    assert link == drop_links.DropLink("https://consult.example.org/tc", "AbC_d-123456789012", secret)
    assert str(link) == f"https://consult.example.org/tc/d/AbC_d-123456789012#{ece.b64url_encode(secret)}"
    s32 = secrets.token_bytes(32)
    patient = drop_links.parse_link(f"http://127.0.0.1:8080/j/JoinToken123456#{ece.b64url_encode(s32)}")
    assert isinstance(patient, drop_links.ConsultationLink) and patient.secret == s32
    assert patient.patient_url == "http://127.0.0.1:8080/j/JoinToken123456"
    assert drop_links.parse_link("https://h/d/AbCdEfGhIjKlMnOpQr", need_secret=False).secret is None
    for bad in ("not a link", "https://h/x/abc#" + ece.b64url_encode(secret), "https://h/d/abc",
                "https://h/d/abc#short", "https://h/d/abc#" + ece.b64url_encode(secret) + "=",
                "https://h/j/tok#" + ece.b64url_encode(secret)):  # a 16-byte secret is too short for /j/
        with pytest.raises(drop_links.LinkError):
            drop_links.parse_link(bad)
    assert repr(secret) not in repr(link), "the secret does not show in reprs (logs)"


def test_tokens_and_secrets_stay_out_of_the_reprs_of_boxes_links_and_sent_drops():
    from filedrop.client import common
    from filedrop.links import split_link
    token, owner, secret = "tc_" + secrets.token_urlsafe(16), secrets.token_urlsafe(16), secrets.token_bytes(32)
    fragment = ece.b64url_encode(secret)
    shown = [
        drop_links.standalone_box("https://h", token),
        drop_links.consultation_box("https://h", token, "c1"),
        drop_links.parse_link(f"https://h/j/JoinToken123456#{fragment}"),
        drop_links.parse_link(f"https://h/d/AbC_d-123456789012#{fragment}"),
        split_link(f"https://h/d/AbC_d-123456789012#{fragment}", ["/d"], ("a link", "a drop link")),
        common.Sent("AbC_d-123456789012", 65557, {}, {}, owner, secret),
    ]
    for record in shown:
        text = repr(record)
        assert type(record).__name__ in text and "https://h" in text or "AbC_d" in text
        for hidden in (token, owner, repr(secret), fragment):
            assert hidden not in text, f"{type(record).__name__} shows a credential or secret in its repr"


@pytest.mark.parametrize(("name", "safe"), [
    ("ordonnance – Dupont.pdf", "ordonnance – Dupont.pdf"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\x\\photo.jpg", "photo.jpg"),
    (".bashrc", "bashrc"),
    ("a\x00b\nc\x1b[31m.txt", "abc[31m.txt"),
    ("..", "document"),
    ("", "document"),
    ('<>:"|?*', "document"),
    ("é" * 300 + ".pdf", "é" * 98 + ".pdf"),
])
def test_received_names_are_sanitised(name, safe):
    assert client.safe_name(name) == safe


def test_ids_and_owner_tokens_never_start_with_a_dash_so_a_shell_can_pass_them():
    draws = iter(["-first", "-second", "Third"])
    assert typeable_token(16, lambda nbytes: next(draws)) == "Third"
    assert not any(typeable_token(1).startswith("-") for _ in range(2000))


async def test_a_used_up_drop_leaves_the_disk_when_its_grace_ends_not_at_the_next_sweep(live, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "USED_UP_GRACE_SECONDS", 0.3)
    app = await live(documents_sweep_seconds=3600)  # the periodic sweep is an hour away
    token = await _clinician_token(app)
    source = tmp_path / "compte-rendu.txt"
    source.write_bytes(b"once " * 1000)
    async with client.client_session() as session:
        link, sent = await drop_links.send_drop(session, app.url, token, source, max_downloads=1)
        await client.download(session, drop_links.standalone_box(link.server), sent.id, link.secret,
                              output=tmp_path / "saved.txt")
        used_up = time.monotonic()
        assert s3_server.is_published(app.settings, sent.id), "kept a moment for the transfer that used it up"
        while s3_server.is_published(app.settings, sent.id):
            assert time.monotonic() - used_up < 10, "a used-up drop waited for the periodic sweep (an hour away)"
            await asyncio.sleep(0.05)
