"""The application factory: `create_app(settings)` builds everything; nothing exists at import."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from . import consultations, db
from .i18n import load_translations
from .keys import (engine_key, hub_key, knock_limiter_key, link_limiter_key, login_limiter_key,
                   settings_key, stopping_key, translations_key)
from .live import Hub
from .ratelimit import RateLimiter
from .routes import setup_routes
from .csrf import csrf_middleware
from .security import add_security_headers, error_middleware
from .settings import Settings
from .templating import setup_templates

log = logging.getLogger("teleconsult")

PROJECT_DIR = Path(__file__).resolve().parent.parent
SESSION_COOKIE = "tc_session"
SESSION_MAX_AGE = 12 * 3600
SWEEP_INTERVAL_SECONDS = 30


def _session_key(settings: Settings) -> bytes:
    digest = hashlib.sha256(b"teleconsult/v1/session-cookie" + settings.session_secret.encode()).digest()
    return digest  # raw 32 bytes: EncryptedCookieStorage base64-encodes them for Fernet


async def database_ctx(app: web.Application):
    engine = db.make_engine(app[settings_key].sqlalchemy_url)
    await db.migrate(engine)
    app[engine_key] = engine
    yield
    await engine.dispose()


async def sweeper_ctx(app: web.Application):
    """Ends consultations past their maximum duration, at start-up and periodically."""
    async def loop():
        while True:
            try:
                ended = await consultations.end_overdue(app[engine_key], app[hub_key])
                if ended:
                    log.info("sweeper ended %d overdue consultation(s)", ended)
            except Exception:
                log.exception("sweeper step failed")
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
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

    setup_session(app, EncryptedCookieStorage(
        _session_key(settings), cookie_name=SESSION_COOKIE, httponly=True,
        secure=settings.secure_cookies, samesite="Lax", max_age=SESSION_MAX_AGE))
    # Order matters: the session wraps error pages (so they can set cookies), errors wrap CSRF.
    app.middlewares.append(error_middleware)
    app.middlewares.append(csrf_middleware)
    setup_templates(app, PROJECT_DIR / "templates")
    app.on_response_prepare.append(add_security_headers)
    app.on_shutdown.append(_signal_stopping)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(sweeper_ctx)
    setup_routes(app, PROJECT_DIR / "static")
    return app
