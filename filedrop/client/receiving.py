"""Download a document and decrypt it as it arrives, leaving nothing behind on failure.

The ciphertext is decrypted into a temporary file next to the target, which is renamed into
place only when the whole stream authenticated (the last record seen, nothing after it) and its
length matches the authenticated metadata. A :class:`filedrop.ece.DecryptionError` therefore
leaves no file behind, corrupt or partial. Names come from the sender's metadata and are
sanitised before anything is created.
"""

from __future__ import annotations

import os

import aiohttp

from .. import ece
from .common import (MAX_NAME_BYTES, SEND_CHUNK, Box, Progress, Received, TransferFailed,  # noqa: F401
                     check_length, place, safe_name, saving, target_of)
from .transport import fetch_metadata, raise_for


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
    target = target_of(output, directory, metadata, force)
    decryptor = ece.Decryptor(ece.derive_content_ikm(secret, doc_id))
    with saving(target, force, metadata) as out:
        try:
            async with session.get(f"{box.read_url}/{doc_id}", headers=dict(box.read_headers)) as response:
                await raise_for(response, "downloading")
                total = response.content_length or 0
                received = 0
                if progress:
                    progress(0, total)
                async for chunk in response.content.iter_chunked(SEND_CHUNK):
                    received += len(chunk)
                    for plaintext in decryptor.feed(chunk):
                        out.write(plaintext)
                    if progress:
                        progress(received, total)
                for plaintext in decryptor.finish():
                    out.write(plaintext)
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise TransferFailed(f"the download was cut ({str(exc) or type(exc).__name__}); "
                                 "nothing was saved") from None
    return Received(target, metadata, out.written)
