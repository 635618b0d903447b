"""The drop box client on the standard library's http.client, for programs that start,
transfer and exit: `teleconsult drop send|get|delete`.

Why not the aiohttp client next to it (sending.py, receiving.py): importing aiohttp builds two
TLS contexts and loads the CA store at import, with its resolver, tracing and multipart
machinery, 0.25 s here on an idle machine and 0.6 s under load, before the first byte could
travel; a command that moves one file over one connection needs none of it. http.client
(standard library) costs a few milliseconds to import and loads TLS only for an https URL,
when it connects. Same protocol, same encryption (common.py, filedrop/ece/), same resumable
upload (a dropped connection: ask the server's offset and send the rest of the part again),
same all-or-nothing download. The file is encrypted record by record as the PATCH takes it:
nothing of it is kept once sent but each record's tag, and a resend makes it again from the
file, record for record the same or not at all (stream.py).

One keep-alive connection per server, reused from request to request. What only sending needs
(mimetypes, secrets) or only receiving (tempfile) is imported by the function that uses
it: a few milliseconds of each command's start-up (docs/benchmarks.md)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from .. import ece
from .common import (DROP_SECRET_SIZE, OFFSET_HEADER, OWNER_HEADER, RETRIES, RETRY_DELAY, SEND_CHUNK, Box,
                     DropClientError, HTTPError, Progress, Received, Sent, TransferFailed, metadata_blob, resume_at,
                     retry_delay_after, retryable, saving, status_error, target_of, unreachable)
from .stream import CiphertextStream

CONNECT_TIMEOUT = 30.0  # seconds to open a connection
READ_TIMEOUT = 120.0  # a stalled connection (nothing read or written for two minutes) fails and is retried
# Ciphertext bytes per PATCH. Larger than the aiohttp client's parts (common.PART_SIZE, held in
# memory until acknowledged): each part costs a round trip and the server's fsync of it, and
# this client holds none of a part (stream.py); a file of up to 32 MiB travels in one request.
BLOCKING_PART_SIZE = 32 * 1024 * 1024
RECEIVE_CHUNK = 1024 * 1024  # ciphertext read from the socket at a time when downloading
NETWORK_ERRORS = (OSError, http.client.HTTPException)  # refused, reset, timed out, cut answer


class NetworkError(Exception):
    """The connection failed (refused, reset, timed out, answer cut); kept apart from the
    OSError of a file this side reads or writes."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause) or type(cause).__name__)


def read(response: http.client.HTTPResponse, amount: int | None = None) -> bytes:
    try:
        return response.read(amount)
    except NETWORK_ERRORS as exc:
        raise NetworkError(exc) from None


class Session:
    """Keep-alive connections, one per server (scheme, host, port)."""

    def __init__(self, connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT):
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def _drop(self, scheme: str, netloc: str) -> None:
        connection = self._connections.get((scheme, netloc))
        if connection is not None:
            connection.close()

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        key = (scheme, netloc)
        connection = self._connections.get(key)
        if connection is None:
            if scheme == "https":
                connection = http.client.HTTPSConnection(netloc, timeout=self.connect_timeout)
            elif scheme == "http":
                connection = http.client.HTTPConnection(netloc, timeout=self.connect_timeout)
            else:
                raise DropClientError(f"not an http(s) URL: {scheme}://{netloc}")
            self._connections[key] = connection
        if connection.sock is None:
            connection.connect()
            connection.sock.settimeout(self.read_timeout)
        return connection

    @contextlib.contextmanager
    def open(self, method: str, url: str, headers: Mapping[str, str] | None = None, body=None,
             meanwhile: Callable[[], None] | None = None) -> Iterator[http.client.HTTPResponse]:
        """Send a request and yield its answer; the connection is kept for the next request
        when the answer was read to its end, closed otherwise (or on any error). `meanwhile`
        runs once the request is sent, while the server works on it."""
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection = self._connection(parts.scheme, parts.netloc)
            connection.request(method, target, body=body, headers=dict(headers or {}))
            if meanwhile:
                meanwhile()
            response = connection.getresponse()
        except NETWORK_ERRORS as exc:
            self._drop(parts.scheme, parts.netloc)
            raise NetworkError(exc) from None
        except BaseException:
            self._drop(parts.scheme, parts.netloc)
            raise
        try:
            yield response
        except BaseException:
            connection.close()
            raise
        if not response.isclosed() or response.will_close:
            connection.close()


