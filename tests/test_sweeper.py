"""The sweeper's clock on its own: a step function and a deadline source stand in for the
database (the real ones are exercised over HTTP in test_documents_http.py).

The Sweeper takes its clock: here it is given the event loop's clock, the one its timers run
on, and every deadline and every measurement below is read from that same clock (never the
wall clock, which may step under NTP while a test runs)."""

import asyncio

from teleconsult.sweeper import RETRY_PAUSE_SECONDS, Sweeper


async def _stop(task, sweeper):
    task.cancel()
    sweeper.close()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_deadline_that_stays_due_is_retried_after_a_pause_not_in_a_tight_loop():
    clock = asyncio.get_running_loop().time
    steps = []

    async def step():
        steps.append(clock())
        return {}

    async def stuck():  # a deletion that keeps failing: the deadline is still in the database
        return clock() - 10

    sweeper = Sweeper(step, stuck, interval=3600, clock=clock)
    task = asyncio.create_task(sweeper.run())
    await asyncio.sleep(RETRY_PAUSE_SECONDS * 1.5)
    await _stop(task, sweeper)
    assert len(steps) == 2, steps  # at start-up, then once after the pause
    assert steps[1] - steps[0] >= RETRY_PAUSE_SECONDS, steps


async def test_the_next_deadline_from_the_store_and_an_announced_earlier_one_both_wake_it():
    clock = asyncio.get_running_loop().time
    steps, now = [], clock()

    async def step():
        steps.append(clock() - now)
        return {}

    async def upcoming():  # what the database says is next, whatever has passed
        return now + 0.6 if clock() < now + 0.6 else None

    sweeper = Sweeper(step, upcoming, interval=3600, clock=clock)
    task = asyncio.create_task(sweeper.run())
    await asyncio.sleep(0.05)
    sweeper.wake_at(now + 0.3)  # a consultation ended: its documents are due sooner
    sweeper.wake_at(now + 0.9)  # later than what is planned: changes nothing
    await asyncio.sleep(1.2)
    await _stop(task, sweeper)
    assert len(steps) == 3, steps  # start-up, the announced 0.3 s, the stored 0.6 s
    assert 0.3 <= steps[1] < 0.55 and 0.6 <= steps[2] < 0.85, steps


async def test_a_deadline_written_while_a_step_reads_the_database_is_applied_at_once():
    clock = asyncio.get_running_loop().time
    starts, now = [], clock()

    async def step():
        starts.append(clock())
        if len(starts) == 1:  # a consultation ends (grace 0) just after this step read the rows
            sweeper.wake_at(now - 1)
        return {}

    async def upcoming():  # the row is there until the second step deletes it
        return now - 1 if len(starts) < 2 else None

    sweeper = Sweeper(step, upcoming, interval=3600, clock=clock)
    task = asyncio.create_task(sweeper.run())
    await asyncio.sleep(RETRY_PAUSE_SECONDS / 2)
    await _stop(task, sweeper)
    assert len(starts) == 2 and starts[1] - starts[0] < 0.2, starts  # not held back as a failure


async def test_deadlines_are_read_on_the_clock_it_is_given_not_the_wall_clock():
    """A clock an hour ahead of the loop's: a deadline 0.3 s ahead on that clock is 0.3 s away."""
    loop_clock = asyncio.get_running_loop().time
    ahead = lambda: loop_clock() + 3600.0  # noqa: E731
    steps, start = [], loop_clock()

    async def step():
        steps.append(loop_clock() - start)
        return {}

    async def nothing():
        return None

    sweeper = Sweeper(step, nothing, interval=3600, clock=ahead)
    task = asyncio.create_task(sweeper.run())
    await asyncio.sleep(0.05)
    sweeper.wake_at(ahead() + 0.3)
    await asyncio.sleep(0.6)
    await _stop(task, sweeper)
    assert len(steps) == 2 and 0.3 <= steps[1] < 0.55, steps
