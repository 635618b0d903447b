"""Jitsi JWTs exactly as DESIGN section 3 says. Nothing about the patient: not even a name.

A patient's token has no `name` claim (`name=None`): Jitsi copies `context.user` to every
participant and Prosody logs a refused token whole, and the patient's name is not the server's to
hold (issue 17). The patient's page hands the name to the IFrame API itself (static/js/jitsi.js,
`userInfo.displayName`). The clinician's token keeps the clinician's own name.

A token's `exp` is the expiry its caller gives: the consultation's maximum duration (consultations.py).
Jitsi checks `exp` only when a client logs in, and its web client logs in again with the same token
after a network blip, so a token must stay valid for as long as its holder may need to reconnect;
it stops being handed out when the consultation ends (docs/threat-model.md, "Jitsi tokens").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from ..settings import Settings

NOT_BEFORE_SKEW_SECONDS = 30
ALGORITHM = "HS256"


@dataclass(frozen=True)
class CallAccess:
    """What a browser needs to embed the call."""
    domain: str
    room: str
    jwt: str
    external_api_url: str

    def as_json(self) -> dict:
        return {"domain": self.domain, "room": self.room, "jwt": self.jwt,
                "external_api_url": self.external_api_url}


def mint_token(settings: Settings, *, room: str, user_id: str, name: str | None, moderator: bool,
               expires_at: float, now: float | None = None) -> str:
    """A token for `room` valid from 30 s ago until `expires_at` (Unix seconds, rounded down);
    without a `name` claim when `name` is None."""
    now = int(time.time() if now is None else now)
    if expires_at <= now:
        raise ValueError("a Jitsi token must expire in the future")
    user: dict = {"id": user_id}
    if name is not None:
        user["name"] = name
    user.update(affiliation="owner" if moderator else "member", moderator=moderator)
    claims = {
        "iss": settings.jitsi_app_id,
        "aud": settings.jitsi_app_id,
        "sub": settings.jitsi_domain,
        "room": room,
        "nbf": now - NOT_BEFORE_SKEW_SECONDS,
        "exp": int(expires_at),
        "context": {"user": user},
    }
    return jwt.encode(claims, settings.jitsi_app_secret, algorithm=ALGORITHM, headers={"typ": "JWT"})


def call_access(settings: Settings, *, room: str, user_id: str, name: str | None, moderator: bool,
                expires_at: float, now: float | None = None) -> CallAccess:
    return CallAccess(
        domain=settings.jitsi_domain,
        room=room,
        jwt=mint_token(settings, room=room, user_id=user_id, name=name, moderator=moderator,
                       expires_at=expires_at, now=now),
        external_api_url=f"{settings.jitsi_origin}/external_api.js",
    )
