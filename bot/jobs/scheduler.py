"""The job scheduler: APScheduler 3 on the leader, our tables for one-off jobs and runs.

See ``bot/jobs/__init__.py`` for the API and README "Jobs" for how it behaves.

How the pieces meet:

* Every bot process builds one :class:`Jobs` with the same kinds and runs
  :meth:`Jobs.start`: a task that tries every ``jobs_leader_retry_s`` to take the lead
  (``bot/jobs/leader.py``). The process that gets it starts APScheduler's
  ``BackgroundScheduler`` with a ``SQLAlchemyJobStore`` in the bot's own database, so
  periodic schedules (and a cron job missed while no leader ran) survive restarts.
  The scheduler runs in its own thread because APScheduler 3's job store calls are
  synchronous: on the event loop they would block every request while the database
  answers. Its executor (:class:`_LoopExecutor`) hands each due run to the bot's event
  loop, where the handler does its store work with ``await db.run(…)``.
* One-off jobs live in our ``job`` table, which any process writes
  (:func:`bot.jobs.store.schedule_once`, also inside a transaction of its own work). The
  leader's intake, an APScheduler interval job every ``jobs_poll_s``, claims the due
  ones. A non-leader cannot wake the leader's scheduler (APScheduler 3 only wakes on its
  own adds), so the leader polls: one indexed query every two seconds, and a due job
  starts within ``jobs_poll_s`` of its time. When the leader itself schedules a job due
  now it runs the intake at once.
* Every run is a ``job_run`` row, unique per (kind, key, attempt): a run already started
  by anyone is never started again. A failed run is retried with exponential backoff
  (``jobs_retry_base_s`` doubling up to ``jobs_retry_max_s``) up to the kind's
  ``max_attempts``, then it stays failed, with its error, on ``/desk/admin/jobs``.
* A new leader first marks runs another leader left running as interrupted and puts
  their one-off jobs back in the queue. A job is therefore run *at least* once; its
  effects happen *once* because handlers make them idempotent per item with unique
  constraints, each item committed in one transaction (the deadline watch does this).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import make_url

from bot.jobs import store
from bot.jobs.leader import Leadership, leadership_for
from bot.metrics import JOB_LAST_SUCCESS, JOBS_LEADER, JOBS_TOTAL
from bot.settings import Settings
from bot.store.db import Database
from bot.store.models import utcnow

log = structlog.get_logger(__name__)

INTAKE = "jobs.intake"  # the leader's look for due one-off jobs (not recorded as runs)
PRUNE = "jobs.prune"
APSCHEDULER_TABLE = "apscheduler_jobs"
STOP_GRACE_S = 10.0  # a clean stop waits this long for the runs in progress
_terms = itertools.count(1)


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: which job, its payload, and the app (store, settings, the
    process's services such as outbound calls)."""

    kind: str
    key: str
    payload: Mapping[str, Any]
    attempt: int
    scheduled_for: datetime
    app: web.Application
    db: Database
    settings: Settings


