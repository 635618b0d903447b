"""Where the files that ship with the package live: pages, static files, the Jitsi plugin.

In the repository they sit at the top (`templates/`, `static/`, `jitsi_plugin/`); setuptools maps
them into the wheel as `teleconsult/templates`, `teleconsult/static` and
`teleconsult/jitsi_plugin` (pyproject.toml). An installed package finds them beside its own
modules; an editable install of a checkout finds them one level up.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED = ("templates", "static", "jitsi_plugin")

# What `teleconsult jitsi-files` hands to a Jitsi host (the README stays in the repository).
JITSI_FILES = ("mod_teleconsult_events.lua", "prosody-snippet.cfg.lua", "jicofo-snippet.conf", "config-overrides.js")


def shipped_dir(name: str) -> Path:
    """The directory of one shipped part; a clear error if the installation lacks it."""
    if name not in SHIPPED:
        raise ValueError(f"not a shipped directory: {name}")
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the installed teleconsult lacks its '{name}' directory: reinstall the package")


def templates_dir() -> Path:
    return shipped_dir("templates")


def static_dir() -> Path:
    return shipped_dir("static")


def jitsi_plugin_dir() -> Path:
    return shipped_dir("jitsi_plugin")
