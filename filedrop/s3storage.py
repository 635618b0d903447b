"""Ciphertext in an S3-compatible bucket (Garage, MinIO, SeaweedFS, AWS S3), through aiobotocore:
botocore's signing, retries and error model on aiohttp, which the app already runs on.

Objects (under the configured key prefix):
    ready/{id}           the published ciphertext; a multipart upload on this key while it is sent
    tails/{id}/{token}   the unfinished end of an upload: the bytes after its last whole S3 part

The drop box's resumable parts (any size; browsers send 4 MiB, the Python client 8 MiB and a
record) do not map one to one onto S3 parts (5 MiB at least, but for the last): a write fills a
buffer of `part_size` bytes and sends it as S3 part n = offset // part_size + 1 whenever it is
full; what is left when the request ends goes to a tail object, read back by the next write on
whichever instance receives it. So memory per transfer is at most one S3 part, nothing touches
the local disk, and all an upload needs to go on is its row (bytes received, and the state
returned here: the multipart upload id and the tail's token) and the bucket.

A tail object is never overwritten: each write puts a new one, and only the state the drop box
records says which is current, so a stale writer (a half-open connection on another instance)
cannot spoil an upload that went on elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from .storage import CHUNK_SIZE, SAFE_ID, CannotRewind, Incomplete, Unavailable, bounded, checked_id

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's smallest part but for the last
MAX_PARTS = 10_000  # S3's most parts in one upload
MISSING = {"NoSuchKey", "NoSuchUpload", "404", "NotFound"}


@dataclass(frozen=True)
class UploadState:
    upload: str | None = None  # the multipart upload id, once a first S3 part was sent
    tail: str | None = None  # token of the tail object holding the bytes after the last whole part

    @classmethod
    def parse(cls, text: str | None) -> UploadState:
        return cls(**json.loads(text)) if text else cls()

    def dump(self) -> str | None:
        return json.dumps({"upload": self.upload, "tail": self.tail}) if self.upload or self.tail else None


def _missing(exc: Exception) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in MISSING


class S3Storage:
    """Build with `await S3Storage.open(...)`, close with `await storage.close()`."""

    def __init__(self, client, bucket: str, prefix: str, part_size: int, exit_stack: contextlib.AsyncExitStack):
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"an S3 part holds at least {MIN_PART_SIZE} bytes")
        self.client, self.bucket, self.prefix, self.part_size = client, bucket, prefix, part_size
        self._exit_stack = exit_stack

    @classmethod
    async def open(cls, *, endpoint: str, region: str, bucket: str, access_key_id: str, secret_access_key: str,
                   path_style: bool = True, prefix: str = "", part_size: int = 8 * MiB) -> S3Storage:
        """A client on `endpoint`, checked against `bucket` (Unavailable: unreachable, unknown
        bucket or refused keys). Credentials are given, never looked up: no instance metadata
        service, no ~/.aws, no environment read behind the host's settings."""
        config = AioConfig(
            s3={"addressing_style": "path" if path_style else "virtual"},
            retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=10, read_timeout=60,
            # checksums only where S3 requires them: Garage and SeaweedFS refuse some of botocore's newer defaults
            request_checksum_calculation="when_required", response_checksum_validation="when_required")
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key, config=config))
        storage = cls(client, bucket, prefix, part_size, stack)
        try:
            await client.head_bucket(Bucket=bucket)
        except (ClientError, BotoCoreError) as exc:
            await stack.aclose()
            raise Unavailable(f"bucket {bucket!r} at {endpoint} cannot be used: {_reason(exc)}") from None
        return storage

    async def close(self) -> None:
        await self._exit_stack.aclose()

    # -- keys ------------------------------------------------------------------------------

    def _ready_key(self, file_id: str) -> str:
        return f"{self.prefix}ready/{checked_id(file_id)}"

    def _tails(self, file_id: str) -> str:
        return f"{self.prefix}tails/{checked_id(file_id)}/"

    # -- writing ---------------------------------------------------------------------------

    async def create(self, file_id: str) -> None:
        checked_id(file_id)  # nothing to make yet: the multipart upload starts with the first whole part

    async def write_at(self, file_id, offset, chunks, limit, *, state, held):
        part_size = self.part_size
        if -(-limit // part_size) > MAX_PARTS:
            raise Unavailable(f"a file of {limit} bytes needs more than {MAX_PARTS} parts of {part_size}")
        old = UploadState.parse(state)
        key = self._ready_key(file_id)
        if offset == held == limit:  # everything is in (its last part sent short): only an empty part fits
            async for _ in bounded(chunks, offset, limit):
                pass
            return held, state
        index = offset // part_size  # the S3 part being filled, from 0
        buffer = bytearray()
        if offset > index * part_size:  # this part's beginning is already stored: it must be in the tail
            if index * part_size != (held // part_size) * part_size or old.tail is None:
                raise CannotRewind(f"cannot resume at {offset}")
            try:
                buffer += await self._call(self._read_tail(file_id, old.tail, offset - index * part_size))
            except FileNotFoundError:
                raise Unavailable("the unfinished part of this upload is missing from the bucket") from None
        upload, created, tail = old.upload, None, None
        position = offset
        try:
            async for chunk in bounded(chunks, offset, limit):
                buffer += chunk
                position += len(chunk)
                while len(buffer) >= part_size:
                    if upload is None:
                        upload = created = await self._call(self._start(key))
                    with memoryview(buffer) as view:
                        body = bytes(view[:part_size])
                    del buffer[:part_size]
                    index += 1
                    await self._call(self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload,
                                                             PartNumber=index, Body=body))
                    del body
            if buffer and position == limit:  # the last part, short: sent as it is
                if upload is None:
                    upload = created = await self._call(self._start(key))
                await self._call(self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload,
                                                         PartNumber=index + 1, Body=bytes(buffer)))
            elif buffer:
                tail = secrets.token_hex(8)
                await self._call(self.client.put_object(Bucket=self.bucket, Key=self._tails(file_id) + tail,
                                                        Body=bytes(buffer)))
        except BaseException:
            # nothing of this write is recorded: what it alone made goes (the caller keeps the old state)
            await self.discard(file_id, UploadState(created, tail).dump(), state)
            raise
        return position, UploadState(upload, tail).dump()

    async def _start(self, key: str) -> str:
        return (await self.client.create_multipart_upload(Bucket=self.bucket, Key=key))["UploadId"]

    async def _read_tail(self, file_id: str, tail: str, length: int) -> bytes:
        response = await self.client.get_object(Bucket=self.bucket, Key=self._tails(file_id) + tail,
                                                Range=f"bytes=0-{length - 1}")
        async with response["Body"] as body:
            data = await body.read()
        if len(data) != length:
            raise Unavailable(f"the unfinished part holds {len(data)} bytes, {length} expected")
        return data

    async def discard(self, file_id: str, dropped: str | None, kept: str | None) -> None:
        gone, stays = UploadState.parse(dropped), UploadState.parse(kept)
        with contextlib.suppress(ClientError, BotoCoreError):
            if gone.tail and gone.tail != stays.tail:
                await self.client.delete_object(Bucket=self.bucket, Key=self._tails(file_id) + gone.tail)
            if gone.upload and gone.upload != stays.upload:
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._ready_key(file_id),
                                                         UploadId=gone.upload)

    async def publish(self, file_id: str, size: int, *, state: str | None) -> None:
        current = UploadState.parse(state)
        key = self._ready_key(file_id)
        count = -(-size // self.part_size)
        wanted = {n: min(self.part_size, size - (n - 1) * self.part_size) for n in range(1, count + 1)}
        try:
            if current.upload is None:
                raise Incomplete("no part stored")
            parts = await self._call(self._parts(key, current.upload))
            if any(parts.get(n, (None, -1))[1] != length for n, length in wanted.items()):
                raise Incomplete(f"{sum(p[1] for n, p in parts.items() if n in wanted)} of {size} bytes stored")
            await self._call(self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=current.upload,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": parts[n][0]} for n in wanted]}))
        except Incomplete:
            # published already (a crash between the bucket's completion and the database's commit)?
            if await self._stored_size(key) != size:
                raise
        await self.discard(file_id, UploadState(None, current.tail).dump(), None)

    async def _parts(self, key: str, upload: str) -> dict[int, tuple[str, int]]:
        parts: dict[int, tuple[str, int]] = {}
        try:
            async for page in self.client.get_paginator("list_parts").paginate(
                    Bucket=self.bucket, Key=key, UploadId=upload):
                parts.update({p["PartNumber"]: (p["ETag"], p["Size"]) for p in page.get("Parts", [])})
        except ClientError as exc:
            if _missing(exc):
                raise Incomplete("no such upload") from None
            raise
        return parts

    async def _stored_size(self, key: str) -> int | None:
        try:
            return (await self._call(self.client.head_object(Bucket=self.bucket, Key=key)))["ContentLength"]
        except FileNotFoundError:
            return None

    # -- reading ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def reading(self, file_id: str) -> AsyncIterator[AsyncIterator[bytes]]:
        response = await self._call(self.client.get_object(Bucket=self.bucket, Key=self._ready_key(file_id)))
        body = response["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in body.iter_chunks(CHUNK_SIZE):
                    yield chunk
            except (ClientError, BotoCoreError, OSError) as exc:
                raise Unavailable(_reason(exc)) from None
        try:
            yield chunks()
        finally:
            body.close()

    def free_bytes(self) -> None:
        return None  # a bucket's room is its operator's quota, not a disk this process can see

    # -- deleting --------------------------------------------------------------------------

    async def remove(self, file_id: str) -> None:
        """Abort the file's unfinished multipart uploads, delete its tails and its object."""
        key = self._ready_key(file_id)
        async for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=key):
            for upload in page.get("Uploads", []):
                if upload["Key"] == key:
                    with contextlib.suppress(ClientError):
                        await self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload["UploadId"])
        async for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._tails(file_id)):
            for item in page.get("Contents", []):
                await self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
        await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def all_ids(self) -> set[str]:
        ids: set[str] = set()
        async for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            ids.update(_id_in(item["Key"][len(self.prefix):]) for item in page.get("Contents", []))
        async for page in self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix + "ready/"):
            ids.update(_id_in(upload["Key"][len(self.prefix):]) for upload in page.get("Uploads", []))
        ids.discard(None)
        return ids

    # -- errors ----------------------------------------------------------------------------

    async def _call(self, awaitable):
        """S3's answers as this module's errors: FileNotFoundError for a missing key, Unavailable
        for the rest (the drop box turns it into a 503, never a stack trace)."""
        try:
            return await awaitable
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(_reason(exc)) from None
            raise Unavailable(_reason(exc)) from None
        except BotoCoreError as exc:
            raise Unavailable(_reason(exc)) from None


def _id_in(relative_key: str) -> str | None:
    """The file id in "ready/{id}" or "tails/{id}/{token}"; None for any other key."""
    kind, _, rest = relative_key.partition("/")
    file_id = rest.split("/", 1)[0]
    return file_id if kind in ("ready", "tails") and SAFE_ID.match(file_id) else None


def _reason(exc: Exception) -> str:
    """What went wrong, without the request (no key, no signature)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip(": ")
    return type(exc).__name__