def error_message(response: http.client.HTTPResponse) -> str:
    with contextlib.suppress(ValueError, *NETWORK_ERRORS):
        body = json.loads(response.read())
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])
    return response.reason or f"HTTP {response.status}"


def raise_for(response: http.client.HTTPResponse, what: str) -> None:
    if response.status >= 400:
        raise status_error(response.status, "" if response.status == 404 else error_message(response), what)


def request_json(session: Session, method: str, url: str, what: str, *, headers: Mapping[str, str] | None = None,
                 json_body: object = None, data: bytes | None = None,
                 meanwhile: Callable[[], None] | None = None) -> dict:
    headers = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    try:
        with session.open(method, url, headers, data, meanwhile) as response:
            raise_for(response, what)
            return json.loads(read(response) or b"{}")
    except NetworkError as exc:
        raise unreachable(exc, what) from None


# --- small requests -------------------------------------------------------------------


def list_box(session: Session, box: Box) -> list[dict]:
    found = request_json(session, "GET", box.read_url, "listing documents", headers=box.read_headers)
    return list(found.get("documents", []))


def fetch_metadata(session: Session, box: Box, doc_id: str, secret: bytes) -> dict:
    """Download and decrypt a document's metadata (name, type, size, role)."""
    try:
        with session.open("GET", f"{box.read_url}/{doc_id}/metadata", box.read_headers) as response:
            raise_for(response, "reading the metadata")
            blob = read(response)
    except NetworkError as exc:
        raise unreachable(exc, "reading the metadata") from None
    return ece.decrypt_metadata(ece.derive_metadata_key(secret, doc_id), blob)


def delete_drop(session: Session, box: Box, doc_id: str, owner_token: str) -> None:
    """Delete a standalone drop with its owner token."""
    request_json(session, "DELETE", f"{box.write_url}/{doc_id}", "deleting",
                 headers={**box.headers, OWNER_HEADER: owner_token})


# --- sending --------------------------------------------------------------------------


def _body(stream: CiphertextStream, amount: int, base: int, progress: Progress | None,
          total: int) -> Iterator[memoryview]:
    """`amount` bytes of ciphertext handed to the connection as they come out of the encryptor."""
    sent = 0
    for piece in stream.take(amount):
        yield piece
        sent += len(piece)
        if progress and (sent % SEND_CHUNK < len(piece) or sent == amount):
            progress(base + sent, total)


def _upload_offset(session: Session, url: str, headers: Mapping[str, str]) -> int:
    with session.open("GET", url, headers) as response:
        raise_for(response, "asking where the upload stands")
        return int(json.loads(read(response))["offset"])


def _send_part(session: Session, url: str, headers: Mapping[str, str], start: int, length: int,
               stream: CiphertextStream, total: int, progress: Progress | None, retries: int,
               retry_delay: float) -> CiphertextStream:
    """PATCH the `length` bytes of ciphertext at `start`, encrypted while they travel; after a
    dropped connection, ask the server's offset and send the rest of the part from a stream
    made again from the file (stream.py says why that is safe). Returns the stream to go on
    with."""
    end = start + length
    offset = start
    failures = 0
    while True:
        body = _body(stream, end - offset, offset, progress, total)
        try:
            with session.open("PATCH", url, {**headers, OFFSET_HEADER: str(offset), "Content-Length": str(end - offset),
                                             "Content-Type": "application/octet-stream"}, body) as response:
                if response.status == 200:
                    acknowledged = int(json.loads(read(response))["offset"])
                    if acknowledged != end:
                        raise TransferFailed(f"the server acknowledged {acknowledged} bytes, {end} were sent")
                    return stream
                if not retryable(response.status):
                    raise_for(response, "sending")
                problem: BaseException = HTTPError(response.status, error_message(response))
        except NetworkError as exc:
            problem = exc
        failures += 1
        if failures > retries:
            raise TransferFailed(f"sending failed {failures} times in a row, giving up "
                                 f"({str(problem) or type(problem).__name__})")
        time.sleep(retry_delay_after(failures, retry_delay))
        try:
            reported = _upload_offset(session, url, headers)
        except NetworkError:
            stream = stream.restarted(offset)  # still unreachable: this part again from where we were
            continue
        resumed = resume_at(reported, start, end)
        if resumed is None:  # the part arrived; only the answer was lost
            stream.skip_to(end)
            return stream
        offset = resumed
        stream = stream.restarted(offset)
        if progress:
            progress(offset, total)


