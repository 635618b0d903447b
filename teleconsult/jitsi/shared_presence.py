"""Who is in each consultation's call, as every instance sees it.

On PostgreSQL (several instances behind a load balancer, any of which may receive a Prosody
event or a dashboard's question) the sessions and their tombstones live in the database (table
presence_sessions): `SharedPresence` keeps presence.PresenceBook's rules (a session is keyed by
(occupant_jid, joined_at); a `left` or a destroyed room leaves a tombstone that a late `joined` of
the same session cannot undo; tombstones last `tombstone_seconds`), each change in one
transaction holding the consultation's advisory lock, so that two instances applying two events
of the same room at once compute "changed" from the same order. An event delivered to both
instances is applied once (the event-id memory is shared too: shared_replay.py), and applying the
same change twice changes nothing anyway. The JID is stored hashed: no occupant address in clear.

On SQLite (one instance) `LocalPresence` keeps the in-process PresenceBook behind the same
awaitable methods: one instance has nothing to share, an occupant event then costs no write on
SQLite's single writer, and a restart starts from an empty book (never someone stuck "in the
call" because a `left` was lost while the app was down: see presence.py).

The price on PostgreSQL: the book survives a restart of every instance, so a `left` that Prosody's
module gave up on while all instances were down (past its retry budget) leaves a session shown
until the room is destroyed or the consultation ends (pages show nobody in an ended call); the
sweeper deletes the rows of ended consultations and expired tombstones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .. import db_busy, db_tables
from .presence import NOBODY, PATIENT, CLINICIAN, ROLES, Presence, PresenceBook, SessionKey

NO_JOINED_AT = -1  # a session without joined_at (the key is part of the primary key: never NULL)
TOMBSTONE_SECONDS = 3600  # as PresenceBook's default: longer than the Prosody module's retry budget


class LocalPresence:
    """PresenceBook (in process) with the awaitable methods of SharedPresence."""

    def __init__(self, book: PresenceBook | None = None) -> None:
        self.book = book if book is not None else PresenceBook()

    async def get(self, consultation_id: str) -> Presence:
        return self.book.get(consultation_id)

    async def shown(self, consultation_id: str, ended: bool) -> dict[str, bool]:
        return self.book.shown(consultation_id, ended)

    async def shown_many(self, consultations: Iterable[tuple[str, bool]]) -> dict[str, dict[str, bool]]:
        return {cid: self.book.shown(cid, ended) for cid, ended in consultations}

    async def joined(self, consultation_id: str, occupant_jid: str, joined_at: int | None, role: str,
                     now: float) -> bool:
        return self.book.joined(consultation_id, occupant_jid, joined_at, role, now)

    async def left(self, consultation_id: str, occupant_jid: str, joined_at: int | None, now: float) -> bool:
        return self.book.left(consultation_id, occupant_jid, joined_at, now)

    async def destroyed(self, consultation_id: str, sessions: Iterable[SessionKey], now: float) -> bool:
        return self.book.destroyed(consultation_id, sessions, now)

    async def came(self, consultation_id: str, role: str) -> bool:
        """Is someone of `role` in the call now (one instance: its SignalPresence remembers the rest)."""
        return getattr(self.book.get(consultation_id), role)

    async def forget(self, consultation_id: str) -> None:
        self.book.forget(consultation_id)


def _jid(occupant_jid: str) -> str:
    return hashlib.sha256(occupant_jid.encode()).hexdigest()


def _insert(conn: AsyncConnection):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(db_tables.presence_sessions)


def _presence(roles: Iterable[str]) -> Presence:
    roles = set(roles)
    return Presence(patient=PATIENT in roles, clinician=CLINICIAN in roles)


class SharedPresence:
    def __init__(self, engine: AsyncEngine, tombstone_seconds: float = TOMBSTONE_SECONDS) -> None:
        self.engine, self.tombstone_seconds = engine, tombstone_seconds

    @staticmethod
    async def _roles(conn: AsyncConnection, consultation_id: str) -> Presence:
        t = db_tables.presence_sessions
        rows = await conn.execute(sa.select(t.c.role).distinct().where(
            t.c.consultation_id == consultation_id, t.c.ended_at.is_(None)))
        return _presence(rows.scalars())

    async def get(self, consultation_id: str) -> Presence:
        async with self.engine.connect() as conn:
            return await self._roles(conn, consultation_id)

    async def shown(self, consultation_id: str, ended: bool) -> dict[str, bool]:
        return (NOBODY if ended else await self.get(consultation_id)).as_json()

    async def shown_many(self, consultations: Iterable[tuple[str, bool]]) -> dict[str, dict[str, bool]]:
        """Presence of several consultations in one query (the dashboard)."""
        consultations = list(consultations)
        live = [cid for cid, ended in consultations if not ended]
        roles: dict[str, set[str]] = {}
        if live:
            t = db_tables.presence_sessions
            async with self.engine.connect() as conn:
                rows = await conn.execute(sa.select(t.c.consultation_id, t.c.role).distinct().where(
                    t.c.consultation_id.in_(live), t.c.ended_at.is_(None)))
                for cid, role in rows:
                    roles.setdefault(cid, set()).add(role)
        return {cid: (NOBODY if ended else _presence(roles.get(cid, ()))).as_json() for cid, ended in consultations}

    async def _change(self, consultation_id: str, work) -> bool:
        async def run(conn: AsyncConnection) -> bool:
            await db_busy.lock_keys(conn, f"presence:{consultation_id}")
            before = await self._roles(conn, consultation_id)
            await work(conn)
            return await self._roles(conn, consultation_id) != before
        return await db_busy.retrying(self.engine, run)

    async def joined(self, consultation_id: str, occupant_jid: str, joined_at: int | None, role: str,
                     now: float) -> bool:
        """Note a session (unless its tombstone is younger than tombstone_seconds); True when the
        consultation's presence changed."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        t = db_tables.presence_sessions

        async def work(conn):
            insert = _insert(conn).values(consultation_id=consultation_id, jid_hash=_jid(occupant_jid),
                                          joined_at=NO_JOINED_AT if joined_at is None else joined_at,
                                          role=role, ended_at=None, noted_at=now)
            await conn.execute(insert.on_conflict_do_update(
                index_elements=[t.c.consultation_id, t.c.jid_hash, t.c.joined_at],
                set_={"role": role, "ended_at": None, "noted_at": now},
                where=sa.and_(t.c.ended_at.isnot(None), t.c.ended_at <= now - self.tombstone_seconds)))
        return await self._change(consultation_id, work)

    async def _tombstones(self, conn: AsyncConnection, consultation_id: str, sessions: Iterable[SessionKey],
                          now: float) -> None:
        t = db_tables.presence_sessions
        rows = [{"consultation_id": consultation_id, "jid_hash": _jid(jid),
                 "joined_at": NO_JOINED_AT if joined_at is None else joined_at,
                 "role": None, "ended_at": now, "noted_at": now} for jid, joined_at in dict.fromkeys(sessions)]
        if rows:
            insert = _insert(conn)
            await conn.execute(insert.on_conflict_do_update(
                index_elements=[t.c.consultation_id, t.c.jid_hash, t.c.joined_at],
                set_={"ended_at": now, "noted_at": now}), rows)

    async def left(self, consultation_id: str, occupant_jid: str, joined_at: int | None, now: float) -> bool:
        """End a session (or, without joined_at, every live session of that JID, leaving no tombstone);
        True if presence changed."""
        t = db_tables.presence_sessions

        async def work(conn):
            if joined_at is None:
                await conn.execute(t.delete().where(t.c.consultation_id == consultation_id,
                                                    t.c.jid_hash == _jid(occupant_jid), t.c.ended_at.is_(None)))
            else:
                await self._tombstones(conn, consultation_id, [(occupant_jid, joined_at)], now)
        return await self._change(consultation_id, work)

    async def destroyed(self, consultation_id: str, sessions: Iterable[SessionKey], now: float) -> bool:
        """The room is gone: every live session ends, and `sessions` (occupant_jid, joined_at) get a
        tombstone. True if presence changed."""
        t = db_tables.presence_sessions
        sessions = list(sessions)

        async def work(conn):
            await conn.execute(t.update().where(t.c.consultation_id == consultation_id, t.c.ended_at.is_(None))
                               .values(ended_at=now, noted_at=now))
            await self._tombstones(conn, consultation_id, sessions, now)
        return await self._change(consultation_id, work)

    async def came(self, consultation_id: str, role: str) -> bool:
        """Has someone of `role` been in the call (in it now, or left it less than tombstone_seconds ago)?"""
        t = db_tables.presence_sessions
        async with self.engine.connect() as conn:
            return bool(await conn.scalar(sa.select(sa.exists().where(
                t.c.consultation_id == consultation_id, t.c.role == role))))

    async def forget(self, consultation_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(db_tables.presence_sessions.delete().where(
                db_tables.presence_sessions.c.consultation_id == consultation_id))


async def forget_expired(engine: AsyncEngine, now: float, tombstone_seconds: float = TOMBSTONE_SECONDS) -> int:
    """The sweeper's part: tombstones past their time and every row of an ended consultation
    (pages show nobody in an ended call, and its events change nothing)."""
    t, c = db_tables.presence_sessions, db_tables.consultations
    async with engine.begin() as conn:
        old = await conn.execute(t.delete().where(t.c.ended_at.isnot(None), t.c.ended_at <= now - tombstone_seconds))
        ended = await conn.execute(t.delete().where(t.c.consultation_id.in_(
            sa.select(c.c.id).where(c.c.status == "ended"))))
    return old.rowcount + ended.rowcount
