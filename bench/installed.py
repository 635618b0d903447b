"""The `teleconsult` command as a host installs it, for the benchmarks that launch it.

A checkout's own `.venv` has teleconsult installed editable: its `site` start-up imports the
editable install's path finder (pathlib, fnmatch, re: `python -c pass` 20 ms here against 9 ms
without it), a cost no host pays. installed_command() builds the checkout's wheel and installs
it into a fresh virtual environment in `work`, its dependencies read from this interpreter's
environment through a .pth line (nothing downloaded, nothing built twice), and returns the
console script pip wrote, the one a host runs."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path


def command_env(tree: Path | None) -> dict:
    """The environment to launch the command in, as installed: no TELECONSULT_ settings of this
    shell, its bytecode cached (written by a first launch), not compiled again at every launch
    as PYTHONDONTWRITEBYTECODE would have it; `tree` first on PYTHONPATH for an editable run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELECONSULT_", "PYTHONPATH"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def installed_command(tree: Path, work: Path, name: str) -> Path:
    wheels = work / f"wheel-{name}"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(wheels), str(tree)], check=True, cwd=work)
    wheel = next(wheels.glob("teleconsult-*.whl"))
    venv = work / f"venv-{name}"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, cwd=work)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin" / "teleconsult"
