"""The ciphertext of a file the blocking client (blocking.py) is sending: encrypted by a worker
thread a few MiB ahead of the connection, handed out in the pieces it comes in, and made again
from the file when a dropped connection makes the sender go back.

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
reports, it is only ever sent the same bytes again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import BinaryIO

from .. import ece
from .common import FileChanged, TransferFailed, encrypted_records

RESEND_CHANGED = "the file changed while it was being sent; nothing more was sent, send it again"


class CiphertextStream:
    """Exactly the ciphertext of `size` plaintext bytes of `source` under (`ikm`, `salt`): the
    header, then record after record. Errors of the worker (a file that changed, a read that
    failed) are raised in the sender by take()."""

    _END = object()

    def __init__(self, source: BinaryIO, ikm: bytes, salt: bytes, size: int, ahead: int, *,
                 tags: list[bytes] | None = None):
        import queue
        self._source, self._ikm, self._salt, self._size, self._ahead = source, ikm, salt, size, ahead
        self._tags = [] if tags is None else tags  # tag of each record handed out so far, by record number
        self._taken = 0  # items taken from the worker: the header, then the records
        self.position = 0  # ciphertext bytes handed out
        self._left = memoryview(b"")
        self._full = queue.Full
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, ahead // ece.RECORD_SIZE))
        self._stopped = threading.Event()
        records = encrypted_records(source, ece.Encryptor(ikm, salt=salt), size)
        self._thread = threading.Thread(target=self._run, args=(records,), daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except self._full:
                continue
        return False

    def _run(self, records: Iterator[bytes]) -> None:
        try:
            for record in records:
                if not self._put(record):
                    return
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the sender by take()
            self._put(exc)

    def _next(self) -> memoryview:
        item = self._queue.get()
        if item is self._END:
            self._queue.put(item)  # ended() finds it again
            raise TransferFailed("encrypted fewer bytes than were announced")
        if isinstance(item, BaseException):
            raise item
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
        self.close()
        self._source.seek(0)
        stream = CiphertextStream(self._source, self._ikm, self._salt, self._size, self._ahead, tags=self._tags)
        try:
            stream.skip_to(offset)
        except BaseException:
            stream.close()
            raise
        return stream

    def ended(self) -> bool:
        """Whether every byte was handed out and the encryption is over."""
        if self._left:
            return False
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item is self._END

    def close(self) -> None:
        """Stop the worker and wait for it (before the file is read again or closed under it)."""
        self._stopped.set()
        self._thread.join()
