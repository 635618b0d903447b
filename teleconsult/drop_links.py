"""Where teleconsult mounts the drop box, and the links people paste, as a client sees them.

The paths below are the ones teleconsult/web/routes.py mounts filedrop at: the route table and
the clients (`teleconsult drop`, bench/, integrators' scripts) read them here. filedrop's client
(filedrop/client/) takes a Box of URLs and knows none of them.

* standalone drop: created at STANDALONE_API with a clinician's Bearer API token, parts and
  completion with the owner token, anonymous download at STANDALONE_FILES/{id}, deleted at
  STANDALONE_API/{id} with the owner token; link ``{server}/d/{id}#{secret}``;
* consultation box: CONSULTATION_API with the clinician's Bearer token; the patient link
  ``{server}/j/{join_token}#{secret}`` names the consultation through its ``patient_url`` in
  ``GET /api/consultations``.

Parsing only for the links: the secret is decoded here and never sent anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from filedrop import client, ece
from filedrop.links import LinkError, secret_from_fragment, split_link

if TYPE_CHECKING:  # the command line uses filedrop.client.blocking and must not load aiohttp
    import aiohttp

CONSULTATIONS_API = "/api/consultations"
STANDALONE_API = "/api/drop/files"
STANDALONE_FILES = "/d/files"
STANDALONE_PAGE = "/d"  # the recipient's page, /d/{id}
CONSULTATION_API = "/api/consultations/{id}/documents"
CONSULTATION_FILES = "/consultations/{id}/documents"  # the clinician's pages (session)
PATIENT_FILES = "/j/{token}/documents"  # the patient's page (admitted knock)
PATIENT_PAGE = "/j"  # the patient link, /j/{join_token}

__all__ = ["CONSULTATION_API", "CONSULTATIONS_API", "STANDALONE_API", "STANDALONE_FILES", "ConsultationLink", "DropLink",
           "LinkError", "consultation_box", "consultation_in", "find_consultation", "parse_link", "send_drop",
           "standalone_box"]


@dataclass(frozen=True)
class DropLink:
    """``{server}/d/{doc_id}#{secret}``; ``secret`` is None for a link without fragment
    (enough to delete a drop, not to read it)."""

    server: str
    doc_id: str
    secret: bytes | None = field(default=None, repr=False)

    def __str__(self) -> str:
        base = f"{self.server}{STANDALONE_PAGE}/{self.doc_id}"
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
        return f"{self.server}{PATIENT_PAGE}/{self.join_token}"


def parse_link(link: str, *, need_secret: bool = True) -> DropLink | ConsultationLink:
    """A standalone drop link (``/d/{id}#secret``) or a patient link (``/j/{token}#secret``).
    The app may live under a path prefix (``https://host/tc/d/...``): ``server`` keeps it."""
    parts = split_link(link, (STANDALONE_PAGE, PATIENT_PAGE), expected=(
        "http(s)://host/d/ID#SECRET or a patient link http(s)://host/j/TOKEN#SECRET",
        "a drop link (/d/ID#SECRET) or a patient link (/j/TOKEN#SECRET)"))
    if parts.page == PATIENT_PAGE:
        if not parts.fragment:
            raise LinkError("the patient link has no secret (the part after #); copy the whole link")
        return ConsultationLink(parts.server, parts.ident,
                                secret_from_fragment(parts.fragment, ece.CONSULTATION_SECRET_SIZE))
    if not parts.fragment:
        if need_secret:
            raise LinkError("the link has no secret (the part after #); copy the whole link")
        return DropLink(parts.server, parts.ident, None)
    return DropLink(parts.server, parts.ident, secret_from_fragment(parts.fragment, ece.MIN_SECRET_SIZE))


def standalone_box(server: str, token: str | None = None) -> client.Box:
    """Standalone drops: created (with a clinician's API token) and written at STANDALONE_API,
    read anonymously at STANDALONE_FILES."""
    server = server.rstrip("/")
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return client.Box(server + STANDALONE_API, server + STANDALONE_API, server + STANDALONE_FILES,
                      auth, {}, standalone=True)


def consultation_box(server: str, token: str, consultation_id: str) -> client.Box:
    """A consultation's box through the API, as its clinician (Bearer API token)."""
    url = server.rstrip("/") + CONSULTATION_API.format(id=consultation_id)
    auth = {"Authorization": f"Bearer {token}"}
    return client.Box(url, url, url, auth, auth)


def consultation_in(found: dict, link: ConsultationLink) -> dict:
    """The consultation of `found` (GET CONSULTATIONS_API's answer) whose patient link this is."""
    for consultation in found.get("consultations", []):
        if consultation.get("patient_url") == link.patient_url:
            return consultation
    raise client.DropClientError("no consultation of yours (among the most recent) has this patient link; "
                                 "check the link and that the API token is the clinician's")


async def find_consultation(session: aiohttp.ClientSession, link: ConsultationLink, token: str) -> dict:
    """The consultation (as GET /api/consultations gives it) whose patient link this is."""
    found = await client.request_json(session, "GET", link.server + CONSULTATIONS_API,
                                      "listing your consultations", headers={"Authorization": f"Bearer {token}"})
    return consultation_in(found, link)


async def send_drop(session: aiohttp.ClientSession, server: str, token: str, path: str | os.PathLike, *,
                    expires_in: float | None = None, max_downloads: int | None = None,
                    **kwargs) -> tuple[DropLink, client.Sent]:
    """A standalone drop: a fresh random secret, the file uploaded; returns its link."""
    sent = await client.send_drop(session, standalone_box(server, token), path, expires_in=expires_in,
                                  max_downloads=max_downloads, **kwargs)
    return DropLink(server.rstrip("/"), sent.id, sent.secret), sent
