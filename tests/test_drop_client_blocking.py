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
