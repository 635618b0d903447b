#!/usr/bin/env python
"""The client side of bench/precall_sessions.py, a child process pinned to its own core: N aiortc
peers that each send a looped, pre-encoded VP8 clip and an Opus tone to the server's echo peers,
ping over a data channel, and report their RTCStats. Driven over stdin/stdout (JSON lines)."""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import math
import random
import sys
import time
from pathlib import Path

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from cores import CLIENT_CORE, pin_to  # noqa: E402  (bench/ is sys.path[0])

PING_INTERVAL = 0.1
AUDIO_RATE = 48000
AUDIO_PACKET = 960  # 20 ms
VIDEO_CLOCK = 90000
CLIP_SECONDS = 2




def encode_video_clip(width: int, height: int, fps: int, bitrate: int) -> list[bytes]:
    """A panning noisy picture, VP8 at `bitrate`, a keyframe every second."""
    rng = random.Random(7)
    span = width + height + 8 * fps * CLIP_SECONDS
    texture = bytes(
        max(16, min(235, 60 + (x * 140) // span + rng.randint(-25, 25))) for x in range(span * 2)
    )
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fps
    codec.bit_rate = bitrate
    codec.gop_size = fps
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    packets: list[bytes] = []
    for index in range(fps * CLIP_SECONDS):
        frame = av.VideoFrame(width, height, "yuv420p")
        luma = frame.planes[0]
        shift = index * 4
        rows = b"".join(
            texture[shift + (y * 7) % height : shift + (y * 7) % height + width].ljust(
                luma.line_size, b"\x80"
            )
            for y in range(height)
        )
        luma.update(rows[: luma.buffer_size].ljust(luma.buffer_size, b"\x80"))
        for plane, value in zip(frame.planes[1:], (110, 150)):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = index
        packets.extend(bytes(p) for p in codec.encode(frame))
    packets.extend(bytes(p) for p in codec.encode(None))
    return packets


def encode_audio_clip() -> list[bytes]:
    """A warbling tone with some noise, Opus in 20 ms packets."""
    import array

    rng = random.Random(11)
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 64000
    codec.time_base = fractions.Fraction(1, AUDIO_RATE)
    packets: list[bytes] = []
    total = AUDIO_RATE * CLIP_SECONDS
    for start in range(0, total, AUDIO_PACKET):
        pcm = array.array("h")
        for i in range(start, start + AUDIO_PACKET):
            t = i / AUDIO_RATE
            value = int(6000 * math.sin(2 * math.pi * (300 + 80 * math.sin(3 * t)) * t))
            value += rng.randint(-500, 500)
            pcm.extend((value, value))
        frame = av.AudioFrame(format="s16", layout="stereo", samples=AUDIO_PACKET)
        frame.planes[0].update(pcm.tobytes().ljust(frame.planes[0].buffer_size, b"\0"))
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        packets.extend(bytes(p) for p in codec.encode(frame))
    return packets


class LoopedPackets(MediaStreamTrack):
    """Plays pre-encoded packets in a loop, in real time (aiortc only packetizes them)."""

    def __init__(self, kind: str, packets: list[bytes], clock: int, ticks: int):
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._time_base = fractions.Fraction(1, clock)
        self._ticks = ticks
        self._interval = ticks / clock
        self._index = 0
        self._started: float | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._started is None:
            self._started = now
        due = self._started + self._index * self._interval
        if due > now:
            await asyncio.sleep(due - now)
        packet = av.Packet(self._packets[self._index % len(self._packets)])
        packet.pts = self._index * self._ticks
        packet.time_base = self._time_base
        self._index += 1
        return packet


class ClientSession:
    def __init__(self, video: list[bytes], audio: list[bytes], fps: int):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("rtt")
        self.pc.addTrack(LoopedPackets("audio", audio, AUDIO_RATE, AUDIO_PACKET))
        self.pc.addTrack(LoopedPackets("video", video, VIDEO_CLOCK, VIDEO_CLOCK // fps))
        self.frames = {"audio": 0, "video": 0}
        self.rtts: list[float] = []
        self.measuring = False
        self.tasks: list[asyncio.Task] = []

        @self.pc.on("track")
        def on_track(track) -> None:
            self.tasks.append(asyncio.ensure_future(self._consume(track)))

        @self.channel.on("message")
        def on_message(message) -> None:
            if self.measuring:
                self.rtts.append(time.perf_counter() - float(message))

    async def _consume(self, track) -> None:
        try:
            while True:
                await track.recv()
                self.frames[track.kind] += 1
        except MediaStreamError:
            pass

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(PING_INTERVAL)
            if self.channel.readyState == "open":
                self.channel.send(repr(time.perf_counter()))

    async def offer(self) -> dict:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"sdp": self.pc.localDescription.sdp, "type": "offer"}

    async def connect(self, answer: dict) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))
        while self.pc.connectionState != "connected" or self.channel.readyState != "open":
            if self.pc.connectionState in ("failed", "closed"):
                raise RuntimeError("client connection failed")
            await asyncio.sleep(0.02)
        self.tasks.append(asyncio.ensure_future(self._ping()))

    async def snapshot(self) -> dict:
        report = await self.pc.getStats()
        snap = {"down_recv": 0, "down_lost": 0, "up_recv": 0, "up_lost": 0}
        for stats in report.values():
            if stats.type == "inbound-rtp":
                snap["down_recv"] += stats.packetsReceived
                snap["down_lost"] += max(0, stats.packetsLost)
            elif stats.type == "remote-inbound-rtp":
                snap["up_recv"] += stats.packetsReceived
                snap["up_lost"] += max(0, stats.packetsLost)
        snap["video_frames"] = self.frames["video"]
        return snap

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.pc.close()


async def run_client(args: argparse.Namespace) -> None:
    pinned = pin_to(CLIENT_CORE)
    video = encode_video_clip(args.width, args.height, args.fps, args.bitrate)
    audio = encode_audio_clip()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    clip_kbps = sum(map(len, video)) * 8 / CLIP_SECONDS / 1000
    say({"event": "ready", "pinned": pinned, "clip_kbps": round(clip_kbps)})
    while True:
        command = json.loads(await reader.readline() or b'{"cmd": "quit"}')
        if command["cmd"] == "quit":
            return
        n = command["n"]
        sessions = [ClientSession(video, audio, args.fps) for _ in range(n)]
        say({"event": "offers", "offers": [await s.offer() for s in sessions]})
        answers = json.loads(await reader.readline())["answers"]
        await asyncio.wait_for(
            asyncio.gather(*(s.connect(a) for s, a in zip(sessions, answers))), 30
        )
        await asyncio.sleep(command["warmup"])
        before = [await s.snapshot() for s in sessions]
        for s in sessions:
            s.measuring = True
        cpu0, wall0 = time.process_time(), time.perf_counter()
        say({"event": "measuring"})
        await asyncio.sleep(command["duration"])
        after = [await s.snapshot() for s in sessions]
        cpu1, wall1 = time.process_time(), time.perf_counter()
        per_session = []
        for s, b, a in zip(sessions, before, after):
            delta = {k: a[k] - b[k] for k in a}
            per_session.append(
                {
                    **delta,
                    "fps": delta["video_frames"] / (wall1 - wall0),
                    "rtts": s.rtts,
                }
            )
        say(
            {
                "event": "result",
                "sessions": per_session,
                "client_cpu": (cpu1 - cpu0) / (wall1 - wall0),
            }
        )
        await asyncio.gather(*(s.close() for s in sessions))


def main() -> None:
    parser = argparse.ArgumentParser(description="the aiortc clients, alone")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=800_000, help="client video bit rate, bit/s")
    asyncio.run(run_client(parser.parse_args()))


if __name__ == "__main__":
    main()
