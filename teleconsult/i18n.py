"""Languages: French by default, English second. Catalogs are .po files read at start-up."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
LOCALE_DIR = Path(__file__).parent / "locale"


def load_translations() -> dict[str, NullTranslations]:
    """msgids are English; each language's .po is compiled in memory (no build step)."""
    catalogs: dict[str, NullTranslations] = {}
    for lang in LANGUAGES:
        po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
        if not po.exists():
            catalogs[lang] = NullTranslations()
            continue
        with po.open("rb") as f:
            catalog = read_po(f, locale=lang)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        catalogs[lang] = Translations(buf)
    return catalogs

