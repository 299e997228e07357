"""The quality inspectors' tables (process.md Q1–Q8): samples of every post's work, the
scores given with their history, the violations recorded against people, and the
hand-offs between posts flagged automatically (Q6).

No ``from __future__ import annotations``: SQLModel reads the annotations at class-creation time.
"""

from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.store.models import UTCDateTime, utcnow


def _when(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kw)


def _maybe_when() -> Any:
    return Field(default=None, sa_type=UTCDateTime)


class BatchOrigin(str, Enum):
    daily = "daily"  # Q1: the scheduled 5 % of each post's work of a day
    spot = "spot"  # Q1: an inspector's unscheduled spot check of a post, a person or a period


class QaBatch(SQLModel, table=True):
    """One drawing of a sample: the daily one of a post (``daily_key`` = "day:post", once
    only) or a spot check (no key)."""

    __tablename__ = "qa_batch"

    id: int | None = Field(default=None, primary_key=True)
    origin: str = Field(max_length=10)
    daily_key: str | None = Field(default=None, max_length=60, unique=True)
    post: str | None = Field(default=None, max_length=20)  # None: every post
    person: str | None = Field(default=None, max_length=64)  # a spot check of one person
    period_start: datetime = Field(sa_type=UTCDateTime)
    period_end: datetime = Field(sa_type=UTCDateTime)
    rate: float = 0.05
    seed: str = Field(max_length=120)
    population: int = 0  # the items there were (not sampled before)
    size: int = 0  # the items drawn
    requested_by: str = Field(max_length=64)  # "scheduler" or the inspector
    created: datetime = _when()


class QaSample(SQLModel, table=True):
    """One piece of work drawn for inspection. (kind, ref) is unique: nothing is sampled
    twice, whether by the daily draw or a spot check."""

    __tablename__ = "qa_sample"
    __table_args__ = (UniqueConstraint("kind", "ref", name="uq_qa_sample_kind_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="qa_batch.id", ondelete="CASCADE", index=True)
    post: str = Field(max_length=20, index=True)
    kind: str = Field(max_length=20)
    ref: str = Field(max_length=160)
    person: str | None = Field(default=None, max_length=64, index=True)
    work_at: datetime = Field(sa_type=UTCDateTime)
    day: str = Field(max_length=10, index=True)  # the local day of the work
    ticket_id: str | None = Field(default=None, max_length=40)
    handoff_id: int | None = Field(default=None)
    conversation_id: str | None = Field(default=None, max_length=128)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created: datetime = _when()


class ScoreState(str, Enum):
    draft = "draft"
    submitted = "submitted"


class QaScore(SQLModel, table=True):
    """Q2–Q8: a sample scored on its post's scorecard. Once submitted it changes only
    with a reason, every change kept in ``qa_score_change``."""

    __tablename__ = "qa_score"

    id: int | None = Field(default=None, primary_key=True)
    sample_id: int = Field(foreign_key="qa_sample.id", ondelete="CASCADE", unique=True)
    post: str = Field(max_length=20, index=True)
    person: str | None = Field(default=None, max_length=64, index=True)
    card: str = Field(max_length=40)  # the scorecard's post (scorecards.yml)
    card_version: int = 1
    items: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    points: float = 0.0
    max_points: float = 0.0
    percent: float = 0.0  # points / max_points, 0 when an instant-fail item was found
    instant_fail: bool = False
    passed: bool = False
    comment: str | None = Field(default=None, sa_type=Text)
    state: str = Field(default=ScoreState.draft.value, max_length=20, index=True)
    version: int = 1
    scored_by: str = Field(max_length=64)
    created: datetime = _when()
    updated: datetime = _when()
    work_at: datetime = Field(sa_type=UTCDateTime, index=True)  # the work's time (for the weekly report)
    submitted_at: datetime | None = _maybe_when()


class QaScoreChange(SQLModel, table=True):
    """Every step of a score: created, edited (draft), submitted, changed (with reason)."""

    __tablename__ = "qa_score_change"

    id: int | None = Field(default=None, primary_key=True)
    score_id: int = Field(foreign_key="qa_score.id", ondelete="CASCADE", index=True)
    version: int
    action: str = Field(max_length=20)
    actor: str = Field(max_length=64)
    at: datetime = _when()
    reason: str | None = Field(default=None, sa_type=Text)
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class QaViolation(SQLModel, table=True):
    """Q8: a violation recorded against a person (or a post, for the machine's work),
    counted in their assessment. An instant-fail item of a submitted score records one
    (``score_id``, ``rule``: once); an inspector records others by hand. Withdrawn ones
    stay, marked, with the reason."""

    __tablename__ = "qa_violation"
    __table_args__ = (UniqueConstraint("score_id", "rule", name="uq_qa_violation_score_rule"),)

    id: int | None = Field(default=None, primary_key=True)
    person: str | None = Field(default=None, max_length=64, index=True)
    post: str = Field(max_length=20, index=True)
    sample_id: int | None = Field(default=None, index=True)
    score_id: int | None = Field(default=None)
    rule: str = Field(max_length=60)  # the scorecard item, or "other"
    description: str = Field(sa_type=Text)
    evidence: str | None = Field(default=None, sa_type=Text)  # a recording time, a transcript line
    recorded_by: str = Field(max_length=64)
    at: datetime = _when(index=True)
    work_at: datetime | None = _maybe_when()
    withdrawn_at: datetime | None = _maybe_when()
    withdrawn_by: str | None = Field(default=None, max_length=64)
    withdrawn_reason: str | None = Field(default=None, sa_type=Text)


class QaHandoffFlag(SQLModel, table=True):
    """Q6: a contact passed back and forth between posts more than N times, or left
    waiting between posts longer than M minutes; once per subject and reason."""

    __tablename__ = "qa_handoff_flag"
    __table_args__ = (UniqueConstraint("subject", "reason", name="uq_qa_handoff_flag_subject_reason"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=180)  # "ticket:<id>" or "conversation:<id>"
    reason: str = Field(max_length=20)  # passes | wait
    ticket_id: str | None = Field(default=None, max_length=40, index=True)
    conversation_id: str | None = Field(default=None, max_length=128)
    passes: int = 0
    longest_wait_s: float = 0.0
    waited_at: str | None = Field(default=None, max_length=20)  # the post that kept it waiting
    path: list[str] = Field(default_factory=list, sa_type=JSON)  # the posts in order
    first_at: datetime = Field(sa_type=UTCDateTime)
    detected_at: datetime = _when(index=True)
    state: str = Field(default="open", max_length=20)  # open | reviewed
    reviewed_by: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, sa_type=Text)
