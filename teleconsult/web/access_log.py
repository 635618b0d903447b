"""Logging without personal data: access lines name the route, never the path (patient
links and ids stay out of logs), nor the query, nor any header."""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger


class RouteAccessLogger(AbstractAccessLogger):
    def log(self, request, response, time: float) -> None:
        route = request.match_info.route.name if request.match_info.route else None
        self.logger.info("%s %s %s %.1fms", request.method, route or "-", response.status, time * 1000)


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
