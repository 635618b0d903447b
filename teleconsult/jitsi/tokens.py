"""Jitsi JWTs exactly as DESIGN section 3 says. Nothing about the patient but a display name."""

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
               now: float | None = None) -> str:
    now = int(time.time() if now is None else now)
    claims = {
        "iss": settings.jitsi_app_id,
        "aud": settings.jitsi_app_id,
        "sub": settings.jitsi_domain,
        "room": room,
        "nbf": now - NOT_BEFORE_SKEW_SECONDS,
        "exp": now + settings.jitsi_token_ttl_seconds,
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


def call_access(settings: Settings, *, room: str, user_id: str, name: str, moderator: bool) -> CallAccess:
    return CallAccess(
        domain=settings.jitsi_domain,
        room=room,
        jwt=mint_token(settings, room=room, user_id=user_id, name=name, moderator=moderator),
        external_api_url=f"{settings.jitsi_origin}/external_api.js",
    )
