"""The patient's side: the link, the knock, the waiting room, the call. No account.

The patient's browser is identified by its knock id, kept in the encrypted session cookie.
The room name and token leave the server only through `call_access`, for an admitted knock.
"""

from __future__ import annotations

import secrets

from aiohttp import web
from aiohttp_session import get_session

from ... import consultations as cs
from ...call_access import call_for_patient
from ...errors import Forbidden, InvalidInput, NotFound
from ..appkeys import services_of
from ..bodies import read_form
from ..csrf import csrf_token
from ..sse import stream
from ..templating import render
from .direct_call_panel import direct_config
from .documents_panel import panel_config
from .writer_panel import identity_config

SESSION_KNOCKS = "knocks"
SESSION_BROWSER = "browser"


async def _consultation(request: web.Request) -> cs.Consultation:
    """The consultation of the link. A link that exists is never throttled (its holder is the
    patient); an unknown one counts against the client's guess allowance, and past it the
    answer is 429. The link's 160 random bits, not this limit, are what makes guessing hopeless."""
    services = services_of(request)
    try:
        return await cs.consultation_by_join_token(services.engine, request.match_info["token"])
    except NotFound:
        await services.limiters.link.attempt(f"link:{request.remote or 'unknown'}")
        raise


def _browser_id(session) -> str:
    """A random id for this browser, kept in its session cookie (the knock limit's key)."""
    if SESSION_BROWSER not in session:
        session[SESSION_BROWSER] = secrets.token_urlsafe(16)
    return session[SESSION_BROWSER]


async def _own_knock(request: web.Request, consultation: cs.Consultation) -> cs.Knock | None:
    session = await get_session(request)
    knock_id = session.get(SESSION_KNOCKS, {}).get(consultation.id)
    if not knock_id:
        return None
    try:
        return await cs.get_knock(services_of(request).engine, consultation, knock_id)
    except NotFound:
        return None


async def join_page(request: web.Request) -> web.Response:
    try:
        consultation = await _consultation(request)
    except NotFound:
        return await render(request, "patient_unknown.html", status=404, csrf=False)
    knock = await _own_knock(request, consultation)
    token = request.match_info["token"]
    if consultation.status == cs.ENDED:
        # an admitted patient may still save the documents until they are deleted
        admitted = knock is not None and knock.decided_at is not None and knock.status == cs.KNOCK_ENDED
        return await render(request, "patient_ended.html", {
            "documents_role": "patient", "documents_can_send": False,
            "documents": await _panel(request, token, consultation, knock) if admitted else None})
    if knock is None or knock.status in (cs.KNOCK_ENDED, cs.KNOCK_DECLINED):
        error = "declined" if knock is not None and knock.status == cs.KNOCK_DECLINED else None
        return await render(request, "patient_join.html", {"token": request.match_info["token"], "error": error})
    return await render(request, "patient_wait.html", {
        "token": token, "knock": knock, "documents_role": "patient", "documents_can_send": True,
        "documents": await _panel(request, token, consultation, knock), "identity": identity_config(request),
        "direct": await direct_config(request, access_url=f"/j/{token}/call", signal_url=f"/j/{token}/signal")})


async def _panel(request: web.Request, token: str, consultation: cs.Consultation, knock: cs.Knock) -> dict:
    from .documents import patient_sender_of  # documents imports this module
    return panel_config(request, base=f"/j/{token}/documents", role="patient",
                        sender=await patient_sender_of(request, knock),
                        consultation_id=consultation.id, csrf=await csrf_token(request))


async def knock(request: web.Request) -> web.Response:
    consultation = await _consultation(request)
    form = await read_form(request)
    token = request.match_info["token"]
    if form.get("consent") != "yes":
        return await render(request, "patient_join.html", {"token": token, "error": "consent"}, status=400)
    session = await get_session(request)
    await services_of(request).limiters.knock.attempt(f"{consultation.id}:{_browser_id(session)}")
    try:
        # the name arrives sealed by the page (static/js/patient_join.js): never in clear
        new = await cs.knock(services_of(request).engine, consultation, str(form.get("sealed_name", "")),
                             services_of(request).hub)
    except InvalidInput:
        return await render(request, "patient_join.html", {"token": token, "error": "name"}, status=400)
    session[SESSION_KNOCKS] = {**session.get(SESSION_KNOCKS, {}), consultation.id: new.id}
    raise web.HTTPSeeOther(f"/j/{token}")


async def patient_consultation_and_knock(request: web.Request) -> tuple[cs.Consultation, cs.Knock]:
    """The link's consultation and this browser's knock on it; Forbidden without a knock."""
    consultation = await _consultation(request)
    own = await _own_knock(request, consultation)
    if own is None:
        raise Forbidden("no knock from this browser")
    return consultation, own


async def _knock_status(request: web.Request) -> str:
    consultation, own = await patient_consultation_and_knock(request)
    return cs.KNOCK_ENDED if consultation.status == cs.ENDED else own.status


async def status(request: web.Request) -> web.Response:
    return web.json_response({"status": await _knock_status(request)})


async def events(request: web.Request) -> web.StreamResponse:
    _, own = await patient_consultation_and_knock(request)

    async def status_now() -> dict:  # read once subscribed: an admission meanwhile is not lost
        return {"type": "status", "status": await _knock_status(request)}
    return await stream(request, f"knock:{own.id}", status_now)


async def call_access(request: web.Request) -> web.Response:
    consultation, own = await patient_consultation_and_knock(request)
    access = call_for_patient(services_of(request).settings, consultation, own)
    return web.json_response(access.as_json())
