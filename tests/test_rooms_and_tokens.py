"""Room names and Jitsi JWTs, exactly as DESIGN section 3 says."""

import base64
import math
import re
import time

import jwt
import pytest

from teleconsult import ids
from teleconsult.jitsi import tokens as jitsi
from teleconsult.consultations import create_consultation, call_for_clinician, call_for_patient, decide, knock
from teleconsult.errors import Forbidden, NotFound
from conftest import add_clinician, make_settings

ROOM_RE = re.compile(r"^[a-z2-7]+$")


def test_room_names_are_lowercase_base32_of_at_least_160_random_bits():
    names = [ids.room_name() for _ in range(5000)]
    assert len(set(names)) == len(names), "room names repeat"
    for name in names[:100]:
        assert ROOM_RE.match(name), name
        bits = len(base64.b32decode(name.upper() + "=" * (-len(name) % 8))) * 8
        assert bits >= 160
    # every base32 symbol appears in roughly equal measure: no fixed prefix, no structure
    counts = {c: 0 for c in "abcdefghijklmnopqrstuvwxyz234567"}
    for name in names:
        for c in name:
            counts[c] += 1
    expected = sum(counts.values()) / 32
    assert all(abs(n - expected) < 6 * math.sqrt(expected) for n in counts.values()), counts
    assert len({n[:4] for n in names}) > 4000, "names share prefixes"


async def test_consultations_never_reuse_a_room_name(tmp_path):
    from teleconsult import db
    settings = make_settings(tmp_path)
    engine = db.make_engine(settings.sqlalchemy_url)
    await db.migrate(engine)
    clinician = await add_clinician(engine)
    from teleconsult.accounts import get_clinician
    c = await get_clinician(engine, clinician.id)
    rooms = {(await create_consultation(engine, settings, c)).room_name for _ in range(50)}
    assert len(rooms) == 50
    await engine.dispose()


def test_jitsi_token_has_exactly_the_designed_header_and_claims(tmp_path):
    settings = make_settings(tmp_path, jitsi_token_ttl_seconds=240)
    now = int(time.time())
    token = jitsi.mint_token(settings, room="abcdefgh", user_id="u1", name="Camille", moderator=False, now=now)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, settings.jitsi_app_secret, algorithms=["HS256"], audience=settings.jitsi_app_id)
    assert claims == {
        "iss": "teleconsult-test", "aud": "teleconsult-test", "sub": "meet.example.org", "room": "abcdefgh",
        "nbf": now - 30, "exp": now + 240,
        "context": {"user": {"id": "u1", "name": "Camille", "affiliation": "member", "moderator": False}},
    }


def test_clinician_token_is_owner_and_moderator(tmp_path):
    settings = make_settings(tmp_path)
    token = jitsi.mint_token(settings, room="r", user_id="c", name="Dr X", moderator=True)
    user = jwt.decode(token, options={"verify_signature": False})["context"]["user"]
    assert user["affiliation"] == "owner" and user["moderator"] is True


def _jitsi_accepts(settings, token: str, room: str) -> bool:
    """What Prosody's token_verification checks (signature, aud/iss, time, room claim);
    Jitsi's Prosody plugins cannot run here, so the rule is restated."""
    try:
        claims = jwt.decode(token, settings.jitsi_app_secret, algorithms=["HS256"],
                            audience=settings.jitsi_app_id, issuer=settings.jitsi_app_id)
    except jwt.PyJWTError:
        return False
    return claims["room"] in ("*", room)


async def test_a_token_for_consultation_a_is_refused_for_b_room(tmp_path):
    from teleconsult import db
    from teleconsult.accounts import get_clinician
    settings = make_settings(tmp_path)
    engine = db.make_engine(settings.sqlalchemy_url)
    await db.migrate(engine)
    clinician = await get_clinician(engine, (await add_clinician(engine)).id)
    a = await create_consultation(engine, settings, clinician)
    b = await create_consultation(engine, settings, clinician)
    knock_a = await knock(engine, a, "Camille")
    admitted = await decide(engine, a, knock_a.id, admit=True)
    patient_token = call_for_patient(settings, a, admitted).jwt
    clinician_token = call_for_clinician(settings, a, clinician).jwt
    for token in (patient_token, clinician_token):
        assert _jitsi_accepts(settings, token, a.room_name)
        assert not _jitsi_accepts(settings, token, b.room_name)
    # and A's admitted knock cannot be used to obtain B's room
    with pytest.raises(Forbidden):
        call_for_patient(settings, b, admitted)
    # a forged token (other secret) is refused for A's own room
    forged = jwt.encode(jwt.decode(patient_token, options={"verify_signature": False}), "x" * 40, algorithm="HS256")
    assert not _jitsi_accepts(settings, forged, a.room_name)
    await engine.dispose()


async def test_another_clinician_cannot_get_a_token_for_my_consultation(tmp_path):
    from teleconsult import db
    from teleconsult.accounts import get_clinician
    settings = make_settings(tmp_path)
    engine = db.make_engine(settings.sqlalchemy_url)
    await db.migrate(engine)
    mine = await get_clinician(engine, (await add_clinician(engine, "a@example.org")).id)
    other = await get_clinician(engine, (await add_clinician(engine, "b@example.org")).id)
    consultation = await create_consultation(engine, settings, mine)
    with pytest.raises(NotFound):
        call_for_clinician(settings, consultation, other)
    await engine.dispose()
