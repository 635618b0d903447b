"""docs/configuration.md's table of settings, generated from their declarations in settings.py.

    python -m teleconsult.settings_doc            rewrites the table in docs/configuration.md
    python -m teleconsult.settings_doc --check    exits 1 when the checked-in table is stale

Only the part between the two markers is generated; the rest of the file is written by hand.
tests/test_settings.py fails while the checked-in table differs from the generated one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from .settings import MIN_SECRET_LENGTH, SETTINGS, Setting

COMMAND = "python -m teleconsult.settings_doc"
DEFAULT_FILE = Path("docs/configuration.md")
BEGIN = (f"<!-- BEGIN settings table: generated from teleconsult/settings.py by `{COMMAND}`; "
         "change the declarations there, not this table -->")
END = "<!-- END settings table -->"

_TYPE_NAMES = {str: "string", int: "integer", bool: "boolean"}


def _default(s: Setting) -> str:
    if s.required:
        return "*required*"
    if s.secret:
        return "*none* (empty: off)"
    if s.type is bool:
        return "`true`" if s.default else "`false`"
    if s.type is int:
        return f"`{s.default}`"
    return f"`{json.dumps(s.default)}`"  # the TOML string, quotes included


def _bounds(s: Setting) -> str:
    if s.secret:
        return f"secret: at least {MIN_SECRET_LENGTH} characters"
    if s.minimum is not None and s.maximum is not None:
        return f"{s.minimum} to {s.maximum}"
    if s.minimum is not None:
        return f"at least {s.minimum}"
    if s.maximum is not None:
        return f"at most {s.maximum}"
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_table(settings: Iterable[Setting] = SETTINGS) -> str:
    """The Markdown table: one row per setting, in declaration order."""
    lines = ["| setting | environment | type | default | bounds | what it does |",
             "|---|---|---|---|---|---|"]
    for s in settings:
        cells = [f"`{s.name}`", f"`{s.env}`", _TYPE_NAMES[s.type], _default(s), _bounds(s), s.help]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def regenerate(document: str, settings: Iterable[Setting] = SETTINGS) -> str:
    """`document` with the part between the markers replaced by the generated table."""
    if document.count(BEGIN) != 1 or document.count(END) != 1 or document.index(BEGIN) > document.index(END):
        raise ValueError(f"the document must hold the two marker lines once each, in order:\n{BEGIN}\n{END}")
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{settings_table(settings)}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE,
                        help=f"the Markdown file holding the markers (default: {DEFAULT_FILE})")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the table is stale")
    args = parser.parse_args(argv)
    try:
        current = args.file.read_text(encoding="utf-8")
        generated = regenerate(current)
    except (OSError, ValueError) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    if generated == current:
        print(f"{args.file}: up to date")
        return 0
    if args.check:
        print(f"{args.file}: the settings table is stale; run `{COMMAND}` to regenerate it", file=sys.stderr)
        return 1
    args.file.write_text(generated, encoding="utf-8")
    print(f"{args.file}: settings table regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
