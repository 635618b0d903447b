"""The product as a host installs it: a wheel built from this checkout, installed into an empty
virtual environment without the test extras, run from a directory outside the checkout.

The editable install that the other tests use reads templates/ and static/ from the checkout and
has the test extras beside it (Playwright brings greenlet): neither hides anything here.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import aiohttp
import pytest

from conftest import free_port
from test_cli import wait_until_up

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {"templates": "teleconsult/templates", "static": "teleconsult/static",
           "jitsi_plugin": "teleconsult/jitsi_plugin"}
CODE = ("teleconsult", "filedrop")

pytestmark = pytest.mark.timeout(900)


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def _clean_env(**extra) -> dict:
    """No TELECONSULT_* setting, no PYTHONPATH, no virtual environment of the test run."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_") and k not in drop}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, bin directory of a fresh venv holding only the wheel and its dependencies)."""
    work = tmp_path_factory.mktemp("wheel")
    # built from a copy of the files git tracks, as a clean checkout would be: a leftover build/ or
    # an untracked file in the working tree cannot slip into the wheel
    source = work / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file() and not (ROOT / name).is_symlink():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(source)],
         env=_clean_env())
    [wheel] = (work / "dist").glob("teleconsult-*.whl")
    _run([sys.executable, "-m", "venv", str(work / "venv")])
    bin_dir = work / "venv" / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], env=_clean_env(), cwd=work)
    return wheel, bin_dir


def test_the_wheel_carries_every_module_page_script_style_sound_migration_and_jitsi_file(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for package in CODE:
        expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")
                     if "__pycache__" not in p.parts}
    for top, inside in SHIPPED.items():
        expected |= {f"{inside}/{p.relative_to(ROOT / top).as_posix()}" for p in (ROOT / top).rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "teleconsult" / "locale").rglob("*.po")}
    expected |= {"teleconsult/migrations/script.py.mako", "filedrop/migrations/script.py.mako"}
    assert sorted(expected - names) == []


def test_the_installed_environment_has_no_test_extras_and_imports_from_itself(installed):
    _, bin_dir = installed
    probe = ("import importlib.util, teleconsult; print(teleconsult.__file__); "
             "print(importlib.util.find_spec('playwright') is None, importlib.util.find_spec('pytest') is None)")
    out = _run([str(bin_dir / "python"), "-c", probe], env=_clean_env(), cwd="/").stdout.split()
    assert out[0].startswith(str(bin_dir.parent)), out[0]
    assert out[1:] == ["True", "True"]


def test_version_prints_the_installed_version(installed):
    _, bin_dir = installed
    out = _run([str(bin_dir / "teleconsult"), "--version"], env=_clean_env(), cwd="/").stdout
    assert out.strip() == "teleconsult 0.1.0"


def test_jitsi_files_writes_the_prosody_module_and_the_snippets_of_the_installed_version(installed, tmp_path):
    _, bin_dir = installed
    target = tmp_path / "jitsi"
    first = _run([str(bin_dir / "teleconsult"), "jitsi-files", str(target)], env=_clean_env(), cwd=tmp_path).stdout
    for name in ("mod_teleconsult_events.lua", "prosody-snippet.cfg.lua", "jicofo-snippet.conf",
                 "config-overrides.js"):
        assert (target / name).read_bytes() == (ROOT / "jitsi_plugin" / name).read_bytes()
    assert first.count("written ") == 4
    again = _run([str(bin_dir / "teleconsult"), "jitsi-files", str(target)], env=_clean_env(), cwd=tmp_path).stdout
    assert again.count("unchanged ") == 4 and "written" not in again


async def test_serve_demo_from_the_wheel_serves_pages_scripts_styles_sounds_api_and_a_patient_page(installed, tmp_path):
    _, bin_dir = installed
    teleconsult = str(bin_dir / "teleconsult")
    data_dir, cwd = tmp_path / "data", tmp_path / "elsewhere"
    cwd.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([teleconsult, "serve", "--demo", "--data-dir", str(data_dir), "--port", str(port)],
                              env=_clean_env(), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until_up(http, base)
            async with http.get(base + "/login") as r:
                assert r.status == 200 and 'lang="fr"' in await r.text()
                page = await r.text()
                assert "Mot de passe" in page
            async with http.get(base + "/login?lang=en") as r:
                assert r.status == 200 and 'lang="en"' in await r.text() and "Password" in await r.text()
            async with http.get(base + "/api/openapi.json") as r:
                assert r.status == 200 and "createConsultation" in await r.text()
            made = await asyncio.to_thread(
                _run, [teleconsult, "consultation", "new", "--clinician", "demo@teleconsult.invalid",
                       "--data-dir", str(data_dir)], env=_clean_env(TELECONSULT_PORT=str(port)), cwd=cwd)
            link = made.stdout.strip()
            assert re.fullmatch(re.escape(base) + r"/j/[\w-]+#[\w-]+", link), link
            async with http.get(link.split("#")[0]) as r:
                patient_page = await r.text()
                assert r.status == 200 and 'lang="fr"' in patient_page and 'id="knock-form"' in patient_page
            script = re.search(r'src="(/static/js/[^"]+)"', patient_page).group(1)
            style = re.search(r'href="(/static/css/[^"]+)"', page).group(1)
            for path, content_type in ((script, ("text/javascript", "application/javascript")), (style, "text/css"),
                                       ("/static/sound/ring.wav", "audio/")):
                async with http.get(base + path) as r:
                    assert r.status == 200 and r.content_type.startswith(content_type), (path, r.content_type)
                    assert len(await r.read()) > 0
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0].decode()
    assert "Traceback" not in output, output
