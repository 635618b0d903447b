"""Jinja2 pages with gettext: `render` adds what every page needs (language, CSRF token)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup

from .csrf import csrf_token
from ..i18n import DEFAULT_LANGUAGE, LANGUAGES
from .appkeys import services_of


LANG_COOKIE = "tc_lang"


def request_language(request: web.Request) -> str:
    """?lang= wins (and is remembered by a cookie), then the cookie, then French."""
    for candidate in (request.query.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


@jinja2.pass_context
def _gettext(ctx, message: str) -> str:
    return ctx["translations"].gettext(message)


@jinja2.pass_context
def _ngettext(ctx, singular: str, plural: str, n: int) -> str:
    return ctx["translations"].ngettext(singular, plural, n)


def _json_data(value) -> Markup:
    """Data for page scripts, in <script type="application/json">: escaped so it cannot close the tag."""
    text = json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


@jinja2.pass_context
def _static(ctx, filename: str) -> str:
    """URL of a static file with a content hash (?v=…), so browsers may cache it safely."""
    return str(ctx["app"].router["static"].url_for(filename=filename))


def setup_templates(app: web.Application, directory: Path) -> None:
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(directory)),
        extensions=["jinja2.ext.i18n"], undefined=jinja2.StrictUndefined,
        filters={"json_data": _json_data})
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)
    env.globals["static"] = _static


def translator(request: web.Request):
    return services_of(request).translations[request_language(request)]


async def render(request: web.Request, template: str, context: dict | None = None, *,
                 status: int = 200, csrf: bool = True) -> web.Response:
    lang = request_language(request)
    ctx = {
        "lang": lang,
        "languages": LANGUAGES,
        "translations": services_of(request).translations[lang],
        "csrf_token": await csrf_token(request) if csrf else "",
        "settings": services_of(request).settings,
        "path": request.path,
        **(context or {}),
    }
    response = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    if request.query.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="Lax",
                            secure=services_of(request).settings.secure_cookies)
    return response
