"""The sweeper's clock on its own: a step function and a deadline source stand in for the
database (the real ones are exercised over HTTP in test_documents_http.py)."""

import asyncio
import time

from teleconsult.sweeper import RETRY_PAUSE_SECONDS, Sweeper


async def _stop(task, sweeper):
    task.cancel()
    sweeper.close()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_deadline_that_stays_due_is_retried_after_a_pause_not_in_a_tight_loop():
    steps = []

    async def step():
        steps.append(time.monotonic())
        return {}

    async def stuck():  # a deletion that keeps failing: the deadline is still in the database
        return time.time() - 10

    sweeper = Sweeper(step, stuck, interval=3600)
    task = asyncio.create_task(sweeper.run())
    await asyncio.sleep(RETRY_PAUSE_SECONDS * 1.5)
    await _stop(task, sweeper)
    assert len(steps) == 2, steps  # at start-up, then once after the pause


async def test_the_next_deadline_from_the_store_and_an_announced_earlier_one_both_wake_it():
    steps, now = [], time.time()

    async def step():
        steps.append(time.time() - now)
        return {}

    async def upcoming():  # what the database says is next, whatever has passed
        return now + 0.6 if time.time() < now + 0.6 else None

    sweeper = Sweeper(step, upcoming, interval=3600)
    task = asyncio.create_task(sweeper.run())
    await asyncio.sleep(0.05)
    sweeper.wake_at(now + 0.3)  # a consultation ended: its documents are due sooner
    sweeper.wake_at(now + 0.9)  # later than what is planned: changes nothing
    await asyncio.sleep(1.2)
    await _stop(task, sweeper)
    assert len(steps) == 3, steps  # start-up, the announced 0.3 s, the stored 0.6 s
    assert 0.3 <= steps[1] < 0.55 and 0.6 <= steps[2] < 0.85, steps


async def test_a_deadline_written_while_a_step_reads_the_database_is_applied_at_once():
    starts, now = [], time.time()

    async def step():
        starts.append(time.monotonic())
        if len(starts) == 1:  # a consultation ends (grace 0) just after this step read the rows
            sweeper.wake_at(now - 1)
        return {}

    async def upcoming():  # the row is there until the second step deletes it
        return now - 1 if len(starts) < 2 else None

    sweeper = Sweeper(step, upcoming, interval=3600)
    task = asyncio.create_task(sweeper.run())
    await asyncio.sleep(RETRY_PAUSE_SECONDS / 2)
    await _stop(task, sweeper)
    assert len(starts) == 2 and starts[1] - starts[0] < 0.2, starts  # not held back as a failure
