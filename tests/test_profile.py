"""The clinician's profile in a real SQLite database: text fields validated, images checked by
libmagic and Pillow, refused with their reason, and re-encoded without metadata."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from PIL import Image

from teleconsult import db
from teleconsult.documents.forms import FormInvalid
from teleconsult.documents.profile import ImageLimits, get_profile, set_image, update_profile
from teleconsult.errors import NotFound

from conftest import add_clinician, make_settings
from documents_samples import PRESCRIBER, jpeg, png


@pytest.fixture
async def engine(tmp_path):
    engine = db.make_engine(make_settings(tmp_path).sqlalchemy_url)
    await db.migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def limits(tmp_path):
    return ImageLimits.from_settings(make_settings(tmp_path))


def reason(refused: pytest.ExceptionInfo) -> tuple[str, str]:
    (problem,) = refused.value.problems
    return problem.field, problem.message


def huge_png(width=20000, height=20000) -> bytes:
    """A valid 1-bit PNG of width x height pixels that compresses to a few dozen KiB: a
    decompression bomb (400 megapixels, 50 MB once unpacked)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" * (1 + (width + 7) // 8)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height, 9)) + chunk(b"IEND", b""))


async def test_before_the_first_save_name_and_email_come_from_the_account(engine):
    clinician = await add_clinician(engine)
    profile = await get_profile(engine, clinician.id)
    assert (profile.name, profile.email, profile.rpps, profile.signature) == (
        "Dr Martin", "dr.martin@example.org", "", None)


async def test_profile_fields_are_saved_and_read_back(engine):
    clinician = await add_clinician(engine)
    saved = await update_profile(engine, clinician.id, PRESCRIBER)
    assert await get_profile(engine, clinician.id) == saved
    assert saved.public_fields() == {**PRESCRIBER, "logo": False, "signature": False}
    assert saved.identifier_kind == "RPPS"
    # a partial update changes only what it names; an empty string clears a field
    changed = await update_profile(engine, clinician.id, {"phone": "+41 22 123 45 67", "qualification": ""})
    assert (changed.phone, changed.qualification, changed.rpps) == ("+41 22 123 45 67", "", PRESCRIBER["rpps"])


async def test_bad_profile_fields_are_refused_each_with_its_reason_and_nothing_changes(engine):
    clinician = await add_clinician(engine)
    await update_profile(engine, clinician.id, PRESCRIBER)
    with pytest.raises(FormInvalid) as refused:
        await update_profile(engine, clinician.id, {"name": "Dr Nouveau", "phone": "01 23 45 67 89",
                                                    "email": "not-an-address", "rpps": "<script>",
                                                    "address": "a\nb\nc\nd\ne", "fax": "x"})
    assert {p.field: p.message for p in refused.value.problems} == {
        "fax": "unknown field",
        "phone": "give the number with its country code, such as +33 1 23 45 67 89",
        "email": "this email address is not valid",
        "rpps": "letters, digits, spaces and . - / only",
        "address": "at most %(n)s lines",
    }
    assert (await get_profile(engine, clinician.id)).name == PRESCRIBER["name"]


async def test_a_profile_of_an_unknown_clinician_is_not_found(engine):
    with pytest.raises(NotFound):
        await update_profile(engine, "nobody", {"name": "x"})
    with pytest.raises(NotFound):
        await get_profile(engine, "nobody")


async def test_a_png_and_a_jpeg_are_accepted_and_re_encoded_without_their_metadata(engine, limits):
    clinician = await add_clinician(engine)
    exif = Image.Exif()
    exif[0x013B] = "Secret Artist"  # Artist
    exif[0x010E] = "patient-photo-GPS-48.85"  # ImageDescription
    photo = jpeg((640, 480), exif=exif.tobytes(), comment=b"secret comment")
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    info.add_text("Author", "Secret Author")
    drawing = png(pnginfo=info)
    assert b"Secret" in photo and b"Secret" in drawing
    await set_image(engine, clinician.id, "logo", photo, limits)
    profile = await set_image(engine, clinician.id, "signature", drawing, limits)
    assert profile.logo.mime == "image/jpeg" and profile.signature.mime == "image/png"
    for stored in (profile.logo.data, profile.signature.data):
        assert b"Secret" not in stored and b"secret" not in stored and b"Exif" not in stored
        with Image.open(io.BytesIO(stored)) as image:
            assert not image.getexif() and "Author" not in image.info and "comment" not in image.info
    assert (profile.logo.width, profile.logo.height) == (640, 480)


