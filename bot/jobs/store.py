"""The scheduler's store work: every function takes an open :class:`~sqlmodel.Session`
first (run them with ``await db.run(fn, …)`` or inside a transaction of your own).

:func:`schedule_once` and :func:`cancel` are what any process calls, also inside a
transaction that does other work (a ticket's receipt and its survey call commit
together or not at all). The rest is the leader's bookkeeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.jobs.models import Job, JobRun, JobState, RunState
from bot.store.models import utc, utcnow

MAX_KEY = 200
MAX_ERROR = 4000


def retry_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Exponential backoff: after the first failed attempt ``base_s``, then twice as long
    each time, never more than ``max_s``."""
    return float(min(max_s, base_s * 2 ** max(0, attempt - 1)))


def _check(kind: str, key: str) -> None:
    if not kind or len(kind) > 60:
        raise ValueError("a job kind is 1–60 characters")
    if not key or len(key) > MAX_KEY:
        raise ValueError(f"a job key is 1–{MAX_KEY} characters")


def schedule_once(s: Session, kind: str, key: str, run_at: datetime, payload: Mapping[str, Any] | None = None,
                  *, replace: bool = False, attempts: int = 0) -> bool:
    """Have job (kind, key) run once at ``run_at`` (UTC or aware). Scheduling a key that
    exists is the same job: it stays as it is (``replace=True`` moves a job that has not
    started yet to the new time and payload); a cancelled key is scheduled again; a job
    that ran (or is running) is never run again. Returns whether anything changed."""
    _check(kind, key)
    now = utcnow()
    values = {"kind": kind, "key": key, "run_at": utc(run_at), "payload": dict(payload or {}),
              "state": JobState.scheduled.value, "attempts": attempts, "created": now, "updated": now}
    dialect = s.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(Job).values(**values).on_conflict_do_nothing(index_elements=["kind", "key"]).returning(
        col(Job.id))
    if s.execute(stmt).first() is not None:  # (rowcount is not reliable for an ORM insert)
        return True
    states = [JobState.cancelled.value] + ([JobState.scheduled.value] if replace else [])
    result = s.execute(update(Job).where(col(Job.kind) == kind, col(Job.key) == key, col(Job.state).in_(states))
                       .values(run_at=utc(run_at), payload=dict(payload or {}), state=JobState.scheduled.value,
                               updated=now, last_error=None))
    return cast("CursorResult[Any]", result).rowcount == 1


def cancel(s: Session, kind: str, key: str) -> bool:
    """Job (kind, key) will not run (if it has not started yet). Returns whether it was
    waiting and is now cancelled."""
    result = s.execute(update(Job).where(col(Job.kind) == kind, col(Job.key) == key,
                                         col(Job.state) == JobState.scheduled.value)
                       .values(state=JobState.cancelled.value, updated=utcnow()))
    return cast("CursorResult[Any]", result).rowcount == 1


def get_job(s: Session, kind: str, key: str) -> Job | None:
    return s.exec(select(Job).where(Job.kind == kind, Job.key == key)).first()


# ------------------------------------------------------------------ the leader's side


def claim_due(s: Session, owner: str, now: datetime, limit: int) -> list[Job]:
    """Take up to ``limit`` jobs whose time has come, oldest first. Each is taken with a
    conditional update, so two schedulers never both take one."""
    if limit <= 0:
        return []
    due = s.exec(select(Job.id).where(Job.state == JobState.scheduled.value, col(Job.run_at) <= now)
                 .order_by(col(Job.run_at), col(Job.id)).limit(limit)).all()
    claimed: list[Job] = []
    for job_id in due:
        result = s.execute(update(Job).where(col(Job.id) == job_id, col(Job.state) == JobState.scheduled.value)
                           .values(state=JobState.running.value, claimed_by=owner, attempts=col(Job.attempts) + 1,
                                   updated=now))
        if cast("CursorResult[Any]", result).rowcount == 1:
            job = s.get(Job, job_id, populate_existing=True)
            assert job is not None
            claimed.append(job)
    return claimed


def start_run(s: Session, kind: str, key: str, attempt: int, runner: str, *, job_id: int | None = None,
              now: datetime | None = None) -> int | None:
    """Record that a run starts; None when this run (kind, key, attempt) was already
    started by someone (then it must not run again)."""
    run = JobRun(kind=kind, key=key, attempt=attempt, job_id=job_id, runner=runner, started=now or utcnow())
    try:
        with s.begin_nested():
            s.add(run)
            s.flush()
    except IntegrityError:
        return None
    assert run.id is not None
    return run.id


def finish_run(s: Session, run_id: int, state: RunState, *, error: str | None = None,
               next_try: datetime | None = None, now: datetime | None = None) -> None:
    s.execute(update(JobRun).where(col(JobRun.id) == run_id).values(
        state=state.value, error=error[-MAX_ERROR:] if error else None, next_try=next_try,
        finished=now or utcnow()))


def job_done(s: Session, job_id: int, now: datetime | None = None) -> None:
    s.execute(update(Job).where(col(Job.id) == job_id).values(state=JobState.done.value, claimed_by=None,
                                                             last_error=None, updated=now or utcnow()))


def job_failed(s: Session, job_id: int, error: str, retry_at: datetime | None, now: datetime | None = None) -> None:
    """A run of a one-off job failed: again at ``retry_at``, or given up (None)."""
    values: dict[str, Any] = {"claimed_by": None, "last_error": error[-MAX_ERROR:], "updated": now or utcnow()}
    if retry_at is None:
        values["state"] = JobState.failed.value
    else:
        values.update(state=JobState.scheduled.value, run_at=retry_at)
    s.execute(update(Job).where(col(Job.id) == job_id).values(**values))


