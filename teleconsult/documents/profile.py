"""The clinician's profile: what documents print about the prescriber.

Text fields (name, qualification, RPPS/ADELI/other identifier, address, phone with its
country code, email) and two optional images (letterhead logo, signature). An image is
accepted only when libmagic (python-magic) and Pillow both find a PNG or a JPEG within the
byte and pixel limits (settings profile_image_max_kib and profile_image_max_pixels; the pixel
count is read from the header before anything is decoded); it is then decoded, turned upright
(EXIF orientation), scaled to at most MAX_SIDE pixels and re-encoded from its pixels alone, so
no metadata (EXIF, GPS, comments, ICC, text chunks) survives. Stored in clinician_profiles
(migration 0004).
"""

from __future__ import annotations

import asyncio
import io
import re
import time
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import magic
import sqlalchemy as sa
from PIL import Image as PILImage
from PIL import ImageOps
from sqlalchemy.ext.asyncio import AsyncEngine

from ..db_tables import clinician_profiles, clinicians
from ..errors import NotFound
from .forms import SHORT, FormInvalid, Problem, _, _Reader

IMAGE_KINDS = ("logo", "signature")
TEXT_FIELDS = ("name", "qualification", "rpps", "address", "phone", "email")
ALLOWED_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}
MAX_SIDE = 1600  # pixels kept on the long side: a 5 cm signature printed at 800 dpi
MAX_ADDRESS_LINES = 4
_PHONE = re.compile(r"^\+[1-9][0-9 .\-()]{5,22}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .\-/]*$")

# What each template must show about its author (art. R5132-3 of the public health code for a
# prescription), and the reason given when the profile lacks it.
REQUIRED = {
    "prescription": ("name", "qualification", "rpps", "address", "phone", "email", "signature"),
    "report": ("name", "qualification"),
    "certificate": ("name", "qualification", "rpps", "address", "signature"),
    "receipt": ("name", "rpps", "address"),
}
_MISSING = {
    "name": _("add your name to your profile"),
    "qualification": _("add your qualification or specialty to your profile"),
    "rpps": _("add your RPPS, ADELI or other professional identifier to your profile"),
    "address": _("add your professional address to your profile"),
    "phone": _("add your phone number, with its country code, to your profile"),
    "email": _("add your email address to your profile"),
    "signature": _("add a signature image to your profile"),
}


@dataclass(frozen=True)
class ProfileImage:
    data: bytes  # re-encoded, metadata-free
    mime: str
    width: int
    height: int


@dataclass(frozen=True)
class Profile:
    clinician_id: str
    name: str = ""
    qualification: str = ""
    rpps: str = ""
    address: str = ""
    phone: str = ""
    email: str = ""
    logo: ProfileImage | None = None
    signature: ProfileImage | None = None

    @property
    def identifier_kind(self) -> str:
        """RPPS (11 digits), ADELI (9 characters) or "" (another country's identifier)."""
        compact = self.rpps.replace(" ", "")
        if re.fullmatch(r"[0-9]{11}", compact):
            return "RPPS"
        if re.fullmatch(r"[0-9]{2}[0-9AB][0-9]{6}", compact):
            return "ADELI"
        return ""

    def public_fields(self) -> dict[str, Any]:
        """The profile as JSON (images as flags: they are fetched separately)."""
        fields = {name: getattr(self, name) for name in TEXT_FIELDS}
        return {**fields, "logo": self.logo is not None, "signature": self.signature is not None}


class ProfileIncomplete(FormInvalid):
    """The profile lacks what a template must show; `missing` names the fields."""

    def __init__(self, missing: list[str]):
        self.missing = tuple(missing)
        super().__init__([Problem(f"profile.{name}", _MISSING[name]) for name in missing])


def missing_for(profile: Profile, template: str) -> list[str]:
    return [name for name in REQUIRED[template] if not getattr(profile, name)]


def require_complete(profile: Profile, template: str) -> None:
    missing = missing_for(profile, template)
    if missing:
        raise ProfileIncomplete(missing)


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int

    @classmethod
    def from_settings(cls, settings) -> "ImageLimits":
        return cls(settings.profile_image_max_kib * 1024, settings.profile_image_max_pixels)


def _refuse(kind: str, message: str, **params: Any) -> FormInvalid:
    return FormInvalid([Problem(kind, message, params)])


def clean_image(kind: str, data: bytes, limits: ImageLimits) -> ProfileImage:
    """Check an uploaded image and re-encode it from its pixels (CPU: run it in a thread)."""
    if not data:
        raise _refuse(kind, _("the file is empty"))
    if len(data) > limits.max_bytes:
        raise _refuse(kind, _("the image is larger than %(n)s KiB"), n=limits.max_bytes // 1024)
    detected = magic.from_buffer(data, mime=True)
    if detected == "image/svg+xml":
        raise _refuse(kind, _("SVG images are not accepted (they can carry scripts): export a PNG"))
    if detected not in ALLOWED_TYPES:
        raise _refuse(kind, _("this file is not a PNG or JPEG image (it looks like %(type)s)"), type=detected)
    too_many = _refuse(kind, _("the image has too many pixels (at most %(n)s, width times height)"),
                       n=limits.max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data), formats=[ALLOWED_TYPES[detected]]) as image:
                width, height = image.size  # from the header: nothing decoded yet
                if width * height > limits.max_pixels:
                    raise too_many
                image.load()
                return _reencode(image, ALLOWED_TYPES[detected])
    except PILImage.DecompressionBombError:
        raise too_many from None
    except (OSError, SyntaxError, ValueError, EOFError):  # Pillow's ways of saying "damaged"
        raise _refuse(kind, _("the image is damaged or truncated")) from None


