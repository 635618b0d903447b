"""static/js/ece.js in real Chromium: the shared vectors, interoperability with
filedrop.ece in both directions, and clear errors on tampering.

A test-only aiohttp app on a loopback port serves the project's /static directory, a
static page and a harness module, under a CSP that forbids inline script and eval, the
way the real app serves ece.js.
"""

import json
import os

import pytest
import pytest_asyncio

from browser import chromium
from module_harness import ROOT, harness_tab, serve_harness

from filedrop import ece
from filedrop.ece import b64url_decode, b64url_encode

VECTORS = json.loads((ROOT / "tests" / "vectors" / "ece.json").read_text("utf-8"))

HARNESS = """
import * as ece from '/static/js/ece.js';

function pattern(n) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = i % 251;
  return out;
}

function randomBytes(n) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

// a ReadableStream handing out `bytes` in chunks of `size`, like File.stream() or fetch()
function chunked(bytes, size) {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

async function collect(stream) {
  const reader = stream.getReader();
  const parts = [];
  let length = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    length += value.length;
  }
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

async function sha256hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    return { name: error.name, message: error.message, decryptionError: error instanceof ece.DecryptionError };
  }
}

window.harness = { ece, pattern, randomBytes, chunked, collect, sha256hex, failure };
document.documentElement.dataset.ready = 'yes';
"""


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def base_url():
    async with serve_harness("ece.js test page", HARNESS) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser, base_url):
    """A fresh page with ece.js loaded; `problems` collects console errors and page
    errors (a CSP violation would land there)."""
    async with harness_tab(browser, base_url) as opened:
        yield opened


def pattern(n: int) -> bytes:
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


async def test_javascript_passes_the_shared_vectors(tab):
    result = await tab.page.evaluate(
        """async (v) => {
          const { ece, pattern, chunked, collect, sha256hex } = window.harness;
          const b64 = ece.b64urlEncode, unb64 = ece.b64urlDecode;
          const out = { derivation: [], metadata: [], rfcDecrypt: [], content: [] };
          for (const d of v.derivation) {
            out.derivation.push(b64(await ece.deriveContentIkm(unb64(d.secret), d.doc_id)));
          }
          for (const m of v.metadata) {
            const key = await ece.deriveMetadataKey(unb64(m.secret), m.doc_id);
            const blob = await ece.encryptMetadata(key, m.metadata, { iv: unb64(m.iv) });
            out.metadata.push({ blob: b64(blob), back: await ece.decryptMetadata(key, blob) });
          }
          const r = v.rfc8188[0];
          out.rfcEncrypt = b64(await collect(ece.encryptStream(
            new TextEncoder().encode(r.plaintext), unb64(r.ikm), { salt: unb64(r.salt), rs: r.rs, pad: false })));
          for (const r of v.rfc8188) {
            const plain = await collect(ece.decryptStream(chunked(unb64(r.ciphertext), 5), unb64(r.ikm)));
            out.rfcDecrypt.push(new TextDecoder().decode(plain));
          }
          for (const c of v.content) {
            const ikm = await ece.deriveContentIkm(unb64(c.secret), c.doc_id);
            const plain = pattern(c.plaintext_length);
            const ct = await collect(ece.encryptStream(chunked(plain, 10000), ikm, { salt: unb64(c.salt), pad: c.pad }));
            const back = await collect(ece.decryptStream(chunked(ct, 7777), ikm));
            out.content.push({
              length: ct.length,
              sha256: await sha256hex(ct),
              header: b64(ct.subarray(0, ece.HEADER_SIZE)),
              ciphertext: ct.length <= 256 ? b64(ct) : null,
              roundTrip: back.length === plain.length && (await sha256hex(back)) === (await sha256hex(plain)),
            });
          }
          out.buckets = v.buckets.map((b) => [ece.paddedRecords(b.plaintext_size), ece.paddedSize(b.plaintext_size)]);
          return out;
        }""",
        VECTORS,
    )
    assert result["derivation"] == [d["content_ikm"] for d in VECTORS["derivation"]]
    for got, vector in zip(result["metadata"], VECTORS["metadata"], strict=True):
        assert got["blob"] == vector["blob"]
        assert got["back"] == vector["metadata"]
    assert result["rfcEncrypt"] == VECTORS["rfc8188"][0]["ciphertext"]
    assert result["rfcDecrypt"] == ["I am the walrus", "I am the walrus"]
    for got, vector in zip(result["content"], VECTORS["content"], strict=True):
        assert got["length"] == vector["ciphertext_length"], vector["name"]
        assert got["sha256"] == vector["ciphertext_sha256"], vector["name"]
        assert got["header"] == vector["header"], vector["name"]
        assert got["ciphertext"] == vector.get("ciphertext"), vector["name"]
        assert got["roundTrip"], vector["name"]
    assert result["buckets"] == [[b["records"], b["ciphertext_size"]] for b in VECTORS["buckets"]]
    assert tab.problems == []