def upload(session: Session, box: Box, path: str | os.PathLike, secret: bytes, *, role: str,
           name: str | None = None, content_type: str | None = None, extra: Mapping | None = None,
           part_size: int = BLOCKING_PART_SIZE, progress: Progress | None = None, retries: int = RETRIES,
           retry_delay: float = RETRY_DELAY) -> Sent:
    """Encrypt the file at `path` under `secret` while uploading it in parts of `part_size`
    bytes into `box`; `extra` goes into the creation request (standalone: ``expires_in``,
    ``max_downloads``)."""
    path = Path(path)
    name = path.name if name is None else name

    def guess_type() -> None:  # the system's table of types is read at first use: 5 ms, while the server creates
        nonlocal content_type
        if content_type is None:
            import mimetypes
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"

    with open(path, "rb") as source:
        plaintext_size = os.fstat(source.fileno()).st_size
        size = ece.padded_size(plaintext_size)
        created = request_json(session, "POST", box.create_url, "creating the document",
                               json_body={"size": size, **(extra or {})}, headers=box.headers, meanwhile=guess_type)
        doc_id = created["id"]
        headers = dict(box.headers)
        if created.get("owner_token"):
            headers[OWNER_HEADER] = created["owner_token"]
        upload_url = f"{box.write_url}/{doc_id}/upload"
        if progress:
            progress(0, size)
        stream = CiphertextStream(source, ece.derive_content_ikm(secret, doc_id), os.urandom(ece.SALT_SIZE),
                                  plaintext_size)
        for offset in range(0, size, part_size):
            stream = _send_part(session, upload_url, headers, offset, min(part_size, size - offset), stream,
                                size, progress, retries, retry_delay)
        if not stream.ended():  # cannot happen unless the encryptor and padded_size disagree
            raise TransferFailed(f"encrypted more than the {size} bytes announced")
    metadata = {"name": name, "type": content_type, "size": plaintext_size, "role": role}
    document = request_json(session, "POST", f"{box.write_url}/{doc_id}/complete", "completing the upload",
                            data=metadata_blob(secret, doc_id, metadata),
                            headers={**headers, "Content-Type": "application/octet-stream"})
    return Sent(doc_id, size, metadata, document, created.get("owner_token"), secret)


def send_drop(session: Session, box: Box, path: str | os.PathLike, *, expires_in: float | None = None,
              max_downloads: int | None = None, progress: Progress | None = None, **kwargs) -> Sent:
    """A standalone drop into `box`: a fresh random secret (in the result, for the link)."""
    import secrets
    secret = secrets.token_bytes(DROP_SECRET_SIZE)
    extra = {key: value for key, value in (("expires_in", expires_in), ("max_downloads", max_downloads))
             if value is not None}
    return upload(session, box, path, secret, role="sender", extra=extra, progress=progress, **kwargs)


# --- receiving ------------------------------------------------------------------------


def download(session: Session, box: Box, doc_id: str, secret: bytes, *, output: str | os.PathLike | None = None,
             directory: str | os.PathLike = ".", force: bool = False, progress: Progress | None = None,
             metadata: dict | None = None) -> Received:
    """Download and decrypt a document into `output` (a file, or a directory to put it in),
    else into `directory` under its sanitised metadata name; all or nothing, as
    receiving.download (whose documentation says more)."""
    if metadata is None:
        metadata = fetch_metadata(session, box, doc_id, secret)
    target = target_of(output, directory, metadata, force)
    decryptor = ece.Decryptor(ece.derive_content_ikm(secret, doc_id))
    with saving(target, force, metadata) as out:
        try:
            with session.open("GET", f"{box.read_url}/{doc_id}", box.read_headers) as response:
                raise_for(response, "downloading")
                total = response.length or 0
                received = 0
                if progress:
                    progress(0, total)
                while chunk := read(response, RECEIVE_CHUNK):
                    received += len(chunk)
                    for plaintext in decryptor.feed(chunk):
                        out.write(plaintext)
                    if progress:
                        progress(received, total)
                for plaintext in decryptor.finish():
                    out.write(plaintext)
        except NetworkError as exc:
            raise TransferFailed(f"the download was cut ({str(exc) or type(exc).__name__}); "
                                 "nothing was saved") from None
    return Received(target, metadata, out.written)
