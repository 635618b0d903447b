#!/usr/bin/env python
"""Consultations created per second, and their latency, with one and with two `teleconsult
serve` instances on one PostgreSQL database, against one instance on SQLite: all measured in the
same run, in alternating rounds (issue 15).

- sqlite x1: one instance, SQLite (WAL, synchronous=NORMAL) in its data directory: the baseline;
- postgresql x1, postgresql x2: one, then two instances on the same database of a throwaway
  PostgreSQL cluster (Debian's package, tests/postgres_cluster.py) run with PostgreSQL's own
  durability defaults (fsync, full_page_writes and synchronous_commit on: what a host runs).
  With two instances this client sends its requests to each in turn (round robin: what a load
  balancer without sticky sessions does; no load balancer process here).

Each round sends --requests POST /api/consultations (createConsultation, Bearer API token) with
--concurrency requests in flight at once, and measures the rate (created / wall time) and each
request's latency (p50, p99) from this client. Nothing is pinned: the servers, PostgreSQL and this
client share the machine's cores (two here), so "x2" shows what a second instance costs or gains
on one machine, not what a second machine would give.

    .venv/bin/python bench/instances.py [--requests 600] [--concurrency 16] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psycopg

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "bench", ROOT / "tests", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import postgres_cluster  # noqa: E402  (tests/: the throwaway cluster)
from transfer_servers import TELECONSULT, Server, free_port, teleconsult_env  # noqa: E402


def start_instances(data_dir: Path, count: int, database_url: str | None) -> tuple[list[Server], str]:
    """`count` instances on one database (SQLite in data_dir when database_url is None), and the
    API token of a clinician made by the CLI."""
    env = teleconsult_env(data_dir, free_port(), 16)
    if database_url:
        env["TELECONSULT_DATABASE_URL"] = database_url
    run = dict(env=env, capture_output=True, text=True, check=True, timeout=120)
    subprocess.run([TELECONSULT, "clinician", "add", "bench@example.org", "--name", "Dr Bench"],
                   input="a long enough bench password\n", **run)
    token = subprocess.run([TELECONSULT, "clinician", "token", "bench@example.org"], **run).stdout.strip()
    servers = []
    for n in range(count):
        port = free_port()
        servers.append(Server(f"{data_dir.name}-{n}", [TELECONSULT, "serve"], {**env, "TELECONSULT_PORT": str(port)},
                              port, data_dir.parent / f"{data_dir.name}-{n}.log"))
    for server in servers:  # Server pins to one core: here the instances share every core
        os.sched_setaffinity(server.process.pid, range(os.cpu_count() or 1))
    return servers, token


async def round_of(servers: list[Server], token: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    auth = {"Authorization": f"Bearer {token}"}
    targets = itertools.cycle(servers)
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def worker(count: int) -> None:
            nonlocal errors
            for _ in range(count):
                server = next(targets)
                started = time.perf_counter()
                async with session.post(server.url + "/api/consultations", headers=auth) as r:
                    await r.read()
                    if r.status != 201:
                        errors += 1
                latencies.append(time.perf_counter() - started)
        shares = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in shares))
        elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{errors} of {requests} creations failed")
    return requests / elapsed, latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class DurableCluster(postgres_cluster.Cluster):
    """The tests' throwaway cluster with PostgreSQL's durability defaults back (the tests turn
    fsync, full_page_writes and synchronous_commit off on its command line)."""
    UNSAFE = {"fsync=off", "full_page_writes=off", "synchronous_commit=off"}

    def _command(self, *args: str) -> list[str]:
        kept: list[str] = []
        for arg in args:
            if arg in self.UNSAFE and kept and kept[-1] == "-c":
                kept.pop()
                continue
            kept.append(arg)
        return super()._command(*kept)


async def main(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-instances-"))
    cluster = DurableCluster().start()
    # (setup, instances, database, synchronous_commit): "off" loses the last commits on a power cut
    # but never corrupts, which is what SQLite's synchronous=NORMAL promises
    plan = [("sqlite x1", 1, None, None), ("postgresql x1", 1, "pg1", "on"), ("postgresql x2", 2, "pg2", "on"),
            ("postgresql x2, synchronous_commit=off", 2, "pg3", "off")]
    setups = [name for name, *_ in plan]
    running = {}
    try:
        with psycopg.connect(cluster.url("postgres", driver=False), autocommit=True) as conn:
            settings = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in ("fsync", "full_page_writes")}
        for name, count, database, synchronous in plan:
            url = cluster.database_for(str(work / database)) if database else None
            if url:
                with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
                    conn.execute(f"ALTER DATABASE {conn.info.dbname} SET synchronous_commit = {synchronous}")
            running[name] = start_instances(work / name.replace(" ", "-").replace(",", "").replace("=", "-"),
                                            count, url)
        async with aiohttp.ClientSession() as session:
            for servers, _ in running.values():
                for server in servers:
                    await server.ready(session)
        for servers, token in running.values():  # warm-up: connections, caches, first queries
            await round_of(servers, token, min(100, args.requests), args.concurrency)
        rates: dict[str, list[float]] = {name: [] for name in setups}
        latencies: dict[str, list[float]] = {name: [] for name in setups}
        for _ in range(args.reps):
            for name, (servers, token) in running.items():
                rate, times = await round_of(servers, token, args.requests, args.concurrency)
                rates[name].append(rate)
                latencies[name].extend(times)
    finally:
        for servers, _ in running.values():
            for server in servers:
                server.stop()
        cluster.stop()
    print(f"{args.reps} alternating rounds of {args.requests} createConsultation, {args.concurrency} in flight; "
          f"PostgreSQL {settings}; cpus: {os.cpu_count()}; load average at the end: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    base = statistics.median(rates["sqlite x1"])
    print("| setup | created/s (median) | vs sqlite x1 | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for name in setups:
        rate = statistics.median(rates[name])
        print(f"| {name} | {rate:.0f} | {rate / base:.2f} | {percentile(latencies[name], 50) * 1000:.1f} | "
              f"{percentile(latencies[name], 99) * 1000:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
