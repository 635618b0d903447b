"""Slow and greedy clients against `teleconsult serve`, with real sockets on loopback: 500 clients
that send their request head one byte at a time, clients that stop sending their body, 500
connections from one address. The server keeps answering everybody else, closes the slow ones
once their timeout has passed, and caps connections per address. Source addresses 127.0.0.2 and
up are other "clients" (the whole of 127.0.0.0/8 is loopback)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from served import served

pytestmark = pytest.mark.timeout(300)

HEAD_TIMEOUT = 2
BODY_TIMEOUT = 2
CAP = 60


@pytest.fixture
def server(tmp_path):
    with served(tmp_path, http_header_timeout_seconds=HEAD_TIMEOUT, http_body_timeout_seconds=BODY_TIMEOUT,
                http_max_connections_per_address=CAP, precall_offers_max=1000) as running:
        yield running


async def open_from(port: int, source: str):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def open_timed(port: int, source: str):
    """(reader, writer, the moment it was open)."""
    reader, writer = await open_from(port, source)
    return reader, writer, time.monotonic()


async def closed_after(reader: asyncio.StreamReader, start: float, limit: float) -> float | None:
    """Seconds from `start` until the server closed the connection; None if still open at `limit`."""
    try:
        while await asyncio.wait_for(reader.read(65536), limit - (time.monotonic() - start)):
            pass
    except asyncio.TimeoutError:
        return None
    except ConnectionError:
        pass
    return time.monotonic() - start


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float, stop: asyncio.Event) -> None:
    """Send `data` one byte every `every` seconds (a slowloris client), until closed or told."""
    for byte in data:
        if stop.is_set() or writer.is_closing():
            return
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(every)


async def answers_meanwhile(base: str, stop: asyncio.Event) -> list[float]:
    """Another client's /healthz latencies (s) while the slow ones are connected."""
    latencies = []
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            start = time.monotonic()
            async with http.get(base + "/healthz") as r:
                assert r.status == 200
            latencies.append(time.monotonic() - start)
            await asyncio.sleep(0.05)
    return latencies


async def healthz_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Ask /healthz on this connection (its last request) and return the whole answer."""
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    return await asyncio.wait_for(reader.read(), 5)


async def fds_once_accepted(server, at_least: int, deadline: float) -> int:
    """The server's open descriptors once it holds `at_least` (or the most seen by `deadline`,
    a time.monotonic()): the kernel completes a connection before the server accepts it, so
    right after the clients connect the server may not have accepted them all yet."""
    most = server.open_fds()
    while most < at_least and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        most = max(most, server.open_fds())
    return most


async def test_500_clients_sending_their_head_byte_by_byte_are_closed_after_the_timeout_and_others_served(server):
    base_rss, base_fds = server.rss_mib(), server.open_fds()
    # 500 connections at once from 10 addresses (50 each, under the cap)
    started = time.monotonic()
    connections = await asyncio.gather(*(open_timed(server.port, f"127.0.0.{2 + i % 10}") for i in range(500)))
    held_fds = await fds_once_accepted(server, base_fds + 500, started + HEAD_TIMEOUT - 0.5)
    held_rss = server.rss_mib()
    stop = asyncio.Event()
    head = b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"z" * 200 + b"\r\n\r\n"
    trickles = [asyncio.create_task(trickle(w, head, 0.25, stop)) for _, w, _ in connections]
    others = asyncio.create_task(answers_meanwhile(server.base, stop))
    closed = await asyncio.gather(*(closed_after(r, opened, HEAD_TIMEOUT + 10) for r, _, opened in connections))
    stop.set()
    latencies = await others
    await asyncio.gather(*trickles)
    for _, writer, _ in connections:
        writer.close()
    after_fds = server.open_fds()
    print(f"\nserver: {base_rss:.0f} MiB, {base_fds} fds idle; {held_rss:.0f} MiB, {held_fds} fds holding 500 slow "
          f"heads; all closed after {min(closed):.1f}-{max(closed):.1f} s; {after_fds} fds after; other client: "
          f"{len(latencies)} answers, slowest {max(latencies) * 1000:.0f} ms")
    assert held_fds >= base_fds + 450  # they were all connected at once
    assert all(c is not None for c in closed), "a slow head was still connected 12 s later"
    # none before the timeout (counted from before the first connect), each soon after it
    # (counted from its own connect, as the client saw it)
    assert min(c + opened - started for c, (_, _, opened) in zip(closed, connections)) >= HEAD_TIMEOUT - 0.1
    assert max(closed) <= HEAD_TIMEOUT + 6
    # served all along: every answer quick, and several of them (about 40 on a quiet machine, 8-20
    # with a busy core beside the test, whose own loop trickles 500 connections meanwhile)
    assert len(latencies) >= 5 and max(latencies) < 1.5
    assert after_fds <= base_fds + 5
    assert held_rss - base_rss < 100


async def test_a_client_that_stops_sending_its_body_gets_408_and_a_closed_connection(server):
    reader, writer = await open_from(server.port, "127.0.0.20")
    writer.write(b"POST /api/precall/offer HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"sdp\": \"")
    await writer.drain()
    start = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), BODY_TIMEOUT + 10)  # until the server closes
    took = time.monotonic() - start
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert BODY_TIMEOUT - 0.1 <= took <= BODY_TIMEOUT + 3
    assert "Traceback" not in server.log()


async def test_50_stalled_bodies_are_cut_while_a_slow_body_that_keeps_sending_is_not(server):
    stalled = [await open_from(server.port, "127.0.0.21") for _ in range(50)]
    for _, writer in stalled:
        writer.write(b"POST /api/precall/offer HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{")
        await writer.drain()
    # a slow sender: 20 bytes, one every 0.25 s (5 s in all, more than the body timeout)
    reader, writer = await open_from(server.port, "127.0.0.22")
    body = b'{"sdp": 1, "type": 1}'
    writer.write(b"POST /api/precall/offer HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
    stop = asyncio.Event()
    await trickle(writer, body, 0.25, stop)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ") and b"bad offer" in answer, answer[:300]
    answers = await asyncio.gather(*(asyncio.wait_for(r.read(), BODY_TIMEOUT + 10) for r, _ in stalled))
    for _, w in stalled:
        w.close()
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers)


async def test_500_connections_from_one_address_are_capped_and_other_addresses_still_served(server):
    connections = [await open_from(server.port, "127.0.0.30") for _ in range(500)]
    answers = await asyncio.gather(*(asyncio.wait_for(r.read(200), 5) for r, _ in connections[CAP:]))
    assert all(a.startswith(b"HTTP/1.1 503 ") for a in answers), {a[:40] for a in answers}
    # the first CAP connections are held (and still usable: the last of them, the furthest from
    # its head timeout on a busy machine); another address is served
    assert (await healthz_answer(*connections[CAP - 1])).startswith(b"HTTP/1.1 200 ")
    async with aiohttp.ClientSession() as http, http.get(server.base + "/healthz") as r:
        assert r.status == 200
    for _, w in connections:
        w.close()
    # once the server has seen them go (soon: half a second on a quiet machine), the address may
    # connect again
    deadline = time.monotonic() + 5
    while True:
        reader, writer = await open_from(server.port, "127.0.0.30")
        answer = await healthz_answer(reader, writer)
        writer.close()
        if answer.startswith(b"HTTP/1.1 200 ") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:40]
    assert "Traceback" not in server.log()
