"""teleconsult.sealing: the clinician's key pair, S sealed to it, the private key wrapped
under the password.

Vectors live in tests/vectors/sealing.json and are shared with the browser test
(tests/test_sealing_browser.py). Independent checks: pyhpke (another RFC 9180
implementation, itself checked here against the RFC's published vector) makes every
sealed vector with the vector's fixed ephemeral key and opens what we seal; the wrapping
key is recomputed with the standard library's hashlib.

`cryptography`'s HPKE, which teleconsult.sealing uses, takes no AAD and draws its own
ephemeral key, so the RFC vector (which uses an AAD) is checked through pyhpke and
sealing.js, and our sealing through the vectors it must open and the peers (pyhpke here,
Chromium in the browser test) that must open what it seals.
"""

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey, KEMKeyPair

from filedrop.ece import b64url_decode, b64url_encode
from teleconsult import sealing
from teleconsult.sealing import (
    MalformedValue,
    SealingError,
    SecretRejected,
    UnknownVersion,
    WrappedKey,
    WrongPassword,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "sealing.json").read_text("utf-8"))
PYHPKE = CipherSuite.new(KEMId.DHKEM_P256_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)
PASSWORD = "correct horse battery staple"


def private_key(vector):
    return sealing.private_key_from_bytes(b64url_decode(vector["private_key"]))


def sealed_bytes(value: str) -> bytes:
    assert value.startswith("sealed.v1.")
    return b64url_decode(value[len("sealed.v1."):])


def sealed_value(data: bytes) -> str:
    return "sealed.v1." + b64url_encode(data)


def pyhpke_key(key):
    return KEMKey.from_pyca_cryptography_key(key)


@pytest.fixture(scope="module")
def clinician():
    """A clinician key and its wrapping (one PBKDF2 run shared by the module)."""
    key = sealing.generate_private_key()
    return key, sealing.encode_public_key(key), sealing.wrap_private_key(key, PASSWORD)


# --- the independent implementation is right ----------------------------------------


