"""static/js/sealing.js in real Chromium: the shared vectors (tests/vectors/sealing.json),
RFC 9180's vector for our KEM, interoperability with teleconsult.sealing in both
directions (seal, open, wrap, unwrap, re-wrap), and named errors.

A test-only aiohttp app on a loopback port serves the project's /static directory, a
static page and a harness module, under a CSP that forbids inline script and eval, the
way the real app serves the modules (tests/module_harness.py).
"""

import json
import os

import pytest
import pytest_asyncio

from browser import chromium
from module_harness import ROOT, harness_tab, serve_harness

from filedrop.ece import b64url_decode, b64url_encode
from teleconsult import sealing
from teleconsult.sealing import WrappedKey

VECTORS = json.loads((ROOT / "tests" / "vectors" / "sealing.json").read_text("utf-8"))
PASSWORD = "un mot de passe de consultation"

HARNESS = """
import * as sealing from '/static/js/sealing.js';
import { b64urlDecode as unb64, b64urlEncode as b64 } from '/static/js/ece.js';

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const unhex = (text) => new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));

// a key pair from a raw scalar and its public point, as the vectors give them
async function keyPair(scalar, point, extractable = false) {
  const jwk = { kty: 'EC', crv: 'P-256', d: b64(scalar), x: b64(point.subarray(1, 33)), y: b64(point.subarray(33, 65)) };
  const ecdh = { name: 'ECDH', namedCurve: 'P-256' };
  return {
    privateKey: await crypto.subtle.importKey('jwk', jwk, ecdh, extractable, ['deriveBits']),
    publicKey: await crypto.subtle.importKey('raw', point, ecdh, true, []),
  };
}

async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    return { name: error.name, message: error.message, sealingError: error instanceof sealing.SealingError };
  }
}

window.harness = { sealing, b64, unb64, hex, unhex, keyPair, failure };
document.documentElement.dataset.ready = 'yes';
"""


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def base_url():
    async with serve_harness("sealing.js test page", HARNESS) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser, base_url):
    """A fresh page with sealing.js loaded; `problems` collects console and page errors
    (a CSP violation would land there)."""
    async with harness_tab(browser, base_url) as opened:
        yield opened


@pytest.fixture(scope="module")
def python_clinician():
    key = sealing.generate_private_key()
    return key, sealing.encode_public_key(key), sealing.wrap_private_key(key, PASSWORD)


async def test_javascript_reproduces_the_rfc_9180_vector_of_our_kem(tab):
    result = await tab.page.evaluate(
        """async (v) => {
          const { sealing, hex, unhex, keyPair } = window.harness;
          const suite = { kemId: v.kem_id, kdfId: v.kdf_id, aeadId: v.aead_id, keySize: 16 };
          const ephemeral = { privateKey: unhex(v.skEm), publicKey: unhex(v.pkEm) };
          const { sharedSecret, enc } = await sealing.encap(unhex(v.pkRm), { suite, ephemeral });
          const schedule = await sealing.keyScheduleBase(sharedSecret, unhex(v.info), { suite });
          const sealed = await sealing.sealBase(unhex(v.pkRm), unhex(v.info), unhex(v.aad), unhex(v.plaintext), { suite, ephemeral });
          const recipient = await keyPair(unhex(v.skRm), unhex(v.pkRm));
          const opened = await sealing.openBase(unhex(v.enc), recipient.privateKey, unhex(v.pkRm), unhex(v.info),
            unhex(v.aad), unhex(v.ciphertext), { suite });
          return {
            enc: hex(enc), shared_secret: hex(sharedSecret),
            key_schedule_context: hex(schedule.keyScheduleContext), secret: hex(schedule.secret),
            key: hex(schedule.key), base_nonce: hex(schedule.baseNonce),
            sealed_enc: hex(sealed.enc), ciphertext: hex(sealed.ciphertext), plaintext: hex(opened),
          };
        }""",
        VECTORS["rfc9180"],
    )
    rfc = VECTORS["rfc9180"]
    for field in ("enc", "shared_secret", "key_schedule_context", "secret", "key", "base_nonce", "ciphertext", "plaintext"):
        assert result[field] == rfc[field], field
    assert result["sealed_enc"] == rfc["enc"]
    assert tab.problems == []


async def test_javascript_reproduces_every_sealed_vector(tab):
    result = await tab.page.evaluate(
        """async (vectors) => {
          const { sealing, unb64 } = window.harness;
          const out = [];
          for (const v of vectors) {
            const ephemeral = { privateKey: unb64(v.ephemeral_private_key), publicKey: unb64(v.ephemeral_public_key) };
            out.push(await sealing.sealSecret(v.public_key, unb64(v.secret), v.consultation_id, { ephemeral }));
          }
          return out;
        }""",
        VECTORS["sealed"],
    )
    assert result == [v["sealed"] for v in VECTORS["sealed"]]
    assert tab.problems == []


