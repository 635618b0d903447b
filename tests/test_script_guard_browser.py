"""static/js/script_guard.js in real Chromium, on the login page (any page of ours loads it first):
one of the page's own modules fails to load, the guard asks for it again, and the browser's
`online` event (Playwright's set_offline, toggled off and on) arrives while one of those requests
is still under way. Nothing here is a stand-in: the app serves the page, page.route only fails
or holds the module's requests."""

import asyncio
import time

from browser import chromium, wait_until

SLOW = 30.0  # the machine running the tests is shared
FAILED_FIRST = 3  # the page's own load, then the guard's tries after 1 s and 2 s (the next one after 4 s)
AT_ONCE = 4.0  # seconds; after that one the guard's pause would be 8 s (1 s * 2 ** 3) on main


async def test_an_online_event_during_a_failing_retry_makes_the_next_retry_go_at_once_and_one_at_a_time(live):
    app = await live()
    async with chromium() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        asked, in_flight, most = [], [0], [0]
        held, release = asyncio.Event(), asyncio.Event()

        async def module(route):
            asked.append(time.monotonic())
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            try:
                if len(asked) <= FAILED_FIRST:
                    await route.abort("internetdisconnected")
                elif len(asked) == FAILED_FIRST + 1:  # under way while the network comes back
                    held.set()
                    await asyncio.wait_for(release.wait(), SLOW)
                    await route.abort("internetdisconnected")
                else:
                    await route.continue_()
            finally:
                in_flight[0] -= 1
        await page.route("**/static/js/keep_fragment.js*", module)
        await page.goto(app.url + "/login")
        await asyncio.wait_for(held.wait(), SLOW)
        await page.evaluate("window.__before_reload = true")

        await context.set_offline(True)
        await context.set_offline(False)  # "online" fires in the page while its request is held
        assert await page.evaluate("navigator.onLine")
        release.set()
        failed_at = time.monotonic()
        for _ in range(int(SLOW * 20)):
            if len(asked) > FAILED_FIRST + 1:
                break
            await asyncio.sleep(0.05)
        assert len(asked) > FAILED_FIRST + 1, "the guard never asked again"
        assert asked[FAILED_FIRST + 1] - failed_at < AT_ONCE, asked[FAILED_FIRST + 1] - failed_at

        # that request came through: the page reloads by itself and its module runs
        await wait_until(page, "window.__before_reload === undefined", SLOW)
        await wait_until(page, "document.readyState === 'complete'", SLOW)
        assert most[0] == 1  # never two requests for the module at once
        assert len(asked) == FAILED_FIRST + 3  # the guard's last try, then the reloaded page's own load
