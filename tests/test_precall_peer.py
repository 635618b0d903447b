"""The pre-call echo peer, driven by real aiortc clients over loopback."""

from __future__ import annotations

import array
import asyncio
import fractions
import json
import math
import re
import signal
import sys
import time

import av
import pytest
import pytest_asyncio
from aiortc import (
    AudioStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError

from conftest import polled_until
from teleconsult.precall.peer import BadOffer, EchoPeers, PeersBusy

CONNECT_TIMEOUT = 10.0
SAMPLE_RATE = 48000
SAMPLES_PER_FRAME = 960  # 20 ms
TONE_AMPLITUDE = 8000
MARKER_LUMA = 200


class MarkerVideo(VideoStreamTrack):
    """Small frames of one distinctive grey, so the echo is recognisably ours."""

    def __init__(self, luma: int = MARKER_LUMA, width: int = 160, height: int = 120):
        super().__init__()
        self._values = (luma, 128, 128)
        self._size = (width, height)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(*self._size, "yuv420p")
        for plane, value in zip(frame.planes, self._values):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


class ToneAudio(AudioStreamTrack):
    """A 440 Hz tone in real time (the base class would send silence)."""

    def __init__(self) -> None:
        super().__init__()
        self._started: float | None = None
        self._sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._started is None:
            self._started = time.monotonic()
        else:
            self._sent += SAMPLES_PER_FRAME
            await asyncio.sleep(
                max(0.0, self._started + self._sent / SAMPLE_RATE - time.monotonic())
            )
        samples = array.array(
            "h",
            (
                int(TONE_AMPLITUDE * math.sin(2 * math.pi * 440 * (self._sent + i) / SAMPLE_RATE))
                for i in range(SAMPLES_PER_FRAME)
            ),
        )
        frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES_PER_FRAME)
        frame.planes[0].update(samples.tobytes())
        frame.pts = self._sent
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return frame


class Client:
    """What the browser does: offer, apply the answer, collect echoed tracks."""

    def __init__(self, *, audio: bool = True, video: bool = True, channel: bool = True):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.received: dict[str, object] = {}
        self.channel = self.pc.createDataChannel("rtt") if channel else None
        if audio:
            self.pc.addTrack(ToneAudio())
        if video:
            self.pc.addTrack(MarkerVideo())

        @self.pc.on("track")
        def on_track(track) -> None:
            self.received[track.kind] = track

    async def offer(self) -> dict[str, str]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"sdp": self.pc.localDescription.sdp, "type": self.pc.localDescription.type}

    async def connect(self, peers: EchoPeers) -> None:
        answer = await peers.answer(**(await self.offer()))
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))
        await polled_until(lambda: self.pc.connectionState == "connected", CONNECT_TIMEOUT)


@pytest_asyncio.fixture
async def cleanup():
    """Collects EchoPeers and clients; closes them whatever the test did."""
    things: list[object] = []
    yield things.append
    for thing in reversed(things):
        if isinstance(thing, EchoPeers):
            await thing.close_all()
        elif isinstance(thing, Client):
            await thing.pc.close()


def make_peers(cleanup, **kwargs) -> EchoPeers:
    kwargs.setdefault("max_sessions", 2)
    kwargs.setdefault("max_duration_seconds", 30)
    kwargs.setdefault("ice_servers", [])
    peers = EchoPeers(**kwargs)
    cleanup(peers)
    return peers


def make_client(cleanup, **kwargs) -> Client:
    client = Client(**kwargs)
    cleanup(client)
    return client


