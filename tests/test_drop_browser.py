"""Standalone drops (Lufi-like) in real Chromium: a clinician sends, an anonymous recipient saves."""

import os
from pathlib import Path

from browser import PHONE, axe_violations, chromium, horizontal_overflow, login_in_browser, saved_by_click, wait_until
from conftest import add_clinician

CONTENT = b"Bilan sanguin\n" + os.urandom(150_000)


async def test_standalone_drop_is_saved_once_by_the_recipient_then_the_link_is_used_up(live, tmp_path):
    app = await live()
    doctor = await add_clinician(app.engine)
    source = tmp_path / "bilan-2026.txt"
    source.write_bytes(CONTENT)
    async with chromium() as browser:
        sender = await (await browser.new_context()).new_page()
        await login_in_browser(sender, app.url, doctor)
        await sender.goto(app.url + "/d/")
        assert await axe_violations(sender) == []
        await sender.set_input_files("#drop-file", str(source))
        await sender.select_option("#drop-downloads", "1")
        await sender.click("#drop-form button[type=submit]")
        await wait_until(sender, "document.getElementById('drop-link').value !== ''")
        link = await sender.input_value("#drop-link")
        assert link.startswith(app.url + "/d/") and "#" in link

        recipient = await (await browser.new_context(**PHONE, accept_downloads=True)).new_page()
        await recipient.goto(link)
        await wait_until(recipient, "!document.getElementById('receive-save').hidden")
        assert await recipient.text_content("#receive-name") == "bilan-2026.txt"
        assert await axe_violations(recipient) == []
        assert await horizontal_overflow(recipient) <= 0
        assert await saved_by_click(recipient, "#receive-save") == ("bilan-2026.txt", CONTENT)

        # a second visit: used up, the same answer as an unknown link
        await recipient.reload()
        await wait_until(recipient, "document.getElementById('receive-status').classList.contains('error')")
        gone = await recipient.text_content("#receive-status")
        await recipient.goto(app.url + "/d/" + "Z" * 22 + "#" + link.split("#")[1])
        await wait_until(recipient, "document.getElementById('receive-status').classList.contains('error')")
        assert await recipient.text_content("#receive-status") == gone
        assert "expiré" in gone


async def test_sender_deletes_a_standalone_drop_with_its_owner_token(live, tmp_path):
    app = await live()
    doctor = await add_clinician(app.engine)
    source = tmp_path / "note.txt"
    source.write_bytes(b"note")
    async with chromium() as browser:
        sender = await (await browser.new_context()).new_page()
        await login_in_browser(sender, app.url, doctor)
        await sender.goto(app.url + "/d/")
        await sender.set_input_files("#drop-file", str(source))
        await sender.click("#drop-form button[type=submit]")
        await wait_until(sender, "document.getElementById('drop-link').value !== ''")
        link = await sender.input_value("#drop-link")
        await sender.click("#drop-delete")
        await wait_until(sender, "document.getElementById('drop-result').hidden")
        recipient = await (await browser.new_context()).new_page()
        await recipient.goto(link)
        await wait_until(recipient, "document.getElementById('receive-status').classList.contains('error')")
        assert [p for p in (Path(app.settings.data_dir) / "documents").rglob("*") if p.is_file()] == []


async def test_a_missing_key_in_the_link_is_explained(live):
    app = await live()
    async with chromium() as browser:
        page = await (await browser.new_context()).new_page()
        await page.goto(app.url + "/d/" + "A" * 22)
        await wait_until(page, "document.getElementById('receive-status').classList.contains('error')")
        assert "clé manque" in await page.text_content("#receive-status")
