"""The clinician's profile (what documents print about the prescriber): the /profile page and
the API's getProfile, updateProfile, setProfileImage and deleteProfileImage.

Images arrive as the raw request body (Content-Type image/png or image/jpeg, which is only a
hint: libmagic decides), read up to profile_image_max_kib and not one byte further."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from ...documents.forms import FormInvalid, Problem, _
from ...documents.profile import IMAGE_KINDS, ImageLimits, Profile, get_profile, set_image, update_profile
from ...errors import NotFound
from ..appkeys import services_of
from ..auth import api_clinician, require_clinician
from ..bodies import read_form, read_json
from ..templating import render, translator
from .writing import invalid_response


def _limits(request: web.Request) -> ImageLimits:
    return ImageLimits.from_settings(services_of(request).settings)


def _kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in IMAGE_KINDS:
        raise NotFound("no such image")
    return kind


async def _read_image(request: web.Request, kind: str) -> bytes:
    """The body, refused as soon as it passes the byte limit (announced or streamed)."""
    limit = _limits(request).max_bytes
    too_large = FormInvalid([Problem(kind, _("the image is larger than %(n)s KiB"), {"n": limit // 1024})])
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)


def _public(profile: Profile) -> dict:
    return profile.public_fields()


# --- the page (session) ------------------------------------------------------------------

async def _page(request: web.Request, profile: Profile, *, problems=None, saved=False, status=200):
    gettext = translator(request).gettext
    return await render(request, "profile.html", {
        "profile": profile, "saved": saved,
        "problems": {p.field: p.text(gettext).split(": ", 1)[-1] for p in (problems or [])},
        "config": {"limit_kib": services_of(request).settings.profile_image_max_kib,
                   "i18n": {"saved": gettext(_("Image saved.")), "removed": gettext(_("Image removed.")),
                            "failed": gettext(_("The image could not be sent. Try again."))}},
    }, status=status)


async def profile_page(request: web.Request) -> web.Response:
    clinician = await require_clinician(request)
    return await _page(request, await get_profile(services_of(request).engine, clinician.id))


async def profile_submit(request: web.Request) -> web.Response:
    clinician = await require_clinician(request)
    form = await read_form(request)
    fields = {key: str(form.get(key, "")) for key in
              ("name", "qualification", "rpps", "address", "phone", "email")}
    engine = services_of(request).engine
    try:
        profile = await update_profile(engine, clinician.id, fields)
    except FormInvalid as exc:  # shown again as typed, with the reasons; nothing saved
        typed = replace(await get_profile(engine, clinician.id), **fields)
        return await _page(request, typed, problems=exc.problems, status=400)
    return await _page(request, profile, saved=True)


async def image_get(request: web.Request) -> web.Response:
    """The clinician's own logo or signature (as re-encoded), for the page's preview."""
    clinician = await require_clinician(request)
    image = getattr(await get_profile(services_of(request).engine, clinician.id), _kind(request))
    if image is None:
        raise NotFound("no such image")
    return web.Response(body=image.data, content_type=image.mime)


async def _set(request: web.Request, clinician) -> web.Response:
    kind = _kind(request)
    try:
        data = await _read_image(request, kind)
        profile = await set_image(services_of(request).engine, clinician.id, kind, data, _limits(request))
    except FormInvalid as exc:
        return invalid_response(request, exc)
    return web.json_response(_public(profile))


async def _delete(request: web.Request, clinician) -> web.Response:
    profile = await set_image(services_of(request).engine, clinician.id, _kind(request), None, _limits(request))
    return web.json_response(_public(profile))


async def image_put(request: web.Request) -> web.Response:
    return await _set(request, await require_clinician(request))


async def image_delete(request: web.Request) -> web.Response:
    return await _delete(request, await require_clinician(request))


# --- the API (Bearer token) --------------------------------------------------------------

async def api_get(request: web.Request) -> web.Response:
    clinician = await api_clinician(request)
    return web.json_response(_public(await get_profile(services_of(request).engine, clinician.id)))


async def api_update(request: web.Request) -> web.Response:
    clinician = await api_clinician(request)
    fields = await read_json(request)
    try:
        profile = await update_profile(services_of(request).engine, clinician.id, fields)
    except FormInvalid as exc:
        return invalid_response(request, exc)
    return web.json_response(_public(profile))


async def api_set_image(request: web.Request) -> web.Response:
    return await _set(request, await api_clinician(request))


async def api_delete_image(request: web.Request) -> web.Response:
    return await _delete(request, await api_clinician(request))


ROUTES = [
    ("GET", "/profile", profile_page, "profile"),
    ("POST", "/profile", profile_submit, "profile_submit"),
    ("GET", "/profile/images/{kind}", image_get, "profile_image"),
    ("PUT", "/profile/images/{kind}", image_put, "profile_image_put"),
    ("DELETE", "/profile/images/{kind}", image_delete, "profile_image_delete"),
    ("GET", "/api/profile", api_get, "getProfile"),
    ("PATCH", "/api/profile", api_update, "updateProfile"),
    ("PUT", "/api/profile/images/{kind}", api_set_image, "setProfileImage"),
    ("DELETE", "/api/profile/images/{kind}", api_delete_image, "deleteProfileImage"),
]