Handler = Callable[[JobContext], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Handler
    trigger: IntervalTrigger | CronTrigger | None  # None: runs only when scheduled once
    max_attempts: int
    retry: bool  # a failed run gets more attempts (periodic: False when the next run is the retry)
    timeout_s: float


def scheduled_kind(kind: str) -> None:
    """What APScheduler stores as a periodic job's function. It is never called: our
    executor runs the kind's handler instead (APScheduler pickles a reference to a
    module-level function, and the handler is a method of a live object)."""
    raise RuntimeError(f"job kind {kind} runs through bot.jobs.scheduler.Jobs")


class _LoopExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs each due APScheduler job as a coroutine on the bot's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 fire: Callable[[str, datetime], Coroutine[Any, Any, None]]) -> None:
        super().__init__()
        self._loop = loop
        self._fire = fire
        self._futures: set[Future[None]] = set()

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        # Called in the scheduler's thread; coalescing leaves the latest missed time last.
        future: Future[None] = asyncio.run_coroutine_threadsafe(self._fire(job.id, run_times[-1]), self._loop)
        self._futures.add(future)

        def done(f: Future[None]) -> None:
            self._futures.discard(f)
            if f.cancelled():
                self._run_job_error(job.id, asyncio.CancelledError(), None)
            elif f.exception() is not None:
                self._run_job_error(job.id, f.exception(), None)
            else:
                self._run_job_success(job.id, [])

        future.add_done_callback(done)

    def shutdown(self, wait: bool = True) -> None:
        for f in list(self._futures):
            f.cancel()


@dataclass
class _LeaderState:
    term: str
    scheduler: BackgroundScheduler
    since: datetime
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    intake_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Jobs:
    """The job scheduler of one bot process. Register kinds before :meth:`start`."""

    def __init__(self, app: web.Application, db: Database, settings: Settings, *,
                 leadership: Leadership | None = None) -> None:
        self.app = app
        self.db = db
        self.settings = settings
        self.tz = ZoneInfo(settings.timezone)
        self.process = f"{socket.gethostname()}:{os.getpid()}"
        self._leadership = leadership or leadership_for(db.url)
        self._kinds: dict[str, JobKind] = {}
        self._leader: _LeaderState | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._taking: asyncio.Future[None] | None = None
        self._lock_call: asyncio.Future[bool] | None = None
        self._stopping = False
        self._store_db: Database | None = None
        self.every(PRUNE, 3600, self._prune, retry=False)

    # ---------------------------------------------------------------- registering

    def kind(self, name: str, handler: Handler, *, max_attempts: int | None = None,
             timeout_s: float | None = None) -> None:
        """A kind of one-off job: it runs when :meth:`schedule_once` says."""
        self._add(JobKind(name, handler, None, max_attempts or self.settings.jobs_max_attempts, True,
                          timeout_s or self.settings.jobs_timeout_s))

    def every(self, name: str, seconds: float, handler: Handler, *, retry: bool = False,
              max_attempts: int | None = None, timeout_s: float | None = None) -> None:
        """A periodic kind, every ``seconds``. A sweep whose next run is its retry keeps
        ``retry=False``: a failed run is recorded (and shown) and the next run follows."""
        if seconds <= 0:
            raise ValueError(f"{name}: the interval must be positive")
        self._add(JobKind(name, handler, IntervalTrigger(seconds=seconds, timezone=self.tz),
                          max_attempts or self.settings.jobs_max_attempts, retry,
                          timeout_s or self.settings.jobs_timeout_s))

    def cron(self, name: str, handler: Handler, *, hour: str | int = "*", minute: str | int = 0,
             day_of_week: str = "*", day: str | int = "*", retry: bool = True,
             max_attempts: int | None = None, timeout_s: float | None = None) -> None:
        """A periodic kind on a calendar, in the centre's time zone (``HOTLINE_TIMEZONE``),
        e.g. ``cron("archive", h, hour=2, minute=30)`` nightly at 02:30 local time. A run
        missed while no leader ran happens once when one starts."""
        fields = {name: value for name, value in (("day", day), ("day_of_week", day_of_week), ("hour", hour),
                                                   ("minute", minute)) if value != "*"}
        trigger = CronTrigger(timezone=self.tz, **fields)
        self._add(JobKind(name, handler, trigger, max_attempts or self.settings.jobs_max_attempts, retry,
                          timeout_s or self.settings.jobs_timeout_s))

    def _add(self, kind: JobKind) -> None:
        if self._loop_task is not None:
            raise RuntimeError(f"job kind {kind.name}: register kinds before the scheduler starts")
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name} is registered twice")
        self._kinds[kind.name] = kind

    @property
    def kinds(self) -> Mapping[str, JobKind]:
        return dict(self._kinds)

    # ---------------------------------------------------------------- any process

    async def schedule_once(self, kind: str, key: str, run_at: datetime, payload: Mapping[str, Any] | None = None,
                            *, replace: bool = False) -> bool:
        """Run job (kind, key) once at ``run_at``; see :func:`bot.jobs.store.schedule_once`
        (which does the same inside a transaction of your own)."""
        if kind not in self._kinds:
            raise ValueError(f"unknown job kind {kind!r}; registered: {', '.join(sorted(self._kinds))}")
        changed = await self.db.run(store.schedule_once, kind, key, run_at, payload, replace=replace)
        leader = self._leader
        if changed and leader is not None and run_at <= utcnow():
            self._spawn(leader, self._intake(leader))
        return changed

    async def cancel(self, kind: str, key: str) -> bool:
        return await self.db.run(store.cancel, kind, key)

    @property
    def is_leader(self) -> bool:
        return self._leader is not None

    def status(self) -> dict[str, Any]:
        """For /healthz: does this process run the jobs, and how it knows."""
        leader = self._leader
        return {"leader": leader is not None, "lock": self._leadership.description,
                "since": leader.since.isoformat(timespec="seconds") if leader else None,
                "process": self.process}

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Try to lead now and every ``jobs_leader_retry_s`` after (returns at once)."""
        self._stopping = False
        self._loop_task = asyncio.create_task(self._lead(), name="jobs-leadership")

    async def stop(self) -> None:
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._taking is not None:
            await asyncio.wait([self._taking])
            self._taking = None
        if self._lock_call is not None:
            # A try_acquire cancelled above still runs in its thread and may yet take the
            # lock: release only after it has finished, or the lock outlives this scheduler.
            await asyncio.wait([self._lock_call])
            self._lock_call = None
        await self._step_down("stopping", grace_s=STOP_GRACE_S)
        await asyncio.to_thread(self._leadership.release)
        if self._store_db is not None:
            self._store_db.dispose()
            self._store_db = None

    async def _lead(self) -> None:
        while not self._stopping:
            try:
                if self._leader is None:
                    if await self._on_lock(self._leadership.try_acquire):
                        # Shielded: a stop in the middle waits for it (stop() below), so no
                        # scheduler thread is left running that nobody knows of.
                        self._taking = asyncio.ensure_future(self._take_lead())
                        await asyncio.shield(self._taking)
                elif not await self._on_lock(self._leadership.held):
                    await self._step_down("the lock was lost")
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep trying; the next round may work
                log.exception("jobs.leadership_failed")
                with contextlib.suppress(Exception):
                    await self._step_down("an error")
                    await asyncio.to_thread(self._leadership.release)
            await asyncio.sleep(self.settings.jobs_leader_retry_s)

    async def _on_lock(self, call: Callable[[], bool]) -> bool:
        """A blocking call on the leadership lock, in a thread; :meth:`stop` waits for it."""
        self._lock_call = asyncio.ensure_future(asyncio.to_thread(call))
        return await asyncio.shield(self._lock_call)

    async def _take_lead(self) -> None:
        term = f"{self.process}:{next(_terms)}"
        runs, jobs = await self.db.run(store.recover_interrupted, term)
        for kind, at in (await self.db.run(store.last_successes)).items():
            JOB_LAST_SUCCESS.labels(kind).set(at.timestamp())
        scheduler = await asyncio.to_thread(self._start_scheduler, asyncio.get_running_loop())
        self._leader = _LeaderState(term, scheduler, utcnow())
        JOBS_LEADER.set(1)
        log.info("jobs.leader", process=self.process, lock=self._leadership.description, term=term,
                 interrupted_runs=runs, requeued_jobs=jobs)
        self._spawn(self._leader, self._intake(self._leader))

    def _start_scheduler(self, loop: asyncio.AbstractEventLoop) -> BackgroundScheduler:
        """Blocking (the job store reads and writes): called in a worker thread."""
        url = make_url(self.db.url)
        memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        if memory:
            persistent: Any = MemoryJobStore()
        else:
            # Its own engine: the job store disposes of its engine when the scheduler stops.
            self._store_db = self._store_db or Database(self.db.url)
            persistent = SQLAlchemyJobStore(engine=self._store_db.engine, tablename=APSCHEDULER_TABLE)
        scheduler = BackgroundScheduler(
            jobstores={"default": persistent, "local": MemoryJobStore()},
            executors={"default": _LoopExecutor(loop, self._fire)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=self.tz,
        )
        scheduler.start(paused=True)
        wanted = {k.name: k for k in self._kinds.values() if k.trigger is not None}
        for job in scheduler.get_jobs(jobstore="default"):
            kind = wanted.get(job.id)
            if kind is None:
                scheduler.remove_job(job.id, jobstore="default")  # a kind this version no longer has
            elif _same_trigger(job.trigger, kind.trigger):
                del wanted[job.id]  # keep its stored next run time (and a missed run)
        for kind in wanted.values():
            scheduler.add_job(scheduled_kind, kind.trigger, args=(kind.name,), id=kind.name, name=kind.name,
                              jobstore="default", replace_existing=True)
        scheduler.add_job(scheduled_kind, IntervalTrigger(seconds=self.settings.jobs_poll_s, timezone=self.tz),
                          args=(INTAKE,), id=INTAKE, name=INTAKE, jobstore="local")
        scheduler.resume()
        return scheduler

    async def _step_down(self, why: str, *, grace_s: float = 0.0) -> None:
        """Stop running jobs. A clean stop lets the runs in progress finish for
        ``grace_s``; a lost lock does not wait (another process may lead already). What is
        cut short is found interrupted by the next leader and run again."""
        leader, self._leader = self._leader, None
        if leader is None:
            return
        JOBS_LEADER.set(0)
        await asyncio.to_thread(leader.scheduler.shutdown, False)
        if grace_s > 0 and leader.tasks:
            await asyncio.wait(list(leader.tasks), timeout=grace_s)
        for task in list(leader.tasks):
            task.cancel()
        for task in list(leader.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        log.warning("jobs.leader_stepped_down", process=self.process, why=why)

    def _spawn(self, leader: _LeaderState, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        leader.tasks.add(task)
        task.add_done_callback(leader.tasks.discard)

    # ---------------------------------------------------------------- running

    async def _fire(self, job_id: str, run_time: datetime) -> None:
        """APScheduler says periodic job ``job_id`` is due (scheduled for ``run_time``)."""
        leader = self._leader
        if leader is None:
            return
        if job_id == INTAKE:
            await self._intake(leader)
            return
        task = asyncio.current_task()
        if task is not None:  # stepping down cancels it like the one-off runs
            leader.tasks.add(task)
        try:
            await self._run(leader, job_id, _run_key(run_time), 1, run_time, {}, job_id=None)
        finally:
            if task is not None:
                leader.tasks.discard(task)

    async def _intake(self, leader: _LeaderState) -> None:
        if leader.intake_lock.locked():
            return  # one look at a time; the next tick looks again
        async with leader.intake_lock:
            free = self.settings.jobs_max_concurrent - sum(1 for t in leader.tasks if not t.done())
            due = await self.db.run(store.claim_due, leader.term, utcnow(), free)
            for job in due:
                assert job.id is not None
                self._spawn(leader, self._run(leader, job.kind, job.key, job.attempts, job.run_at,
                                              job.payload or {}, job_id=job.id))

    async def _run(self, leader: _LeaderState, kind_name: str, key: str, attempt: int, scheduled_for: datetime,
                   payload: Mapping[str, Any], *, job_id: int | None) -> None:
        run_id = await self.db.run(store.start_run, kind_name, key, attempt, leader.term, job_id=job_id)
        if run_id is None:
            log.warning("jobs.run_already_started", kind=kind_name, key=key, attempt=attempt)
            return
        kind = self._kinds.get(kind_name)
        error: str | None = None
        if kind is None:
            error = f"no handler for job kind {kind_name!r} in this version of the bot"
        else:
            ctx = JobContext(kind_name, key, payload, attempt, scheduled_for, self.app, self.db, self.settings)
            try:
                async with asyncio.timeout(kind.timeout_s):
                    await kind.handler(ctx)
            except TimeoutError:
                error = f"timed out after {kind.timeout_s:g} s"
            except Exception as exc:  # noqa: BLE001 - recorded, retried, shown on the admin page
                error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        now = utcnow()
        max_attempts = kind.max_attempts if kind is not None else 1
        retry = error is not None and kind is not None and (kind.retry or job_id is not None) and attempt < max_attempts
        next_try = (now + timedelta(seconds=store.retry_delay(attempt, self.settings.jobs_retry_base_s,
                                                              self.settings.jobs_retry_max_s))
                    if retry else None)
        # One transaction, shielded: a run that finished is recorded as finished even if
        # the leader steps down this instant (else the next leader would run it again).
        await asyncio.shield(self.db.run(store.record_result, run_id, job_id, kind_name, key, attempt, payload,
                                         error=error, next_try=next_try, now=now))
        if error is None:
            JOBS_TOTAL.labels(kind_name, "succeeded").inc()
            JOB_LAST_SUCCESS.labels(kind_name).set(now.timestamp())
            return
        JOBS_TOTAL.labels(kind_name, "retrying" if retry else "failed").inc()
        log.error("jobs.run_failed", kind=kind_name, key=key, attempt=attempt, max_attempts=max_attempts,
                  next_try=next_try.isoformat() if next_try else None, error=error.splitlines()[0][:300])

    async def _prune(self, ctx: JobContext) -> None:
        removed = await ctx.db.run(store.prune, self.settings.jobs_history_days)
        if removed:
            log.info("jobs.pruned", removed=removed)


def _run_key(run_time: datetime) -> str:
    """A periodic run's key: the time it was due, in UTC (the same on every leader, as
    the schedule lives in the shared store)."""
    return run_time.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def _same_trigger(stored: Any, wanted: Any) -> bool:
    return (type(stored) is type(wanted) and str(stored) == str(wanted)
            and str(getattr(stored, "timezone", "")) == str(getattr(wanted, "timezone", "")))
