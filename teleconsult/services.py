"""The services object: everything the app holds, built once at start-up and passed explicitly.

Domain functions receive the services they use (`services.engine`, `services.hub`, ...); only
the web layer's app factory and views know aiohttp's `app`, where the object sits under one key.
Nothing is created at import: `open_services(settings)` builds it and closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from babel.support import Translations
from sqlalchemy.ext.asyncio import AsyncEngine

from filedrop.store import DropBox, DropConfig, Quota

from . import db, ending
from .document_store import open_document_store
from .direct_call import SignalPresence
from .credential_checks import PASSWORD_CHECKS_AT_ONCE
from .i18n import load_translations
from .jitsi.events import ReplayGuard
from .jitsi.shared_presence import LocalPresence, SharedPresence
from .jitsi.shared_replay import LocalGuard, SharedGuard
from .live import Hub
from .precall.peer import EchoPeers
from .ratelimit import RateLimiter, SharedRateLimiter, key_secret
from .settings import Settings
from .sweeper import Sweeper

# How long a handled Prosody event_id is remembered: far longer than the module's retry budget
# (about 2 minutes of back-off plus 10 s per attempt with the default options).
EVENT_ID_MEMORY_SECONDS = 3600


@dataclass(frozen=True)
class Limiters:
    login: RateLimiter | SharedRateLimiter  # failed passwords and TOTP codes, per account and per address
    link: RateLimiter | SharedRateLimiter  # unknown patient links and drop ids, per address
    knock: RateLimiter | SharedRateLimiter  # knocks on one consultation, per browser
    precall: RateLimiter | SharedRateLimiter  # pre-call test offers, per address

    @classmethod
    def from_settings(cls, settings: Settings, engine: AsyncEngine) -> Limiters:
        """In process on SQLite (one instance); in the database, shared by every instance, on PostgreSQL."""
        def limiter(name: str, limit: int, window: float):
            if db.is_sqlite(engine):
                return RateLimiter(limit, window)
            return SharedRateLimiter(name, limit, window, engine, secret=key_secret(settings.session_secret))
        return cls(login=limiter("login", settings.login_max_failures, settings.login_window_seconds),
                   link=limiter("link", settings.link_guess_max, settings.link_guess_window_seconds),
                   knock=limiter("knock", settings.knock_max, settings.knock_window_seconds),
                   precall=limiter("precall", settings.precall_offers_max, settings.precall_offers_window_seconds))


@dataclass(frozen=True)
class RoomEventMemory:
    """What the Prosody events endpoint remembers: signatures seen (replays) and event ids handled
    (the module's retries)."""
    signatures: LocalGuard | SharedGuard
    event_ids: LocalGuard | SharedGuard

    @classmethod
    def from_settings(cls, settings: Settings, engine: AsyncEngine) -> RoomEventMemory:
        """In process on SQLite (one instance); in the database, shared and kept over a restart,
        on PostgreSQL."""
        # a signature is valid while its timestamp is within +-window of the clock: remember it that long
        windows = {"signatures": 2 * settings.jitsi_events_window_seconds + 1, "event_ids": EVENT_ID_MEMORY_SECONDS}
        if db.is_sqlite(engine):
            return cls(**{kind: LocalGuard(ReplayGuard(seconds)) for kind, seconds in windows.items()})
        return cls(**{kind: SharedGuard(engine, kind, seconds) for kind, seconds in windows.items()})


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    hub: Hub  # live events for the pages (SSE)
    drops: DropBox  # filedrop: consultation boxes and standalone drops
    presence: LocalPresence | SharedPresence  # who is in which call (Prosody's events, direct calls' streams)
    signal_presence: SignalPresence  # who holds a direct call's signal stream (no Jitsi)
    sweeper: Sweeper  # applies every deadline (ending.sweep_once)
    limiters: Limiters
    password_checks: asyncio.Semaphore  # argon2 verifications running at once (memory bound)
    room_events: RoomEventMemory
    precall_peers: EchoPeers
    translations: dict[str, Translations]
    stopping: asyncio.Event  # set at shutdown: live streams end
    clock: Callable[[], float] = time.time  # the deadlines' clock (ending.py, the drop box, the sweeper)


def _drop_config(settings: Settings) -> DropConfig:
    mib = 1024 * 1024
    return DropConfig(max_size=settings.documents_max_mib * mib,
                      max_expiry=settings.drop_max_expiry_hours * 3600,
                      upload_ttl=settings.documents_upload_idle_minutes * 60,
                      box_quota=Quota(settings.documents_box_max_files, settings.documents_box_max_mib * mib),
                      owner_quota=Quota(settings.documents_clinician_max_files,
                                        settings.documents_clinician_max_mib * mib),
                      min_free_bytes=settings.documents_min_free_mib * mib)


@contextlib.asynccontextmanager
async def open_services(settings: Settings, clock: Callable[[], float] = time.time) -> AsyncIterator[Services]:
    """Migrate the database, build every service, run the sweeper; close them all on exit.
    `clock` (Unix seconds) dates every deadline: the end of consultations, documents, records."""
    engine = db.make_engine(settings.sqlalchemy_url)
    await db.migrate(engine)
    try:
        storage = await open_document_store(settings)
    except BaseException:
        await engine.dispose()
        raise
    if db.is_sqlite(engine):
        hub = Hub()
    else:  # imported here: psycopg costs a SQLite server 10 MiB of memory for nothing (docs/benchmarks.md)
        from .live_postgres import PostgresHub
        hub = PostgresHub(str(engine.url.render_as_string(hide_password=False)))
        await hub.start()
    services: Services  # the sweeper's steps read it once it is built, below
    sweeper = Sweeper(lambda: ending.sweep_once(services), lambda: ending.next_deadline(services),
                      settings.documents_sweep_seconds, clock=clock)
    drops = DropBox(engine, storage, _drop_config(settings),
                    notify=lambda box_id, event: hub.publish(f"box:{box_id}", event) if box_id else None,
                    clock=clock, on_deadline=sweeper.wake_at)
    peers = EchoPeers(max_sessions=settings.precall_max_sessions,
                      max_duration_seconds=settings.precall_max_seconds,
                      ice_servers=settings.precall_ice_server_list)
    presence = LocalPresence() if db.is_sqlite(engine) else SharedPresence(engine)
    signal_presence = SignalPresence(hub, settings.direct_leave_grace_seconds,
                                     lambda consultation_id: ending.end_abandoned(services, consultation_id),
                                     presence, clock=clock)
    services = Services(settings=settings, engine=engine, hub=hub, drops=drops, presence=presence,
                        signal_presence=signal_presence,
                        sweeper=sweeper, limiters=Limiters.from_settings(settings, engine),
                        password_checks=asyncio.Semaphore(PASSWORD_CHECKS_AT_ONCE),
                        room_events=RoomEventMemory.from_settings(settings, engine), precall_peers=peers,
                        translations=load_translations(), stopping=asyncio.Event(), clock=clock)
    task = asyncio.create_task(sweeper.run())
    try:
        yield services
    finally:
        services.stopping.set()
        signal_presence.close()
        task.cancel()
        sweeper.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await peers.close_all()
        await hub.close()
        await storage.close()
        await engine.dispose()