async def test_javascript_reproduces_every_wrapped_vector_and_opens_the_secrets_with_the_unwrapped_key(tab):
    result = await tab.page.evaluate(
        """async ([wrappedVectors, sealedVectors]) => {
          const { sealing, b64, unb64, keyPair } = window.harness;
          const out = [];
          for (const w of wrappedVectors) {
            const pair = await keyPair(unb64(w.private_key), unb64(w.public_key.slice('pk.v1.'.length)), true);
            const made = await sealing.createClinicianKey(w.password,
              { iterations: w.iterations, salt: unb64(w.salt), iv: unb64(w.iv), keyPair: pair });
            const wrappingKey = await sealing.deriveWrappingKey(w.password, w.salt, w.iterations);
            const key = await sealing.unwrapPrivateKey(
              { iterations: w.iterations, salt: w.salt, wrapped: w.wrapped }, w.public_key, wrappingKey);
            const opened = {};
            for (const s of sealedVectors.filter((s) => s.public_key === w.public_key)) {
              opened[s.consultation_id] = b64(await sealing.openSecret(key, s.sealed, s.consultation_id));
            }
            out.push({
              publicKey: made.publicKey, wrapped: made.wrapped, opened,
              extractable: [key.privateKey.extractable, made.key.privateKey.extractable],
              wrappingKey: [wrappingKey.extractable, wrappingKey.usages.sort().join(' ')],
            });
          }
          return out;
        }""",
        [VECTORS["wrapped"], VECTORS["sealed"]],
    )
    for got, w in zip(result, VECTORS["wrapped"], strict=True):
        assert got["publicKey"] == w["public_key"]
        assert got["wrapped"] == {"iterations": w["iterations"], "salt": w["salt"], "wrapped": w["wrapped"]}
        mine = {s["consultation_id"]: s["secret"] for s in VECTORS["sealed"] if s["public_key"] == w["public_key"]}
        assert got["opened"] == mine and len(mine) == 2
        assert got["extractable"] == [False, False]
        assert got["wrappingKey"] == [False, "unwrapKey wrapKey"]
    assert tab.problems == []


async def test_the_unwrapped_private_key_cannot_be_exported(tab, python_clinician):
    _, public, wrapped = python_clinician
    result = await tab.page.evaluate(
        """async ([wrapped, publicKey, password]) => {
          const { sealing, failure } = window.harness;
          const wrappingKey = await sealing.deriveWrappingKey(password, wrapped.salt, wrapped.iterations);
          const key = await sealing.unwrapPrivateKey(wrapped, publicKey, wrappingKey);
          return [await failure(crypto.subtle.exportKey('pkcs8', key.privateKey)),
                  await failure(crypto.subtle.exportKey('jwk', key.privateKey)),
                  await failure(crypto.subtle.exportKey('raw', wrappingKey))];
        }""",
        [wrapped.as_dict(), public, PASSWORD],
    )
    assert [error["name"] for error in result] == ["InvalidAccessError"] * 3
    assert tab.problems == []


async def test_python_seals_and_javascript_opens_with_a_key_python_wrapped(tab, python_clinician):
    key, public, wrapped = python_clinician
    secret = os.urandom(32)
    sealed = sealing.seal_secret(public, secret, "py-to-js")
    opened = await tab.page.evaluate(
        """async ([wrapped, publicKey, password, sealed]) => {
          const { sealing, b64 } = window.harness;
          const wrappingKey = await sealing.deriveWrappingKey(password, wrapped.salt, wrapped.iterations);
          const key = await sealing.unwrapPrivateKey(wrapped, publicKey, wrappingKey);
          return b64(await sealing.openSecret(key, sealed, 'py-to-js'));
        }""",
        [wrapped.as_dict(), public, PASSWORD, sealed],
    )
    assert b64url_decode(opened) == secret
    assert tab.problems == []


async def test_javascript_creates_and_seals_and_python_unwraps_and_opens(tab):
    result = await tab.page.evaluate(
        """async (password) => {
          const { sealing, b64 } = window.harness;
          const made = await sealing.createClinicianKey(password);
          const secret = crypto.getRandomValues(new Uint8Array(32));
          const sealed = await sealing.sealSecret(made.publicKey, secret, 'js-to-py');
          // and the key made in the browser opens it at once
          const back = await sealing.openSecret(made.key, sealed, 'js-to-py');
          return { publicKey: made.publicKey, wrapped: made.wrapped, sealed, secret: b64(secret), back: b64(back) };
        }""",
        PASSWORD,
    )
    assert result["back"] == result["secret"]
    assert result["wrapped"]["iterations"] == sealing.DEFAULT_ITERATIONS == 600_000
    key = sealing.unwrap_private_key(WrappedKey.from_dict(result["wrapped"]), result["publicKey"], PASSWORD)
    assert sealing.encode_public_key(key) == result["publicKey"]
    assert sealing.open_secret(key, result["sealed"], "js-to-py") == b64url_decode(result["secret"])
    assert tab.problems == []


