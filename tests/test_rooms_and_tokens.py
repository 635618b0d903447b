"""Room names and Jitsi JWTs, exactly as DESIGN section 3 says."""

import base64
import json
import math
import re
import time

import jwt
import pytest
from conftest import add_clinician, make_settings, sealed

from teleconsult import ids
from teleconsult.call_access import call_for_clinician, call_for_patient
from teleconsult.consultations import create_consultation, decide, knock
from teleconsult.errors import Forbidden, NotFound
from teleconsult.jitsi import tokens as jitsi

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
    settings = make_settings(tmp_path)
    now = int(time.time())
    token = jitsi.mint_token(settings, room="abcdefgh", user_id="u1", name="Camille", moderator=False,
                             expires_at=now + 240.7, now=now)
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
    token = jitsi.mint_token(settings, room="r", user_id="c", name="Dr X", moderator=True,
                             expires_at=time.time() + 60)
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
    knock_a = await knock(engine, a, sealed("Camille"))
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


async def test_the_patients_token_carries_no_name_only_an_id_and_the_member_role(tmp_path):
    """Jitsi copies context.user to everyone and Prosody logs a refused token whole: the patient's
    name stays out of it (the page hands it to the IFrame API, static/js/jitsi.js)."""
    from teleconsult import db
    from teleconsult.accounts import get_clinician
    settings = make_settings(tmp_path)
    engine = db.make_engine(settings.sqlalchemy_url)
    await db.migrate(engine)
    clinician = await get_clinician(engine, (await add_clinician(engine)).id)
    consultation = await create_consultation(engine, settings, clinician)
    marker = "Zorglub Marqueur"
    admitted = await decide(engine, consultation, (await knock(engine, consultation, sealed(marker))).id, admit=True)
    token = call_for_patient(settings, consultation, admitted).jwt
    claims = jwt.decode(token, settings.jitsi_app_secret, algorithms=["HS256"], audience=settings.jitsi_app_id)
    assert claims["context"] == {"user": {"id": admitted.id, "affiliation": "member", "moderator": False}}
    assert "Zorglub" not in json.dumps(claims) and "Zorglub" not in token
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


# --- Jitsi's own rules, restated: what Prosody checks when a client logs in with a token ----------
#
# Jitsi's Prosody plugins cannot run here, so its rules are written out from its sources:
# luajwtjitsi's decode(token, key, verify=true) (header typ "JWT", a supported alg, exp and nbf
# numbers, the signature, then `now >= exp` refused and `now < nbf` refused, no leeway), then
# token/util.lib.lua's verify_token (alg not "none", iss present and accepted (asap_accepted_issuers,
# by default {app_id}), room present (asap_require_room_claim, on by default), aud present and
# accepted) and verify_room (the room joined equals the lowercased room claim, or the claim is "*";
# with enable_domain_verification, sub names the Jitsi domain). `now` is a parameter so that a test
# can stand at any minute of a consultation.

