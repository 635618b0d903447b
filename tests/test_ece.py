"""filedrop.ece: RFC 8188 content encryption, metadata sealing, size buckets.

Vectors live in tests/vectors/ece.json and are shared with the browser test
(tests/test_ece_browser.py). http_ece and a reference written here with the standard
library's hmac serve as independent checks.
"""

import hashlib
import hmac
import json
import os
import random
import tracemalloc
from pathlib import Path

import http_ece
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from filedrop import ece
from filedrop.ece import records
from filedrop.ece import (
    BadHeader,
    BadMetadata,
    BadPadding,
    DecryptionError,
    TamperedRecord,
    TrailingData,
    TruncatedStream,
    WrongKey,
    b64url_decode,
    b64url_encode,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "ece.json").read_text("utf-8"))
RS = ece.RECORD_SIZE
HDR = ece.HEADER_SIZE


def pattern(n: int) -> bytes:
    """The vectors' plaintext rule: byte i is i % 251."""
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with the standard library only, independent of `cryptography`'s HKDF."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def reference_encrypt(plaintext: bytes, ikm: bytes, salt: bytes) -> bytes:
    """The protocol's padded layout, written out independently of filedrop.ece: full
    records, the last data record zero-padded, padding-only records up to the bucket."""
    cek = hkdf_sha256(ikm, salt, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = int.from_bytes(hkdf_sha256(ikm, salt, b"Content-Encoding: nonce\x00", 12), "big")
    capacity = RS - 17
    pieces = [plaintext[i : i + capacity] for i in range(0, len(plaintext), capacity)] or [b""]
    pieces += [b""] * (ece.padded_records(len(plaintext)) - len(pieces))
    out = [salt, RS.to_bytes(4, "big"), b"\x00"]
    for seq, piece in enumerate(pieces):
        delimiter = b"\x02" if seq == len(pieces) - 1 else b"\x01"
        record = (piece + delimiter).ljust(RS - 16, b"\x00")
        out.append(AESGCM(cek).encrypt((nonce ^ seq).to_bytes(12, "big"), record, None))
    return b"".join(out)


def content_ikm(vector) -> bytes:
    return ece.derive_content_ikm(b64url_decode(vector["secret"]), vector["doc_id"])


def encrypt_vector(vector) -> bytes:
    return ece.encrypt(
        pattern(vector["plaintext_length"]),
        content_ikm(vector),
        salt=b64url_decode(vector["salt"]),
        pad=vector["pad"],
    )


def records_of(ciphertext: bytes, rs: int = RS) -> tuple[bytes, list[bytes]]:
    body = ciphertext[HDR:]
    return ciphertext[:HDR], [body[i : i + rs] for i in range(0, len(body), rs)]


@pytest.fixture(scope="module")
def sample():
    """A 200 KiB file (four records) under a consultation secret."""
    ikm = ece.derive_content_ikm(os.urandom(32), "sample-doc")
    plaintext = os.urandom(200 * 1024)
    return ikm, plaintext, ece.encrypt(plaintext, ikm)


# --- RFC 8188 -------------------------------------------------------------------------


def test_python_encryption_matches_the_rfc8188_example():
    vector = VECTORS["rfc8188"][0]
    ikm, salt = b64url_decode(vector["ikm"]), b64url_decode(vector["salt"])
    cek, nonce = ece.derive_record_keys(ikm, salt)
    assert hmac.new(salt, ikm, hashlib.sha256).digest() == b64url_decode(vector["prk"])
    assert cek == b64url_decode(vector["cek"])
    assert nonce == b64url_decode(vector["nonce"])
    ciphertext = ece.encrypt(vector["plaintext"].encode(), ikm, salt=salt, rs=vector["rs"], pad=False)
    assert b64url_encode(ciphertext) == vector["ciphertext"]
    assert ece.decrypt(ciphertext, ikm) == b"I am the walrus"


def test_python_reproduces_the_rfc8188_two_record_example_with_a_keyid():
    vector = VECTORS["rfc8188"][1]
    ikm, expected = b64url_decode(vector["ikm"]), b64url_decode(vector["ciphertext"])
    header = ece.parse_header(expected)
    assert (header.rs, header.keyid, b64url_encode(header.salt)) == (25, b"a1", vector["salt"])
    cek, nonce = ece.derive_record_keys(ikm, header.salt)
    plaintext, offset, built = vector["plaintext"].encode(), 0, [ece.build_header(header.salt, 25, b"a1")]
    for seq, layout in enumerate(vector["records"]):
        data = plaintext[offset : offset + layout["data"]]
        offset += layout["data"]
        last = seq == len(vector["records"]) - 1
        built.append(ece.seal_record(cek, nonce, seq, data, last=last, padding=layout["padding"]))
    assert b"".join(built) == expected
    assert ece.decrypt(expected, ikm) == plaintext


def test_http_ece_agrees_with_the_rfc8188_vectors():
    for vector in VECTORS["rfc8188"]:
        ciphertext, ikm = b64url_decode(vector["ciphertext"]), b64url_decode(vector["ikm"])
        assert http_ece.decrypt(ciphertext, key=ikm, version="aes128gcm") == vector["plaintext"].encode()


# --- our vectors ----------------------------------------------------------------------


def test_key_derivation_matches_the_vectors_and_an_independent_hkdf():
    for vector in VECTORS["derivation"]:
        secret, doc_id = b64url_decode(vector["secret"]), vector["doc_id"]
        ikm = ece.derive_content_ikm(secret, doc_id)
        key = ece.derive_metadata_key(secret, doc_id)
        assert b64url_encode(ikm) == vector["content_ikm"]
        assert b64url_encode(key) == vector["metadata_key"]
        assert ikm == hkdf_sha256(secret, doc_id.encode(), b"teleconsult/v1/content", 16)
        assert key == hkdf_sha256(secret, doc_id.encode(), b"teleconsult/v1/metadata", 32)


def test_each_document_gets_its_own_keys():
    first, second = VECTORS["derivation"][:2]
    assert first["secret"] == second["secret"]
    assert first["content_ikm"] != second["content_ikm"]
    assert first["metadata_key"] != second["metadata_key"]


@pytest.mark.parametrize("vector", VECTORS["content"], ids=lambda v: v["name"])
def test_python_encryption_matches_our_vectors(vector):
    ciphertext = encrypt_vector(vector)
    assert len(ciphertext) == vector["ciphertext_length"]
    assert hashlib.sha256(ciphertext).hexdigest() == vector["ciphertext_sha256"]
    assert b64url_encode(ciphertext[:HDR]) == vector["header"]
    if "ciphertext" in vector:
        assert b64url_encode(ciphertext) == vector["ciphertext"]
    if vector["pad"]:
        assert len(ciphertext) == ece.padded_size(vector["plaintext_length"])
        assert ciphertext == reference_encrypt(
            pattern(vector["plaintext_length"]), content_ikm(vector), b64url_decode(vector["salt"])
        )
    assert ece.decrypt(ciphertext, content_ikm(vector)) == pattern(vector["plaintext_length"])


@pytest.mark.parametrize("vector", VECTORS["content"], ids=lambda v: v["name"])
def test_python_and_http_ece_agree_on_our_vectors(vector):
    ciphertext, ikm = encrypt_vector(vector), content_ikm(vector)
    plaintext = pattern(vector["plaintext_length"])
    assert http_ece.decrypt(ciphertext, key=ikm, version="aes128gcm") == plaintext
    if not vector["pad"] and plaintext:
        # http_ece writes no record at all for an empty body; otherwise the layouts match
        reference = http_ece.encrypt(
            plaintext, salt=b64url_decode(vector["salt"]), key=ikm, rs=RS, version="aes128gcm"
        )
        assert reference == ciphertext


def test_python_decrypts_what_http_ece_encrypted_across_many_records():
    ikm, salt, plaintext = os.urandom(16), os.urandom(16), os.urandom(5000)
    ciphertext = http_ece.encrypt(plaintext, salt=salt, key=ikm, rs=100, version="aes128gcm")
    assert ece.decrypt(ciphertext, ikm) == plaintext
    assert ece.encrypt(plaintext, ikm, salt=salt, rs=100, pad=False) == ciphertext


def test_metadata_encryption_matches_the_vectors():
    for vector in VECTORS["metadata"]:
        key = ece.derive_metadata_key(b64url_decode(vector["secret"]), vector["doc_id"])
        blob = ece.encrypt_metadata(key, vector["metadata"], iv=b64url_decode(vector["iv"]))
        assert b64url_encode(blob) == vector["blob"]
        assert len(blob) == vector["blob_length"]
        assert ece.decrypt_metadata(key, blob) == vector["metadata"]


def test_bucket_table_matches_the_vectors():
    for row in VECTORS["buckets"]:
        assert ece.padded_records(row["plaintext_size"]) == row["records"]
        assert ece.padded_size(row["plaintext_size"]) == row["ciphertext_size"]


# --- size buckets ---------------------------------------------------------------------


def test_small_record_counts_are_kept_and_larger_ones_rounded_padme_style():
    assert [ece.bucket_records(n) for n in range(1, 20)] == [
        1, 2, 3, 4, 5, 6, 7, 8, 10, 10, 12, 12, 14, 14, 16, 16, 18, 18, 20
    ]
    assert ece.bucket_records(33) == 36
    assert ece.bucket_records(129) == 144


def test_padding_overhead_stays_under_twelve_percent():
    worst = max((ece.bucket_records(n) - n) / n for n in range(1, 100_000))
    assert worst < 0.12


def test_buckets_are_monotonic_and_recognisable_by_the_server():
    sizes = [ece.padded_size(n) for n in range(0, 40 * RS, 4099)]
    assert sizes == sorted(sizes)
    assert all(ece.is_padded_size(size) for size in sizes)
    assert not ece.is_padded_size(HDR + 9 * RS)  # nine records are never a bucket
    assert not ece.is_padded_size(HDR + RS + 1)
    assert not ece.is_padded_size(HDR)


@pytest.mark.parametrize("size", [0, 1, RS - 17, RS - 16, 3 * (RS - 17) + 1, 8 * (RS - 17) + 1])
def test_ciphertext_length_is_the_bucket_of_the_plaintext_length(size):
    ikm = os.urandom(16)
    plaintext = os.urandom(size)
    ciphertext = ece.encrypt(plaintext, ikm)
    assert len(ciphertext) == ece.padded_size(size)
    assert ece.decrypt(ciphertext, ikm) == plaintext


def test_files_in_the_same_bucket_have_the_same_ciphertext_length():
    ikm = os.urandom(16)
    assert len({len(ece.encrypt(os.urandom(n), ikm)) for n in (0, 10, 5000, RS - 17)}) == 1


def test_metadata_is_padded_so_names_do_not_leak_length():
    key = os.urandom(32)
    lengths = {
        len(ece.encrypt_metadata(key, {"name": "x" * n, "type": "application/pdf", "size": n, "role": "patient"}))
        for n in (0, 1, 40, 255, 900)
    }
    assert lengths == {ece.METADATA_IV_SIZE + ece.METADATA_BLOCK + ece.TAG_SIZE}


# --- streaming ------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 4096, RS - 17, RS, RS + 1, 300_000])
def test_any_chunking_of_input_and_output_round_trips(chunk):
    ikm = os.urandom(16)
    plaintext = os.urandom(70_000 if chunk < 100 else 200_000)
    pieces = (plaintext[i : i + chunk] for i in range(0, len(plaintext), chunk))
    ciphertext = b"".join(ece.encrypt_stream(pieces, ikm))
    assert len(ciphertext) == ece.padded_size(len(plaintext))
    back = (ciphertext[i : i + chunk] for i in range(0, len(ciphertext), chunk))
    assert b"".join(ece.decrypt_stream(back, ikm)) == plaintext


def test_the_ciphertext_is_the_same_whatever_sizes_the_plaintext_is_fed_in():
    """Full records may be sealed straight from the caller's bytes or through the encryptor's
    buffer: the records, their boundaries and which one is last never depend on that."""
    ikm, salt = os.urandom(16), os.urandom(16)
    plaintext = os.urandom(5 * (RS - 17) + 1234)
    expected = b"".join(ece.encrypt_stream([plaintext], ikm, salt=salt))
    for chunk in (1000, RS - 17, RS - 16, 2 * (RS - 17), 1 << 20):
        encryptor = ece.Encryptor(ikm, salt=salt)
        out = [r for i in range(0, len(plaintext), chunk) for r in encryptor.feed(plaintext[i:i + chunk])]
        assert b"".join(out + list(encryptor.finish())) == expected, chunk


def test_encryptor_yields_the_header_then_one_record_at_a_time(sample):
    ikm, plaintext, _ = sample
    pieces = list(ece.encrypt_stream([plaintext], ikm))
    assert len(pieces[0]) == HDR
    assert [len(p) for p in pieces[1:]] == [RS] * ece.padded_records(len(plaintext))


def test_salt_is_random_per_file():
    ikm = os.urandom(16)
    first, second = ece.encrypt(b"same", ikm), ece.encrypt(b"same", ikm)
    assert first[:16] != second[:16] and first != second


@pytest.mark.asyncio
async def test_async_streams_round_trip():
    ikm = os.urandom(16)
    plaintext = os.urandom(150_000)

    async def source(data, size):
        for i in range(0, len(data), size):
            yield data[i : i + size]

    ciphertext = b"".join([piece async for piece in ece.aencrypt_stream(source(plaintext, 10_000), ikm)])
    assert len(ciphertext) == ece.padded_size(len(plaintext))
    decrypted = b"".join([piece async for piece in ece.adecrypt_stream(source(ciphertext, 33_333), ikm)])
    assert decrypted == plaintext


def test_memory_stays_bounded():
    """16 MiB flows through encrypt then decrypt; peak Python allocation stays around a
    few records."""
    ikm = os.urandom(16)
    total, chunk = 16 * 2**20, 16 * 1024

    def source():
        for i in range(total // chunk):
            yield bytes([i % 256]) * chunk

    expected, actual = hashlib.sha256(), hashlib.sha256()
    for block in source():
        expected.update(block)
    tracemalloc.start()
    try:
        size = 0
        for piece in ece.decrypt_stream(ece.encrypt_stream(source(), ikm), ikm):
            actual.update(piece)
            size += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == total and actual.digest() == expected.digest()
    assert peak < 1024 * 1024, f"peak {peak} bytes"


# --- tampering ------------------------------------------------------------------------


def test_tampered_record_is_a_decryption_error(sample):
    ikm, _, ciphertext = sample
    for position in (HDR + RS + 100, HDR + 3 * RS + 5, len(ciphertext) - 1):  # body and tag
        tampered = bytearray(ciphertext)
        tampered[position] ^= 0x01
        with pytest.raises(TamperedRecord):
            ece.decrypt(bytes(tampered), ikm)
    first = bytearray(ciphertext)
    first[HDR + 10] ^= 0x80
    with pytest.raises(DecryptionError):
        ece.decrypt(bytes(first), ikm)


def test_a_tampered_record_after_good_ones_in_one_chunk_is_a_decryption_error():
    # several records in the buffer at once: the good ones are consumed, then the bad one
    # fails; the failure must come out as itself, not as a buffer that cannot be resized
    ikm = os.urandom(16)
    ciphertext = bytearray(ece.encrypt(os.urandom(5 * RS), ikm))
    ciphertext[HDR + 2 * RS + 5] ^= 0x01
    decryptor = ece.Decryptor(ikm)
    with pytest.raises(TamperedRecord, match="record 2"):
        for _ in decryptor.feed(bytes(ciphertext)):
            pass


def test_reordered_records_are_detected(sample):
    ikm, _, ciphertext = sample
    header, records = records_of(ciphertext)
    records[1], records[2] = records[2], records[1]
    with pytest.raises(TamperedRecord, match="record 1"):
        ece.decrypt(header + b"".join(records), ikm)


def test_duplicated_record_is_detected(sample):
    ikm, _, ciphertext = sample
    header, records = records_of(ciphertext)
    with pytest.raises(TamperedRecord):
        ece.decrypt(header + b"".join(records[:2] + records[1:]), ikm)
    with pytest.raises(TrailingData):
        ece.decrypt(ciphertext + records[-1], ikm)


def test_truncated_stream_is_detected(sample):
    ikm, _, ciphertext = sample
    header, records = records_of(ciphertext)
    for kept in range(len(records)):  # cut on a record boundary: every MAC still checks
        with pytest.raises(TruncatedStream):
            ece.decrypt(header + b"".join(records[:kept]), ikm)
    with pytest.raises(TamperedRecord):  # cut inside a record
        ece.decrypt(ciphertext[: HDR + 2 * RS + 1000], ikm)
    for cut in (0, 5, HDR - 1):
        with pytest.raises(TruncatedStream):
            ece.decrypt(ciphertext[:cut], ikm)
    with pytest.raises(TruncatedStream):
        ece.decrypt(ciphertext[: HDR + 10], ikm)


def test_data_after_the_last_record_is_detected(sample):
    ikm, _, ciphertext = sample
    with pytest.raises(TrailingData):
        ece.decrypt(ciphertext + b"\x00", ikm)


def test_no_plaintext_of_the_last_record_escapes_before_trailing_data_is_seen():
    ikm = os.urandom(16)
    ciphertext = ece.encrypt(b"secret note", ikm)
    received = []
    with pytest.raises(TrailingData):
        for piece in ece.decrypt_stream([ciphertext, b"junk"], ikm):
            received.append(piece)
    assert received == []


def test_wrong_key_is_a_decryption_error():
    secret, plaintext = os.urandom(32), b"bilan sanguin"
    ciphertext = ece.encrypt(plaintext, ece.derive_content_ikm(secret, "doc-a"))
    with pytest.raises(WrongKey):
        ece.decrypt(ciphertext, ece.derive_content_ikm(os.urandom(32), "doc-a"))
    with pytest.raises(WrongKey):
        ece.decrypt(ciphertext, ece.derive_content_ikm(secret, "doc-b"))
    altered_salt = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    with pytest.raises(WrongKey):
        ece.decrypt(altered_salt, ece.derive_content_ikm(secret, "doc-a"))


def test_bad_header_is_rejected():
    ikm = os.urandom(16)
    ciphertext = ece.encrypt(b"x", ikm)
    for rs in (0, 17, RS + 1, 2**32 - 1):
        with pytest.raises(BadHeader):
            ece.decrypt(ciphertext[:16] + rs.to_bytes(4, "big") + ciphertext[20:], ikm)


def test_record_without_a_delimiter_is_rejected():
    ikm, salt = os.urandom(16), os.urandom(16)
    cek, nonce = ece.derive_record_keys(ikm, salt)
    for plaintext in (b"\x00" * 40, b"data\x03"):
        record = AESGCM(cek).encrypt(nonce, plaintext, None)
        with pytest.raises(BadPadding):
            ece.decrypt(ece.build_header(salt) + record, ikm)


def test_a_record_claiming_to_be_last_too_early_is_trailing_data():
    ikm, salt = os.urandom(16), os.urandom(16)
    cek, nonce = ece.derive_record_keys(ikm, salt)
    forged = ece.build_header(salt, 100) + b"".join(
        ece.seal_record(cek, nonce, seq, b"a" * 83, last=True) for seq in range(2)
    )
    with pytest.raises(TrailingData):
        ece.decrypt(forged, ikm)


# --- metadata -------------------------------------------------------------------------


def test_metadata_round_trips_unicode_names():
    key = os.urandom(32)
    meta = {"name": "radio thorax – 2024 « face ».png", "type": "image/png", "size": 5_000_000, "role": "clinician"}
    assert ece.decrypt_metadata(key, ece.encrypt_metadata(key, meta)) == meta


def test_metadata_of_another_document_does_not_open():
    secret = os.urandom(32)
    meta = {"name": "a.pdf", "type": "application/pdf", "size": 1, "role": "patient"}
    blob = ece.encrypt_metadata(ece.derive_metadata_key(secret, "doc-a"), meta)
    with pytest.raises(WrongKey):
        ece.decrypt_metadata(ece.derive_metadata_key(secret, "doc-b"), blob)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(WrongKey):
        ece.decrypt_metadata(ece.derive_metadata_key(secret, "doc-a"), tampered)
    with pytest.raises(BadMetadata):
        ece.decrypt_metadata(ece.derive_metadata_key(secret, "doc-a"), blob[:100])


def test_metadata_that_authenticates_but_is_not_our_json_is_rejected():
    key, iv = os.urandom(32), os.urandom(12)
    for text in (b"[1]", b'{"name":"a","type":"b","size":-1,"role":"c"}', b"\xff\xfe"):
        blob = iv + AESGCM(key).encrypt(iv, text.ljust(1024, b"\x00"), None)
        with pytest.raises(BadMetadata):
            ece.decrypt_metadata(key, blob)


def test_metadata_fields_are_checked_before_encryption():
    key = os.urandom(32)
    good = {"name": "a", "type": "b", "size": 1, "role": "c"}
    for bad in ({**good, "size": -1}, {**good, "size": True}, {**good, "name": None}, {**good, "extra": 1}):
        with pytest.raises(ValueError):
            ece.encrypt_metadata(key, bad)
    with pytest.raises(ValueError):
        ece.encrypt_metadata(key, {**good, "name": "x" * 5000})


# --- inputs ---------------------------------------------------------------------------


def test_b64url_helpers_round_trip_and_reject_padding_or_foreign_characters():
    for n in range(0, 40):
        data = os.urandom(n)
        text = b64url_encode(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert b64url_decode(text) == data
    for bad in ("AAAA=", "AA+A", "AA/A", "A", "AA AA", "AAé"):
        with pytest.raises(ValueError):
            b64url_decode(bad)


def test_secret_and_document_id_are_validated():
    with pytest.raises(ValueError):
        ece.derive_content_ikm(os.urandom(15), "doc")
    for doc_id in ("", "a/b", "a b", "x" * 257, "é"):
        with pytest.raises(ValueError):
            ece.derive_metadata_key(os.urandom(32), doc_id)
    assert len(ece.derive_content_ikm(os.urandom(16), "ok.id~_-")) == 16


# --- padding ---------------------------------------------------------------------------


def test_the_padding_is_found_exactly_whatever_its_length_and_the_bytes_before_it():
    """The delimiter search (records._delimiter_index: memrchr for 0x01/0x02, then the tail compared
    with zeros) must agree with a byte-by-byte strip for any data before the padding: data
    ending in zeros, holding 0x01 and 0x02 bytes, or with no delimiter at all."""
    rng = random.Random(8188)
    lengths = {0, 1, 63, 64, 65, 4095, 4096, 4097, 65519, 65520, 65536}
    lengths |= {rng.randrange(0, 65537) for _ in range(200)}
    for total in sorted(lengths):
        for zeros in sorted({0, 1, 63, 64, 65, 4096, 4160, total, rng.randrange(0, total + 1)}):
            if zeros > total:
                continue
            head = bytearray(rng.randbytes(total - zeros))
            if head and rng.random() < 0.5:
                head[-1] = 0  # a zero inside the data, just before the padding
            if head and rng.random() < 0.3:
                run = rng.randrange(1, len(head) + 1)
                head[-run:] = bytes(run)  # data ending in a run of zeros
            for delimiter in (b"", b"\x01", b"\x02", b"\x03"):
                if rng.random() < 0.5 and head:
                    head[rng.randrange(len(head))] = rng.choice((1, 2))  # delimiter-like bytes in the data
                plaintext = bytes(head) + delimiter + bytes(zeros)
                stripped = plaintext.rstrip(b"\x00")
                expected = len(stripped) - 1 if stripped and stripped[-1] in (1, 2) else -1
                assert records._delimiter_index(plaintext) == expected, (total, zeros, delimiter)


def test_a_padding_only_record_and_a_record_without_delimiter_decrypt_as_before():
    cek, nonce = os.urandom(16), os.urandom(12)
    record = ece.seal_record(cek, nonce, 3, b"", last=False, padding=ece.RECORD_DATA_SIZE)
    assert ece.open_record(cek, nonce, 3, record) == (b"", False)
    record = ece.seal_record(cek, nonce, 4, b"data\x00\x00", last=True, padding=5000)
    assert ece.open_record(cek, nonce, 4, record) == (b"data\x00\x00", True)
    zeros = AESGCM(cek).encrypt(records._record_nonce(int.from_bytes(nonce, "big"), 5), bytes(65519 + 1), None)
    with pytest.raises(ece.BadPadding):
        ece.open_record(cek, nonce, 5, zeros)
