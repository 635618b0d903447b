"""filedrop.client.blocking, the transport of `teleconsult drop` (http.client, no aiohttp), against
the real app on loopback: the same resumable upload through a connection that drops and the same
all-or-nothing download as the aiohttp client (tests/test_drop_client.py). Each call runs in a
worker thread so that the app's event loop keeps serving."""

from __future__ import annotations

import asyncio
import os

import pytest

from conftest import add_api_clinician
import s3_server
from drop_client import download as reference_download
from filedrop import ece
from filedrop.client import blocking, common
from teleconsult import drop_links
from test_drop_client import CuttingProxy

MiB = 1024 * 1024


async def test_an_upload_cut_mid_part_resumes_from_the_servers_offset_and_decrypts_whole(live, http, tmp_path):
    app = await live()
    token = (await add_api_clinician(app.engine))[1]
    plaintext = os.urandom(10 * MiB + 4321)
    source = tmp_path / "scan.pdf"
    source.write_bytes(plaintext)
    proxy = CuttingProxy(app.server.port, cut_after=5 * MiB + 777)  # inside the second 4 MiB part
    base = await proxy.start()
    seen: list[int] = []

    def send():
        with blocking.Session() as session:
            return blocking.send_drop(session, drop_links.standalone_box(base, token), source, part_size=4 * MiB,
                                      retry_delay=0.05, progress=lambda done, total: seen.append(done))

    try:
        sent = await asyncio.to_thread(send)
    finally:
        await proxy.close()
    assert proxy.cuts == 1 and proxy.connections >= 2
    assert any(b < a for a, b in zip(seen, seen[1:])), "progress went back: a part was sent again"
    assert sent.size == ece.padded_size(len(plaintext)) and seen[-1] == sent.size
    meta, received = await reference_download(http(), app.url, "/d/files", sent.secret, sent.id)
    assert received == plaintext and meta["name"] == "scan.pdf" and meta["size"] == len(plaintext)


async def test_a_file_edited_before_a_resend_stops_the_upload_and_no_record_is_encrypted_twice(live, tmp_path):
    """The resend is made again from the file (nothing of a part is held in memory): a record
    already handed to the connection that comes out different (the file was edited after the
    cut) would put two plaintexts under one AES-GCM key and nonce. It must stop the upload
    before any byte of it is sent again: the resend may only repeat bytes the server was sent."""
    app = await live()
    token = (await add_api_clinician(app.engine))[1]
    source = tmp_path / "scan.pdf"
    source.write_bytes(os.urandom(10 * MiB))

    def edit_what_was_sent():  # same size, one byte changed in the first MiB (long sent)
        with open(source, "r+b") as f:
            f.seek(MiB)
            byte = f.read(1)
            f.seek(MiB)
            f.write(bytes([byte[0] ^ 0xFF]))

    proxy = CuttingProxy(app.server.port, cut_after=5 * MiB + 777, on_cut=edit_what_was_sent)
    base = await proxy.start()

    def send():
        with blocking.Session() as session:
            return blocking.send_drop(session, drop_links.standalone_box(base, token), source, part_size=8 * MiB,
                                      retry_delay=0.05)

    try:
        with pytest.raises(common.FileChanged, match="changed while it was being sent"):
            await asyncio.to_thread(send)
    finally:
        await proxy.close()
    assert proxy.cuts == 1
    first_at, first = _patch(proxy.before_cut)
    again_at, again = _patch(proxy.after_cut)
    assert again == first[again_at - first_at:again_at - first_at + len(again)], "the resend repeats what was sent"
    edited_record_starts = ece.HEADER_SIZE + (MiB // ece.RECORD_DATA_SIZE) * ece.RECORD_SIZE
    assert again_at + len(again) <= edited_record_starts, "not one byte of the edited record was sent again"


def _patch(sent: bytes) -> tuple[int, bytes]:
    """The upload offset and the body (as far as it went) of the last PATCH in `sent`."""
    head, _, body = bytes(sent[sent.rindex(b"PATCH "):]).partition(b"\r\n\r\n")
    offset = next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                  if line.lower().startswith(common.OFFSET_HEADER.lower().encode() + b":"))
    return int(offset), body


async def test_a_tampered_download_leaves_nothing_and_an_existing_output_is_refused_before_counting(live, tmp_path):
    app = await live()
    token = (await add_api_clinician(app.engine))[1]
    source = tmp_path / "report.pdf"
    source.write_bytes(os.urandom(500_000))
    out = tmp_path / "out"
    out.mkdir()
    existing = tmp_path / "existing.pdf"
    existing.write_bytes(b"mine")

    def scenario():
        with blocking.Session() as session:
            sent = blocking.send_drop(session, drop_links.standalone_box(app.url, token), source, max_downloads=2)
            box = drop_links.standalone_box(app.url)
            with pytest.raises(common.OutputExists):
                blocking.download(session, box, sent.id, sent.secret, output=existing)
            data = bytearray(s3_server.stored_bytes(app.settings, sent.id))  # either store
            data[ece.HEADER_SIZE + 3 * ece.RECORD_SIZE + 100] ^= 0x01  # inside record 3
            s3_server.replace_stored(app.settings, sent.id, bytes(data))
            with pytest.raises(ece.TamperedRecord, match="record 3"):
                blocking.download(session, box, sent.id, sent.secret, directory=out)
            data[ece.HEADER_SIZE + 3 * ece.RECORD_SIZE + 100] ^= 0x01
            s3_server.replace_stored(app.settings, sent.id, bytes(data))
            got = blocking.download(session, box, sent.id, sent.secret, directory=out)  # the 2nd and last download
            with pytest.raises(common.NotFound, match="unknown, expired or deleted"):
                blocking.download(session, box, sent.id, sent.secret, output=tmp_path / "again.pdf")
            return got

    got = await asyncio.to_thread(scenario)
    assert existing.read_bytes() == b"mine"
    assert [p.name for p in out.iterdir()] == ["report.pdf"] and got.path.read_bytes() == source.read_bytes()


async def test_an_unreachable_server_is_one_clear_error(tmp_path):
    from conftest import free_port
    source = tmp_path / "a.txt"
    source.write_bytes(b"x")
    with blocking.Session() as session, pytest.raises(common.DropClientError, match="cannot reach the server"):
        blocking.send_drop(session, drop_links.standalone_box(f"http://127.0.0.1:{free_port()}", "tc_x"), source)
