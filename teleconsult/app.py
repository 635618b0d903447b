"""The application factory: `create_app(settings)` builds everything; nothing exists at import."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from aiohttp import web
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from filedrop.storage import Storage
from filedrop.store import DropBox, DropConfig

from . import consultations, db, lifecycle
from .i18n import load_translations
from .keys import (drop_key, engine_key, hub_key, knock_limiter_key, link_limiter_key, login_limiter_key,
                   precall_limiter_key, settings_key, stopping_key, sweeper_key, translations_key)
from .live import Hub
from .ratelimit import RateLimiter
from .room_sync import setup_room_events
from .routes import setup_routes
from .views.precall import precall_ctx
from .csrf import csrf_middleware
from .security import add_security_headers, error_middleware
from .settings import Settings
from .sweeper import Sweeper
from .resources import static_dir, templates_dir
from .templating import setup_templates

SESSION_COOKIE = "tc_session"
SESSION_MAX_AGE = 12 * 3600


def _session_key(settings: Settings) -> bytes:
    digest = hashlib.sha256(b"teleconsult/v1/session-cookie" + settings.session_secret.encode()).digest()
    return digest  # raw 32 bytes: EncryptedCookieStorage base64-encodes them for Fernet


def _drop_config(settings: Settings) -> DropConfig:
    return DropConfig(max_size=settings.documents_max_mib * 1024 * 1024,
                      max_expiry=settings.drop_max_expiry_hours * 3600)


async def database_ctx(app: web.Application):
    settings = app[settings_key]
    engine = db.make_engine(settings.sqlalchemy_url)
    await db.migrate(engine)
    app[engine_key] = engine
    hub = app[hub_key]
    app[drop_key] = DropBox(engine, Storage(Path(settings.data_dir) / "documents"), _drop_config(settings),
                            notify=lambda box_id, event: hub.publish(f"box:{box_id}", event) if box_id else None,
                            on_deadline=lambda at: app[sweeper_key].wake_at(at) if sweeper_key in app else None)
    yield
    await engine.dispose()


async def sweep_once(app: web.Application) -> dict[str, int]:
    """End overdue consultations, then apply every document deadline. Returns counts."""
    counts = {"consultations_ended": await lifecycle.end_overdue(app)}
    counts.update(await app[drop_key].sweep())
    return counts


async def next_deadline(app: web.Application) -> float | None:
    """The earliest moment `sweep_once` will have something to do (None: nothing pending)."""
    due = (await consultations.next_deadline(app[engine_key]), await app[drop_key].next_deadline())
    return min((at for at in due if at is not None), default=None)


async def sweeper_ctx(app: web.Application):
    """Applies deadlines at start-up, at the earliest one pending, at each one announced, and
    at least every documents_sweep_seconds."""
    sweeper = Sweeper(lambda: sweep_once(app), lambda: next_deadline(app), app[settings_key].documents_sweep_seconds)
    app[sweeper_key] = sweeper
    task = asyncio.create_task(sweeper.run())
    yield
    task.cancel()
    sweeper.close()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def _signal_stopping(app: web.Application) -> None:
    app[stopping_key].set()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[settings_key] = settings
    app[hub_key] = Hub()
    app[stopping_key] = asyncio.Event()
    app[translations_key] = load_translations()
    app[login_limiter_key] = RateLimiter(settings.login_max_failures, settings.login_window_seconds)
    app[link_limiter_key] = RateLimiter(settings.link_guess_max, settings.link_guess_window_seconds)
    app[knock_limiter_key] = RateLimiter(settings.knock_max, settings.knock_window_seconds)
    setup_room_events(app, settings)
    app[precall_limiter_key] = RateLimiter(settings.precall_offers_max, settings.precall_offers_window_seconds)

    setup_session(app, EncryptedCookieStorage(
        _session_key(settings), cookie_name=SESSION_COOKIE, httponly=True,
        secure=settings.secure_cookies, samesite="Lax", max_age=SESSION_MAX_AGE))
    # Order matters: the session wraps error pages (so they can set cookies), errors wrap CSRF.
    app.middlewares.append(error_middleware)
    app.middlewares.append(csrf_middleware)
    setup_templates(app, templates_dir())
    app.on_response_prepare.append(add_security_headers)
    app.on_shutdown.append(_signal_stopping)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(sweeper_ctx)
    app.cleanup_ctx.append(precall_ctx)
    setup_routes(app, static_dir())
    return app
