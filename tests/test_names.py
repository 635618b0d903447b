"""teleconsult/names.py: display names sealed to the consultation secret (docs/encryption.md
section 10), against tests/vectors/names.json (shared with static/js/names.js, checked in Chromium
by test_names_browser.py) and a reference derivation written here with the standard library."""

import hashlib
import hmac
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from filedrop.ece import b64url_decode, b64url_encode
from teleconsult import names

VECTORS = json.loads((Path(__file__).parent / "vectors" / "names.json").read_text("utf-8"))
SECRET = b64url_decode(VECTORS["secret"])


def _reference_key(secret: bytes) -> bytes:
    """RFC 5869 by hand: an empty salt is HashLen zero bytes; one block of output."""
    prk = hmac.new(b"\0" * 32, secret, hashlib.sha256).digest()
    return hmac.new(prk, b"teleconsult/v1/name" + b"\x01", hashlib.sha256).digest()


def test_the_name_key_is_hkdf_sha256_of_the_secret_with_the_name_info():
    assert names.derive_key(SECRET) == _reference_key(SECRET) == b64url_decode(VECTORS["name_key"])


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"][:12])
def test_sealing_matches_the_vectors_and_opens_back(case):
    sealed = names.seal(SECRET, case["name"], iv=b64url_decode(case["iv"]))
    assert b64url_encode(sealed) == case["sealed"]
    assert len(sealed) == names.SEALED_SIZE == VECTORS["sealed_size"] == 284
    assert names.open_text(SECRET, case["sealed"]) == case["name"]
    # the layout, with the reference key: IV || AES-256-GCM(UTF-8 name padded with zeros to 256)
    padded = AESGCM(_reference_key(SECRET)).decrypt(sealed[:12], sealed[12:], None)
    assert padded == case["name"].encode().ljust(256, b"\0")


def test_every_sealed_name_has_the_same_length_whatever_the_name():
    lengths = {len(names.seal_text(SECRET, name)) for name in ("A", "Zoé", "x" * 60, "🙂" * 60)}
    assert lengths == {names.SEALED_TEXT_SIZE} == {379}


def test_names_are_cleaned_and_bad_ones_refused_as_the_browser_does():
    for case in VECTORS["cleaned"]:
        assert names.clean(case["typed"]) == case["name"]
    for typed in VECTORS["refused"] + ["Camille\x1fDupont"]:
        with pytest.raises(names.BadName):
            names.seal(SECRET, typed)


def test_a_sealed_name_does_not_open_under_another_secret_nor_once_altered():
    sealed = bytearray(names.seal(SECRET, "Camille Dupont"))
    with pytest.raises(names.BadSealedName):
        names.open_sealed(os.urandom(32), bytes(sealed))
    sealed[40] ^= 1
    with pytest.raises(names.BadSealedName):
        names.open_sealed(SECRET, bytes(sealed))


@pytest.mark.parametrize("text", [None, 7, "", "Camille Dupont", "a" * 378, "a" * 380, "=" * 379, "é" * 379,
                                  "+" * 379, b64url_encode(os.urandom(283))])
def test_the_server_accepts_only_the_shape_of_a_sealed_name(text):
    with pytest.raises(names.BadSealedName):
        names.check_sealed(text)


def test_the_server_accepts_a_sealed_name_it_cannot_open():
    assert len(names.check_sealed(names.seal_text(os.urandom(32), "Camille"))) == names.SEALED_SIZE
