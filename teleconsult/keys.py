"""Typed application state: everything lives on app[KEY], nothing at module level."""

import asyncio

from aiohttp import web
from babel.support import Translations
from sqlalchemy.ext.asyncio import AsyncEngine

from filedrop.store import DropBox

from .live import Hub
from .presence import PresenceBook
from .precall import EchoPeers
from .ratelimit import RateLimiter
from .room_events import ReplayGuard
from .settings import Settings
from .sweeper import Sweeper

settings_key = web.AppKey("settings", Settings)
engine_key = web.AppKey("engine", AsyncEngine)
hub_key = web.AppKey("hub", Hub)
translations_key = web.AppKey("translations", dict[str, Translations])
login_limiter_key = web.AppKey("login_limiter", RateLimiter)
link_limiter_key = web.AppKey("link_limiter", RateLimiter)
knock_limiter_key = web.AppKey("knock_limiter", RateLimiter)
stopping_key = web.AppKey("stopping", asyncio.Event)
drop_key = web.AppKey("drop", DropBox)
sweeper_key = web.AppKey("sweeper", Sweeper)
# Prosody room events: signatures seen (replays), event ids handled (retries), who is in which call
jitsi_requests_key = web.AppKey("jitsi_requests", ReplayGuard)
jitsi_events_seen_key = web.AppKey("jitsi_events_seen", ReplayGuard)
presence_key = web.AppKey("presence", PresenceBook)
precall_peers_key = web.AppKey("precall_peers", EchoPeers)
precall_limiter_key = web.AppKey("precall_limiter", RateLimiter)