def test_pyhpke_reproduces_the_rfc_9180_vector_of_our_kem():
    """RFC 9180 A.3: our KEM and KDF with AES-128-GCM (the RFC has no vector with
    AES-256-GCM for this KEM; the 'sealed' vectors, below, cover our exact suite)."""
    rfc = VECTORS["rfc9180"]
    assert (rfc["mode"], rfc["kem_id"], rfc["kdf_id"], rfc["aead_id"]) == (0, 0x10, 1, 1)
    v = {k: bytes.fromhex(x) for k, x in rfc.items() if k not in ("source", "mode", "kem_id", "kdf_id", "aead_id")}
    suite = CipherSuite.new(KEMId.DHKEM_P256_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
    sk_r = sealing.private_key_from_bytes(v["skRm"])
    sk_e = sealing.private_key_from_bytes(v["skEm"])
    assert sealing.public_key_bytes(sk_r) == v["pkRm"]
    assert sealing.public_key_bytes(sk_e) == v["pkEm"]
    eks = KEMKeyPair(pyhpke_key(sk_e), pyhpke_key(sk_e.public_key()))
    enc, sender = suite.create_sender_context(pyhpke_key(sk_r.public_key()), v["info"], eks=eks)
    assert enc == v["enc"]
    assert sender.seal(v["plaintext"], v["aad"]) == v["ciphertext"]
    recipient = suite.create_recipient_context(v["enc"], pyhpke_key(sk_r), v["info"])
    assert recipient.open(v["ciphertext"], v["aad"]) == v["plaintext"]


def test_every_sealed_vector_is_what_pyhpke_makes_with_its_ephemeral_key():
    for v in VECTORS["sealed"]:
        ephemeral = sealing.private_key_from_bytes(b64url_decode(v["ephemeral_private_key"]))
        assert sealing.public_key_bytes(ephemeral) == b64url_decode(v["ephemeral_public_key"])
        eks = KEMKeyPair(pyhpke_key(ephemeral), pyhpke_key(ephemeral.public_key()))
        assert bytes.fromhex(v["info"]) == b"teleconsult/v1/sealed-secret\x00" + v["consultation_id"].encode()
        enc, sender = PYHPKE.create_sender_context(
            pyhpke_key(sealing.decode_public_key(v["public_key"])), bytes.fromhex(v["info"]), eks=eks)
        assert sealed_value(enc + sender.seal(b64url_decode(v["secret"]))) == v["sealed"]


# --- sealing S ------------------------------------------------------------------------


def test_python_opens_every_sealed_vector():
    for v in VECTORS["sealed"]:
        key = private_key(v)
        assert sealing.encode_public_key(key) == v["public_key"]
        assert sealing.sealing_info(v["consultation_id"]).hex() == v["info"]
        assert sealing.open_secret(key, v["sealed"], v["consultation_id"]) == b64url_decode(v["secret"])


def test_a_sealed_secret_does_not_open_for_another_consultation():
    v = VECTORS["sealed"][0]
    for other in ("Zr8_-kLm0aBcDeFgHiJkLw", v["consultation_id"] + "x", v["consultation_id"][:-1]):
        with pytest.raises(SecretRejected, match="another consultation"):
            sealing.open_secret(private_key(v), v["sealed"], other)


def test_a_sealed_secret_does_not_open_with_another_clinicians_key():
    a, b = VECTORS["sealed"][0], VECTORS["sealed"][2]
    assert a["public_key"] != b["public_key"]
    with pytest.raises(SecretRejected):
        sealing.open_secret(private_key(b), a["sealed"], a["consultation_id"])
    with pytest.raises(SecretRejected):
        sealing.open_secret(sealing.generate_private_key(), a["sealed"], a["consultation_id"])


def test_any_altered_byte_of_a_sealed_secret_is_refused():
    v = VECTORS["sealed"][0]
    raw = sealed_bytes(v["sealed"])
    for index in range(1, len(raw)):  # byte 0 is the point's form: see the malformed test
        altered = bytearray(raw)
        altered[index] ^= 0x01
        with pytest.raises(SecretRejected):
            sealing.open_secret(private_key(v), sealed_value(bytes(altered)), v["consultation_id"])


def test_python_seals_what_pyhpke_opens():
    key = sealing.generate_private_key()
    secret = bytes(range(100, 132))
    raw = sealed_bytes(sealing.seal_secret(sealing.encode_public_key(key), secret, "consult-1"))
    assert len(raw) == sealing.SEALED_SIZE == 113
    recipient = PYHPKE.create_recipient_context(raw[:65], pyhpke_key(key), sealing.sealing_info("consult-1"))
    assert recipient.open(raw[65:]) == secret


def test_python_opens_what_pyhpke_seals():
    key = sealing.generate_private_key()
    secret = hashlib.sha256(b"pyhpke to python").digest()
    enc, sender = PYHPKE.create_sender_context(pyhpke_key(key.public_key()), sealing.sealing_info("c2"))
    assert sealing.open_secret(key, sealed_value(enc + sender.seal(secret)), "c2") == secret


def test_each_sealing_draws_a_fresh_ephemeral_key():
    key = sealing.generate_private_key()
    public = sealing.encode_public_key(key)
    first, second = (sealing.seal_secret(public, bytes(32), "same") for _ in range(2))
    assert sealed_bytes(first)[:65] != sealed_bytes(second)[:65]
    assert sealing.open_secret(key, first, "same") == sealing.open_secret(key, second, "same") == bytes(32)


def test_only_a_32_byte_secret_and_a_url_safe_consultation_id_are_sealed():
    public = VECTORS["sealed"][0]["public_key"]
    for secret in (b"", bytes(16), bytes(33), "x" * 32):
        with pytest.raises(ValueError, match="32 bytes"):
            sealing.seal_secret(public, secret, "c")
    for consultation_id in ("", "a/b", "é", "a b", "x" * 257, None):
        with pytest.raises(ValueError, match="consultation id"):
            sealing.seal_secret(public, bytes(32), consultation_id)


@pytest.mark.parametrize("value, error, message", [
    ("", MalformedValue, "not a sealed"),
    ("sealed.v1.", MalformedValue, "113 bytes, not 0"),
    ("pk.v1.AAAA", MalformedValue, "not a sealed"),
    ("sealed.v2.AAAA", UnknownVersion, "unknown version 'v2'"),
    ("sealed.v1.AAAA=", MalformedValue, "base64url"),
    ("sealed.v1.AA+A", MalformedValue, "base64url"),
    ("SEALED.v1.AAAA", MalformedValue, "not a sealed"),
    (None, MalformedValue, "must be a string"),
])
def test_a_malformed_sealed_secret_gets_a_precise_error(value, error, message):
    with pytest.raises(error, match=message):
        sealing.open_secret(sealing.generate_private_key(), value, "c")


def test_a_sealed_secret_whose_ephemeral_key_is_not_uncompressed_is_malformed():
    v = VECTORS["sealed"][0]
    raw = bytearray(sealed_bytes(v["sealed"]))
    raw[0] = 0x02
    with pytest.raises(MalformedValue, match="uncompressed point"):
        sealing.open_secret(private_key(v), sealed_value(bytes(raw)), v["consultation_id"])


def test_a_public_key_must_be_a_point_of_p256():
    good = b64url_decode(VECTORS["sealed"][0]["public_key"][len("pk.v1."):])
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    compressed = bytes([2 + (good[-1] & 1)]) + good[1:33]
    with pytest.raises(MalformedValue, match="not a point of P-256"):
        sealing.decode_public_key("pk.v1." + b64url_encode(off_curve))
    with pytest.raises(MalformedValue, match="65 bytes"):
        sealing.decode_public_key("pk.v1." + b64url_encode(compressed))
    with pytest.raises(MalformedValue, match="uncompressed"):
        sealing.decode_public_key("pk.v1." + b64url_encode(b"\x05" + good[1:]))
    with pytest.raises(MalformedValue, match="not a point of P-256"):
        sealing.seal_secret("pk.v1." + b64url_encode(off_curve), bytes(32), "c")


def test_a_private_key_is_a_scalar_between_1_and_n_minus_1():
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    for scalar in (bytes(32), n.to_bytes(32, "big"), b"\xff" * 32, bytes(31)):
        with pytest.raises(MalformedValue):
            sealing.private_key_from_bytes(scalar)
    assert sealing.private_key_bytes(sealing.private_key_from_bytes((n - 1).to_bytes(32, "big"))) == (n - 1).to_bytes(32, "big")


# --- wrapping the private key ---------------------------------------------------------


def test_python_reproduces_every_wrapped_vector():
    for v in VECTORS["wrapped"]:
        salt, iv = b64url_decode(v["salt"]), b64url_decode(v["iv"])
        # the wrapping key, from the standard library: independent of cryptography's PBKDF2
        reference = hashlib.pbkdf2_hmac("sha256", v["password"].encode("utf-8"), salt, v["iterations"], 32)
        assert b64url_decode(v["wrapping_key"]) == reference
        assert sealing.derive_wrapping_key(v["password"], salt, v["iterations"]) == reference
        wrapped = sealing.wrap_private_key(private_key(v), v["password"], iterations=v["iterations"], salt=salt, iv=iv)
        assert wrapped == WrappedKey(v["iterations"], v["salt"], v["wrapped"])
        # the layout: iv || AES-256-GCM(PKCS#8 DER), AAD = label || public key
        blob = b64url_decode(v["wrapped"][len("wrapped.v1."):])
        public = b64url_decode(v["public_key"][len("pk.v1."):])
        assert len(blob) == 12 + 138 + 16 and blob[:12] == iv
        der = AESGCM(reference).decrypt(iv, blob[12:], b"teleconsult/v1/wrapped-key" + public)
        # RFC 5915 ECPrivateKey inside PKCS#8: the scalar at byte 36, the public key at the end
        assert der[36:68] == b64url_decode(v["private_key"]) and der[-65:] == public


def test_every_wrapped_vector_unwraps_with_its_password_only():
    for v in VECTORS["wrapped"]:
        wrapped = WrappedKey(v["iterations"], v["salt"], v["wrapped"])
        key = sealing.unwrap_private_key(wrapped, v["public_key"], v["password"])
        assert b64url_encode(sealing.private_key_bytes(key)) == v["private_key"]
        with pytest.raises(WrongPassword, match="wrong password"):
            sealing.unwrap_private_key(wrapped, v["public_key"], v["password"] + " ")


def test_the_key_unwrapped_from_a_vector_opens_the_secrets_sealed_to_it():
    w = VECTORS["wrapped"][0]
    key = sealing.unwrap_private_key(WrappedKey(w["iterations"], w["salt"], w["wrapped"]), w["public_key"], w["password"])
    mine = [v for v in VECTORS["sealed"] if v["public_key"] == w["public_key"]]
    assert len(mine) == 2
    for v in mine:
        assert sealing.open_secret(key, v["sealed"], v["consultation_id"]) == b64url_decode(v["secret"])


def test_an_altered_wrapping_is_refused_like_a_wrong_password(clinician):
    key, public, wrapped = clinician
    raw = b64url_decode(wrapped.wrapped[len("wrapped.v1."):])
    flipped = bytearray(raw)
    flipped[30] ^= 0x80
    other_salt = b64url_encode(bytes(16))
    another_public = sealing.encode_public_key(sealing.generate_private_key())
    cases = [
        (WrappedKey(wrapped.iterations, wrapped.salt, "wrapped.v1." + b64url_encode(bytes(flipped))), public),
        (WrappedKey(wrapped.iterations, other_salt, wrapped.wrapped), public),
        (WrappedKey(wrapped.iterations + 1, wrapped.salt, wrapped.wrapped), public),
        (wrapped, another_public),  # a public key swapped in the database
    ]
    for altered, public_key in cases:
        with pytest.raises(WrongPassword):
            sealing.unwrap_private_key(altered, public_key, PASSWORD)
    assert sealing.private_key_bytes(sealing.unwrap_private_key(wrapped, public, PASSWORD)) == sealing.private_key_bytes(key)


@pytest.mark.parametrize("iterations", [0, 1, 599_999, 10_000_001, "600000", 600_000.0, True])
def test_the_iteration_count_stays_between_600000_and_ten_million(clinician, iterations):
    key, public, wrapped = clinician
    with pytest.raises(MalformedValue, match="iterations must be between 600000 and 10000000"):
        sealing.wrap_private_key(key, PASSWORD, iterations=iterations)
    with pytest.raises(MalformedValue, match="iterations"):
        sealing.unwrap_private_key(WrappedKey(iterations, wrapped.salt, wrapped.wrapped), public, PASSWORD)


@pytest.mark.parametrize("field, value, message", [
    ("salt", "AAAA", "salt has 16 bytes"),
    ("salt", "not base64!", "salt is not unpadded base64url"),
    ("wrapped", "wrapped.v1.AAAA", "166 bytes"),
    ("wrapped", "wrapped.v9." + "A" * 80, "unknown version"),
    ("wrapped", "sealed.v1." + "A" * 80, "not a wrapped"),
])
def test_a_malformed_wrapped_key_gets_a_precise_error(clinician, field, value, message):
    _, public, wrapped = clinician
    fields = wrapped.as_dict() | {field: value}
    with pytest.raises(MalformedValue, match=message):
        sealing.unwrap_private_key(WrappedKey(**fields), public, PASSWORD)


def test_a_wrapped_key_travels_as_a_json_object_of_three_fields(clinician):
    _, public, wrapped = clinician
    back = WrappedKey.from_dict(json.loads(json.dumps(wrapped.as_dict())))
    assert back == wrapped and set(wrapped.as_dict()) == {"iterations", "salt", "wrapped"}
    with pytest.raises(MalformedValue, match="exactly"):
        WrappedKey.from_dict(wrapped.as_dict() | {"extra": 1})


def test_a_password_change_rewraps_under_a_fresh_salt(clinician):
    key, public, wrapped = clinician
    new = sealing.rewrap_private_key(wrapped, public, PASSWORD, "a new and longer password", iterations=650_000)
    assert new.salt != wrapped.salt and new.iterations == 650_000
    assert sealing.private_key_bytes(sealing.unwrap_private_key(new, public, "a new and longer password")) == sealing.private_key_bytes(key)
    with pytest.raises(WrongPassword):
        sealing.unwrap_private_key(new, public, PASSWORD)
    with pytest.raises(WrongPassword):
        sealing.rewrap_private_key(wrapped, public, "not the old password", "whatever new one")


def test_a_rewrap_keeps_a_raised_iteration_count():
    key = sealing.generate_private_key()
    public = sealing.encode_public_key(key)
    raised = sealing.wrap_private_key(key, PASSWORD, iterations=800_000)
    assert sealing.rewrap_private_key(raised, public, PASSWORD, "next password here").iterations == 800_000


def test_every_error_is_a_sealing_error_and_a_value_error():
    for error in (MalformedValue, UnknownVersion, WrongPassword, SecretRejected):
        assert issubclass(error, SealingError) and issubclass(error, ValueError)


def test_a_wrapping_that_authenticates_but_holds_no_p256_key_of_this_public_key_is_malformed(clinician):
    """Only a faulty wrapper could produce these (the AAD binds the public key), but the
    unwrapper still refuses them rather than hand back a key that does not match."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    _, public, wrapped = clinician
    salt = b64url_decode(wrapped.salt)
    key = sealing.derive_wrapping_key(PASSWORD, salt, wrapped.iterations)
    aad = b"teleconsult/v1/wrapped-key" + b64url_decode(public[len("pk.v1."):])
    other = sealing.generate_private_key().private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    for plaintext in (bytes(138), other, p384[:138]):
        iv = bytes(12)
        blob = "wrapped.v1." + b64url_encode(iv + AESGCM(key).encrypt(iv, plaintext, aad))
        with pytest.raises(MalformedValue, match="PKCS#8|P-256 key of this public key"):
            sealing.unwrap_private_key(WrappedKey(wrapped.iterations, wrapped.salt, blob), public, PASSWORD)
