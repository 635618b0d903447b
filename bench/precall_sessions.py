#!/usr/bin/env python
"""How many simultaneous pre-call echo sessions one core holds.

The server side is this process: one teleconsult.precall.EchoPeers, pinned to
one core. The browsers are aiortc peers in a child process pinned to the other
core. Each client sends a looped, pre-encoded VP8 clip (camera-like: a slowly
panning noisy picture) and an Opus tone, so its own core spends almost nothing
on encoding; the server really decodes and re-encodes every stream, as it does
for a browser. Each client also pings over a data channel (like the page does
for RTT).

For N = 1, 2, 4, 8, ... sessions, after a warm-up, during a measurement window:

* server CPU (process time of this process / wall time, 100 % = one core);
* loss from the clients' RTCStats: downstream = echoed media lost on its way
  to the client (inbound-rtp packetsLost / (packetsLost + packetsReceived)),
  upstream = client media lost before the server, as the server reported it in
  RTCP receiver reports (remote-inbound-rtp);
* echoed video frame rate per client (vs the rate sent) and data-channel RTT,
  which show overload that loss alone does not (aiortc queues rather than drops).

A level holds when loss stays under 1 % in both directions and every client
gets at least 90 % of the frame rate it sent back (past one core, aiortc
queues rather than drops, so loss alone says little: frame rate falls and
latency climbs into seconds first). The ramp stops at the first level that does
not hold, then bisects between the last
level that held and that one; it also stops when the time budget is spent.
The N = 1 row is the baseline: "vs N*base" is server CPU at N divided by N
times the CPU of one session.

    .venv/bin/python bench/precall_sessions.py [--duration 8] [--warmup 3]
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from cores import CLIENT_CORE, SERVER_CORE, pin_to  # noqa: E402  (bench/ is sys.path[0])

LOSS_LIMIT = 0.01
FPS_FLOOR = 0.9  # echoed fps below this fraction of the sent fps = overloaded
PING_INTERVAL = 0.1
AUDIO_RATE = 48000
AUDIO_PACKET = 960  # 20 ms
VIDEO_CLOCK = 90000
CLIP_SECONDS = 2



# --------------------------------------------------------------------------
# client side (child process)
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# server side (this process)
# --------------------------------------------------------------------------


def ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def summarise(n: int, result: dict, server_cpu: float, fps: int) -> dict:
    sessions = result["sessions"]
    down_lost = sum(s["down_lost"] for s in sessions)
    down_all = down_lost + sum(s["down_recv"] for s in sessions)
    up_lost = sum(s["up_lost"] for s in sessions)
    up_all = up_lost + sum(s["up_recv"] for s in sessions)
    rtts = sorted(r for s in sessions for r in s["rtts"])
    fps_values = [s["fps"] for s in sessions]
    worst = max(
        max(ratio(s["down_lost"], s["down_lost"] + s["down_recv"]) for s in sessions),
        max(ratio(s["up_lost"], s["up_lost"] + s["up_recv"]) for s in sessions),
    )
    return {
        "n": n,
        "server_cpu": server_cpu,
        "client_cpu": result["client_cpu"],
        "down_loss": ratio(down_lost, down_all),
        "up_loss": ratio(up_lost, up_all),
        "worst_session_loss": worst,
        "fps_mean": statistics.fmean(fps_values),
        "fps_min": min(fps_values),
        "rtt_p50": rtts[len(rtts) // 2] if rtts else math.nan,
        "rtt_p95": rtts[min(len(rtts) - 1, int(len(rtts) * 0.95))] if rtts else math.nan,
        "ok_loss": max(ratio(down_lost, down_all), ratio(up_lost, up_all)) < LOSS_LIMIT,
        "ok_fps": min(fps_values) >= FPS_FLOOR * fps,
    }


def print_table(rows: list[dict], fps: int) -> None:
    base = rows[0]
    header = (
        f"{'N':>3} {'srv CPU':>8} {'CPU/sess':>8} {'vs N*base':>9} {'cli CPU':>8} "
        f"{'down loss':>9} {'up loss':>8} {'worst':>7} {'echo fps':>11} "
        f"{'RTT p50':>8} {'RTT p95':>8} {'loss<1%':>7} {'fps>=' + format(FPS_FLOOR, '.0%'):>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        vs_base = r["server_cpu"] / (r["n"] * base["server_cpu"]) if base["server_cpu"] else math.nan
        print(
            f"{r['n']:>3} {r['server_cpu']:>7.0%} {r['server_cpu'] / r['n']:>7.1%} {vs_base:>8.2f}x "
            f"{r['client_cpu']:>7.0%} {r['down_loss']:>8.2%} {r['up_loss']:>7.2%} "
            f"{r['worst_session_loss']:>6.2%} {r['fps_mean']:>5.1f}/{r['fps_min']:<5.1f} "
            f"{r['rtt_p50'] * 1000:>6.1f}ms {r['rtt_p95'] * 1000:>6.1f}ms "
            f"{'yes' if r['ok_loss'] else 'NO':>7} {'yes' if r['ok_fps'] else 'NO':>8}"
        )
    def largest(ok) -> int:  # largest N such that it and every smaller level passed
        held = 0
        for r in rows:
            if not ok(r):
                break
            held = r["n"]
        return held

    held_loss = largest(lambda r: r["ok_loss"])
    held_both = largest(lambda r: r["ok_loss"] and r["ok_fps"])
    print()
    print(f"baseline (N=1): server CPU {base['server_cpu']:.1%}, loss "
          f"down {base['down_loss']:.2%} / up {base['up_loss']:.2%}, "
          f"RTT p50 {base['rtt_p50'] * 1000:.1f} ms")
    print(f"largest N with loss < 1 % (and at every smaller N): {held_loss}")
    print(f"largest N held, i.e. also echoed video >= {FPS_FLOOR:.0%} of {fps} fps: {held_both}"
          f" = {held_both} x the baseline session on one core")


async def run_server(args: argparse.Namespace) -> None:
    from teleconsult.precall.peer import EchoPeers

    started = time.perf_counter()
    pinned = pin_to(SERVER_CORE)
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), "--role", "client",
        "--width", str(args.width), "--height", str(args.height),
        "--fps", str(args.fps), "--bitrate", str(args.bitrate),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        limit=64 * 1024 * 1024,
    )

    async def hear() -> dict:
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        if not line:
            raise RuntimeError("client process ended")
        return json.loads(line)

    async def tell(obj: dict) -> None:
        child.stdin.write(json.dumps(obj).encode() + b"\n")
        await child.stdin.drain()

    ready = await hear()
    print(
        f"cores: {os.cpu_count()}, server pinned to core {SERVER_CORE}: {pinned}, "
        f"clients pinned to core {CLIENT_CORE}: {ready['pinned']}"
    )
    print(
        f"each client sends {args.width}x{args.height} VP8 at {args.fps} fps "
        f"(~{ready['clip_kbps']} kbit/s) + Opus 20 ms, pings every {PING_INTERVAL * 1000:.0f} ms; "
        f"warm-up {args.warmup} s, window {args.duration} s"
    )
    print()
    rows: list[dict] = []
    per_level = args.warmup + args.duration + 2

    async def run_level(n: int) -> dict:
        peers = EchoPeers(max_sessions=n, max_duration_seconds=300, ice_servers=[])
        try:
            await tell({"cmd": "level", "n": n, "warmup": args.warmup, "duration": args.duration})
            offers = (await hear())["offers"]
            answers = [await peers.answer(**offer) for offer in offers]
            await tell({"answers": answers})
            assert (await hear())["event"] == "measuring"
            cpu0, wall0 = time.process_time(), time.perf_counter()
            result = await asyncio.wait_for(hear(), args.duration + 60)
            cpu1, wall1 = time.process_time(), time.perf_counter()
        finally:
            await peers.close_all()
        row = summarise(n, result, (cpu1 - cpu0) / (wall1 - wall0), args.fps)
        rows.append(row)
        print(
            f"  N={n}: server CPU {row['server_cpu']:.0%}, loss down {row['down_loss']:.2%} "
            f"up {row['up_loss']:.2%}, echo fps {row['fps_mean']:.1f}",
            flush=True,
        )
        return row

    def holds(row: dict) -> bool:
        return row["ok_loss"] and row["ok_fps"]

    def affordable(n: int) -> bool:
        if time.perf_counter() - started + per_level * (1 + n / 8) > args.budget:
            print(f"  (skipping N={n}: time budget of {args.budget:.0f} s)")
            return False
        return True

    try:
        # Ramp up 1, 2, 4, 8, ... until a level does not hold ...
        good, bad, n = 0, None, 1
        while n <= args.max_sessions and affordable(n):
            if holds(await run_level(n)):
                good, n = n, n * 2
            else:
                bad = n
                break
        # ... then bisect between the last level that held and the first that did not.
        while args.refine and bad is not None and bad - good > 1:
            n = (good + bad) // 2
            if not affordable(n):
                break
            if holds(await run_level(n)):
                good = n
            else:
                bad = n
        rows.sort(key=lambda r: r["n"])
        await tell({"cmd": "quit"})
        await asyncio.wait_for(child.wait(), 15)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    print()
    print_table(rows, args.fps)
    print(f"\ntotal runtime {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="measurement window per level, s")
    parser.add_argument("--warmup", type=float, default=3.0, help="settling time per level, s")
    parser.add_argument("--max-sessions", type=int, default=32)
    parser.add_argument("--budget", type=float, default=170.0, help="stop the ramp after this many s")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=800_000, help="client video bit rate, bit/s")
    parser.add_argument("--no-refine", dest="refine", action="store_false",
                        help="do not bisect between the last good and the first bad level")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--role", choices=["server", "client"], default="server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(run_client(args) if args.role == "client" else run_server(args))


if __name__ == "__main__":
    main()
