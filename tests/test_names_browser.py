"""static/js/names.js in real Chromium: the shared vectors of tests/vectors/names.json, and
interoperability with teleconsult/names.py in both directions. A test-only aiohttp app on a
loopback port serves /static and a harness module under a CSP without inline script or eval."""

import json
import os
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from browser import chromium, wait_until
from filedrop.ece import b64url_encode
from teleconsult import names

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "tests" / "vectors" / "names.json").read_text("utf-8"))
CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'"
PAGE = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>names.js</title>'
        '<script type="module" src="/harness.js"></script></head><body></body></html>')
HARNESS = """
import * as names from '/static/js/names.js';
import * as ece from '/static/js/ece.js';
window.harness = { names, ece };
document.documentElement.dataset.ready = 'yes';
"""


@web.middleware
async def csp(request, handler):
    response = await handler(request)
    response.headers["Content-Security-Policy"] = CSP
    return response


async def _server() -> TestServer:
    app = web.Application(middlewares=[csp])
    app.router.add_get("/", lambda r: web.Response(text=PAGE, content_type="text/html"))
    app.router.add_get("/harness.js", lambda r: web.Response(text=HARNESS, content_type="text/javascript"))
    app.router.add_static("/static", ROOT / "static")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def page():
    server = await _server()
    try:
        async with chromium() as browser:
            tab = await (await browser.new_context()).new_page()
            problems = []
            tab.on("pageerror", lambda error: problems.append(str(error)))
            await tab.goto(str(server.make_url("/")))
            await wait_until(tab, "document.documentElement.dataset.ready === 'yes'")
            yield tab
            assert problems == []
    finally:
        await server.close()


async def test_javascript_seals_and_opens_the_shared_vectors(page):
    result = await page.evaluate("""async (v) => {
      const { names, ece } = window.harness;
      const secret = ece.b64urlDecode(v.secret);
      const out = { sealed: [], opened: [], cleaned: [], refused: [] };
      for (const c of v.cases) {
        out.sealed.push(ece.b64urlEncode(await names.sealName(secret, c.name, { iv: ece.b64urlDecode(c.iv) })));
        out.opened.push(await names.openNameText(secret, c.sealed));
      }
      for (const c of v.cleaned) out.cleaned.push(names.cleanName(c.typed));
      for (const typed of v.refused) {
        try { names.cleanName(typed); out.refused.push(null); } catch (err) { out.refused.push(err.name); }
      }
      return out;
    }""", VECTORS)
    assert result["sealed"] == [c["sealed"] for c in VECTORS["cases"]]
    assert result["opened"] == [c["name"] for c in VECTORS["cases"]]
    assert result["cleaned"] == [c["name"] for c in VECTORS["cleaned"]]
    assert result["refused"] == ["BadName"] * len(VECTORS["refused"])


async def test_python_opens_what_javascript_sealed_and_the_other_way_round(page):
    secret = os.urandom(32)
    from_python = names.seal_text(secret, "Zoé Lefèvre 🙂")
    result = await page.evaluate("""async ([secretText, fromPython, other]) => {
      const { names, ece } = window.harness;
      const secret = ece.b64urlDecode(secretText);
      let wrong = null;
      try { await names.openNameText(ece.b64urlDecode(other), fromPython); } catch (err) { wrong = err.name; }
      return { opened: await names.openNameText(secret, fromPython), wrong,
               sealed: await names.sealNameText(secret, "  Camille \\u202e Dupont ") };
    }""", [b64url_encode(secret), from_python, b64url_encode(os.urandom(32))])
    assert result["opened"] == "Zoé Lefèvre 🙂"
    assert result["wrong"] == "BadSealedName"
    assert len(result["sealed"]) == names.SEALED_TEXT_SIZE
    assert names.open_text(secret, result["sealed"]) == "Camille Dupont"
