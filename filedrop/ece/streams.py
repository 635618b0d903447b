"""Streams of records: incremental encryption and decryption, one record in memory at a
time whatever the file size, over iterables and async iterables."""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Generator, Iterable, Iterator

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import TrailingData, TruncatedStream
from .keys import SALT_SIZE, derive_record_keys
from .padding import padded_records
from .records import (
    MAX_RECORD_SIZE,
    RECORD_SIZE,
    TAG_SIZE,
    Header,
    _check_rs,
    _open,
    _seal,
    build_header,
    parse_header,
)


class Encryptor:
    """Incremental encryptor. ``feed`` and ``finish`` are generators yielding the header
    and then one record at a time; iterate each fully before the next call.

    With ``pad=True`` (the protocol) the output length is ``padded_size(total)``; with
    ``pad=False`` it is plain RFC 8188 with a short last record (used for the RFC
    examples)."""

    def __init__(
        self,
        ikm: bytes,
        *,
        salt: bytes | None = None,
        rs: int = RECORD_SIZE,
        pad: bool = True,
        keyid: bytes = b"",
    ) -> None:
        salt = os.urandom(SALT_SIZE) if salt is None else bytes(salt)
        _check_rs(rs)
        self.header = build_header(salt, rs, keyid)
        cek, nonce = derive_record_keys(ikm, salt)
        self._aead = AESGCM(cek)
        self._nonce = int.from_bytes(nonce, "big")
        self._rs = rs
        self._capacity = rs - TAG_SIZE - 1
        self._pad = pad
        self._buffer = bytearray()
        self._seq = 0
        self._size = 0
        self._header_sent = False
        self._finished = False

    @property
    def plaintext_size(self) -> int:
        return self._size

    def _take_header(self) -> Iterator[bytes]:
        if not self._header_sent:
            self._header_sent = True
            yield self.header

    def _record(self, data: bytes, last: bool, padding: int) -> bytes:
        record = _seal(self._aead, self._nonce, self._seq, data, last, padding)
        self._seq += 1
        return record

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._finished:
            raise RuntimeError("encryptor already finished")
        yield from self._take_header()
        view = memoryview(data).cast("B")
        self._size += len(view)
        while view:
            if len(self._buffer) == self._capacity:
                # more data follows, so this full record is not the last one
                yield self._record(bytes(self._buffer), False, 0)
                self._buffer.clear()
            if not self._buffer and len(view) > self._capacity:
                # a full record with more data after it, sealed straight from the caller's
                # bytes: two copies of each 64 KiB fewer than through the buffer
                yield self._record(view[: self._capacity], False, 0)
                view = view[self._capacity :]
                continue
            take = min(self._capacity - len(self._buffer), len(view))
            self._buffer += view[:take]
            view = view[take:]

    def finish(self) -> Iterator[bytes]:
        if self._finished:
            raise RuntimeError("encryptor already finished")
        self._finished = True
        yield from self._take_header()
        total = padded_records(self._size, self._rs) if self._pad else self._seq + 1
        remaining = total - self._seq
        padding = self._capacity - len(self._buffer) if self._pad else 0
        yield self._record(bytes(self._buffer), remaining == 1, padding)
        self._buffer = bytearray()
        for left in range(remaining - 1, 0, -1):
            yield self._record(b"", left == 1, self._capacity)