def record_result(s: Session, run_id: int, job_id: int | None, kind: str, key: str, attempt: int,
                  payload: Mapping[str, Any], *, error: str | None, next_try: datetime | None,
                  now: datetime | None = None) -> None:
    """How a run ended, in one transaction: the run, its one-off job (done, again at
    ``next_try``, or given up), or for a failed periodic run its retry as a one-off job."""
    now = now or utcnow()
    if error is None:
        finish_run(s, run_id, RunState.succeeded, now=now)
        if job_id is not None:
            job_done(s, job_id, now)
        return
    finish_run(s, run_id, RunState.retrying if next_try is not None else RunState.failed, error=error,
               next_try=next_try, now=now)
    if job_id is not None:
        job_failed(s, job_id, error, next_try, now)
    elif next_try is not None:
        schedule_once(s, kind, key, next_try, payload, attempts=attempt)


def recover_interrupted(s: Session, owner: str, now: datetime | None = None) -> tuple[int, int]:
    """A new leader takes over: runs another leader left running (it died or lost the
    lead mid-run) are marked interrupted, and their one-off jobs go back in the queue
    at once (the interrupted attempt counts). Returns (runs, jobs)."""
    now = now or utcnow()
    runs = s.execute(update(JobRun).where(col(JobRun.state) == RunState.running.value, col(JobRun.runner) != owner)
                     .values(state=RunState.interrupted.value, finished=now,
                             error="interrupted: the scheduler that ran it stopped mid-run"))
    jobs = s.execute(update(Job).where(col(Job.state) == JobState.running.value,
                                       col(Job.claimed_by) != owner)
                     .values(state=JobState.scheduled.value, run_at=now, claimed_by=None, updated=now,
                             last_error="interrupted: the scheduler that ran it stopped mid-run"))
    return (cast("CursorResult[Any]", runs).rowcount, cast("CursorResult[Any]", jobs).rowcount)


def last_successes(s: Session) -> dict[str, datetime]:
    """When each kind last succeeded (a new leader's metrics start from the store)."""
    rows = s.exec(select(JobRun.kind, func.max(JobRun.finished)).where(JobRun.state == RunState.succeeded.value)
                  .group_by(col(JobRun.kind))).all()
    return {kind: utc(at) for kind, at in rows if at is not None}


def prune(s: Session, keep_days: float, now: datetime | None = None) -> int:
    """Forget finished runs and finished one-off jobs older than ``keep_days``."""
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    runs = s.execute(delete(JobRun).where(col(JobRun.state) != RunState.running.value,
                                          col(JobRun.finished) < cutoff))
    jobs = s.execute(delete(Job).where(col(Job.state).in_([JobState.done.value, JobState.cancelled.value,
                                                             JobState.failed.value]),
                                       col(Job.updated) < cutoff))
    return cast("CursorResult[Any]", runs).rowcount + cast("CursorResult[Any]", jobs).rowcount


# ------------------------------------------------------------------ the admin page


@dataclass(frozen=True)
class JobsOverview:
    failed_jobs: list[Job]  # one-off jobs given up
    failed_runs: list[JobRun]  # periodic runs that failed with no attempt left
    waiting: list[Job]  # scheduled, soonest first
    recent: list[JobRun]
    counts: dict[str, dict[str, int]]  # kind → run state → runs kept


def overview(s: Session, limit: int = 50) -> JobsOverview:
    counts: dict[str, dict[str, int]] = {}
    for kind, state, n in s.exec(select(JobRun.kind, JobRun.state, func.count()).group_by(
            col(JobRun.kind), col(JobRun.state))).all():
        counts.setdefault(kind, {})[state] = int(n)
    return JobsOverview(
        failed_jobs=list(s.exec(select(Job).where(Job.state == JobState.failed.value)
                                .order_by(col(Job.updated).desc()).limit(limit))),
        failed_runs=list(s.exec(select(JobRun).where(JobRun.state == RunState.failed.value,
                                                     col(JobRun.job_id).is_(None))
                                .order_by(col(JobRun.started).desc()).limit(limit))),
        waiting=list(s.exec(select(Job).where(col(Job.state).in_([JobState.scheduled.value,
                                                                   JobState.running.value]))
                            .order_by(col(Job.run_at)).limit(limit))),
        recent=list(s.exec(select(JobRun).order_by(col(JobRun.started).desc(), col(JobRun.id).desc())
                           .limit(limit))),
        counts=counts,
    )


def given_up_count(s: Session) -> int:
    """One-off jobs and periodic runs that failed with no attempt left."""
    jobs = s.exec(select(func.count()).select_from(Job).where(Job.state == JobState.failed.value)).one()
    runs = s.exec(select(func.count()).select_from(JobRun).where(JobRun.state == RunState.failed.value,
                                                                  col(JobRun.job_id).is_(None))).one()
    return int(jobs) + int(runs)


def retry_failed(s: Session, job_id: int, now: datetime | None = None) -> bool:
    """The admin's "run it again" for a one-off job that gave up: one more attempt, now
    (its earlier attempts stay counted and recorded)."""
    now = now or utcnow()
    result = s.execute(update(Job).where(col(Job.id) == job_id, col(Job.state) == JobState.failed.value)
                       .values(state=JobState.scheduled.value, run_at=now, updated=now))
    return cast("CursorResult[Any]", result).rowcount == 1
