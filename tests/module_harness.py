"""A page that loads one of static/js's modules in real Chromium, for the crypto modules' tests
(test_ece_browser.py, test_sealing_browser.py): a test-only aiohttp app on a loopback port serves
the project's /static directory, a static page and a harness module, under a CSP that forbids
inline script and eval, the way the real app serves them."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<script type="module" src="/harness.js"></script>
</head>
<body></body>
</html>
"""


def _app(title: str, harness: str) -> web.Application:
    @web.middleware
    async def security_headers(request, handler):
        response = await handler(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    app = web.Application(middlewares=[security_headers])

    async def page(request):
        return web.Response(text=PAGE.format(title=title), content_type="text/html")

    async def harness_module(request):
        return web.Response(text=harness, content_type="text/javascript")

    async def favicon(request):
        return web.Response(status=204)

    app.router.add_get("/", page)
    app.router.add_get("/harness.js", harness_module)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/static", ROOT / "static")
    return app


@contextlib.asynccontextmanager
async def serve_harness(title: str, harness: str):
    """Serves the page and `harness` (a module ending with `dataset.ready = 'yes'`); yields its URL."""
    runner = web.AppRunner(_app(title, harness))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def harness_tab(browser, base_url: str):
    """A fresh page with the harness loaded; `problems` collects console and page errors (a CSP
    violation would land there)."""
    context = await browser.new_context()
    page = await context.new_page()
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        await page.goto(base_url + "/")
        await page.wait_for_function("document.documentElement.dataset.ready === 'yes'", timeout=10_000)
        yield SimpleNamespace(page=page, problems=problems)
    finally:
        await context.close()