def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jitsi_verify(token: str, *, secret: str, app_id: str, domain: str, room: str, now: float) -> dict:
    """The claims if Jitsi (Prosody's token authentication + token_verification) lets this token
    into `room` at time `now`; raises JitsiRefused with Jitsi's own reason otherwise."""
    import hashlib
    import hmac
    import json
    try:
        header_b64, body_b64, signature_b64 = token.split(".")
        header = json.loads(_b64url_decode(header_b64))
        body = json.loads(_b64url_decode(body_b64))
        signature = _b64url_decode(signature_b64)
    except ValueError:
        raise JitsiRefused("Invalid token") from None
    if header.get("typ") != "JWT":
        raise JitsiRefused("Invalid typ")
    if not isinstance(header.get("alg"), str):
        raise JitsiRefused("Invalid alg")
    for claim in ("exp", "nbf"):
        if claim in body and not isinstance(body[claim], (int, float)):
            raise JitsiRefused(f"{claim} must be number")
    if header["alg"] != "HS256":  # the only algorithm of a host with app_secret
        raise JitsiRefused("Algorithm not supported")
    expected = hmac.new(secret.encode(), f"{header_b64}.{body_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise JitsiRefused("Invalid signature")
    if "exp" in body and now >= body["exp"]:
        raise JitsiRefused("Not acceptable by exp")
    if "nbf" in body and now < body["nbf"]:
        raise JitsiRefused("Not acceptable by nbf")
    if body.get("iss") is None:
        raise JitsiRefused("'iss' claim is missing")
    if body["iss"] != app_id:
        raise JitsiRefused("Invalid issuer ('iss' claim)")
    if body.get("room") is None:
        raise JitsiRefused("'room' claim is missing")
    if body.get("aud") is None:
        raise JitsiRefused("'aud' claim is missing")
    if body["aud"] != app_id:  # the shipped snippet sets asap_accepted_audiences = { app_id }
        raise JitsiRefused("Invalid audience ('aud' claim)")
    if body["room"] != "*" and room != body["room"].lower():
        raise JitsiRefused("Room and token mismatched")
    if body.get("sub") not in ("*", domain):  # enable_domain_verification = true in the snippet
        raise JitsiRefused("Room and token mismatched (domain)")
    return body


class JitsiRefused(Exception):
    pass


def _verify(settings, token, room, now):
    return jitsi_verify(token, secret=settings.jitsi_app_secret, app_id=settings.jitsi_app_id,
                        domain=settings.jitsi_domain, room=room, now=now)


async def _admitted(tmp_path, **overrides):
    from teleconsult import db
    from teleconsult.accounts import get_clinician
    settings = make_settings(tmp_path, **overrides)
    engine = db.make_engine(settings.sqlalchemy_url)
    await db.migrate(engine)
    clinician = await get_clinician(engine, (await add_clinician(engine)).id)
    return settings, engine, clinician


async def test_tokens_issued_at_admission_still_let_both_sides_reconnect_at_minute_119_of_120(tmp_path):
    settings, engine, clinician = await _admitted(tmp_path, consultation_max_minutes=120)
    start = time.time()
    consultation = await create_consultation(engine, settings, clinician, now=start)
    admitted = await decide(engine, consultation, (await knock(engine, consultation, sealed("Camille"), now=start)).id,
                            admit=True, now=start + 60)
    patient = call_for_patient(settings, consultation, admitted, now=start + 60).jwt
    doctor = call_for_clinician(settings, consultation, clinician, now=start + 60).jwt
    room = consultation.room_name
    for token in (patient, doctor):
        assert _verify(settings, token, room, now=start + 60)["room"] == room  # at admission
        # a network blip at minute 119: Jitsi's web client logs in again with the same token
        assert _verify(settings, token, room, now=start + 119 * 60)["room"] == room
        # never past the consultation's maximum duration
        with pytest.raises(JitsiRefused, match="exp"):
            _verify(settings, token, room, now=start + 120 * 60)
        # and still only for its own room, signed with our secret
        with pytest.raises(JitsiRefused, match="mismatched"):
            _verify(settings, token, ids.room_name(), now=start + 119 * 60)
    forged = jwt.encode(jwt.decode(patient, options={"verify_signature": False}), "x" * 40, algorithm="HS256",
                        headers={"typ": "JWT"})
    with pytest.raises(JitsiRefused, match="signature"):
        _verify(settings, forged, room, now=start + 61)
    await engine.dispose()


async def test_no_token_is_handed_out_after_the_end_nor_past_the_maximum_duration(tmp_path):
    from teleconsult.consultations import end_consultation
    from teleconsult.errors import Conflict
    settings, engine, clinician = await _admitted(tmp_path, consultation_max_minutes=120)
    start = time.time()
    consultation = await create_consultation(engine, settings, clinician, now=start)
    admitted = await decide(engine, consultation, (await knock(engine, consultation, sealed("Camille"), now=start)).id,
                            admit=True, now=start)
    # the sweeper has not run yet, but the maximum duration is reached: nothing to hand out
    with pytest.raises(Conflict):
        call_for_patient(settings, consultation, admitted, now=start + 120 * 60)
    with pytest.raises(Conflict):
        call_for_clinician(settings, consultation, clinician, now=start + 120 * 60)
    ended = await end_consultation(engine, consultation, "clinician", now=start + 30 * 60)
    with pytest.raises(Conflict):
        call_for_patient(settings, ended, admitted, now=start + 31 * 60)
    with pytest.raises(Conflict):
        call_for_clinician(settings, ended, clinician, now=start + 31 * 60)
    await engine.dispose()


def test_a_token_never_outlives_the_expiry_it_is_given(tmp_path):
    settings = make_settings(tmp_path)
    now = time.time()
    token = jitsi.mint_token(settings, room="abcdefgh", user_id="u1", name="Camille", moderator=False,
                             expires_at=now + 3600.9, now=now)
    assert jwt.decode(token, options={"verify_signature": False})["exp"] <= now + 3600.9
    with pytest.raises(ValueError):
        jitsi.mint_token(settings, room="abcdefgh", user_id="u1", name="Camille", moderator=False,
                         expires_at=now - 1, now=now)
