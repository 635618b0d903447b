"""Who is handed the call, and what: the room and a Jitsi token (teleconsult/jitsi/tokens.py), or
the direct call's ICE servers when no Jitsi domain is configured. The clinician of the
consultation, or the patient of an admitted knock, while the consultation lives; nobody after."""

from __future__ import annotations

import time

from .accounts import Clinician
from .consultations import ENDED, KNOCK_ADMITTED, Consultation, Knock
from .direct_access import DirectAccess
from .errors import Conflict, Forbidden, NotFound
from .jitsi import tokens
from .settings import Settings


def _callable(consultation: Consultation, now: float) -> None:
    """A consultation whose room may still be handed out: not ended, not past its maximum duration
    (the sweeper may not have ended it yet)."""
    if consultation.status == ENDED or now >= consultation.deadline_at:
        raise Conflict("consultation has ended")


def call_for_clinician(settings: Settings, consultation: Consultation, clinician: Clinician,
                       now: float | None = None) -> tokens.CallAccess | DirectAccess:
    """The clinician's room and owner token, valid until the consultation's maximum duration (with
    Jitsi), or the ICE servers of the direct call (without)."""
    if consultation.clinician_id != clinician.id:
        raise NotFound("no such consultation")
    now = time.time() if now is None else now
    _callable(consultation, now)
    if settings.call_engine == "direct":
        return DirectAccess(settings.direct_ice_server_list, role="clinician")
    return tokens.call_access(settings, room=consultation.room_name, user_id=clinician.id,
                             name=clinician.name, moderator=True, expires_at=consultation.deadline_at, now=now)


def call_for_patient(settings: Settings, consultation: Consultation, knock_: Knock,
                     now: float | None = None) -> tokens.CallAccess | DirectAccess:
    """Only an admitted knock of a live consultation gets the room; everything else is Forbidden.

    The token is valid until the consultation's maximum duration: Jitsi's web client reconnects
    with it after a network blip (DESIGN section 3). It carries no name: the patient's page gives
    Jitsi the display name itself (tokens.py)."""
    now = time.time() if now is None else now
    _callable(consultation, now)
    if knock_.consultation_id != consultation.id or knock_.status != KNOCK_ADMITTED:
        raise Forbidden("not admitted")
    if settings.call_engine == "direct":
        return DirectAccess(settings.direct_ice_server_list, role="patient")
    return tokens.call_access(settings, room=consultation.room_name, user_id=knock_.id,
                             name=None, moderator=False, expires_at=consultation.deadline_at, now=now)
