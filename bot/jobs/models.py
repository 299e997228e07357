"""The scheduler's own tables: one-off jobs waiting to run (``job``) and every run of
any job (``job_run``). APScheduler keeps the periodic schedules in its own table
(``apscheduler_jobs``, created by its job store).

No ``from __future__ import annotations`` here: SQLModel reads the annotations at
class-creation time.
"""

from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.store.models import UTCDateTime, utcnow


class JobState(str, Enum):
    scheduled = "scheduled"  # waits for its run_at (a first run or a retry)
    running = "running"  # claimed by the leader
    done = "done"
    failed = "failed"  # gave up after its last attempt (shown on the admin page)
    cancelled = "cancelled"


class RunState(str, Enum):
    running = "running"
    succeeded = "succeeded"
    retrying = "retrying"  # failed; another attempt is scheduled at next_try
    failed = "failed"  # failed and no attempt is left
    interrupted = "interrupted"  # the leader stopped mid-run; the job was handed back


class Job(SQLModel, table=True):
    """A job due once (a survey call at 10:00, a retry of a failed run). (kind, key) is
    unique: scheduling the same job twice is one job."""

    __tablename__ = "job"
    __table_args__ = (UniqueConstraint("kind", "key", name="uq_job_kind_key"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=60)
    key: str = Field(max_length=200)
    run_at: datetime = Field(sa_type=UTCDateTime, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    state: str = Field(default=JobState.scheduled.value, max_length=20, index=True)
    attempts: int = 0  # runs started so far
    last_error: str | None = Field(default=None, sa_type=Text)
    claimed_by: str | None = Field(default=None, max_length=120)  # the leader running it
    created: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class JobRun(SQLModel, table=True):
    """One run of a job (periodic or once). (kind, key, attempt) is unique, so two
    schedulers can never both start the same run."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("kind", "key", "attempt", name="uq_job_run_kind_key_attempt"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=60, index=True)
    key: str = Field(max_length=200)
    attempt: int = 1
    job_id: int | None = Field(default=None, index=True)  # the one-off job, if it was one
    state: str = Field(default=RunState.running.value, max_length=20, index=True)
    error: str | None = Field(default=None, sa_type=Text)
    runner: str = Field(max_length=120)  # which process ran it (host:pid:…)
    started: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    finished: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_try: datetime | None = Field(default=None, sa_type=UTCDateTime)
