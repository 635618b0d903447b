"""The application factory: `create_app(settings)` builds the web app; the services it serves
are opened at start-up (`services_ctx`) and closed at cleanup. Nothing exists at import."""

from __future__ import annotations

import hashlib
import logging

from aiohttp import web
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from .. import sessions
from ..resources import static_dir, templates_dir
from ..services import open_services
from ..settings import Settings
from .appkeys import services_key
from .csrf import csrf_middleware
from .routes import setup_routes
from .slow_clients import body_timeout_middleware
from .security import add_security_headers, client_address_middleware, error_middleware
from .templating import setup_templates

log = logging.getLogger("teleconsult")

SESSION_COOKIE = "tc_session"


def _session_key(settings: Settings) -> bytes:
    digest = hashlib.sha256(b"teleconsult/v1/session-cookie" + settings.session_secret.encode()).digest()
    return digest  # raw 32 bytes: EncryptedCookieStorage base64-encodes them for Fernet


def services_ctx(settings: Settings):
    async def ctx(app: web.Application):
        async with open_services(settings) as services:
            app[services_key] = services
            yield
    return ctx


async def _signal_stopping(app: web.Application) -> None:
    """Live streams end before the server waits for open requests."""
    app[services_key].stopping.set()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    if not settings.jitsi_events_secret:
        log.info("room events are off: jitsi_events_secret is not set (POST /api/jitsi/events answers 503)")
    setup_session(app, EncryptedCookieStorage(
        _session_key(settings), cookie_name=SESSION_COOKIE, httponly=True,
        secure=settings.secure_cookies, samesite="Lax", max_age=sessions.MAX_AGE_SECONDS))
    # Order matters: the client's address first (everything after sees it), the session wraps
    # error pages (so they can set cookies), errors wrap CSRF.
    app.middlewares.insert(0, client_address_middleware(settings.trusted_proxy_networks, settings.forwarded_header))
    app.middlewares.append(error_middleware)
    app.middlewares.append(body_timeout_middleware)  # turns a stalled body into 408, also in CSRF
    app.middlewares.append(csrf_middleware)
    setup_templates(app, templates_dir())
    app.on_response_prepare.append(add_security_headers)
    app.on_shutdown.append(_signal_stopping)
    app.cleanup_ctx.append(services_ctx(settings))
    setup_routes(app, static_dir())
    return app
