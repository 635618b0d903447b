#!/usr/bin/env python
"""How many simultaneous pre-call echo sessions one core holds.

The server side is this process: one teleconsult.precall.peer.EchoPeers, pinned to
one core. The browsers are aiortc peers in a child process pinned to the other
(bench/precall_clients.py)
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
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path


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
        sys.executable, str(Path(__file__).resolve().parent / "precall_clients.py"),
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
    asyncio.run(run_server(parser.parse_args()))


if __name__ == "__main__":
    main()
