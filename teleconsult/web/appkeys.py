"""The one piece of application state: the services object (teleconsult/services.py)."""

from aiohttp import web

from ..services import Services

services_key = web.AppKey("services", Services)


def services_of(request: web.Request) -> Services:
    return request.app[services_key]
