"""The browser part of bench/drop_transfer.py: Chromium on a page of the real app (same-origin
fetch under its CSP) times raw WebCrypto AES-GCM records, static/js/ece.js encryptStream, ece.js
encrypt + upload in parts, and the same upload without encryption."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from transfer_servers import Server

ROOT = Path(__file__).resolve().parent.parent


BROWSER_JS = """async ([token, mib]) => {
  const ece = await import('/static/js/ece.js');
  const size = mib * 1024 * 1024;
  const plain = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(plain.subarray(i, Math.min(size, i + 65536)));
  const blob = new Blob([plain]);
  const out = {};

  // 1. raw WebCrypto AES-128-GCM over records of 65520 bytes (RFC 8188's unit of work)
  const key = await crypto.subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(16)), 'AES-GCM', false, ['encrypt']);
  const iv = new Uint8Array(12);
  let t = performance.now();
  for (let offset = 0, seq = 0; offset < size; offset += 65519, seq += 1) {
    new DataView(iv.buffer).setUint32(8, seq);
    const record = new Uint8Array(65520);
    record.set(plain.subarray(offset, offset + 65519));
    await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, record);
  }
  out.rawAesGcm = performance.now() - t;

  // 2. ece.js encryptStream alone (blob -> ciphertext, discarded)
  const ikm = crypto.getRandomValues(new Uint8Array(16));
  t = performance.now();
  const reader = ece.encryptStream(blob.stream(), ikm).getReader();
  let produced = 0;
  for (;;) { const { value, done } = await reader.read(); if (done) break; produced += value.length; }
  out.eceEncrypt = performance.now() - t;
  out.ciphertextBytes = produced;

  // 3. ece.js encrypt + upload to the real app (standalone drop, 4 MiB parts, sequential)
  const part = 4 * 1024 * 1024;
  t = performance.now();
  const auth = { Authorization: `Bearer ${token}` };
  const created = await (await fetch('/api/drop/files', { method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ size: ece.paddedSize(size) }) })).json();
  const owner = { 'X-Owner-Token': created.owner_token };
  const secret = crypto.getRandomValues(new Uint8Array(16));
  const stream = ece.encryptStream(blob.stream(), await ece.deriveContentIkm(secret, created.id)).getReader();
  let buffer = new Uint8Array(part), filled = 0, offset = 0;
  const flush = async () => {
    if (!filled) return;
    const r = await fetch(`/api/drop/files/${created.id}/upload`, { method: 'PATCH',
      headers: { ...owner, 'Upload-Offset': String(offset) }, body: buffer.subarray(0, filled) });
    if (!r.ok) throw new Error(`PATCH ${r.status}`);
    offset += filled; filled = 0; buffer = new Uint8Array(part);
  };
  for (;;) {
    const { value, done } = await stream.read();
    if (done) break;
    let chunk = value;
    while (chunk.length) {
      const take = Math.min(chunk.length, part - filled);
      buffer.set(chunk.subarray(0, take), filled);
      filled += take; chunk = chunk.subarray(take);
      if (filled === part) await flush();
    }
  }
  await flush();
  const meta = await ece.encryptMetadata(await ece.deriveMetadataKey(secret, created.id),
    { name: 'bench.bin', type: 'application/octet-stream', size, role: 'sender' });
  const done = await fetch(`/api/drop/files/${created.id}/complete`, { method: 'POST', headers: owner, body: meta });
  if (!done.ok) throw new Error(`complete ${done.status}`);
  out.encryptUpload = performance.now() - t;
  await fetch(`/api/drop/files/${created.id}`, { method: 'DELETE', headers: owner });

  // 4. the same upload without encryption: random bytes of the ciphertext's size, same parts
  t = performance.now();
  const plainDrop = await (await fetch('/api/drop/files', { method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ size: ece.paddedSize(size) }) })).json();
  const bytes = new Uint8Array(ece.paddedSize(size));
  bytes.set(plain);
  for (let offset = 0; offset < bytes.length; offset += part) {
    const r = await fetch(`/api/drop/files/${plainDrop.id}/upload`, { method: 'PATCH',
      headers: { 'X-Owner-Token': plainDrop.owner_token, 'Upload-Offset': String(offset) },
      body: bytes.subarray(offset, offset + part) });
    if (!r.ok) throw new Error(`PATCH ${r.status}`);
  }
  out.rawUpload = performance.now() - t;
  await fetch(`/api/drop/files/${plainDrop.id}`, { method: 'DELETE', headers: { 'X-Owner-Token': plainDrop.owner_token } });
  out.userAgent = navigator.userAgent;
  return out;
}"""


async def browser_bench(server: Server, token: str, mib: int) -> dict:
    os.sched_setaffinity(0, range(os.cpu_count() or 1))  # Chromium may use both cores
    sys.path.insert(0, str(ROOT / "tests"))
    from browser import chromium  # tests/browser.py: Debian's Chromium through Playwright
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(server.url + "/login")
        await page.evaluate(BROWSER_JS, [token, 4])  # warm-up
        return await page.evaluate(BROWSER_JS, [token, mib])
