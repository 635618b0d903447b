"""The property issue 13 keeps: a full copy of the data directory and the database, taken after
consultations with documents, reveals no consultation secret and opens no document without the
clinician's password. The test tries every stored value as a key against every sealed secret,
every wrapped key and every document, then checks that the clinician's password does open them
(so the attempts above could have succeeded). The database's copy is its files on SQLite, a
pg_dump on PostgreSQL (TELECONSULT_TEST_DATABASE=postgresql): what a host backs up."""

import os
import shutil
from pathlib import Path

import aiohttp
import pytest

from filedrop import ece
from filedrop.ece import b64url_decode, b64url_encode
from teleconsult import ids, sealing
import stored
from conftest import PASSWORD, add_api_clinician
from drop_client import upload
from test_clinician_keys import give_key

DOCUMENTS = {"ordonnance.pdf": b"%PDF-1.4 ordonnance " * 3000, "bilan.pdf": b"%PDF-1.4 bilan sanguin " * 2000}


def stored_values(url: str) -> list[str | bytes | int | float]:
    """Every value of every column of every table of the database."""
    return stored.every_value(url)


def byte_forms(value) -> list[bytes]:
    """The byte strings a stored value may stand for: itself, and its base64url or hex decoding,
    also after a 'kind.v1.' prefix."""
    if isinstance(value, bytes):
        return [value]
    text = str(value)
    forms = [text.encode()]
    for candidate in (text, text.rpartition(".")[2]):
        for decode in (b64url_decode, bytes.fromhex):
            try:
                forms.append(decode(candidate))
            except ValueError:
                pass
    return forms


def candidate_private_keys(values) -> list:
    keys = []
    for value in values:
        for raw in byte_forms(value):
            for start in range(0, max(len(raw) - 31, 0)):  # every 32-byte window of every value
                try:
                    keys.append(sealing.private_key_from_bytes(raw[start:start + 32]))
                except sealing.MalformedValue:
                    pass
    return keys


async def test_a_copy_of_the_data_directory_and_database_opens_no_secret_and_no_document(live, tmp_path):
    app = await live(documents_store="local")  # the documents in the data directory: the local store
    doctor, token = await add_api_clinician(app.engine)
    _, public_key = await give_key(app.engine, doctor)  # as a browser makes it at the first login
    auth = {"Authorization": f"Bearer {token}"}
    secrets, documents = {}, {}
    async with aiohttp.ClientSession() as client:
        for name, content in DOCUMENTS.items():
            secret, consultation_id = os.urandom(ece.CONSULTATION_SECRET_SIZE), ids.new_id()
            sealed = sealing.seal_secret(public_key, secret, consultation_id)
            async with client.post(app.url + "/api/consultations", headers=auth,
                                   json={"id": consultation_id, "sealed_secret": sealed}) as r:
                assert r.status == 201
            sent = await upload(client, app.url, f"/api/consultations/{consultation_id}/documents", secret,
                                content, name, "clinician", headers=auth)
            secrets[consultation_id] = secret
            documents[sent["id"]] = (consultation_id, content)

    copy = tmp_path / "copy"
    shutil.copytree(app.settings.data_dir, copy)
    files = [p for p in copy.rglob("*") if p.is_file()]
    everything = b"".join(p.read_bytes() for p in files)  # before SQLite folds its WAL into the copy
    ciphertexts = {p.name: p.read_bytes() for p in files if p.name in documents}
    url = app.settings.sqlalchemy_url
    if stored.is_sqlite(url):  # the copy's own database file
        url = "sqlite+aiosqlite:///" + str(next(p for p in files if p.name.endswith(".sqlite3")))
    else:  # the database is on the server: its dump is the backup
        everything += stored.backup_bytes(url)
    values = stored_values(url)

    # 1. no secret S, in any form, anywhere; no document in clear
    for secret in secrets.values():
        for form in (secret, b64url_encode(secret).encode(), secret.hex().encode()):
            assert form not in everything
    for content in DOCUMENTS.values():
        assert content[:64] not in everything

    sealed_rows = stored.query(url, "SELECT id, sealed_secret FROM consultations")
    [wrapped_row] = stored.query(url, "SELECT public_key, wrapped_key, key_salt, key_iterations FROM clinicians")
    metadata = {doc: bytes(meta) for doc, meta in stored.query(url, "SELECT id, meta FROM drop_files")}
    assert len(sealed_rows) == 2 and set(metadata) == set(documents)
    assert set(ciphertexts) == set(documents)

    # 2. every stored value tried as a private key against every sealed secret
    candidates = candidate_private_keys(values)
    assert len(candidates) > 20
    for private_key in candidates:
        for consultation_id, sealed in sealed_rows:
            with pytest.raises(sealing.SecretRejected):
                sealing.open_secret(private_key, sealed, consultation_id)

    # 3. every stored text tried as the password of the wrapped key
    wrapped = sealing.WrappedKey(wrapped_row[3], wrapped_row[2], wrapped_row[1])
    texts = sorted({str(v) for v in values if isinstance(v, str) and 0 < len(v) <= 200})
    assert len(texts) > 10
    for text in texts:
        with pytest.raises(sealing.WrongPassword):
            sealing.unwrap_private_key(wrapped, wrapped_row[0], text)

    # 4. every 16 bytes or more of any stored value tried as a consultation secret on every document
    secret_candidates = {raw for value in values for raw in byte_forms(value) if len(raw) >= ece.MIN_SECRET_SIZE}
    for doc_id, blob in metadata.items():
        for candidate in secret_candidates:
            with pytest.raises(ece.WrongKey):
                ece.decrypt_metadata(ece.derive_metadata_key(candidate, doc_id), blob)
            with pytest.raises(ece.WrongKey):
                ece.decrypt(ciphertexts[doc_id][:ece.HEADER_SIZE + ece.RECORD_SIZE],
                            ece.derive_content_ikm(candidate, doc_id))

    # 5. with the clinician's password, the same copy opens everything: the attempts could have worked
    private_key = sealing.unwrap_private_key(wrapped, wrapped_row[0], PASSWORD)
    for doc_id, (consultation_id, content) in documents.items():
        sealed = dict(sealed_rows)[consultation_id]
        secret = sealing.open_secret(private_key, sealed, consultation_id)
        assert ece.decrypt(ciphertexts[doc_id], ece.derive_content_ikm(secret, doc_id)) == content
