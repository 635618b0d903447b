"""Moving a drop box's ciphertext from one storage to another (a local directory to an S3 bucket)
with every instance stopped: each published document is copied and published in the target,
each unfinished upload is copied up to the bytes its row says were received and its row given the
target's state, so that the sender's next part goes on where it was. Rows being deleted are left
to the sweeper. Idempotent: run again, the same bytes are copied again. The source is left as it
was (delete it once the app runs on the target)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .schema import READY, UPLOADING, files
from .storage import CHUNK_SIZE, DocumentStorage, LocalStorage


async def _read(path: Path, length: int) -> AsyncIterator[bytes]:
    fd = os.open(path, os.O_RDONLY)
    try:
        left = length
        while left and (chunk := os.read(fd, min(CHUNK_SIZE, left))):
            left -= len(chunk)
            yield chunk
    finally:
        os.close(fd)


async def move_documents(engine: AsyncEngine, source: LocalStorage, target: DocumentStorage) -> dict[str, int]:
    """Copy every live document and unfinished upload of `source` into `target`; returns counts
    (published, unfinished, missing: rows whose file the source does not hold)."""
    counts = {"published": 0, "unfinished": 0, "missing": 0}
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(files.c.id, files.c.state, files.c.size, files.c.received)
                                   .where(files.c.state.in_((READY, UPLOADING))))).all()
    for row in rows:
        if row.state == UPLOADING and row.received == 0:
            await target.create(row.id)
            continue
        path = source.ready_path(row.id) if row.state == READY else source.partial_path(row.id)
        length = row.size if row.state == READY else row.received
        if not path.exists() or path.stat().st_size < length:
            counts["missing"] += 1
            continue
        await target.create(row.id)
        received, state = await target.write_at(row.id, 0, _read(path, length), row.size, state=None, held=0)
        if row.state == READY:
            await target.publish(row.id, row.size, state=state)
            counts["published"] += 1
        else:
            async with engine.begin() as conn:
                await conn.execute(files.update().where(files.c.id == row.id, files.c.state == UPLOADING)
                                   .values(received=received, store_state=state, writer=None))
            counts["unfinished"] += 1
    return counts
