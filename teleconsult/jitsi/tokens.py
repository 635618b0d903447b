"""Jitsi JWTs exactly as DESIGN section 3 says. Nothing about the patient but a display name.

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


def mint_token(settings: Settings, *, room: str, user_id: str, name: str, moderator: bool,
               expires_at: float, now: float | None = None) -> str:
    """A token for `room` valid from 30 s ago until `expires_at` (Unix seconds, rounded down)."""
    now = int(time.time() if now is None else now)
    if expires_at <= now:
        raise ValueError("a Jitsi token must expire in the future")
    claims = {
        "iss": settings.jitsi_app_id,
        "aud": settings.jitsi_app_id,
        "sub": settings.jitsi_domain,
        "room": room,
        "nbf": now - NOT_BEFORE_SKEW_SECONDS,
        "exp": int(expires_at),
        "context": {
            "user": {
                "id": user_id,
                "name": name,
                "affiliation": "owner" if moderator else "member",
                "moderator": moderator,
            }
        },
    }
    return jwt.encode(claims, settings.jitsi_app_secret, algorithm=ALGORITHM, headers={"typ": "JWT"})


def call_access(settings: Settings, *, room: str, user_id: str, name: str, moderator: bool,
                expires_at: float, now: float | None = None) -> CallAccess:
    return CallAccess(
        domain=settings.jitsi_domain,
        room=room,
        jwt=mint_token(settings, room=room, user_id=user_id, name=name, moderator=moderator,
                       expires_at=expires_at, now=now),
        external_api_url=f"{settings.jitsi_origin}/external_api.js",
    )
