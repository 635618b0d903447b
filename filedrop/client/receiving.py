"""Download a document and decrypt it as it arrives, leaving nothing behind on failure.

The ciphertext is decrypted into a temporary file next to the target, which is renamed into
place only when the whole stream authenticated (the last record seen, nothing after it) and its
length matches the authenticated metadata. A :class:`filedrop.ece.DecryptionError` therefore
leaves no file behind, corrupt or partial. Names come from the sender's metadata and are
sanitised before anything is created.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .. import ece
from .sending import SEND_CHUNK
from .transport import (Box, DropClientError, OutputExists, Progress, TransferFailed, fetch_metadata,
                        raise_for)

_FORBIDDEN_IN_NAMES = set('<>:"/\\|?*')
MAX_NAME_BYTES = 200


def safe_name(name: str, fallback: str = "document") -> str:
    """A file name from the (sender-chosen) metadata name that is safe to create in the
    current directory: no directory part, no control or reserved characters, not hidden,
    at most MAX_NAME_BYTES bytes of UTF-8 (keeping the extension)."""
    name = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() and c not in _FORBIDDEN_IN_NAMES)
    name = name.strip().lstrip(".").strip()
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension.encode()) > 16:
        stem, extension = name, ""
    suffix = "." + extension if extension else ""
    budget = MAX_NAME_BYTES - len(suffix.encode())
    while len(stem.encode()) > budget:
        stem = stem[:-1]
    name = (stem.rstrip() + suffix) if stem.strip() else ""
    return name if name not in ("", ".", "..") else fallback


@dataclass(frozen=True)
class Received:
    path: Path
    metadata: dict
    size: int  # plaintext bytes written


def _target(output: str | os.PathLike | None, directory: str | os.PathLike, metadata: dict) -> Path:
    if output is None:
        return Path(directory) / safe_name(metadata["name"])
    target = Path(output)
    if target.is_dir():
        return target / safe_name(metadata["name"])
    return target


def _place(temporary: str, target: Path, force: bool) -> None:
    """Move the finished temporary file to `target`; without `force`, never replace an
    existing file (a hard link fails atomically if the name is taken)."""
    if force:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise OutputExists(f"{target} exists; not overwritten (use --force)") from None
    except OSError:  # a file system without hard links: check, then rename
        if target.exists():
            raise OutputExists(f"{target} exists; not overwritten (use --force)") from None
        os.replace(temporary, target)
        return
    os.unlink(temporary)


async def download(session: aiohttp.ClientSession, box: Box, doc_id: str, secret: bytes, *,
                   output: str | os.PathLike | None = None, directory: str | os.PathLike = ".",
                   force: bool = False, progress: Progress | None = None,
                   metadata: dict | None = None) -> Received:
    """Download and decrypt a document into `output` (a file, or a directory to put it in),
    else into `directory` under its sanitised metadata name. Raises
    :class:`filedrop.ece.DecryptionError` on a wrong key or tampered ciphertext, leaving
    nothing behind; :class:`OutputExists` before downloading anything (a standalone drop's
    download count is not spent) when the target exists and `force` is false."""
    if metadata is None:
        metadata = await fetch_metadata(session, box, doc_id, secret)
    target = _target(output, directory, metadata)
    if not force and (target.exists() or target.is_symlink()):
        raise OutputExists(f"{target} exists; not overwritten (use --force)")
    if not target.parent.is_dir():
        raise DropClientError(f"{target.parent} is not a directory")
    ikm = ece.derive_content_ikm(secret, doc_id)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            written = 0
            try:
                async with session.get(f"{box.read_url}/{doc_id}", headers=dict(box.read_headers)) as response:
                    await raise_for(response, "downloading")
                    total = response.content_length or 0
                    received = 0
                    decryptor = ece.Decryptor(ikm)
                    if progress:
                        progress(0, total)
                    async for chunk in response.content.iter_chunked(SEND_CHUNK):
                        received += len(chunk)
                        for plaintext in decryptor.feed(chunk):
                            out.write(plaintext)
                            written += len(plaintext)
                        if progress:
                            progress(received, total)
                    for plaintext in decryptor.finish():
                        out.write(plaintext)
                        written += len(plaintext)
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                raise TransferFailed(f"the download was cut ({str(exc) or type(exc).__name__}); "
                                     "nothing was saved") from None
            if written != metadata["size"]:
                raise ece.DecryptionError(f"the content has {written} bytes but its metadata says "
                                          f"{metadata['size']}")
            out.flush()
            os.fsync(out.fileno())
        _place(temporary, target, force)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return Received(target, metadata, written)
