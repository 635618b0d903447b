"""The links people copy and paste: a standalone drop ``{server}/d/{id}#{secret}`` and a
patient link ``{server}/j/{join_token}#{secret}``. Parsing only: the secret is decoded here
and never sent anywhere (filedrop/client.py uses it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import ece


class LinkError(ValueError):
    """The text is not a drop link or a patient link (the message says what to fix)."""


@dataclass(frozen=True)
class DropLink:
    """``{server}/d/{doc_id}#{secret}``; ``secret`` is None for a link without fragment
    (enough to delete a drop, not to read it)."""

    server: str
    doc_id: str
    secret: bytes | None = field(default=None, repr=False)

    def __str__(self) -> str:
        base = f"{self.server}/d/{self.doc_id}"
        return base + "#" + ece.b64url_encode(self.secret) if self.secret is not None else base


@dataclass(frozen=True)
class ConsultationLink:
    """The patient link ``{server}/j/{join_token}#{secret}`` (32-byte consultation secret)."""

    server: str
    join_token: str
    secret: bytes = field(repr=False)

    @property
    def patient_url(self) -> str:
        """What the server knows of the link (GET /api/consultations, ``patient_url``)."""
        return f"{self.server}/j/{self.join_token}"


def _secret_from(fragment: str, minimum: int) -> bytes:
    try:
        secret = ece.b64url_decode(fragment)
    except ValueError:
        raise LinkError("the link's secret (after #) is not valid base64url; "
                        "was the link copied whole?") from None
    if len(secret) < minimum:
        raise LinkError(f"the link's secret (after #) is {len(secret)} bytes, at least {minimum} "
                        "are expected; was the link copied whole?")
    return secret


def parse_link(link: str, *, need_secret: bool = True) -> DropLink | ConsultationLink:
    """A standalone drop link (``/d/{id}#secret``) or a patient link (``/j/{token}#secret``).
    The app may live under a path prefix (``https://host/tc/d/...``): ``server`` keeps it."""
    text = link.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LinkError(f"not a link: {text[:80]!r} (expected http(s)://host/d/ID#SECRET "
                        "or a patient link http(s)://host/j/TOKEN#SECRET)")
    segments = parts.path.rstrip("/").split("/")
    if len(segments) < 3 or segments[-2] not in ("d", "j") or not segments[-1]:
        raise LinkError(f"not a drop link (/d/ID#SECRET) or a patient link (/j/TOKEN#SECRET): {parts.path!r}")
    kind, ident = segments[-2], segments[-1]
    if not ece._DOC_ID.fullmatch(ident):
        raise LinkError(f"the link's id {ident[:60]!r} is not valid")
    server = f"{parts.scheme}://{parts.netloc}" + "/".join(segments[:-2])
    if kind == "j":
        if not parts.fragment:
            raise LinkError("the patient link has no secret (the part after #); copy the whole link")
        return ConsultationLink(server, ident, _secret_from(parts.fragment, ece.CONSULTATION_SECRET_SIZE))
    if not parts.fragment:
        if need_secret:
            raise LinkError("the link has no secret (the part after #); copy the whole link")
        return DropLink(server, ident, None)
    return DropLink(server, ident, _secret_from(parts.fragment, ece.MIN_SECRET_SIZE))
