"""Security properties, each tried against the running app."""

import json
import logging
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pyotp

from teleconsult.web.routes import ROUTES
from conftest import PASSWORD, add_clinician, csrf_from, login, sealed

STATE_CHANGING_PAGES = [(m, p, n) for m, p, _h, n in ROUTES
                        if m in ("POST", "PATCH", "PUT", "DELETE") and not p.startswith("/api/")]


async def test_login_is_throttled_after_failures_even_with_the_right_password(live, http):
    app = await live(login_max_failures=3)
    doctor = await add_clinician(app.engine)
    client = http()
    async with client.get(app.url + "/login") as r:
        csrf = csrf_from(await r.text())
    statuses = []
    for _ in range(3):
        async with client.post(app.url + "/login", data={
                "email": doctor.email, "password": "wrong password!", "csrf_token": csrf}) as r:
            statuses.append(r.status)
    async with client.post(app.url + "/login", data={
            "email": doctor.email, "password": PASSWORD, "csrf_token": csrf}) as r:
        statuses.append(r.status)
        assert "Trop de tentatives" in await r.text()
    assert statuses == [401, 401, 401, 429]
    # the throttle is per account too: another address does not get a fresh allowance
    # (the address limiter and the email limiter are separate keys; both were hit)
    assert await app.services.limiters.login.hits("email:" + doctor.email) == 3


async def test_totp_code_is_required_and_cannot_be_replayed(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    client = http()
    async with client.get(app.url + "/login") as r:
        csrf = csrf_from(await r.text())
    async with client.post(app.url + "/login", data={
            "email": doctor.email, "password": PASSWORD, "csrf_token": csrf}) as r:
        csrf = csrf_from(await r.text())
    # the password alone opens nothing
    async with client.get(app.url + "/dashboard/state", headers={"Accept": "application/json"}) as r:
        assert r.status == 401
    async with client.post(app.url + "/login/totp", data={"code": "000000", "csrf_token": csrf}) as r:
        assert r.status == 401
    code = pyotp.TOTP(doctor.totp_secret).now()
    async with client.post(app.url + "/login/totp", data={"code": code, "csrf_token": csrf}) as r:
        assert r.url.path == "/"
    # the same code a second time, from another browser that knows the password
    other = http()
    async with other.get(app.url + "/login") as r:
        csrf2 = csrf_from(await r.text())
    async with other.post(app.url + "/login", data={
            "email": doctor.email, "password": PASSWORD, "csrf_token": csrf2}) as r:
        csrf2 = csrf_from(await r.text())
    async with other.post(app.url + "/login/totp", data={"code": code, "csrf_token": csrf2}) as r:
        assert r.status == 401


async def test_first_login_enrols_totp_with_a_qr_code(live, http):
    app = await live()
    doctor = await add_clinician(app.engine, enrolled=False)
    client = http()
    async with client.get(app.url + "/login") as r:
        csrf = csrf_from(await r.text())
    async with client.post(app.url + "/login", data={
            "email": doctor.email, "password": PASSWORD, "csrf_token": csrf}) as r:
        assert r.url.path == "/login/totp/enrol"
        html = await r.text()
    assert "<svg" in html
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)
    async with client.post(app.url + "/login/totp/enrol", data={
            "code": pyotp.TOTP(secret).now(), "csrf_token": csrf_from(html)}) as r:
        assert r.url.path == "/"


async def test_csrf_is_enforced_on_every_state_changing_form(live, http, caplog):
    app = await live()
    doctor = await add_clinician(app.engine)
    client = http()
    real_csrf = await login(client, app.url, doctor)
    assert len(STATE_CHANGING_PAGES) >= 8
    caplog.set_level(logging.WARNING, logger="teleconsult.security")
    for method, path, name in STATE_CHANGING_PAGES:
        url = app.url + re.sub(r"{\w+}", "x", path)
        for attempt in ({}, {"headers": {"X-CSRF-Token": "forged"}}, {"data": {"csrf_token": "forged"}},
                        {"data": {"csrf_token": ""}}):
            async with client.request(method, url, allow_redirects=False, **attempt) as r:
                assert r.status == 403, (name, attempt, r.status)
    assert "csrf refused" in caplog.text
    # with the real token the same request goes through (to the handler's own answer)
    async with client.post(app.url + "/consultations", headers={"X-CSRF-Token": real_csrf}) as r:
        assert r.status == 201


def _cookie_flags(set_cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in set_cookie.split(";")[1:]}


async def test_session_cookie_is_httponly_samesite_and_not_secure_on_plain_http(live, http):
    app = await live()
    async with http().get(app.url + "/login") as r:
        cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("tc_session=")
    flags = _cookie_flags(cookie)
    assert "httponly" in flags and "samesite" in flags and "secure" not in flags
    assert "samesite=lax" in cookie.lower()


