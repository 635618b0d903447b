#!/usr/bin/env python
"""Start-up of the `teleconsult` command, against the bare interpreter in the same run.

Each figure is the median of --reps launches, all interleaved (so that the machine's load falls
on every variant alike), the launcher pinned to the client core (bench/cores.py):

* python -c pass: the interpreter alone, the one the console script runs (its site included);
* python -c "import aiohttp, cryptography AES-GCM": what any drop client must load;
* teleconsult --help: until it exits;
* teleconsult drop send FILE / drop get LINK: until the command's first connection reaches a
  listening socket here (the moment it starts transferring); the command is then stopped.

The commands are those a host runs: each checkout's wheel installed in a virtual environment of
its own (bench/installed.py). With --editable, this venv's interpreter with each checkout first on
PYTHONPATH instead (a developer's checkout; its editable install's path finder costs ~11 ms a
launch). With --compare DIR, the same commands also run from another checkout (e.g. main
before a change): "before" and "after" in one run.

    .venv/bin/python bench/cli_startup.py [--reps 15] [--compare /path/to/other/checkout] [--editable]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from cores import CLIENT_CORE, pin_to  # noqa: E402
from installed import command_env, installed_command  # noqa: E402

LAUNCH_CLI = "import sys; from teleconsult.cli import main; sys.exit(main())"  # what the console script does


def time_to_exit(argv: list[str], env: dict, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def time_to_connect(argv: list[str], env: dict, cwd: Path, listener: socket.socket) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listener.settimeout(30)
    connection, _ = listener.accept()
    elapsed = time.perf_counter() - started
    connection.close()
    process.kill()  # it has started transferring: that is all that is measured
    process.wait(timeout=30)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--compare", metavar="DIR", help="another checkout to run the same commands from")
    parser.add_argument("--editable", action="store_true", help="this venv's interpreter, each checkout on PYTHONPATH")
    args = parser.parse_args()
    pin_to(CLIENT_CORE)
    work = Path(tempfile.mkdtemp())
    (work / "note.txt").write_bytes(os.urandom(1024))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    server = f"http://127.0.0.1:{listener.getsockname()[1]}"
    link = f"{server}/d/{'A' * 22}#{'B' * 43}"
    py = sys.executable
    trees = {"this": ROOT} | ({"compare": Path(args.compare).resolve()} if args.compare else {})
    commands = {name: [py, "-c", LAUNCH_CLI] if args.editable else [str(installed_command(tree, work, name))]
                for name, tree in trees.items()}
    if not args.editable:
        py = str(Path(commands["this"][0]).parent / "python")
        trees = dict.fromkeys(trees)  # nothing on PYTHONPATH: the installed packages run
    variants = {
        "python -c pass": ("exit", [py, "-c", "pass"], None),
        "python: import aiohttp + AES-GCM": (
            "exit", [py, "-c", "import aiohttp; from cryptography.hazmat.primitives.ciphers.aead import AESGCM"], None),
    }
    for name, tree in trees.items():
        cli = commands[name]
        variants[f"[{name}] teleconsult --help"] = ("exit", cli + ["--help"], tree)
        variants[f"[{name}] drop send (to first connection)"] = (
            "connect", cli + ["drop", "send", "note.txt", "--server", server], tree)
        variants[f"[{name}] drop get (to first connection)"] = ("connect", cli + ["drop", "get", link], tree)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(args.reps + 1):  # the first round (bytecode written) is not counted
        for name, (kind, argv, tree) in variants.items():
            env = command_env(tree) | {"TELECONSULT_API_TOKEN": "tc_bench"}
            if kind == "exit":
                elapsed = time_to_exit(argv, env, work)
            else:
                elapsed = time_to_connect(argv, env, work, listener)
            if rep:
                samples[name].append(elapsed)
    floor = statistics.median(samples["python -c pass"])
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()}); reps={args.reps}")
    print(f"{'variant':48s} {'median ms':>10s} {'p90 ms':>8s} {'x python':>9s}")
    for name, values in samples.items():
        ordered = sorted(values)
        median = statistics.median(values)
        print(f"{name:48s} {median * 1000:10.0f} {ordered[int(len(ordered) * 0.9)] * 1000:8.0f} "
              f"{median / floor:9.2f}")
    if args.compare:
        for command in ("teleconsult --help", "drop send (to first connection)", "drop get (to first connection)"):
            before = statistics.median(samples[f"[compare] {command}"])
            after = statistics.median(samples[f"[this] {command}"])
            print(f"{command}: this / compare = {after / before:.2f}")


if __name__ == "__main__":
    main()