async def test_a_large_image_is_scaled_down_to_what_a_document_prints(engine, limits):
    clinician = await add_clinician(engine)
    profile = await set_image(engine, clinician.id, "signature", png((3200, 800)), limits)
    assert (profile.signature.width, profile.signature.height) == (1600, 400)


async def test_removing_an_image_leaves_the_rest_of_the_profile(engine, limits):
    clinician = await add_clinician(engine)
    await update_profile(engine, clinician.id, PRESCRIBER)
    await set_image(engine, clinician.id, "signature", png(), limits)
    profile = await set_image(engine, clinician.id, "signature", None, limits)
    assert profile.signature is None and profile.rpps == PRESCRIBER["rpps"]


@pytest.mark.parametrize("name,data,expected", [
    ("renamed executable", Path("/bin/true").read_bytes(),
     "this file is not a PNG or JPEG image (it looks like %(type)s)"),
    ("svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b'<script>alert(1)</script></svg>',
     "SVG images are not accepted (they can carry scripts): export a PNG"),
    ("20000x20000 png", huge_png(), "the image has too many pixels (at most %(n)s, width times height)"),
    ("truncated jpeg", jpeg((400, 400))[:6000], "the image is damaged or truncated"),
    ("gif", (lambda b: (Image.new("P", (10, 10)).save(b, "GIF"), b.getvalue())[1])(io.BytesIO()),
     "this file is not a PNG or JPEG image (it looks like %(type)s)"),
    ("empty", b"", "the file is empty"),
])
async def test_a_bad_image_is_refused_with_its_reason_and_nothing_is_stored(engine, limits, name, data, expected):
    clinician = await add_clinician(engine)
    with pytest.raises(FormInvalid) as refused:
        await set_image(engine, clinician.id, "logo", data, limits)
    assert reason(refused) == ("logo", expected), name
    assert (await get_profile(engine, clinician.id)).logo is None


async def test_an_image_over_the_byte_limit_is_refused_before_it_is_decoded(engine):
    clinician = await add_clinician(engine)
    with pytest.raises(FormInvalid) as refused:
        await set_image(engine, clinician.id, "logo", jpeg((300, 300)), ImageLimits(max_bytes=1024, max_pixels=10**7))
    assert reason(refused) == ("logo", "the image is larger than %(n)s KiB")
    assert refused.value.messages(lambda m: m) == ["logo: the image is larger than 1 KiB"]


async def test_the_pixel_limit_comes_from_the_settings(engine, tmp_path):
    clinician = await add_clinician(engine)
    limits = ImageLimits.from_settings(make_settings(tmp_path, profile_image_max_pixels=10_000))
    with pytest.raises(FormInvalid):
        await set_image(engine, clinician.id, "signature", png((200, 100)), limits)
    assert (await set_image(engine, clinician.id, "signature", png((100, 100)), limits)).signature


async def test_an_unknown_image_kind_is_refused(engine, limits):
    clinician = await add_clinician(engine)
    with pytest.raises(FormInvalid) as refused:
        await set_image(engine, clinician.id, "stamp", png(), limits)
    assert reason(refused) == ("kind", "expected logo or signature")


async def test_migration_0004_adds_the_profiles_table_and_its_downgrade_removes_it(engine):
    async with engine.begin() as conn:
        tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert "clinician_profiles" in tables
        await conn.run_sync(lambda c: command.downgrade(db._alembic_config(c), "0003"))
        tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert "clinician_profiles" not in tables and "clinicians" in tables