async def test_session_cookie_is_secure_behind_tls(live, http):
    app = await live()
    from teleconsult.web.app import create_app
    from aiohttp.test_utils import TestServer
    from conftest import free_port, make_settings
    port = free_port()
    settings = make_settings(app.settings.data_dir, public_url="https://consult.example.org", port=port)
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    try:
        async with http().get(f"http://127.0.0.1:{port}/login") as r:
            cookie = r.headers["Set-Cookie"]
            assert "max-age=31536000" in r.headers["Strict-Transport-Security"]
        assert {"httponly", "secure", "samesite"} <= _cookie_flags(cookie)
    finally:
        await server.close()


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls, self.inline_scripts, self.inline_styles, self.handlers = [], 0, 0, []
        self._in_script = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href", "action", "formaction", "poster", "data"):
            if attrs.get(key):
                self.urls.append(attrs[key])
        if "style" in attrs:
            self.inline_styles += 1
        self.handlers += [k for k in attrs if k.startswith("on")]
        if tag == "script":
            self._in_script = attrs
        if tag == "style":
            self.inline_styles += 1

    def handle_data(self, data):
        if self._in_script is not None and data.strip():
            if self._in_script.get("type") != "application/json":
                self.inline_scripts += 1

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


async def _every_page(app, http):
    """(name, response headers, body) of every HTML page a clinician and a patient can see."""
    doctor = await add_clinician(app.engine)
    clinician = http()
    csrf = await login(clinician, app.url, doctor)
    async with clinician.post(app.url + "/consultations", headers={"X-CSRF-Token": csrf}) as r:
        consultation = await r.json()
    patient = http()
    pages = []
    urls = [(http(), "/login"), (clinician, "/"), (clinician, f"/consultations/{consultation['id']}"),
            (patient, consultation["patient_url"]), (http(), "/j/unknown-link"), (http(), "/no/such/page"),
            (http(), "/healthz"), (http(), "/api/openapi.json")]
    for who, url in urls:
        async with who.get(url if url.startswith("http") else app.url + url) as r:
            pages.append((url, r.headers, await r.text()))
    async with patient.post(consultation["patient_url"] + "/knock", data={
            "sealed_name": sealed("Camille"), "consent": "yes", "csrf_token": csrf_from(pages[3][2])}) as r:
        pages.append(("waiting room", r.headers, await r.text()))
    async with clinician.get(app.url + "/static/js/dashboard.js") as r:
        pages.append(("static", r.headers, await r.text()))
    return pages


async def test_every_page_sends_strict_security_headers(live, http):
    app = await live()
    for name, headers, _body in await _every_page(app, http):
        csp = headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, name
        assert "frame-ancestors 'none'" in csp, name
        assert "script-src 'self' https://meet.example.org" in csp, name
        assert "default-src 'none'" in csp, name
        assert headers["Referrer-Policy"] == "no-referrer", name
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert headers["X-Frame-Options"] == "DENY", name
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin", name
        assert "geolocation=()" in headers["Permissions-Policy"], name
        if name != "static":
            assert headers["Cache-Control"] == "no-store", f"{name} may be kept in a shared cache"


JITSI = "https://meet.example.org"
EXPECTED_CSP = {
    "default-src": ["'none'"], "script-src": ["'self'", JITSI], "style-src": ["'self'"],
    "img-src": ["'self'", "data:", "blob:"], "media-src": ["'self'", "blob:"], "connect-src": ["'self'"],
    "frame-src": [JITSI], "worker-src": ["'self'"], "font-src": ["'self'"], "manifest-src": ["'self'"],
    "form-action": ["'self'"], "base-uri": ["'none'"], "frame-ancestors": ["'none'"],
}


async def test_the_content_security_policy_names_only_our_origin_and_jitsis_directive_by_directive(live, http):
    app = await live()
    for name, headers, _body in await _every_page(app, http):
        policy = {}
        for directive in headers["Content-Security-Policy"].split(";"):
            key, *values = directive.split()
            policy[key] = values
        # the call page alone may frame the PDF preview of a written document (a blob: URL)
        frames = [JITSI, "blob:"] if name.startswith("/consultations/") else [JITSI]
        assert policy == {**EXPECTED_CSP, "frame-src": frames}, name


