"""`teleconsult drop` run as the installed console script against the real app on loopback,
and its interoperability with static/js/ece.js in real Chromium."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from browser import chromium
import s3_server
from conftest import add_api_clinician
from drop_client import download as reference_download
from drop_client import upload as reference_upload
from filedrop import ece

TELECONSULT = str(Path(sys.executable).parent / "teleconsult")
NAME = "compte rendu – Dupont.pdf"
NOT_FOUND = "no such document (unknown, expired or deleted)"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


# Runs the command given and writes its peak resident memory (KiB, from wait4) as stderr's last line.
PEAK_MEMORY = ("import os, sys; pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ); "
               "_, status, usage = os.wait4(pid, 0); print(usage.ru_maxrss, file=sys.stderr); "
               "sys.exit(os.waitstatus_to_exitcode(status))")


async def drop(*args: str, cwd: Path, token: str | None = None, timeout: float = 120, peak: bool = False) -> Run:
    """The console script as a user runs it (without the event loop of the live app blocking);
    with `peak`, run under PEAK_MEMORY."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECONSULT_")}
    if token:
        env["TELECONSULT_API_TOKEN"] = token
    command = (sys.executable, "-c", PEAK_MEMORY, TELECONSULT) if peak else (TELECONSULT,)
    process = await asyncio.create_subprocess_exec(
        *command, "drop", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    result = Run(process.returncode, out.decode(), err.decode())
    assert "Traceback" not in result.stderr, result.stderr
    return result


async def _token(app, email="doc@example.org") -> str:
    return (await add_api_clinician(app.engine, email))[1]


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    sender, receiver = tmp_path / "sender", tmp_path / "receiver"
    sender.mkdir()
    receiver.mkdir()
    return sender, receiver


def _link(app, stdout: str) -> re.Match:
    match = re.fullmatch(re.escape(app.url) + r"/d/([A-Za-z0-9_-]+)#([A-Za-z0-9_-]{22,})\n", stdout)
    assert match, stdout
    return match


async def test_send_then_get_gives_identical_bytes_under_the_senders_file_name(live, tmp_path):
    app = await live()
    token = await _token(app)
    sender, receiver = _dirs(tmp_path)
    plaintext = os.urandom(3 * 1024 * 1024 + 4321)
    (sender / NAME).write_bytes(plaintext)
    sent = await drop("send", NAME, "--server", app.url, "--expires", "2h", "--downloads", "2", "--progress",
                      cwd=sender, token=token)
    assert sent.returncode == 0, sent.stderr
    match = _link(app, sent.stdout)
    assert "owner token:" in sent.stderr and "teleconsult drop delete" in sent.stderr
    assert "MiB" in sent.stderr, "a progress line was drawn"
    assert match.group(2) not in sent.stderr
    got = await drop("get", sent.stdout.strip(), "--progress", cwd=receiver)
    assert got.returncode == 0, got.stderr
    assert (receiver / NAME).read_bytes() == plaintext
    assert sorted(p.name for p in receiver.iterdir()) == [NAME], "no temporary file is left"
    assert got.stdout.strip().endswith(NAME) and "MiB" in got.stderr
    # the server holds only ciphertext under a random id, the expiry and download limit it was given
    stored = s3_server.stored_bytes(app.settings, match.group(1))
    assert len(stored) == ece.padded_size(len(plaintext))
    assert plaintext[:4096] not in stored


async def test_sending_a_file_holds_no_more_memory_for_48_mib_than_for_4(live, tmp_path):
    """Nothing of a part is kept while it travels (filedrop/client/stream.py): before, the
    command held each part whole (up to 32 MiB) until the server acknowledged it."""
    app = await live()
    token = await _token(app)
    sender, _ = _dirs(tmp_path)
    peaks = {}
    for mib in (4, 48):
        (sender / f"{mib}.bin").write_bytes(os.urandom(mib * 1024 * 1024))
        sent = await drop("send", f"{mib}.bin", "--server", app.url, cwd=sender, token=token, peak=True)
        assert sent.returncode == 0, sent.stderr
        peaks[mib] = int(sent.stderr.splitlines()[-1]) / 1024
    assert peaks[48] - peaks[4] < 8, f"peak resident memory (MiB): {peaks}"


async def test_get_never_overwrites_unless_forced_and_a_used_up_drop_is_gone(live, tmp_path):
    app = await live()
    token = await _token(app)
    sender, receiver = _dirs(tmp_path)
    (sender / "note.txt").write_bytes(b"new content")
    sent = await drop("send", "note.txt", "--server", app.url, "--downloads", "2", cwd=sender, token=token)
    link = sent.stdout.strip()
    (receiver / "note.txt").write_bytes(b"precious")
    refused = await drop("get", link, cwd=receiver)
    assert refused.returncode == 1 and "exists" in refused.stderr and "--force" in refused.stderr
    assert (receiver / "note.txt").read_bytes() == b"precious"
    assert (await drop("get", link, "-o", "copy.txt", cwd=receiver)).returncode == 0
    forced = await drop("get", link, "--force", cwd=receiver)
    assert forced.returncode == 0, forced.stderr
    assert (receiver / "note.txt").read_bytes() == b"new content"
    gone = await drop("get", link, "-o", "third.txt", cwd=receiver)
    assert gone.returncode == 1 and gone.stderr.strip() == f"teleconsult: {NOT_FOUND}"
    assert not (receiver / "third.txt").exists()


async def test_get_of_a_tampered_ciphertext_fails_clearly_and_leaves_no_output_file(live, tmp_path):
    app = await live()
    token = await _token(app)
    sender, receiver = _dirs(tmp_path)
    (sender / NAME).write_bytes(os.urandom(400_000))
    sent = await drop("send", NAME, "--server", app.url, cwd=sender, token=token)
    doc = _link(app, sent.stdout).group(1)
    data = bytearray(s3_server.stored_bytes(app.settings, doc))
    data[ece.HEADER_SIZE + 2 * ece.RECORD_SIZE + 999] ^= 0x80  # a bit of record 2
    s3_server.replace_stored(app.settings, doc, bytes(data))
    failed = await drop("get", sent.stdout.strip(), cwd=receiver)
    assert failed.returncode == 1
    assert re.fullmatch(r"teleconsult: decryption failed: record 2 does not authenticate.*\n", failed.stderr), \
        failed.stderr
    assert list(receiver.iterdir()) == [], "neither the file nor a temporary copy"
    # a wrong secret fails on the metadata, before anything is downloaded
    wrong = sent.stdout.strip().split("#")[0] + "#" + ece.b64url_encode(secrets.token_bytes(16))
    failed = await drop("get", wrong, "-o", "x.pdf", cwd=receiver)
    assert failed.returncode == 1 and failed.stderr.startswith("teleconsult: decryption failed: ")
    assert list(receiver.iterdir()) == []


async def test_unknown_links_bad_links_and_deleted_drops_get_one_clear_line(live, tmp_path):
    app = await live()
    token = await _token(app)
    sender, receiver = _dirs(tmp_path)
    secret = ece.b64url_encode(secrets.token_bytes(16))
    unknown = await drop("get", f"{app.url}/d/{'A' * 22}#{secret}", cwd=receiver)
    assert unknown.returncode == 1 and unknown.stderr == f"teleconsult: {NOT_FOUND}\n"
    bad = await drop("get", f"{app.url}/d/{'A' * 22}", cwd=receiver)
    assert bad.returncode == 1 and "no secret" in bad.stderr and len(bad.stderr.splitlines()) == 1
    no_token = await drop("send", "missing.pdf", "--server", app.url, cwd=sender)
    assert no_token.returncode == 2 and "missing.pdf" in no_token.stderr
    (sender / "a.txt").write_bytes(b"a")
    no_token = await drop("send", "a.txt", "--server", app.url, cwd=sender)
    assert no_token.returncode == 2 and "TELECONSULT_API_TOKEN" in no_token.stderr
    refused = await drop("send", "a.txt", "--server", app.url, cwd=sender, token="tc_wrong")
    assert refused.returncode == 1 and "refused the API token" in refused.stderr
    sent = await drop("send", "a.txt", "--server", app.url, cwd=sender, token=token)
    owner = re.search(r"owner token: (\S+)", sent.stderr).group(1)
    hint = re.search(r"teleconsult drop delete (.+)", sent.stderr).group(1).split()
    # the printed form takes any token, even one that starts with "-" (not an option)
    wrong_owner = await drop("delete", hint[0], "--owner-token=-nope", cwd=sender)
    assert wrong_owner.returncode == 1 and "403" in wrong_owner.stderr
    deleted = await drop("delete", *hint, cwd=sender)
    assert deleted.returncode == 0 and hint[-1] == f"--owner-token={owner}", deleted.stderr
    gone = await drop("get", sent.stdout.strip(), cwd=receiver)
    assert gone.returncode == 1 and NOT_FOUND in gone.stderr
    down = await drop("get", f"http://127.0.0.1:9/d/{'A' * 22}#{secret}", cwd=receiver)
    assert down.returncode == 1 and "cannot reach the server" in down.stderr


async def test_consultation_mode_sends_into_the_box_and_reads_it_back(live, http, tmp_path):
    app = await live()
    token = await _token(app)
    auth = {"Authorization": f"Bearer {token}"}
    session = http()
    async with session.post(app.url + "/api/consultations", headers=auth) as r:
        consultation = await r.json()
    secret = secrets.token_bytes(32)  # made where the link is made, never sent
    link = consultation["patient_url"] + "#" + ece.b64url_encode(secret)
    sender, receiver = _dirs(tmp_path)
    first, second = os.urandom(200_000), os.urandom(70_000)
    (sender / "ordonnance.pdf").write_bytes(first)
    sent = await drop("send", "ordonnance.pdf", "--consultation", link, cwd=sender, token=token)
    assert sent.returncode == 0, sent.stderr
    doc = sent.stdout.strip()
    # the patient's page derives the same keys from the link: the reference client stands in for it
    prefix = f"/api/consultations/{consultation['id']}/documents"
    meta, data = await reference_download(session, app.url, prefix, secret, doc, auth)
    assert data == first and meta == {"name": "ordonnance.pdf", "type": "application/pdf",
                                      "size": len(first), "role": "clinician"}
    # and what the patient sends back, under the same name, the clinician reads
    await reference_upload(session, app.url, prefix, secret, second, "ordonnance.pdf", "patient", headers=auth)
    listed = await drop("get", "--consultation", link, "--token", token, cwd=receiver)
    assert listed.returncode == 0 and listed.stdout.count("ordonnance.pdf") == 2 and "70000 B" in listed.stdout
    one = await drop("get", "--consultation", link, doc, "-o", "mine.pdf", cwd=receiver, token=token)
    assert one.returncode == 0, one.stderr
    assert (receiver / "mine.pdf").read_bytes() == first
    every = receiver / "all"
    every.mkdir()
    saved = await drop("get", "--consultation", link, "--all", "-o", str(every), cwd=receiver, token=token)
    assert saved.returncode == 0, saved.stderr
    assert (every / "ordonnance.pdf").read_bytes() == first
    assert (every / "ordonnance (2).pdf").read_bytes() == second
    wrong = consultation["patient_url"] + "#" + ece.b64url_encode(secrets.token_bytes(32))
    failed = await drop("get", "--consultation", wrong, doc, cwd=receiver, token=token)
    assert failed.returncode == 1 and failed.stderr.startswith("teleconsult: decryption failed: ")
    other = await drop("send", str(sender / "ordonnance.pdf"), "--consultation",
                       f"{app.url}/j/{'x' * 22}#{ece.b64url_encode(secret)}", cwd=sender, token=token)
    assert other.returncode == 1 and "no consultation of yours" in other.stderr


PAGE_DECRYPT = """async ([docId, secret]) => {
  const ece = await import('/static/js/ece.js');
  const s = ece.b64urlDecode(secret);
  const meta = await ece.decryptMetadata(await ece.deriveMetadataKey(s, docId),
    new Uint8Array(await (await fetch(`/d/files/${docId}/metadata`)).arrayBuffer()));
  const response = await fetch(`/d/files/${docId}`);
  const plain = new Uint8Array(await new Response(
    ece.decryptStream(response.body, await ece.deriveContentIkm(s, docId))).arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', plain));
  return { meta, length: plain.length, sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('') };
}"""

PAGE_SEND = """async ([token, size, name]) => {
  const ece = await import('/static/js/ece.js');
  const plain = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(plain.subarray(i, Math.min(size, i + 65536)));
  const auth = { Authorization: `Bearer ${token}` };
  const created = await (await fetch('/api/drop/files', { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ size: ece.paddedSize(size), max_downloads: 1 }) })).json();
  const owner = { 'X-Owner-Token': created.owner_token };
  const secret = crypto.getRandomValues(new Uint8Array(16));
  const ciphertext = new Uint8Array(await new Response(ece.encryptStream(new Blob([plain]).stream(),
    await ece.deriveContentIkm(secret, created.id))).arrayBuffer());
  const part = 1 << 20;
  for (let offset = 0; offset < ciphertext.length; offset += part) {
    const r = await fetch(`/api/drop/files/${created.id}/upload`, { method: 'PATCH',
      headers: { ...owner, 'Upload-Offset': String(offset) }, body: ciphertext.subarray(offset, offset + part) });
    if (!r.ok) throw new Error(`part: ${r.status}`);
  }
  const meta = await ece.encryptMetadata(await ece.deriveMetadataKey(secret, created.id),
    { name, type: 'image/jpeg', size, role: 'patient' });
  const done = await fetch(`/api/drop/files/${created.id}/complete`, { method: 'POST', headers: owner, body: meta });
  if (!done.ok) throw new Error(`complete: ${done.status}`);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', plain));
  return { link: `${location.origin}/d/${created.id}#${ece.b64urlEncode(secret)}`,
           sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('') };
}"""


async def test_cli_and_browser_module_decrypt_what_the_other_encrypted(live, tmp_path):
    import hashlib
    app = await live()
    token = await _token(app)
    sender, receiver = _dirs(tmp_path)
    plaintext = os.urandom(1024 * 1024 + 333)
    (sender / NAME).write_bytes(plaintext)
    sent = await drop("send", NAME, "--server", app.url, cwd=sender, token=token)
    doc, secret = _link(app, sent.stdout).groups()
    async with chromium() as browser:
        page = await browser.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(app.url + "/login")  # any page of the app: same origin, its real CSP
        # CLI -> browser
        got = await page.evaluate(PAGE_DECRYPT, [doc, secret])
        assert got["meta"] == {"name": NAME, "type": "application/pdf", "size": len(plaintext), "role": "sender"}
        assert got["length"] == len(plaintext) and got["sha256"] == hashlib.sha256(plaintext).hexdigest()
        # browser -> CLI
        made = await page.evaluate(PAGE_SEND, [token, 700_001, "photo plaie J+3.jpg"])
        assert errors == []
    got = await drop("get", made["link"], cwd=receiver)
    assert got.returncode == 0, got.stderr
    saved = receiver / "photo plaie J+3.jpg"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == made["sha256"]
