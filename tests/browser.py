"""Real Chromium (Debian's package) driven by Playwright, with fake camera and microphone."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from playwright.async_api import async_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(__file__).parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


@contextlib.asynccontextmanager
async def chromium(add=(), drop=()):
    """Debian's Chromium, headless, with ARGS (some `add`ed or `drop`ped)."""
    args = [arg for arg in ARGS if arg not in drop] + list(add)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            await browser.close()


async def axe_violations(page) -> list[dict]:
    """Serious and critical axe-core violations of the page as it is now.

    axe is evaluated through the DevTools protocol, which the page's CSP does not govern,
    so the page keeps its real CSP during the check."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    results = await page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
        "v => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(' '))})))")
    return [v for v in results if v["impact"] in ("serious", "critical")]


async def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 on a phone-friendly page)."""
    return await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


async def saved_by_click(page, selector: str) -> tuple[str, bytes]:
    """Click `selector` (a save button) and return the download's (suggested file name, bytes)."""
    async with page.expect_download() as info:
        await page.click(selector)
    download = await info.value
    return download.suggested_filename, Path(await download.path()).read_bytes()


async def wait_until(page, expression: str, timeout: float = 10.0) -> None:
    """Poll `expression` until truthy. (Playwright's wait_for_function evaluates strings with
    eval() inside the page, which our CSP rightly forbids; evaluate() goes through DevTools.)"""
    import asyncio
    import time
    from playwright.async_api import Error as PlaywrightError
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await page.evaluate(expression):
                return
        except PlaywrightError as exc:  # the page navigated (a reload) while we asked: ask again
            if "context was destroyed" not in str(exc) and "navigat" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        await asyncio.sleep(0.05)


# Jitsi cannot run here (no videobridge, no Jicofo): this stand-in external_api.js, served on
# another loopback port as "the Jitsi domain", records what the page hands to the IFrame API
# (window.__jitsi: the latest call, with the display name the page gave in `userInfo`;
# window.__jitsi_embeds: every one; window.__jitsi_commands: every executeCommand) and, like the real
# JitsiMeetExternalAPI (an EventEmitter: addListener/on/removeListener), lets a test emit the
# events Jitsi would: window.__jitsi_emit("errorOccurred", {name: "connection.passwordRequired",
# type: "CONNECTION", isFatal: true, message: "Not acceptable by exp"}) is what the real one
# emits when Prosody refuses a token at login (lib-jitsi-meet's PASSWORD_REQUIRED on an auth failure).
STAND_IN_EXTERNAL_API = """
window.__jitsi_embeds = window.__jitsi_embeds || [];
window.JitsiMeetExternalAPI = function (domain, options) {
  var self = this, listeners = {}, disposed = false;
  window.__jitsi = { domain: domain, roomName: options.roomName, jwt: options.jwt,
                    displayName: (options.userInfo || {}).displayName };
  window.__jitsi_embeds.push(window.__jitsi);
  var frame = document.createElement("div");
  frame.className = "stand-in-jitsi";
  frame.textContent = "Jitsi stand-in";
  frame.style.color = "#fff";
  options.parentNode.appendChild(frame);
  this.addListener = this.on = function (event, listener) {
    (listeners[event] = listeners[event] || []).push(listener);
    return self;
  };
  this.removeListener = this.off = function (event, listener) {
    listeners[event] = (listeners[event] || []).filter(function (l) { return l !== listener; });
    return self;
  };
  this.executeCommand = function (name) {
    (window.__jitsi_commands = window.__jitsi_commands || []).push(Array.prototype.slice.call(arguments));
  };
  this.dispose = function () { disposed = true; frame.remove(); window.__jitsi_disposed = true; };
  window.__jitsi_emit = function (event, payload) {
    if (disposed) return 0;
    var called = (listeners[event] || []).slice();
    called.forEach(function (listener) { listener(payload); });
    return called.length;
  };
};
"""


async def stand_in_jitsi():
    """(server, domain) of the stand-in; close the server when done."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from conftest import free_port

    app = web.Application()

    async def external_api(request):
        return web.Response(text=STAND_IN_EXTERNAL_API, content_type="application/javascript")
    app.router.add_get("/external_api.js", external_api)
    port = free_port()
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    return server, f"127.0.0.1:{port}"


async def login_in_browser(page, base: str, clinician) -> None:
    import pyotp
    await page.goto(base + "/login")
    await page.fill("#email", clinician.email)
    await page.fill("#password", clinician.password)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/login/totp")
    await page.fill("#code", pyotp.TOTP(clinician.totp_secret).now())
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/")


async def knocked_pair(browser, base: str, doctor, *, name: str = "Camille", patient_base: str | None = None,
                       timeout: float = 10.0, downloads: bool = False, init_script: str | None = None,
                       prepare_patient=None):
    """A logged-in clinician's dashboard (desktop) and a patient (phone) who opened the new
    consultation's link (through `patient_base` when given, e.g. a fault proxy) and knocked
    (`prepare_patient(page)` is awaited first, e.g. to route the patient's requests).
    Returns (clinician page, patient page, patient link)."""
    clinician_ctx = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=downloads)
    patient_ctx = await browser.new_context(**PHONE, accept_downloads=downloads)
    if init_script:
        for ctx in (clinician_ctx, patient_ctx):
            await ctx.add_init_script(init_script)
    clinician, patient = await clinician_ctx.new_page(), await patient_ctx.new_page()
    if prepare_patient is not None:
        await prepare_patient(patient)
    await login_in_browser(clinician, base, doctor)
    await clinician.click("#new-consultation")
    await wait_until(clinician, "document.getElementById('new-link-url').value !== ''", timeout)
    link = await clinician.input_value("#new-link-url")
    await patient.goto(link.replace(base, patient_base) if patient_base else link)
    await patient.fill("#display_name", name)
    await patient.check("#consent")
    await patient.click("button[type=submit]")
    await clinician.wait_for_selector("[data-action=admit]", timeout=timeout * 1000)
    await wait_until(patient, "document.getElementById('patient-status') !== null", timeout)
    return clinician, patient, link


async def admitted_pair(browser, base: str, doctor, **knock):
    """knocked_pair, then the clinician admits and opens the call: both pages have embedded the
    (stand-in) Jitsi. Returns (clinician page, patient page, patient link)."""
    clinician, patient, link = await knocked_pair(browser, base, doctor, **knock)
    await clinician.click("[data-action=admit]")
    await wait_until(patient, "window.__jitsi !== undefined")
    await clinician.click("a.button.primary")
    await wait_until(clinician, "window.__jitsi !== undefined")
    return clinician, patient, link