async def test_what_a_patient_typed_is_escaped_in_every_page_and_data_block(live, http):
    app = await live()
    doctor = await add_clinician(app.engine)
    clinician = http()
    csrf = await login(clinician, app.url, doctor)
    async with clinician.post(app.url + "/consultations", headers={"X-CSRF-Token": csrf}) as r:
        consultation = await r.json()
    name = '</script><script>alert(1)</script><b id="typed">'
    patient = http()
    async with patient.get(consultation["patient_url"]) as r:
        patient_csrf = csrf_from(await r.text())
    async with patient.post(consultation["patient_url"] + "/knock", data={
            "sealed_name": sealed(name), "consent": "yes", "csrf_token": patient_csrf}) as r:
        waiting_room = await r.text()
    async with clinician.get(app.url + "/") as r:
        dashboard = await r.text()
    for page in (waiting_room, dashboard):
        assert "</script><script>" not in page and '<b id="typed">' not in page
        parser = _Refs()
        parser.feed(page)
        assert parser.inline_scripts == 0


def test_a_page_data_block_cannot_be_closed_or_broken_by_the_data_it_holds():
    """Whatever a data block carries (a name, a label, a clinician's profile), it stays JSON
    inside its <script type="application/json">: no `</script>` or `<!--` gets through, and the
    page's script reads back exactly the value. (Patients' names are sealed since issue 17, so
    the test above no longer sends one through a data block.)"""
    from teleconsult.web.templating import _json_data
    hostile = {"name": '</script><script>alert(1)</script><!-- & </SCRIPT >', "n": [1, "<b>"]}
    text = str(_json_data(hostile))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == hostile


async def test_what_someone_typed_is_shown_escaped_on_the_page(live, http):
    app = await live()
    client = http()
    typed = 'x"><script>alert(1)</script>@example.org'
    async with client.get(app.url + "/login") as r:
        csrf = csrf_from(await r.text())
    async with client.post(app.url + "/login", data={"email": typed, "password": "wrong password!",
                                                     "csrf_token": csrf}) as r:
        assert r.status == 401
        page = await r.text()
    assert "<script>alert(1)</script>" not in page
    assert 'value="x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@example.org"' in page


def test_no_template_holds_an_inline_script_style_or_event_handler():
    """Every template, also those no test renders: the CSP would block them, and data goes in
    <script type="application/json"> blocks (DESIGN section on pages)."""
    templates = sorted((Path(__file__).resolve().parent.parent / "templates").glob("*.html"))
    assert len(templates) >= 15
    for template in templates:
        parser = _Refs()
        parser.feed(template.read_text(encoding="utf-8"))
        assert parser.inline_scripts == 0, f"inline script in {template.name}"
        assert parser.inline_styles == 0, f"inline style in {template.name}"
        assert parser.handlers == [], f"inline event handlers in {template.name}"


def test_every_page_tells_the_browser_to_send_no_referrer_even_without_the_header():
    """The consultation secret travels in the link's fragment: a page opened from a file or a
    proxy that drops headers must still not leak its address."""
    templates = Path(__file__).resolve().parent.parent / "templates"
    assert '<meta name="referrer" content="no-referrer">' in (templates / "base.html").read_text(encoding="utf-8")
    pages = [t for t in templates.glob("*.html") if not t.name.startswith("_") and t.name != "base.html"]
    for page in pages:
        assert page.read_text(encoding="utf-8").startswith('{% extends "base.html" %}'), page.name


async def test_no_page_references_any_host_but_ours_and_the_jitsi_domain(live, http):
    app = await live()
    ours = urlsplit(app.url).netloc
    for name, headers, body in await _every_page(app, http):
        if "text/html" not in headers.get("Content-Type", ""):
            continue
        parser = _Refs()
        parser.feed(body)
        for url in parser.urls:
            host = urlsplit(url).netloc
            assert host in ("", ours, "meet.example.org"), (name, url)
        assert parser.inline_scripts == 0, f"inline script in {name}"
        assert parser.inline_styles == 0, f"inline style in {name}"
        assert parser.handlers == [], f"inline event handlers in {name}"
        # and no absolute URL to another host anywhere in the text either
        for host in re.findall(r"https?://([^/\"'\s<>]+)", body):
            assert host in (ours, "meet.example.org"), (name, host)


async def test_an_unexpected_error_shows_a_friendly_page_without_a_stack_trace(tmp_path, http, caplog):
    from aiohttp.test_utils import TestServer
    from teleconsult.web.app import create_app
    from conftest import free_port, make_settings
    port = free_port()
    app = create_app(make_settings(tmp_path, port=port))

    async def boom(request):
        raise RuntimeError("secret internal detail")
    app.router.add_get("/boom", boom, name="boom")
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        async with http().get(f"http://127.0.0.1:{port}/boom") as r:
            body = await r.text()
            assert r.status == 500
        assert "Une erreur est survenue" in body
        assert "Traceback" not in body and "secret internal detail" not in body
        async with http().get(f"http://127.0.0.1:{port}/boom", headers={"Accept": "application/json"}) as r:
            assert await r.json() == {"error": "internal error", "status": 500}
        assert "secret internal detail" in caplog.text  # the operator still sees it in the log
    finally:
        await server.close()
