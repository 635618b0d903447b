"""The `teleconsult` command, run as a real process against real SQLite files."""

import asyncio
import base64
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

import postgres_cluster
import stored
from conftest import TEST_JITSI_SECRET, TEST_SECRET, free_port, make_settings

# the installed console script, as a host runs it
TELECONSULT = [str(Path(sys.executable).parent / "teleconsult")]


def _env(data_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update(postgres_cluster.cli_environ(data_dir))
    env.update({"TELECONSULT_DATA_DIR": str(data_dir), "TELECONSULT_SESSION_SECRET": TEST_SECRET,
                "TELECONSULT_JITSI_DOMAIN": "meet.example.org", "TELECONSULT_JITSI_APP_ID": "tc",
                "TELECONSULT_JITSI_APP_SECRET": TEST_JITSI_SECRET, **extra})
    return env


def run(args, env, stdin="", check=True):
    result = subprocess.run(TELECONSULT + args, env=env, input=stdin, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


async def wait_until_up(session: aiohttp.ClientSession, base: str) -> None:
    """A `teleconsult serve` process started: wait for its /healthz (15 s at most)."""
    for _ in range(150):
        try:
            async with session.get(base + "/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the server did not start")


def test_check_says_what_is_wrong_when_secrets_are_missing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update(postgres_cluster.cli_environ(tmp_path))
    result = run(["check", "--data-dir", str(tmp_path)], env, check=False)
    assert result.returncode == 2
    assert "session_secret is required" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_says_which_call_engine_the_configuration_selects(tmp_path):
    direct = run(["check"], _env(tmp_path / "a", TELECONSULT_JITSI_DOMAIN="", TELECONSULT_JITSI_APP_ID="",
                                 TELECONSULT_JITSI_APP_SECRET=""))
    assert "Call engine: direct one-to-one browser call" in direct.stdout
    assert "no STUN/TURN server" in direct.stdout
    jitsi = run(["check"], _env(tmp_path / "b"))
    assert "Call engine: Jitsi at https://meet.example.org" in jitsi.stdout
    demo = run(["check"], {**{k: v for k, v in _env(tmp_path / "c").items() if "JITSI" not in k}, "TELECONSULT_DEMO": "true"})
    assert "Call engine: direct" in demo.stdout and "meet.invalid" not in demo.stdout


def test_serve_refuses_to_start_without_secrets(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update(postgres_cluster.cli_environ(tmp_path))
    result = run(["serve", "--data-dir", str(tmp_path), "--port", str(free_port())], env, check=False)
    assert result.returncode == 2 and "session_secret is required" in result.stderr


def test_check_masks_secrets_and_confirms_the_database(tmp_path):
    result = run(["check"], _env(tmp_path))
    assert TEST_SECRET not in result.stdout and "session_secret = '***'" in result.stdout
    assert "database reachable" in result.stdout


def test_clinician_add_reads_the_password_from_stdin_or_prints_a_generated_one(tmp_path):
    env = _env(tmp_path)
    result = run(["clinician", "add", "a@example.org", "--name", "Dr A"], env, stdin="a long enough password\n")
    assert "created" in result.stdout and "a long enough password" not in result.stdout
    result = run(["clinician", "add", "b@example.org", "--name", "Dr B"], env, stdin="")
    assert re.search(r"Password \(shown once\): \S{12,}", result.stdout)
    again = run(["clinician", "add", "a@example.org", "--name", "Dr A"], env, stdin="another password ok\n", check=False)
    assert again.returncode == 1 and "already exists" in again.stderr


async def test_cli_and_a_running_server_share_the_database(tmp_path):
    port = free_port()
    env = _env(tmp_path, TELECONSULT_PORT=str(port))
    run(["clinician", "add", "dr@example.org", "--name", "Dr C"], env, stdin="a long enough password\n")
    server = subprocess.Popen(TELECONSULT + ["serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            await wait_until_up(http, base)
            token = run(["clinician", "token", "dr@example.org"], env).stdout.strip()
            link = run(["consultation", "new", "--clinician", "dr@example.org"], env).stdout.strip()
            match = re.fullmatch(re.escape(base) + r"/j/([\w-]+)#([\w-]+)", link)
            assert match, link
            secret = base64.urlsafe_b64decode(match.group(2) + "==")
            assert len(secret) == 32
            async with http.get(base + "/api/consultations", headers={"Authorization": f"Bearer {token}"}) as r:
                items = (await r.json())["consultations"]
            assert [c["patient_url"] for c in items] == [link.split("#")[0]]
            assert match.group(2) not in str(items)
            async with http.get(link.split("#")[0]) as r:
                assert r.status == 200
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0].decode()
    # access lines name routes, never the patient link's token
    assert "patient_join" in output
    assert match.group(1) not in output


def test_serve_demo_prints_how_to_log_in_and_its_start_up_stays_under_110_mib(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    env.update(postgres_cluster.cli_environ(tmp_path))
    server = subprocess.Popen(TELECONSULT + ["serve", "--demo", "--data-dir", str(tmp_path), "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.time() + 30
        while time.time() < deadline:
            line = server.stdout.readline()
            lines.append(line)
            if "Running on" in line:
                break
        text = "".join(lines)
        assert "demo@teleconsult.invalid" in text and re.search(r"password: \S{12,}", text)
        assert (tmp_path / "demo-secrets.toml").exists()
        # the demo clinician is in the database (the data directory's SQLite file, or PostgreSQL's)
        assert stored.query(make_settings(tmp_path).sqlalchemy_url, "SELECT email FROM clinicians") == [
            ("demo@teleconsult.invalid",)]
        # the demo password's argon2 hash (64 MiB) is made in a child: the server's peak stays low
        status = Path(f"/proc/{server.pid}/status").read_text()
        peak_kib = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
        assert peak_kib < 110 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_subcommand_built_alone_has_the_same_options_and_help_as_in_the_whole_command_line():
    """`teleconsult drop ...` builds only its own subcommand (a faster start): nothing a user
    sees may differ from the whole parser's, for any subcommand."""
    from teleconsult.cli.parser import SUBCOMMANDS, build_parser

    def subcommands(parser):
        choices = next(a for a in parser._actions if a.dest == "command").choices
        return {name: sub.format_help() for name, sub in choices.items()}

    whole = subcommands(build_parser())
    assert list(whole) == list(SUBCOMMANDS)
    for name in SUBCOMMANDS:
        assert subcommands(build_parser(name)) == {name: whole[name]}
