"""The job scheduler's hold on the leadership lock ends with it: a stop that arrives while
the lock is being taken (in a worker thread, which a cancel cannot interrupt) waits for
that call and then lets go, so the next scheduler on the database can lead. CI saw the
race: an app stopped right after start left the PostgreSQL advisory lock held, and every
later scheduler on that database waited for ever."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from bot.jobs import Jobs
from bot.settings import Settings
from bot.store.db import Database


class SlowLock:
    """A leadership lock whose taking blocks until the test lets it finish."""

    description = "test lock"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.finish = threading.Event()
        self.taken = threading.Event()
        self.holding = False

    def try_acquire(self) -> bool:
        self.entered.set()
        self.finish.wait(10)
        self.holding = True
        self.taken.set()
        return True

    def held(self) -> bool:
        return self.holding

    def release(self) -> None:
        self.holding = False


async def test_a_stop_while_the_lock_is_being_taken_still_lets_it_go(settings: Settings) -> None:
    lock = SlowLock()
    jobs = Jobs(web.Application(), Database("sqlite://"), settings.model_copy(update={"jobs_leader_retry_s": 0.05}),
                leadership=lock)
    await jobs.start()
    assert await asyncio.to_thread(lock.entered.wait, 10)
    stopping = asyncio.create_task(jobs.stop())
    await asyncio.sleep(0.05)
    lock.finish.set()  # the lock is taken only now, after the stop began
    await asyncio.wait_for(stopping, 10)
    assert await asyncio.to_thread(lock.taken.wait, 10)
    assert not lock.holding
    assert not jobs.is_leader
