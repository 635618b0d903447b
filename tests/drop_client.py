"""Test helpers: encrypt and upload through the real HTTP API with the Python ECE module."""

from __future__ import annotations

import aiohttp

from filedrop import ece


async def upload(http: aiohttp.ClientSession, base: str, prefix: str, secret: bytes, plaintext: bytes,
                 name: str, role: str, *, headers: dict | None = None, part_size: int = 1 << 20,
                 body_extra: dict | None = None) -> dict:
    headers = dict(headers or {})
    size = ece.padded_size(len(plaintext))
    async with http.post(base + prefix, json={"size": size, **(body_extra or {})}, headers=headers) as r:
        assert r.status == 201, (r.status, await r.text())
        created = await r.json()
    doc = created["id"]
    if created.get("owner_token"):
        headers["X-Owner-Token"] = created["owner_token"]
    ciphertext = ece.encrypt(plaintext, ece.derive_content_ikm(secret, doc))
    assert len(ciphertext) == size
    for offset in range(0, size, part_size):
        part = ciphertext[offset:offset + part_size]
        async with http.patch(f"{base}{prefix}/{doc}/upload", data=part,
                              headers={**headers, "Upload-Offset": str(offset)}) as r:
            assert r.status == 200, (r.status, await r.text())
    meta = ece.encrypt_metadata(ece.derive_metadata_key(secret, doc),
                                {"name": name, "type": "application/pdf", "size": len(plaintext), "role": role})
    async with http.post(f"{base}{prefix}/{doc}/complete", data=meta, headers=headers) as r:
        assert r.status == 200, (r.status, await r.text())
        return {**await r.json(), "owner_token": created.get("owner_token")}


async def download(http: aiohttp.ClientSession, base: str, prefix: str, secret: bytes, doc: str,
                   headers: dict | None = None) -> tuple[dict, bytes]:
    async with http.get(f"{base}{prefix}/{doc}/metadata", headers=headers or {}) as r:
        assert r.status == 200, r.status
        meta = ece.decrypt_metadata(ece.derive_metadata_key(secret, doc), await r.read())
    async with http.get(f"{base}{prefix}/{doc}", headers=headers or {}) as r:
        assert r.status == 200, r.status
        ciphertext = await r.read()
    return meta, ece.decrypt(ciphertext, ece.derive_content_ikm(secret, doc))