class Decryptor:
    """Incremental decryptor. ``feed`` and ``finish`` are generators yielding plaintext,
    at most one record's worth at a time. ``finish`` raises :class:`TruncatedStream` if
    no record marked last was seen. The last record's plaintext is held back until
    ``finish``, so nothing after it can slip through unnoticed. Plaintext comes out as
    read-only bytes-like views of each decrypted record (``bytes(...)`` copies one); iterate
    each call fully before the next."""

    def __init__(self, ikm: bytes, *, max_rs: int = MAX_RECORD_SIZE) -> None:
        self._ikm = bytes(ikm)
        self._max_rs = max_rs
        self._buffer = bytearray()
        self.header: Header | None = None
        self._seq = 0
        self._last: memoryview | None = None  # plaintext of the record marked last
        self._finished = False

    @property
    def records(self) -> int:
        return self._seq

    def _parse_header(self) -> bool:
        try:
            self.header = parse_header(self._buffer, max_rs=self._max_rs)
        except TruncatedStream:
            return False
        cek, nonce = derive_record_keys(self._ikm, self.header.salt)
        self._aead = AESGCM(cek)
        self._nonce = int.from_bytes(nonce, "big")
        del self._buffer[: self.header.length]
        return True

    def _open_next(self, record: bytes) -> bytes:
        data, last = _open(self._aead, self._nonce, self._seq, record)
        self._seq += 1
        if last:
            self._last = data
            return b""
        return data

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._finished:
            raise RuntimeError("decryptor already finished")
        if self._last is not None and len(data):
            raise TrailingData("data follows the last record")
        if self.header is None:
            self._buffer += data
            if not self._parse_header():
                return
            data = b""  # what followed the header is in the buffer
        # a record begun by an earlier call is completed from `data`, then the full records of
        # `data` are decrypted in place (AES-GCM reads a view of the caller's bytes), and only
        # a last partial record is kept: each byte is copied at most once, and only at the
        # edges of the caller's chunks
        view = memoryview(data).cast("B")
        try:
            if self._buffer:
                missing = self.header.rs - len(self._buffer) % self.header.rs
                self._buffer += view[:missing]
                view = view[missing:]
                yield from self._open_whole_records(self._buffer)
            if not self._buffer:
                self._buffer += view[(yield from self._open_whole_records(view)):]
            elif view:
                self._buffer += view
        finally:
            view.release()
        if self._last is not None and self._buffer:
            raise TrailingData("data follows the last record")

    def _open_whole_records(self, buffer: bytearray | memoryview) -> Generator[bytes, None, int]:
        """Decrypt the whole records at the start of `buffer` in place and yield their
        plaintext; return how many bytes they took (removed from `buffer` when it is ours)."""
        rs = self.header.rs
        view, done = memoryview(buffer), 0
        try:
            while len(view) - done >= rs:
                if self._last is not None:
                    raise TrailingData("data follows the last record")
                # the record's view is released even when it fails to open: a traceback that
                # keeps it alive would otherwise pin the buffer and make the resize below fail
                with view[done : done + rs] as record:
                    plaintext = self._open_next(record)
                done += rs
                if plaintext:
                    yield plaintext
        finally:
            view.release()
            if isinstance(buffer, bytearray):
                del buffer[:done]
        return done

    def finish(self) -> Iterator[bytes]:
        if self._finished:
            raise RuntimeError("decryptor already finished")
        self._finished = True
        if self.header is None:
            raise TruncatedStream("the stream ends inside the header")
        if self._buffer:
            # a shorter final record (feed() consumed every full one)
            record = bytes(self._buffer)
            self._buffer.clear()
            plaintext = self._open_next(record)
            if plaintext:
                yield plaintext
        if self._last is None:
            raise TruncatedStream(
                "the stream ends without its last record (delimiter 0x02)"
            )
        last, self._last = self._last, b""
        if last:
            yield last


def _slices(chunk: bytes, size: int) -> Iterator[memoryview]:
    view = memoryview(chunk).cast("B")
    for start in range(0, len(view), size):
        yield view[start : start + size]


def _run(codec: Encryptor | Decryptor, chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Feed `chunks` to an Encryptor or a Decryptor in slices of at most `size` bytes."""
    for chunk in chunks:
        for piece in _slices(chunk, size):
            yield from codec.feed(piece)
    yield from codec.finish()


async def _arun(codec: Encryptor | Decryptor, chunks: AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """:func:`_run` over an async iterable."""
    async for chunk in chunks:
        for piece in _slices(chunk, size):
            for out in codec.feed(piece):
                yield out
    for out in codec.finish():
        yield out


def encrypt_stream(
    chunks: Iterable[bytes],
    ikm: bytes,
    *,
    salt: bytes | None = None,
    rs: int = RECORD_SIZE,
    pad: bool = True,
) -> Iterator[bytes]:
    """Encrypt an iterable of plaintext chunks of any size. Yields the header, then one
    record at a time (memory: one record plus the caller's current chunk)."""
    yield from _run(Encryptor(ikm, salt=salt, rs=rs, pad=pad), chunks, rs)


def decrypt_stream(
    chunks: Iterable[bytes], ikm: bytes, *, max_rs: int = MAX_RECORD_SIZE
) -> Iterator[bytes]:
    """Decrypt an iterable of ciphertext chunks of any size, one record at a time.
    Raises a :class:`DecryptionError` subclass; output already yielded must then be
    discarded."""
    yield from _run(Decryptor(ikm, max_rs=max_rs), chunks, max_rs)


async def aencrypt_stream(
    chunks: AsyncIterable[bytes],
    ikm: bytes,
    *,
    salt: bytes | None = None,
    rs: int = RECORD_SIZE,
    pad: bool = True,
) -> AsyncIterator[bytes]:
    """:func:`encrypt_stream` over an async iterable (e.g. an aiohttp body)."""
    async for out in _arun(Encryptor(ikm, salt=salt, rs=rs, pad=pad), chunks, rs):
        yield out


async def adecrypt_stream(
    chunks: AsyncIterable[bytes], ikm: bytes, *, max_rs: int = MAX_RECORD_SIZE
) -> AsyncIterator[bytes]:
    """:func:`decrypt_stream` over an async iterable."""
    async for out in _arun(Decryptor(ikm, max_rs=max_rs), chunks, max_rs):
        yield out


def encrypt(
    plaintext: bytes,
    ikm: bytes,
    *,
    salt: bytes | None = None,
    rs: int = RECORD_SIZE,
    pad: bool = True,
) -> bytes:
    """One-shot :func:`encrypt_stream` (for small data and tests)."""
    return b"".join(encrypt_stream([plaintext], ikm, salt=salt, rs=rs, pad=pad))


def decrypt(ciphertext: bytes, ikm: bytes, *, max_rs: int = MAX_RECORD_SIZE) -> bytes:
    """One-shot :func:`decrypt_stream`."""
    return b"".join(decrypt_stream([ciphertext], ikm, max_rs=max_rs))