@pytest.mark.asyncio
async def test_client_receives_its_own_audio_and_video_back(cleanup):
    peers = make_peers(cleanup)
    client = make_client(cleanup)
    await client.connect(peers)
    assert set(client.received) == {"audio", "video"}

    # Video: the frames that come back carry our marker grey.
    video = client.received["video"]
    frame = await asyncio.wait_for(video.recv(), 5)
    assert (frame.width, frame.height) == (160, 120)
    plane = frame.planes[0]
    buffer = bytes(plane)
    luma = b"".join(
        buffer[row * plane.line_size : row * plane.line_size + plane.width]
        for row in range(plane.height)
    )
    assert abs(sum(luma) / len(luma) - MARKER_LUMA) < 10

    # Audio: the tone comes back (silence would have an RMS of 0).
    audio = client.received["audio"]
    loudest = 0.0
    for _ in range(50):
        decoded = await asyncio.wait_for(audio.recv(), 5)
        assert decoded.format.name == "s16"  # interleaved, one plane with padding
        pcm = array.array("h", bytes(decoded.planes[0]))
        pcm = pcm[: decoded.samples * len(decoded.layout.channels)]
        loudest = max(loudest, math.sqrt(sum(s * s for s in pcm) / len(pcm)))
        if loudest > TONE_AMPLITUDE / 4:
            break
    assert loudest > TONE_AMPLITUDE / 4


@pytest.mark.asyncio
async def test_data_channel_messages_are_echoed(cleanup):
    peers = make_peers(cleanup)
    client = make_client(cleanup, audio=False, video=False)
    await client.connect(peers)
    channel = client.channel
    await polled_until(lambda: channel.readyState == "open", 5)
    replies: asyncio.Queue = asyncio.Queue()
    channel.on("message", replies.put_nowait)

    messages = ["ping 1 ✓", b"\x00\xffraw", json.dumps({"seq": 2, "t": 12.5}), bytes(range(256)) * 64]
    for message in messages:
        sent = time.monotonic()
        channel.send(message)
        echoed = await asyncio.wait_for(replies.get(), 2)
        assert type(echoed) is type(message)
        assert echoed == message
        assert time.monotonic() - sent < 0.5


@pytest.mark.asyncio
async def test_one_session_too_many_is_refused_then_freed_sessions_are_reused(cleanup):
    peers = make_peers(cleanup, max_sessions=1, max_duration_seconds=30)
    first = make_client(cleanup)
    await first.connect(peers)
    assert peers.active_count == 1

    second = make_client(cleanup)
    offer = await second.offer()
    with pytest.raises(PeersBusy) as refused:
        await peers.answer(**offer)
    assert 1 <= refused.value.retry_after <= 30
    assert peers.active_count == 1

    await first.pc.close()  # the browser hangs up cleanly
    await polled_until(lambda: peers.active_count == 0, 3)

    third = make_client(cleanup)
    await third.connect(peers)
    assert peers.active_count == 1
    frame = await asyncio.wait_for(third.received["video"].recv(), 5)
    assert frame.width == 160


@pytest.mark.asyncio
async def test_session_is_closed_after_max_duration(cleanup):
    peers = make_peers(cleanup, max_duration_seconds=1.0, check_interval_seconds=0.1)
    client = make_client(cleanup)
    started = time.monotonic()
    await client.connect(peers)
    assert peers.active_count == 1
    await polled_until(lambda: peers.active_count == 0, 4)
    assert time.monotonic() - started >= 0.9
    # The server hung up, so the client's connection ends too.
    await polled_until(lambda: client.pc.connectionState in ("closed", "failed"), 3)


