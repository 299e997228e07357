"""The job scheduler (bot/jobs/) with APScheduler for real, on SQLite and PostgreSQL:
one-off jobs run once at their time however often they are scheduled, failures are
retried with backoff and then given up (and shown to the admin), periodic kinds run
on their interval, only one of two schedulers on one database leads, a job scheduled
by the one that does not lead is run by the one that does, the lead passes on when the
leader stops, and a run the old leader left unfinished is redone by the new one.

Short intervals (tenths of a second) so that every wait here is short; waits poll for
the expected state, they never assert a duration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import text
from sqlmodel import col, select

from bot.jobs import JobContext, Jobs
from bot.jobs import store as jobs_store
from bot.jobs.models import Job, JobRun
from bot.settings import Settings
from bot.store.db import Database
from bot.store.models import utcnow

FAST = {"jobs_poll_s": 0.1, "jobs_leader_retry_s": 0.1, "jobs_retry_base_s": 0.05, "jobs_retry_max_s": 0.2,
        "jobs_max_attempts": 3}


def fast_settings(settings: Settings, **extra: Any) -> Settings:
    return settings.model_copy(update={**FAST, **extra})


async def until(check: Callable[[], Awaitable[bool]] | Callable[[], bool], what: str, timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _clear_apscheduler(db: Database) -> None:
    # APScheduler's table is its own (not in SQLModel.metadata): the PostgreSQL database is
    # shared by the session's tests, so start each without the last one's schedules.
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))


@pytest.fixture
async def make_jobs(db: Database, settings: Settings) -> AsyncIterator[Callable[..., Jobs]]:
    _clear_apscheduler(db)
    made: list[Jobs] = []

    def make(**extra: Any) -> Jobs:
        jobs = Jobs(web.Application(), db, fast_settings(settings, **extra))
        made.append(jobs)
        return jobs

    yield make
    for jobs in made:
        await jobs.stop()


def runs(db: Database, kind: str) -> list[JobRun]:
    return db.call(lambda s: list(s.exec(select(JobRun).where(JobRun.kind == kind).order_by(col(JobRun.id)))))


async def test_a_job_scheduled_twice_runs_once_at_its_time(db: Database, make_jobs: Callable[..., Jobs]) -> None:
    seen: list[tuple[str, dict[str, Any], int]] = []

    async def handler(ctx: JobContext) -> None:
        seen.append((ctx.key, dict(ctx.payload), ctx.attempt))

    jobs = make_jobs()
    jobs.kind("greet", handler)
    await jobs.start()
    await until(lambda: jobs.is_leader, "the only scheduler to lead")
    at = utcnow() + timedelta(seconds=0.3)
    assert await jobs.schedule_once("greet", "k1", at, {"n": 1}) is True
    assert await jobs.schedule_once("greet", "k1", at, {"n": 2}) is False  # same key: same job
    await until(lambda: len(seen) == 1, "the job to run")
    assert seen == [("k1", {"n": 1}, 1)]
    assert await jobs.schedule_once("greet", "k1", utcnow(), {"n": 3}) is False  # it ran: never again
    await asyncio.sleep(0.4)
    assert len(seen) == 1
    [run] = runs(db, "greet")
    assert (run.key, run.attempt, run.state) == ("k1", 1, "succeeded")
    with pytest.raises(ValueError, match="unknown job kind"):
        await jobs.schedule_once("gret", "k", utcnow())


async def test_cancel_and_replace(db: Database, make_jobs: Callable[..., Jobs]) -> None:
    seen: list[str] = []

    async def handler(ctx: JobContext) -> None:
        seen.append(f"{ctx.key}:{ctx.payload.get('v')}")

    jobs = make_jobs()
    jobs.kind("k", handler)
    later = utcnow() + timedelta(hours=1)
    await jobs.schedule_once("k", "cancelled", later)
    assert await jobs.cancel("k", "cancelled") is True
    assert await jobs.cancel("k", "cancelled") is False
    await jobs.schedule_once("k", "moved", later, {"v": "old"})
    assert await jobs.schedule_once("k", "moved", utcnow(), {"v": "new"}, replace=True) is True
    await jobs.start()
    await until(lambda: seen == ["moved:new"], "the moved job to run with its new payload")
    job = db.call(jobs_store.get_job, "k", "cancelled")
    assert job is not None and job.state == "cancelled"


async def test_a_failing_job_is_retried_with_backoff_then_given_up(db: Database,
                                                                  make_jobs: Callable[..., Jobs]) -> None:
    attempts: list[int] = []

    async def flaky(ctx: JobContext) -> None:
        attempts.append(ctx.attempt)
        if ctx.key == "always" or ctx.attempt < 2:
            raise RuntimeError(f"line down (attempt {ctx.attempt})")

    jobs = make_jobs()
    jobs.kind("flaky", flaky)
    await jobs.start()
    await jobs.schedule_once("flaky", "twice", utcnow())
    await jobs.schedule_once("flaky", "always", utcnow())
    await until(lambda: db.call(jobs_store.get_job, "flaky", "twice").state == "done", "the retry to succeed")
    await until(lambda: db.call(jobs_store.get_job, "flaky", "always").state == "failed", "the job to give up")
    by_key: dict[str, list[JobRun]] = {}
    for run in runs(db, "flaky"):
        by_key.setdefault(run.key, []).append(run)
    assert [(r.attempt, r.state) for r in by_key["twice"]] == [(1, "retrying"), (2, "succeeded")]
    assert [(r.attempt, r.state) for r in by_key["always"]] == [(1, "retrying"), (2, "retrying"), (3, "failed")]
    first, second = by_key["always"][:2]
    assert first.next_try is not None and second.next_try is not None and first.finished and second.finished
    # Exponential: the wait after the second failure is twice the first (0.05 s, 0.1 s).
    assert first.next_try - first.finished == timedelta(seconds=0.05)
    assert second.next_try - second.finished == timedelta(seconds=0.1)
    assert "RuntimeError: line down (attempt 3)" in (by_key["always"][2].error or "")
    overview = db.call(jobs_store.overview)
    assert [j.key for j in overview.failed_jobs] == ["always"]
    assert db.call(jobs_store.retry_failed, overview.failed_jobs[0].id) is True  # the admin's "run again"
    await until(lambda: len(runs(db, "flaky")) == 6, "the extra attempt")
    assert runs(db, "flaky")[-1].attempt == 4


async def test_periodic_kind_runs_on_its_interval_and_a_failed_run_is_shown(db: Database,
                                                                           make_jobs: Callable[..., Jobs]) -> None:
    ticks: list[str] = []

    async def tick(ctx: JobContext) -> None:
        ticks.append(ctx.key)
        if len(ticks) == 2:
            raise ValueError("store hiccup")

    jobs = make_jobs()
    jobs.every("tick", 0.2, tick)
    await jobs.start()
    await until(lambda: len(ticks) >= 4, "four runs")
    recorded = runs(db, "tick")
    assert len({r.key for r in recorded}) == len(recorded)  # each due time is one run
    assert [r.state for r in recorded[:3]] == ["succeeded", "failed", "succeeded"]  # retry=False: next run is it
    assert recorded[1].error and "ValueError: store hiccup" in recorded[1].error
    assert [r.key for r in db.call(jobs_store.overview).failed_runs] == [recorded[1].key]


async def test_only_one_scheduler_leads_and_the_other_takes_over(db: Database,
                                                                make_jobs: Callable[..., Jobs]) -> None:
    ran: list[tuple[str, str]] = []

    def handler(name: str) -> Callable[[JobContext], Awaitable[None]]:
        async def run(ctx: JobContext) -> None:
            ran.append((name, ctx.key))
        return run

    first, second = make_jobs(), make_jobs()
    first.kind("call", handler("first"))
    second.kind("call", handler("second"))
    await first.start()
    await until(lambda: first.is_leader, "the first to lead")
    await second.start()
    await asyncio.sleep(0.5)  # several rounds of trying
    assert not second.is_leader and second.status()["leader"] is False
    # The one that does not lead schedules; the leader runs it.
    await second.schedule_once("call", "from-second", utcnow())
    await until(lambda: ran == [("first", "from-second")], "the leader to run the other's job")
    await first.stop()
    await until(lambda: second.is_leader, "the second to take over")
    await second.schedule_once("call", "after", utcnow())
    await until(lambda: ("second", "after") in ran, "the new leader to run jobs")
    assert len(ran) == 2


async def test_a_run_left_unfinished_by_a_dead_leader_is_redone(db: Database,
                                                                make_jobs: Callable[..., Jobs]) -> None:
    """The old leader claimed the job and started its run, then vanished (no clean stop)."""
    jobs_store_now = utcnow()

    def left_running(s: Any) -> None:
        jobs_store.schedule_once(s, "survey", "s-1", jobs_store_now, {"id": 1})
        [job] = jobs_store.claim_due(s, "dead-host:1:1", jobs_store_now, 5)
        assert job.id is not None
        jobs_store.start_run(s, "survey", "s-1", job.attempts, "dead-host:1:1", job_id=job.id)

    db.call(left_running)
    done: list[int] = []

    async def survey(ctx: JobContext) -> None:
        done.append(ctx.attempt)

    jobs = make_jobs()
    jobs.kind("survey", survey)
    await jobs.start()
    await until(lambda: [(r.attempt, r.state) for r in runs(db, "survey")] == [(1, "interrupted"), (2, "succeeded")],
                "the job to run again as its second attempt")
    assert done == [2]


async def test_two_schedulers_never_claim_one_job(db: Database) -> None:
    now = utcnow()
    db.call(lambda s: [jobs_store.schedule_once(s, "k", f"j{i}", now) for i in range(20)])
    first, second = await asyncio.gather(db.run(jobs_store.claim_due, "a", now, 20),
                                         db.run(jobs_store.claim_due, "b", now, 20))
    keys_a, keys_b = {j.key for j in first}, {j.key for j in second}
    assert not keys_a & keys_b and len(keys_a | keys_b) == 20
    assert db.call(jobs_store.start_run, "k", "j0", 1, "a") is not None
    assert db.call(jobs_store.start_run, "k", "j0", 1, "b") is None  # a run is started once


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [jobs_store.retry_delay(a, 30, 3600) for a in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert jobs_store.retry_delay(20, 30, 3600) == 3600


async def test_prune_keeps_recent_runs(db: Database) -> None:
    old = utcnow() - timedelta(days=40)

    def add(s: Any) -> None:
        run_id = jobs_store.start_run(s, "k", "old", 1, "r", now=old)
        assert run_id is not None
        jobs_store.finish_run(s, run_id, jobs_store.RunState.succeeded, now=old)
        jobs_store.start_run(s, "k", "running", 1, "r", now=old)  # still running: kept
        fresh = jobs_store.start_run(s, "k", "new", 1, "r")
        assert fresh is not None
        jobs_store.finish_run(s, fresh, jobs_store.RunState.succeeded)

    db.call(add)
    assert db.call(jobs_store.prune, 30) == 1
    assert sorted(r.key for r in runs(db, "k")) == ["new", "running"]
    assert db.call(lambda s: s.exec(select(Job)).all()) == []


async def test_a_stop_while_taking_the_lead_leaves_no_scheduler_running(db: Database, settings: Settings) -> None:
    """stop() arriving while the scheduler is being started (its job store is slow to
    answer) waits for it and stops it: no scheduler thread runs on unseen."""
    import threading
    import time

    class SlowStart(Jobs):
        def _start_scheduler(self, loop: asyncio.AbstractEventLoop) -> Any:
            time.sleep(0.3)  # in the worker thread, as a slow database would
            return super()._start_scheduler(loop)

    _clear_apscheduler(db)
    jobs = SlowStart(web.Application(), db, fast_settings(settings))
    await jobs.start()
    await asyncio.sleep(0.1)  # the lock is taken, the scheduler is starting
    await jobs.stop()
    assert not jobs.is_leader
    await asyncio.sleep(0.5)  # past the slow start: a scheduler started on unseen would run now
    assert not [t for t in threading.enumerate() if t.name == "APScheduler" and t.is_alive()]
