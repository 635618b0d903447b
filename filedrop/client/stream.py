"""The ciphertext of a file the blocking client (blocking.py) is sending: encrypted record by
record as the connection takes it, and made again from the file when a dropped connection
makes the sender go back.

Why made again rather than kept: holding every byte of a part until the server acknowledges it
costs a fresh buffer of the part's size, and its page faults were 12-15 ms of a 16 MiB
`drop send` (docs/benchmarks.md). What must never happen when sending again is AES-GCM's fatal
misuse: one key and nonce over two different plaintexts (a file edited between the first
sending and the resend; a server that reports a smaller offset than it holds, to be sent a
record twice). So the stream keeps the tag of every record it handed out (16 bytes per 64 KiB
record) and a restarted stream, with the same key and salt from the first byte of the file,
checks each record it makes again against its tag before handing out any byte of it: the same
tag is the same ciphertext (the tag authenticates the ciphertext under a key the file's
content cannot know), a different one stops the upload with FileChanged. Whatever the server
reports, it is only ever sent the same bytes again.

Why no worker thread: encrypting in a thread a few MiB ahead of the connection made the 17 MiB
PATCH of a fresh `drop send` take 31-35 ms against 18-24 ms inline: the hand-offs between the
two threads cost more than the encryption they overlapped (AES-GCM runs at several GB/s here).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from .. import ece
from .common import FileChanged, TransferFailed, encrypted_records

RESEND_CHANGED = "the file changed while it was being sent; nothing more was sent, send it again"


class CiphertextStream:
    """Exactly the ciphertext of `size` plaintext bytes of `source` under (`ikm`, `salt`): the
    header, then record after record, encrypted when taken. A file that changed size or could
    not be read raises in take()."""

    def __init__(self, source: BinaryIO, ikm: bytes, salt: bytes, size: int, *, tags: list[bytes] | None = None):
        self._source, self._ikm, self._salt, self._size = source, ikm, salt, size
        self._records = encrypted_records(source, ece.Encryptor(ikm, salt=salt), size)
        self._tags = [] if tags is None else tags  # tag of each record handed out so far, by record number
        self._taken = 0  # items taken: the header, then the records
        self.position = 0  # ciphertext bytes handed out
        self._left = memoryview(b"")

    def _next(self) -> memoryview:
        item = next(self._records, None)
        if item is None:
            raise TransferFailed("encrypted fewer bytes than were announced")
        number = self._taken - 1  # the header is item 0
        self._taken += 1
        if number >= 0:
            tag = bytes(item[-ece.TAG_SIZE:])
            if number < len(self._tags):
                if tag != self._tags[number]:  # not a secret: the server saw it, or will
                    raise FileChanged(RESEND_CHANGED)
            else:
                self._tags.append(tag)
        return memoryview(item)

    def take(self, amount: int) -> Iterator[memoryview]:
        """The next `amount` bytes of ciphertext, in the pieces they come in."""
        while amount > 0:
            if not self._left:
                self._left = self._next()
            piece, self._left = self._left[:amount], self._left[amount:]
            amount -= len(piece)
            self.position += len(piece)
            yield piece

    def skip_to(self, offset: int) -> None:
        for _ in self.take(offset - self.position):
            pass

    def restarted(self, offset: int) -> CiphertextStream:
        """This stream made again from the first byte of the file and taken up to `offset`:
        every record already handed out must come out the same (else FileChanged)."""
        self._source.seek(0)
        stream = CiphertextStream(self._source, self._ikm, self._salt, self._size, tags=self._tags)
        stream.skip_to(offset)
        return stream

    def ended(self) -> bool:
        """Whether every byte was handed out and the encryption is over."""
        return not self._left and next(self._records, None) is None
