"""The Ansible playbook (ansible/), converged into a Debian 12 tree made by debootstrap over the
`community.general.chroot` connection, as root.

What runs for real: the playbook with the roles teleconsult_app (the wheel built from this
checkout, its virtual environment, the hardened unit), teleconsult_nginx, teleconsult_prosody
(Debian's own prosody with our module) and teleconsult_backup; nginx -t, prosodyctl,
systemd-analyze and the installed app inside the tree.
What cannot run here, said plainly: Jitsi's packages (their apt repository is unreachable from
this machine), so teleconsult_jitsi_install is false and the Jitsi tasks are only checked by
`--syntax-check` (and by ansible-lint in .ci/run); systemd does not run in a chroot, so the roles
enable units without starting them and the test starts the installed app itself; the firewall
role is not converged (nft -c needs the kernel's netfilter, which a test machine may not lend).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import free_port
from debian_tree import cached_tree, prepared_copy, run_in

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE_DIR = ROOT / "ansible"
ANSIBLE_BIN = Path(os.environ.get("TELECONSULT_ANSIBLE_BIN") or ROOT / ".venv-ansible" / "bin")
TAGS = "teleconsult,nginx,prosody,backup"

pytestmark = pytest.mark.timeout(900)


def _ansible_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELECONSULT_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return env


def _playbook(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    assert (ANSIBLE_BIN / "ansible-playbook").exists(), (
        f"{ANSIBLE_BIN}/ansible-playbook is missing: .ci/run installs the PyPI ansible package there")
    result = subprocess.run([str(ANSIBLE_BIN / "ansible-playbook"), *args], cwd=ANSIBLE_DIR, env=_ansible_env(),
                            capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result


def _recap(output: str) -> dict[str, int]:
    line = re.search(r"^tree\s*:\s*(.*)$", output, re.MULTILINE).group(1)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


@dataclass
class Converged:
    tree: Path
    inventory: Path
    variables: Path
    secrets: dict[str, str]
    first: subprocess.CompletedProcess
    second: subprocess.CompletedProcess
    timings: dict[str, float]


@pytest.fixture(scope="module")
def converged(tmp_path_factory):
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.fail("this test needs root and debootstrap (.ci/run installs it)")
    work = tmp_path_factory.mktemp("ansible")
    started = time.monotonic()
    base = cached_tree()
    timings = {"tree": time.monotonic() - started}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = (work / "dist").glob("teleconsult-*.whl")
    version = wheel.name.split("-")[1]
    with prepared_copy(base, work / "tree") as tree:
        inventory = work / "hosts.yml"
        inventory.write_text(
            "teleconsult:\n  hosts:\n    tree:\n"
            "      ansible_connection: community.general.chroot\n"
            f"      ansible_host: {tree}\n"
            "      ansible_python_interpreter: /usr/bin/python3\n")
        keys = ("jitsi_app_secret", "session_secret", "jitsi_events_secret", "turn_secret", "metrics_token")
        made = {k: secrets.token_urlsafe(36) for k in keys}
        variables = work / "vars.yml"
        variables.write_text("\n".join([
            f"teleconsult_app_version: '{version}'",
            f"teleconsult_app_wheel: {wheel}",
            "teleconsult_app_domain: consult.example.test",
            "teleconsult_app_jitsi_domain: meet.example.test",
            f"teleconsult_app_jitsi_app_secret: '{made['jitsi_app_secret']}'",
            f"teleconsult_app_session_secret: '{made['session_secret']}'",
            f"teleconsult_app_jitsi_events_secret: '{made['jitsi_events_secret']}'",
            f"teleconsult_app_metrics_token: '{made['metrics_token']}'",
            # Jitsi's apt repository is unreachable here: the one switch that skips Jitsi's packages.
            "teleconsult_jitsi_install: false",
            "teleconsult_nginx_domain: consult.example.test",
            "teleconsult_nginx_certificate: selfsigned",
            "teleconsult_prosody_jitsi_domain: meet.example.test",
            "teleconsult_prosody_events_url: https://consult.example.test/api/jitsi/events",
            f"teleconsult_prosody_events_secret: '{made['jitsi_events_secret']}'",
            f"teleconsult_backup_dir: /var/backups/teleconsult",
            ""]))
        args = ["-i", str(inventory), "-e", f"@{variables}", "--tags", TAGS, "site.yml"]
        t0 = time.monotonic()
        first = _playbook(*args)
        timings["first converge"] = time.monotonic() - t0
        t0 = time.monotonic()
        second = _playbook(*args)
        timings["second converge"] = time.monotonic() - t0
        print("\nansible timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
        yield Converged(tree, inventory, variables, made, first, second, timings)


def test_the_first_converge_installs_and_a_second_converge_changes_nothing(converged):
    assert _recap(converged.first.stdout)["changed"] > 10
    recap = _recap(converged.second.stdout)
    assert recap["changed"] == 0 and recap["failed"] == 0, converged.second.stdout[-6000:]


def test_the_unit_passes_systemd_analyze_verify_and_its_exposure_is_at_most_2(converged):
    unit = "/etc/systemd/system/teleconsult.service"
    verify = run_in(converged.tree, ["systemd-analyze", "verify", unit])
    assert verify.returncode == 0, verify.stderr
    security = run_in(converged.tree, ["systemd-analyze", "security", "--offline=true", "--no-pager", unit])
    exposure = float(re.search(r"Overall exposure level for teleconsult.service: ([0-9.]+)", security.stdout).group(1))
    print(f"\nexposure of teleconsult.service: {exposure}")
    assert exposure <= 2.0, security.stdout


def test_the_secrets_live_in_a_root_only_file_handed_over_by_loadcredential_never_in_the_unit(converged):
    settings = converged.tree / "etc/teleconsult/teleconsult.toml"
    status = settings.stat()
    assert (status.st_uid, status.st_mode & 0o777) == (0, 0o600)
    text = settings.read_text()
    unit = (converged.tree / "etc/systemd/system/teleconsult.service").read_text()
    for value in converged.secrets.values():
        assert value not in unit
    for name in ("jitsi_app_secret", "session_secret", "jitsi_events_secret", "metrics_token"):
        assert converged.secrets[name] in text
    assert "LoadCredential=teleconsult.toml:/etc/teleconsult/teleconsult.toml" in unit
    assert "--config %d/teleconsult.toml" in unit
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "PrivateDevices=yes", "SystemCallFilter=@system-service", "UMask=0077", "StateDirectory=teleconsult"):
        assert line in unit.splitlines(), line
    # --diff never shows the secrets: the tasks that write them turn diff off.
    diff = _playbook("-i", str(converged.inventory), "-e", f"@{converged.variables}", "--tags", TAGS,
                     "--check", "--diff", "site.yml")
    assert _recap(diff.stdout)["changed"] == 0, diff.stdout[-6000:]
    for value in converged.secrets.values():
        assert value not in diff.stdout


def test_nginx_accepts_the_site_which_streams_uploads_unbuffered_with_hsts_and_logs_no_path_or_address(converged):
    check = run_in(converged.tree, ["nginx", "-t"])
    assert check.returncode == 0, check.stderr
    site = (converged.tree / "etc/nginx/sites-available/teleconsult.conf").read_text()
    for line in ("proxy_request_buffering off;", "proxy_buffering off;", "client_max_body_size 101m;",
                 "access_log off;", "listen 443 ssl http2;",
                 'add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;',
                 "proxy_set_header Upgrade $http_upgrade;"):
        assert line in site, line
    assert os.readlink(converged.tree / "etc/nginx/sites-enabled/teleconsult.conf") == "/etc/nginx/sites-available/teleconsult.conf"
    assert not os.path.lexists(converged.tree / "etc/nginx/sites-enabled/default")
    assert re.search(r"^\s*access_log off;", (converged.tree / "etc/nginx/nginx.conf").read_text(), re.MULTILINE)
    formats = re.findall(r"log_format[^;]*;", site)
    assert formats and not any(v in f for f in formats for v in ("$remote_addr", "$request ", "$request_uri", "$uri"))


def test_prosody_accepts_the_jitsi_domain_with_teleconsult_events_on_its_muc_component(converged):
    check = run_in(converged.tree, ["prosodyctl", "check", "config"])
    assert check.returncode == 0 and "All checks passed" in check.stdout, check.stdout + check.stderr
    installed = converged.tree / "usr/local/share/teleconsult/prosody/mod_teleconsult_events.lua"
    assert installed.read_bytes() == (ROOT / "jitsi_plugin/mod_teleconsult_events.lua").read_bytes()
    config = (converged.tree / "etc/prosody/conf.avail/meet.example.test.cfg.lua").read_text()
    muc = config.split('Component "conference.meet.example.test" "muc"')[1]
    assert '"teleconsult_events";' in muc
    assert 'teleconsult_events_url = "https://consult.example.test/api/jitsi/events"' in muc
    assert f'teleconsult_events_secret = "{converged.secrets["jitsi_events_secret"]}"' in muc
    assert not re.search(r'^\s*"(muc_allowners|muc_wait_for_host|muc_lobby_rooms)"', config, re.MULTILINE)


def test_the_installed_app_answers_healthz_and_login_and_the_admin_command_creates_the_first_clinician(converged):
    port = free_port()
    server = subprocess.Popen(["chroot", str(converged.tree), "teleconsult-admin", "serve", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    assert r.status == 200 and b'"database": "ok"' in r.read()
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the app did not start"
                time.sleep(0.5)
        with urllib.request.urlopen(base + "/login", timeout=5) as r:
            page = r.read().decode()
            assert r.status == 200 and 'lang="fr"' in page and "Mot de passe" in page
        added = run_in(converged.tree, ["teleconsult-admin", "clinician", "add", "marie@example.test",
                                        "--name", "Dr Marie Curie"], input="a long enough password, really\n")
        assert added.returncode == 0, added.stdout + added.stderr
        listed = run_in(converged.tree, ["teleconsult-admin", "clinician", "list"])
        assert listed.stdout.startswith("marie@example.test\tDr Marie Curie\t"), listed.stdout + listed.stderr
        backup = run_in(converged.tree, ["teleconsult-backup"])
        assert backup.returncode == 0, backup.stderr
        [copy] = (converged.tree / "var/backups/teleconsult").glob("teleconsult-*.sqlite3")
        assert copy.stat().st_mode & 0o077 == 0
    finally:
        # Stop the app as systemd would (SIGTERM to the app alone); the admin wrapper then exits and
        # removes its private copy of the settings.
        app = subprocess.run(["pgrep", "-s", str(server.pid), "-f", "venv/bin/teleconsult serve"],
                             capture_output=True, text=True).stdout.split()
        for pid in app:
            os.kill(int(pid), signal.SIGTERM)
        try:
            output = server.communicate(timeout=20)[0].decode()
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            output = server.communicate(timeout=5)[0].decode()
    assert "Traceback" not in output, output
    leftovers = [p for p in (converged.tree / "tmp").rglob("teleconsult.toml")]
    assert leftovers == []
    data = converged.tree / "var/lib/teleconsult"
    assert data.stat().st_mode & 0o077 == 0


def test_the_backup_units_verify(converged):
    for unit in ("teleconsult-backup.service", "teleconsult-backup.timer"):
        verify = run_in(converged.tree, ["systemd-analyze", "verify", f"/etc/systemd/system/{unit}"])
        assert verify.returncode == 0, verify.stderr


def test_the_playbook_refuses_a_jitsi_app_secret_that_jitsis_installer_would_refuse(converged):
    bad = "a/" + secrets.token_urlsafe(36)
    result = _playbook("-i", str(converged.inventory), "-e", f"@{converged.variables}", "-e",
                       f"teleconsult_app_jitsi_app_secret={bad}", "--tags", "teleconsult", "site.yml", check=False)
    assert result.returncode != 0
    assert "may not contain" in result.stdout and bad not in result.stdout + result.stderr
    assert _recap(result.stdout)["changed"] == 0


def test_the_whole_playbook_jitsi_tasks_included_passes_syntax_check():
    result = _playbook("-i", "inventory.example/hosts.yml", "--syntax-check", "site.yml")
    assert "playbook: site.yml" in result.stdout
    listed = _playbook("-i", "inventory.example/hosts.yml", "--list-tasks", "--tags", "jitsi", "site.yml").stdout
    assert "Add Jitsi's apt repository" in listed and "Jicofo decides no owner itself" in listed