async def test_a_password_changed_in_javascript_unwraps_in_python_with_the_new_password_only(tab, python_clinician):
    key, public, wrapped = python_clinician
    new_password = "le nouveau mot de passe ✓"
    rewrapped = await tab.page.evaluate(
        """async ([wrapped, publicKey, oldPassword, newPassword]) => {
          const { sealing } = window.harness;
          return sealing.rewrapPrivateKey(wrapped, publicKey, oldPassword, newPassword, { iterations: 650000 });
        }""",
        [wrapped.as_dict(), public, PASSWORD, new_password],
    )
    new = WrappedKey.from_dict(rewrapped)
    assert new.iterations == 650_000 and new.salt != wrapped.salt
    assert sealing.private_key_bytes(sealing.unwrap_private_key(new, public, new_password)) == sealing.private_key_bytes(key)
    with pytest.raises(sealing.WrongPassword):
        sealing.unwrap_private_key(new, public, PASSWORD)
    assert tab.problems == []


async def test_javascript_names_every_refusal(tab, python_clinician):
    key, public, wrapped = python_clinician
    sealed = sealing.seal_secret(public, os.urandom(32), "consult-7")
    raw = b64url_decode(sealed[len("sealed.v1."):])
    altered_tag = "sealed.v1." + b64url_encode(raw[:-1] + bytes([raw[-1] ^ 1]))
    altered_enc = "sealed.v1." + b64url_encode(raw[:10] + bytes([raw[10] ^ 1]) + raw[11:])
    compressed = "sealed.v1." + b64url_encode(b"\x02" + raw[1:])
    other_key = sealing.encode_public_key(sealing.generate_private_key())
    point = b64url_decode(public[len("pk.v1."):])
    off_curve = "pk.v1." + b64url_encode(point[:-1] + bytes([point[-1] ^ 1]))
    errors = await tab.page.evaluate(
        """async ([wrapped, publicKey, password, sealed, alteredTag, alteredEnc, compressed, otherKey, offCurve]) => {
          const { sealing, failure } = window.harness;
          const wrappingKey = await sealing.deriveWrappingKey(password, wrapped.salt, wrapped.iterations);
          const key = await sealing.unwrapPrivateKey(wrapped, publicKey, wrappingKey);
          const wrongKey = await sealing.deriveWrappingKey(password + 'x', wrapped.salt, wrapped.iterations);
          const other = await sealing.createClinicianKey('another clinician password');
          return {
            wrong_password: await failure(sealing.unwrapPrivateKey(wrapped, publicKey, wrongKey)),
            swapped_public_key: await failure(sealing.unwrapPrivateKey(wrapped, otherKey, wrappingKey)),
            rewrap_wrong_password: await failure(sealing.rewrapPrivateKey(wrapped, publicKey, password + 'x', 'new one')),
            altered_tag: await failure(sealing.openSecret(key, alteredTag, 'consult-7')),
            altered_enc: await failure(sealing.openSecret(key, alteredEnc, 'consult-7')),
            other_consultation: await failure(sealing.openSecret(key, sealed, 'consult-8')),
            other_clinician: await failure(sealing.openSecret(other.key, sealed, 'consult-7')),
            compressed_enc: await failure(sealing.openSecret(key, compressed, 'consult-7')),
            unknown_version: await failure(sealing.openSecret(key, sealed.replace('.v1.', '.v2.'), 'consult-7')),
            wrong_kind: await failure(sealing.openSecret(key, publicKey, 'consult-7')),
            padded: await failure(sealing.openSecret(key, sealed + '=', 'consult-7')),
            short_sealed: await failure(sealing.openSecret(key, 'sealed.v1.AAAA', 'consult-7')),
            few_iterations: await failure(sealing.deriveWrappingKey(password, wrapped.salt, 599999)),
            bad_salt: await failure(sealing.deriveWrappingKey(password, 'AAAA', 600000)),
            off_curve_key: await failure(sealing.sealSecret(offCurve, new Uint8Array(32), 'c')),
          };
        }""",
        [wrapped.as_dict(), public, PASSWORD, sealed, altered_tag, altered_enc, compressed, other_key, off_curve],
    )
    expected = {
        "wrong_password": "WrongPassword",
        "swapped_public_key": "WrongPassword",
        "rewrap_wrong_password": "WrongPassword",
        "altered_tag": "SecretRejected",
        "altered_enc": "SecretRejected",
        "other_consultation": "SecretRejected",
        "other_clinician": "SecretRejected",
        "compressed_enc": "MalformedValue",
        "unknown_version": "UnknownVersion",
        "wrong_kind": "MalformedValue",
        "padded": "MalformedValue",
        "short_sealed": "MalformedValue",
        "few_iterations": "MalformedValue",
        "bad_salt": "MalformedValue",
        "off_curve_key": "MalformedValue",
    }
    assert {name: (error or {}).get("name") for name, error in errors.items()} == expected
    for name, error in errors.items():
        assert error["sealingError"], name
        assert len(error["message"]) > 15, name
    assert "another consultation" in errors["other_consultation"]["message"]
    assert "wrong password" in errors["wrong_password"]["message"]
    assert tab.problems == []
