"""French is the default language of every page; English is the second."""

from pathlib import Path

import jinja2

from teleconsult.i18n import load_translations

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _msgids() -> set[str]:
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    found = set()
    for template in TEMPLATES.glob("*.html"):
        for _line, _func, message in env.extract_translations(template.read_text(encoding="utf-8")):
            found.add(message if isinstance(message, str) else message[0])
    import ast
    import re
    for module in (Path(__file__).resolve().parent.parent / "teleconsult").rglob("*.py"):
        for match in re.finditer(r'\b_\(\s*("(?:[^"\\]|\\.)*"(?:\s*"(?:[^"\\]|\\.)*")*)\s*\)', module.read_text()):
            found.add(ast.literal_eval("(" + match.group(1) + ")"))
    return found


def test_every_message_of_every_page_has_a_french_translation():
    french = load_translations()["fr"]
    messages = _msgids()
    assert len(messages) > 100
    catalog = french._catalog  # msgid -> French; a word may be the same in both languages
    missing = sorted(m for m in messages if not catalog.get(m))
    assert missing == []