def _reencode(image: PILImage.Image, fmt: str) -> ProfileImage:
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if fmt == "JPEG":
        image = image.convert("L" if image.mode in ("L", "1") else "RGB")
    elif image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if has_alpha else "RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    pixels = PILImage.new(image.mode, image.size)  # a fresh image: pixels only, no info, no EXIF
    pixels.paste(image)
    out = io.BytesIO()
    if fmt == "JPEG":
        pixels.save(out, "JPEG", quality=90)
    else:
        pixels.save(out, "PNG")
    return ProfileImage(out.getvalue(), "image/jpeg" if fmt == "JPEG" else "image/png", *pixels.size)


def _validate_fields(fields: Any) -> dict[str, str]:
    problems: list[Problem] = []
    r = _Reader(fields, "", problems, set(TEXT_FIELDS))
    values = {key: r.text(key, required=False, limit=400 if key == "address" else SHORT,
                          multiline=key == "address")
              for key in TEXT_FIELDS if key in r.data}
    address = values.get("address", "")
    if address:
        lines = [line.strip() for line in address.split("\n") if line.strip()]
        if len(lines) > MAX_ADDRESS_LINES:
            r.fail("address", _("at most %(n)s lines"), n=MAX_ADDRESS_LINES)
        values["address"] = "\n".join(lines)
    if values.get("phone") and not _PHONE.match(values["phone"]):
        r.fail("phone", _("give the number with its country code, such as +33 1 23 45 67 89"))
    if values.get("email") and not _EMAIL.match(values["email"]):
        r.fail("email", _("this email address is not valid"))
    if values.get("rpps") and not _IDENTIFIER.match(values["rpps"]):
        r.fail("rpps", _("letters, digits, spaces and . - / only"))
    if problems:
        raise FormInvalid(problems)
    return values


def _row_to_profile(clinician_id: str, row) -> Profile:
    def image(kind: str) -> ProfileImage | None:
        data, mime = getattr(row, kind), getattr(row, f"{kind}_type")
        if not data:
            return None
        with PILImage.open(io.BytesIO(data)) as img:  # our own re-encoded bytes: only the header is read
            return ProfileImage(data, mime, *img.size)
    return Profile(clinician_id, **{name: getattr(row, name) for name in TEXT_FIELDS},
                   logo=image("logo"), signature=image("signature"))


async def _account(conn, clinician_id: str):
    row = (await conn.execute(sa.select(clinicians.c.name, clinicians.c.email)
                              .where(clinicians.c.id == clinician_id))).first()
    if row is None:
        raise NotFound("no such clinician")
    return row


async def get_profile(engine: AsyncEngine, clinician_id: str) -> Profile:
    """The clinician's profile; before the first save, name and email come from the account."""
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(clinician_profiles)
                                  .where(clinician_profiles.c.clinician_id == clinician_id))).first()
        if row is None:
            account = await _account(conn, clinician_id)
            return Profile(clinician_id, name=account.name, email=account.email)
    return _row_to_profile(clinician_id, row)


async def _save(engine: AsyncEngine, clinician_id: str, values: Mapping[str, Any]) -> Profile:
    async with engine.begin() as conn:
        account = await _account(conn, clinician_id)
        exists = await conn.scalar(sa.select(clinician_profiles.c.clinician_id)
                                   .where(clinician_profiles.c.clinician_id == clinician_id))
        if exists is None:
            await conn.execute(clinician_profiles.insert().values(
                clinician_id=clinician_id, name=account.name, email=account.email, updated_at=time.time()))
        await conn.execute(clinician_profiles.update()
                           .where(clinician_profiles.c.clinician_id == clinician_id)
                           .values(updated_at=time.time(), **values))
    return await get_profile(engine, clinician_id)


async def update_profile(engine: AsyncEngine, clinician_id: str, fields: Any) -> Profile:
    """Change the text fields present in `fields` (an empty string clears one); FormInvalid
    lists every problem and changes nothing."""
    return await _save(engine, clinician_id, _validate_fields(fields))


async def set_image(engine: AsyncEngine, clinician_id: str, kind: str, data: bytes | None,
                    limits: ImageLimits) -> Profile:
    """Store the clinician's logo or signature after checking and re-encoding it; data None
    removes it. FormInvalid says why an image is refused."""
    if kind not in IMAGE_KINDS:
        raise _refuse("kind", _("expected logo or signature"))
    if data is None:
        return await _save(engine, clinician_id, {kind: None, f"{kind}_type": None})
    image = await asyncio.to_thread(clean_image, kind, data, limits)
    return await _save(engine, clinician_id, {kind: image.data, f"{kind}_type": image.mime})

