"""The links people copy and paste to reach a file: ``{server}{page}/{id}#{secret}``, the secret in
the fragment (never sent to a server by a browser). Which pages exist is the host's to say
(teleconsult/drop_links.py: /d/ for a drop, /j/ for a patient link); this module splits a link
and decodes its secret, with messages that say what to fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

from . import ece
from .plain import repr_without


class LinkError(ValueError):
    """The text is not a link of the expected kind (the message says what to fix)."""


class LinkParts(NamedTuple):  # not a dataclass: see filedrop/plain.py
    server: str  # scheme, host and any path prefix the app lives under
    page: str  # one of the pages asked for, e.g. "/d"
    ident: str  # the id after the page
    fragment: str  # the encoded secret, "" when the link has none (not in the repr)

    def __repr__(self) -> str:
        return repr_without(self, "fragment")


def split_link(link: str, pages: Sequence[str], expected: tuple[str, str]) -> LinkParts:
    """``{server}{page}/{id}#{fragment}`` with `page` one of `pages` (one path segment each, such
    as "/d"); the server may carry a path prefix. `expected` describes the accepted links for the
    two messages: (for "not a link", for "not one of these pages")."""
    text = link.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LinkError(f"not a link: {text[:80]!r} (expected {expected[0]})")
    segments = parts.path.rstrip("/").split("/")
    names = {page.strip("/"): page for page in pages}
    if len(segments) < 3 or segments[-2] not in names or not segments[-1]:
        raise LinkError(f"not {expected[1]}: {parts.path!r}")
    ident = segments[-1]
    if not ece.DOCUMENT_ID.fullmatch(ident):
        raise LinkError(f"the link's id {ident[:60]!r} is not valid")
    server = f"{parts.scheme}://{parts.netloc}" + "/".join(segments[:-2])
    return LinkParts(server, names[segments[-2]], ident, parts.fragment)


def secret_from_fragment(fragment: str, minimum: int) -> bytes:
    """The secret a link carries after #, at least `minimum` bytes."""
    try:
        secret = ece.b64url_decode(fragment)
    except ValueError:
        raise LinkError("the link's secret (after #) is not valid base64url; "
                        "was the link copied whole?") from None
    if len(secret) < minimum:
        raise LinkError(f"the link's secret (after #) is {len(secret)} bytes, at least {minimum} "
                        "are expected; was the link copied whole?")
    return secret