async def test_javascript_decrypts_what_python_encrypted(tab):
    secret, doc_id = os.urandom(32), "py-to-js_doc"
    plaintext = os.urandom(200 * 1024 + 123)
    ciphertext = ece.encrypt(plaintext, ece.derive_content_ikm(secret, doc_id))
    assert len(ciphertext) == ece.padded_size(len(plaintext)) > 3 * ece.RECORD_SIZE
    meta = {"name": "ordonnance – Dupont.pdf", "type": "application/pdf", "size": len(plaintext), "role": "clinician"}
    blob = ece.encrypt_metadata(ece.derive_metadata_key(secret, doc_id), meta)
    result = await tab.page.evaluate(
        """async ([secret, docId, ciphertext, blob]) => {
          const { ece, chunked, collect } = window.harness;
          const s = ece.b64urlDecode(secret);
          const ikm = await ece.deriveContentIkm(s, docId);
          const plain = await collect(ece.decryptStream(chunked(ece.b64urlDecode(ciphertext), 16384), ikm));
          const key = await ece.deriveMetadataKey(s, docId);
          return { plain: ece.b64urlEncode(plain), meta: await ece.decryptMetadata(key, ece.b64urlDecode(blob)) };
        }""",
        [b64url_encode(secret), doc_id, b64url_encode(ciphertext), b64url_encode(blob)],
    )
    assert b64url_decode(result["plain"]) == plaintext
    assert result["meta"] == meta
    assert tab.problems == []


async def test_python_decrypts_what_javascript_encrypted(tab):
    secret, doc_id = os.urandom(16), "js-to-py.drop"
    result = await tab.page.evaluate(
        """async ([secret, docId]) => {
          const { ece, randomBytes, chunked, collect } = window.harness;
          const s = ece.b64urlDecode(secret);
          const plain = randomBytes(200 * 1024 + 77);
          const ikm = await ece.deriveContentIkm(s, docId);
          const ct = await collect(ece.encryptStream(chunked(plain, 16384), ikm));
          const blob = await ece.encryptMetadata(await ece.deriveMetadataKey(s, docId),
            { name: 'photo plaie J+3.jpg', type: 'image/jpeg', size: plain.length, role: 'patient' });
          return {
            plain: ece.b64urlEncode(plain),
            ciphertext: ece.b64urlEncode(ct),
            blob: ece.b64urlEncode(blob),
            expectedSize: ece.paddedSize(plain.length),
          };
        }""",
        [b64url_encode(secret), doc_id],
    )
    plaintext, ciphertext = b64url_decode(result["plain"]), b64url_decode(result["ciphertext"])
    assert len(ciphertext) == result["expectedSize"] == ece.padded_size(len(plaintext))
    assert ece.decrypt(ciphertext, ece.derive_content_ikm(secret, doc_id)) == plaintext
    meta = ece.decrypt_metadata(ece.derive_metadata_key(secret, doc_id), b64url_decode(result["blob"]))
    assert meta == {"name": "photo plaie J+3.jpg", "type": "image/jpeg", "size": len(plaintext), "role": "patient"}
    assert tab.problems == []


async def test_tampered_ciphertext_gives_a_clear_error_in_javascript(tab):
    secret, doc_id = os.urandom(32), "tamper-doc"
    ikm = ece.derive_content_ikm(secret, doc_id)
    ciphertext = ece.encrypt(os.urandom(200 * 1024), ikm)
    hdr, rs = ece.HEADER_SIZE, ece.RECORD_SIZE
    records = [ciphertext[hdr + i : hdr + i + rs] for i in range(0, len(ciphertext) - hdr, rs)]
    flipped = bytearray(ciphertext)
    flipped[hdr + rs + 1234] ^= 0x04
    bad_rs = ciphertext[:16] + (rs * 2).to_bytes(4, "big") + ciphertext[20:]
    cases = {
        "flipped": bytes(flipped),
        "reordered": ciphertext[:hdr] + records[0] + records[2] + records[1] + b"".join(records[3:]),
        "duplicated": ciphertext[:hdr] + b"".join(records[:2] + records[1:]),
        "truncated": ciphertext[: hdr + 2 * rs],
        "cut_mid_record": ciphertext[: hdr + 2 * rs + 500],
        "header_only": ciphertext[:10],
        "trailing": ciphertext + b"\x00",
        "bad_record_size": bad_rs,
    }
    meta_blob = ece.encrypt_metadata(
        ece.derive_metadata_key(secret, doc_id), {"name": "a", "type": "b", "size": 1, "role": "patient"}
    )
    errors = await tab.page.evaluate(
        """async ([secret, docId, cases, original, blob]) => {
          const { ece, chunked, collect, failure } = window.harness;
          const s = ece.b64urlDecode(secret);
          const ikm = await ece.deriveContentIkm(s, docId);
          const out = {};
          for (const [name, data] of Object.entries(cases)) {
            out[name] = await failure(collect(ece.decryptStream(chunked(ece.b64urlDecode(data), 10000), ikm)));
          }
          const wrongIkm = await ece.deriveContentIkm(s, docId + 'x');
          out.wrong_doc_id = await failure(collect(ece.decryptStream(ece.b64urlDecode(original), wrongIkm)));
          out.wrong_metadata_key = await failure(ece.decryptMetadata(await ece.deriveMetadataKey(s, docId + 'x'), ece.b64urlDecode(blob)));
          return out;
        }""",
        [
            b64url_encode(secret),
            doc_id,
            {k: b64url_encode(v) for k, v in cases.items()},
            b64url_encode(ciphertext),
            b64url_encode(meta_blob),
        ],
    )
    expected = {
        "flipped": "TamperedRecord",
        "reordered": "TamperedRecord",
        "duplicated": "TamperedRecord",
        "truncated": "TruncatedStream",
        "cut_mid_record": "TamperedRecord",
        "header_only": "TruncatedStream",
        "trailing": "TrailingData",
        "bad_record_size": "BadHeader",
        "wrong_doc_id": "WrongKey",
        "wrong_metadata_key": "WrongKey",
    }
    assert {name: (error or {}).get("name") for name, error in errors.items()} == expected
    for name, error in errors.items():
        assert error["decryptionError"], name
        assert len(error["message"]) > 15, name
    assert "record 1" in errors["flipped"]["message"]
    assert tab.problems == []

