"""The `teleconsult` command imports only what the subcommand given needs: `--help` (and any usage
error) builds the whole argparse tree from teleconsult/cli/parser.py alone, and `drop send/get`
load the drop box's blocking client (http.client and cryptography), never the server's side (the
database, the web app, argon2, the PDF renderer, WebRTC) nor aiohttp and asyncio: importing
aiohttp alone (its TLS contexts, built at import) took 0.25-0.6 s here, the whole budget for
starting a transfer (300 ms). Asserted on the modules loaded, which does not depend on the
machine's speed; the start-up times are in bench/cli_startup.py and docs/benchmarks.md."""

import json
import subprocess
import sys

from conftest import free_port

SERVER_SIDE = ("sqlalchemy", "alembic", "argon2", "aiohttp.web", "aiortc", "reportlab", "jinja2", "magic", "babel",
               "teleconsult.db", "teleconsult.web", "teleconsult.accounts", "teleconsult.documents",
               "teleconsult.cli.commands")
DROP_CLIENT = ("cryptography", "filedrop.client.blocking", "filedrop.ece", "teleconsult.cli.drop")
# what the drop commands used to load and that alone cost more than the start-up budget
HEAVY_CLIENT = ("aiohttp", "asyncio", "yarl", "multidict", "aiodns", "pycares", "attr",
                "filedrop.client.transport", "filedrop.client.sending", "filedrop.client.receiving")

# runs the console script's function as a host runs it, then lists every module loaded
RUN = """
import json, sys
from teleconsult.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:
    status = exc.code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded(*args: str, cwd=None) -> tuple[int, set[str]]:
    result = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    report = json.loads(result.stderr.strip().splitlines()[-1])
    return report["status"], set(report["modules"])


def under(modules: set[str], prefixes) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)}


def test_help_loads_neither_the_server_side_nor_the_drop_client():
    for args in (["--help"], ["drop", "--help"], ["drop", "send", "--help"], ["serve", "--help"], []):
        status, modules = loaded(*args)
        assert status in (0, 2), (args, status)  # help, or a usage error for no subcommand
        assert under(modules, SERVER_SIDE + DROP_CLIENT + HEAVY_CLIENT) == set(), args


def test_drop_send_and_get_load_the_blocking_drop_client_and_neither_aiohttp_asyncio_nor_the_server(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: the transfer starts, then fails
    (tmp_path / "note.txt").write_text("hello")
    runs = [("drop", "send", "note.txt", "--server", closed, "--token", "tc_x"),
            ("drop", "get", f"{closed}/d/{'A' * 22}#{'B' * 43}")]
    for args in runs:
        status, modules = loaded(*args, cwd=tmp_path)
        assert status == 1, args  # "cannot reach the server"
        assert set(DROP_CLIENT) <= modules, args
        assert under(modules, SERVER_SIDE) == set(), args
        assert under(modules, HEAVY_CLIENT) == set(), args


def test_other_subcommands_still_load_what_they_use(tmp_path):
    status, modules = loaded("jitsi-files", str(tmp_path / "out"))
    assert status == 0
    assert "teleconsult.cli.commands" in modules and (tmp_path / "out").is_dir()


SERVE_SQLITE = """
import asyncio, json, sys
from teleconsult.services import open_services
from teleconsult.settings import load_settings

async def main():
    settings = load_settings(None, {"data_dir": sys.argv[1], "session_secret": "s" * 48, "jitsi_domain": "meet.example.org",
                                    "jitsi_app_id": "test", "jitsi_app_secret": "j" * 48}, environ={})
    async with open_services(settings):
        pass

asyncio.run(main())
print(json.dumps(sorted(sys.modules)))
"""


def test_a_server_on_sqlite_does_not_load_the_postgresql_driver(tmp_path):
    """psycopg costs 10 MiB of memory, and `serve --demo` must peak under 110 MiB (tests/test_cli.py)."""
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    result = subprocess.run([sys.executable, "-c", SERVE_SQLITE, str(tmp_path)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    modules = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "teleconsult.services" in modules and "aiosqlite" in modules
    assert under(modules, ("psycopg", "psycopg_pool", "teleconsult.live_postgres")) == set()
