"""Logging without personal data: access lines name the route, never the path (patient
links and ids stay out of logs), nor the query, nor any header."""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger


class RouteAccessLogger(AbstractAccessLogger):
    def log(self, request, response, time: float) -> None:
        self.logger.info("%s %s %s %.1fms", request.method, _route_name(request), response.status, time * 1000)


def _route_name(request) -> str:
    """The route's name; "-" when none, as for a request aiohttp could not parse (bad request line,
    bad header): it never reached the router, and reading its unset match_info fails an assert."""
    try:
        match_info = request.match_info
    except AssertionError:
        return "-"
    return (match_info.route.name if match_info is not None and match_info.route else None) or "-"


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
