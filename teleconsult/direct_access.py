"""What a browser is handed for the direct call (teleconsult/direct_call.py), by
call_access.call_for_clinician / call_for_patient when no Jitsi domain is configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DirectAccess:
    """Handed out like a Jitsi token: only to the two parties, only after admission, never after
    the end (the TURN credentials are in it)."""
    ice_servers: list[dict[str, Any]]
    role: str

    def as_json(self) -> dict:
        return {"engine": "direct", "ice_servers": self.ice_servers, "role": self.role}