VANISHING_CLIENT = r"""
import asyncio, json, sys
from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

async def main():
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("rtt")
    pc.addTrack(AudioStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    print(json.dumps({"sdp": pc.localDescription.sdp, "type": "offer"}), flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await pc.setRemoteDescription(RTCSessionDescription(**json.loads(line)))
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await opened.wait()
    print("connected", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.asyncio
async def test_session_is_released_when_client_vanishes(cleanup):
    idle = 1.0
    peers = make_peers(cleanup, idle_timeout_seconds=idle, check_interval_seconds=0.2)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", VANISHING_CLIENT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    try:
        offer = json.loads(await asyncio.wait_for(process.stdout.readline(), 15))
        answer = await peers.answer(**offer)
        process.stdin.write(json.dumps(answer).encode() + b"\n")
        await process.stdin.drain()
        assert await asyncio.wait_for(process.stdout.readline(), CONNECT_TIMEOUT) == b"connected\n"

        # A live client that keeps sending is not mistaken for a vanished one.
        await asyncio.sleep(2 * idle)
        assert peers.active_count == 1

        process.send_signal(signal.SIGKILL)  # no DTLS close, no BYE: just gone
        await process.wait()
        took = await polled_until(lambda: peers.active_count == 0, idle + 3)
        assert took < idle + 1.5
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _without(prefix):
    return lambda sdp: "".join(
        line for line in sdp.splitlines(keepends=True) if not line.startswith(prefix)
    )


MALFORMED = {
    "answer type": ("answer", lambda sdp: sdp),
    "empty": ("offer", lambda sdp: ""),
    "not sdp": ("offer", lambda sdp: "hello, I am not an offer"),
    "not a string": ("offer", lambda sdp: sdp.encode()),
    "too long": ("offer", lambda sdp: sdp + "a=x-pad:" + "x" * 70_000 + "\r\n"),
    "no media": ("offer", lambda sdp: sdp.split("m=")[0]),
    "no fingerprint": ("offer", _without("a=fingerprint:")),
    "no ice password": ("offer", _without("a=ice-pwd:")),
    "control character": ("offer", lambda sdp: sdp.replace("s=-", "s=\x00")),
    "bad media line": ("offer", lambda sdp: re.sub(r"m=video \d+", "m=video nine", sdp)),
    "unknown media kind": ("offer", lambda sdp: sdp.replace("m=video", "m=text")),
    "no common codec": (
        "offer",
        lambda sdp: sdp.replace("opus/48000", "x-none/48000")
        .replace("PCMU/8000", "x-none/8000")
        .replace("PCMA/8000", "x-none/8000")
        .replace("G722/8000", "x-none/8000"),
    ),
    "bad dtls role": ("offer", lambda sdp: sdp.replace("a=setup:actpass", "a=setup:sideways")),
    "nothing to echo": (
        "offer",
        lambda sdp: sdp.replace("a=sendrecv", "a=recvonly")
        .replace("BUNDLE 0 1 2", "BUNDLE 0 1")
        .split("m=application")[0],
    ),
    "truncated": ("offer", lambda sdp: sdp[: len(sdp) * 2 // 3].rsplit("\n", 1)[0] + "\na=rtpmap:"),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_offer_is_refused(cleanup, case):
    peers = make_peers(cleanup, max_sessions=1)
    client = make_client(cleanup)
    offer = await client.offer()
    type_, mangle = MALFORMED[case]
    with pytest.raises(BadOffer):
        await peers.answer(sdp=mangle(offer["sdp"]), type=type_)
    assert peers.active_count == 0
    # The refused offer left no slot behind: the untouched offer is answered.
    answer = await peers.answer(**offer)
    assert answer["type"] == "answer"
    assert peers.active_count == 1


@pytest.mark.asyncio
async def test_shutdown_closes_every_session_and_refuses_new_ones(cleanup):
    peers = make_peers(cleanup, max_sessions=3)
    clients = [make_client(cleanup, video=False) for _ in range(2)]
    for client in clients:
        await client.connect(peers)
    assert peers.active_count == 2
    await peers.close_all()
    assert peers.active_count == 0
    for client in clients:
        await polled_until(lambda: client.pc.connectionState in ("closed", "failed"), 3)
    late = make_client(cleanup)
    with pytest.raises(PeersBusy):
        await peers.answer(**(await late.offer()))


@pytest.mark.asyncio
async def test_no_stun_server_is_contacted_unless_configured(cleanup):
    peers = make_peers(cleanup)
    client = make_client(cleanup)
    answer = await peers.answer(**(await client.offer()))
    candidates = [line for line in answer["sdp"].splitlines() if line.startswith("a=candidate:")]
    assert candidates and all(" typ host" in line for line in candidates)


@pytest.mark.parametrize(
    "servers",
    [
        [{"urls": "http://stun.example"}],
        [{"urls": "turn:turn.example:3478"}],  # TURN without credentials
        [{"urls": []}],
        [{"urls": "stun:stun.example", "secret": "x"}],
    ],
)
def test_bad_ice_server_settings_are_rejected_at_start(servers):
    with pytest.raises(ValueError):
        EchoPeers(max_sessions=1, max_duration_seconds=10, ice_servers=servers)
