"""The documents' font: Bitstream Vera, the TrueType family that ships inside reportlab's own
wheel (reportlab/fonts/Vera*.ttf), so a plain `pip install` renders documents with nothing
taken from the system. It carries every letter French needs (é è ê ë à â ç î ï ô ù û ü ÿ œ
Œ æ « » € and the typographic apostrophe); reportlab embeds the subset a PDF uses, as text
that can be selected and searched.

A character the font lacks would print as an empty box; `unprintable` finds it so that the
form refuses it with a reason instead (forms.py).
"""

from __future__ import annotations

import functools
from pathlib import Path

import reportlab
from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIR = Path(reportlab.__file__).parent / "fonts"
REGULAR = "TcVera"
BOLD = "TcVera-Bold"
ITALIC = "TcVera-Italic"
BOLD_ITALIC = "TcVera-BoldItalic"
_FILES = {REGULAR: "Vera.ttf", BOLD: "VeraBd.ttf", ITALIC: "VeraIt.ttf", BOLD_ITALIC: "VeraBI.ttf"}
# Spaces babel puts in numbers and amounts that Vera lacks, and their nearest equivalent it has.
_SPACES = str.maketrans({"\u202f": "\u00a0", "\u2009": " ", "\u2007": "\u00a0"})


@functools.cache
def register() -> str:
    """Register the four faces with reportlab (once per process) and return the family name
    that Paragraph styles use (<b> and <i> map to the bold and italic faces)."""
    for name, filename in _FILES.items():
        pdfmetrics.registerFont(TTFont(name, str(FONT_DIR / filename)))
    addMapping(REGULAR, 0, 0, REGULAR)
    addMapping(REGULAR, 1, 0, BOLD)
    addMapping(REGULAR, 0, 1, ITALIC)
    addMapping(REGULAR, 1, 1, BOLD_ITALIC)
    return REGULAR


@functools.cache
def _charset() -> frozenset[int]:
    """Code points every face has (the regular face's map; Vera's faces share theirs)."""
    faces = [TTFont(name, str(FONT_DIR / filename)).face.charToGlyph for name, filename in _FILES.items()]
    return frozenset(set.intersection(*(set(face) for face in faces)))


def normalise(text: str) -> str:
    """Replace the thin spaces babel writes in numbers by ones the font has."""
    return text.translate(_SPACES)


def unprintable(text: str) -> str | None:
    """The first character of `text` the font cannot print (line breaks aside), or None."""
    charset = _charset()
    for char in normalise(text):
        if char not in "\n" and ord(char) not in charset:
            return char
    return None
