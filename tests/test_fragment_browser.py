"""The consultation secret lives in the patient link's fragment: switching language on the join
and waiting pages keeps it (hostile review, item 8), in real Chromium."""

from teleconsult import accounts
from teleconsult import consultations as cs
from browser import PHONE, chromium
from conftest import add_clinician

SECRET = "A" * 43  # the shape of base64url(32 bytes); the server never sees it


async def test_switching_language_on_the_join_and_waiting_pages_keeps_the_link_fragment(live):
    app = await live()
    doctor = await add_clinician(app.engine)
    clinician = await accounts.get_clinician(app.engine, doctor.id)
    consultation = await cs.create_consultation(app.engine, app.settings, clinician, app.services.hub)
    link = f"{app.url}/j/{consultation.join_token}#{SECRET}"
    async with chromium() as browser:
        page = await (await browser.new_context(**PHONE)).new_page()
        await page.goto(link)
        await page.click('nav.langs a[hreflang="en"]')
        await page.wait_for_url(f"**/j/{consultation.join_token}?lang=en#{SECRET}")
        assert await page.get_attribute("html", "lang") == "en"
        # knock, then switch back to French on the waiting page
        await page.fill("#display_name", "Camille")
        await page.check("#consent")
        await page.click("#knock-form button[type=submit]")
        await page.wait_for_url(f"**/j/{consultation.join_token}#{SECRET}")
        await page.click('nav.langs a[hreflang="fr"]')
        await page.wait_for_url(f"**/j/{consultation.join_token}?lang=fr#{SECRET}")
        assert await page.get_attribute("html", "lang") == "fr"
        assert await page.evaluate("window.location.hash") == "#" + SECRET
