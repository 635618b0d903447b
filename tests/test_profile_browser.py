"""The /profile page in real Chromium at 360 px: French by default, axe clean, fields saved with
their reasons when refused, a signature image uploaded and a renamed executable refused."""

from __future__ import annotations

import pytest

from teleconsult.documents.profile import get_profile

from browser import PHONE, axe_violations, chromium, horizontal_overflow, login_in_browser
from conftest import add_clinician
from documents_samples import PRESCRIBER, png

pytestmark = pytest.mark.timeout(120)


async def test_the_profile_page_saves_fields_and_images_on_a_phone_and_says_why_it_refuses(live, tmp_path):
    app = await live()
    doctor = await add_clinician(app.engine)
    signature = tmp_path / "signature.png"
    signature.write_bytes(png())
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 2000)
    async with chromium() as browser:
        page = await (await browser.new_context(**PHONE)).new_page()
        csp_errors = []
        page.on("console", lambda msg: csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None)
        await login_in_browser(page, app.url, doctor)
        await page.click("#profile-link")
        await page.wait_for_url(app.url + "/profile")
        assert "Mon profil" in await page.text_content("h1")
        assert await axe_violations(page) == []
        assert await horizontal_overflow(page) <= 0
        for field in ("name", "qualification", "rpps", "email"):
            await page.fill(f"#profile-{field}", PRESCRIBER[field])
        await page.fill("#profile-phone", "01 23 45 67 89")
        await page.fill("#profile-address", PRESCRIBER["address"])
        await page.click("form[action='/profile'] button[type=submit]")
        await page.wait_for_selector("[role=alert]")
        assert "indiquez le numéro avec son indicatif de pays" in await page.text_content("#profile-phone-error")
        assert await axe_violations(page) == []
        assert await page.input_value("#profile-rpps") == PRESCRIBER["rpps"], "what was typed is kept"
        await page.fill("#profile-phone", PRESCRIBER["phone"])
        await page.click("form[action='/profile'] button[type=submit]")
        await page.wait_for_selector("[role=status]:has-text('Votre profil a été enregistré')")
        await page.set_input_files("#signature-file", str(signature))
        await page.wait_for_selector("#signature-status:has-text('Image enregistrée')")
        await page.wait_for_selector("#signature-preview:not([hidden])")
        assert await page.evaluate("document.getElementById('signature-preview').naturalWidth") == 400
        await page.set_input_files("#logo-file", str(fake))
        await page.wait_for_selector("#logo-status.error")
        assert "ce fichier n’est pas une image PNG ou JPEG" in await page.text_content("#logo-status")
        assert await axe_violations(page) == []
        assert await horizontal_overflow(page) <= 0
    assert csp_errors == []
    profile = await get_profile(app.engine, doctor.id)
    assert profile.public_fields() == {**PRESCRIBER, "logo": False, "signature": True}
