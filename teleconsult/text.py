"""Text that people typed and others will see."""

from __future__ import annotations

import re

# Bidirectional controls (embeddings, overrides, isolates, marks): a name holding U+202E shows
# "Camille\u202efdp.exe" as "Camilleexe.pdf". Letters of right-to-left scripts are kept.
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def without_bidi_controls(text: str) -> str:
    return BIDI_CONTROLS.sub("", text)
