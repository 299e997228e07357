"""The statistician's tables (process.md T1–T5): the reports with their frozen figures
and their history, and the daily rollup the figures are summed from.

Also the indexes the statistics need on other posts' tables (by time: outcomes, handoffs,
reports, tickets, history), declared here so ``bot/store/models.py`` stays as it is.
Imported by :mod:`bot.store.db`, so every user of the store has these tables on
``SQLModel.metadata``.

No ``from __future__ import annotations``: SQLModel reads the annotations at class-creation time.
"""

from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.store.models import (
    ConversationOutcome,
    Handoff,
    Report,
    Ticket,
    TicketStatusChange,
    UTCDateTime,
    utcnow,
)


class PeriodKind(str, Enum):
    """T5: weekly (Monday, the week before), monthly, quarterly, annual (21 December)."""

    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"
    annual = "annual"


class ReportState(str, Enum):
    draft = "draft"  # generated; the statistician reviews it (numbers may be refreshed)
    submitted = "submitted"  # to the deputy managers: the numbers are frozen from here on
    approved = "approved"  # a deputy manager approved it for the provincial centre
    returned = "returned"  # a deputy manager sent it back with a reason


class StatsReport(SQLModel, table=True):
    """One version of one periodic report. A correction after submission is a new row
    (version + 1, ``previous_id`` → the one it corrects); the old one keeps its numbers."""

    __tablename__ = "stats_report"
    __table_args__ = (UniqueConstraint("kind", "period_start", "version", name="uq_stats_report_period_version"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20, index=True)
    period_start: str = Field(max_length=10)  # local date, YYYY-MM-DD, first day
    period_end: str = Field(max_length=10)  # local date, YYYY-MM-DD, the day after the last
    version: int = 1
    previous_id: int | None = Field(default=None)  # the version this one corrects
    superseded_by_id: int | None = Field(default=None)  # the correction of this one
    state: str = Field(default=ReportState.draft.value, max_length=20, index=True)
    timezone: str = Field(max_length=64)
    figures: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # the snapshot
    figures_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    generated_by: str = Field(max_length=64)  # "scheduler" or the username
    created: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    comment: str | None = Field(default=None, sa_type=Text)  # the statistician's, for the deputies
    correction_reason: str | None = Field(default=None, sa_type=Text)  # why this version exists
    submitted_by: str | None = Field(default=None, max_length=64)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: str | None = Field(default=None, max_length=64)  # the deputy manager
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decision_reason: str | None = Field(default=None, sa_type=Text)  # why it was sent back


class StatsReportEvent(SQLModel, table=True):
    """T5: every step of a report — generated, refreshed, commented, submitted, approved,
    sent back, corrected — with who and when."""

    __tablename__ = "stats_report_event"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="stats_report.id", ondelete="CASCADE", index=True)
    action: str = Field(max_length=20)
    actor: str = Field(max_length=64)
    role: str = Field(max_length=20)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    note: str | None = Field(default=None, sa_type=Text)


class StatsDaily(SQLModel, table=True):
    """The daily rollup: for each local day and cube (bot/stats/cubes.py), the count ``n``
    (and a sum ``v`` where the cube has one) per combination of its keys. Rebuilt by SQL
    (DELETE + INSERT … SELECT) for the days being refreshed; never edited row by row."""

    __tablename__ = "stats_daily"
    __table_args__ = (Index("ix_stats_daily_cube_day", "cube", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: str = Field(max_length=10)
    cube: str = Field(max_length=20)
    k1: str = Field(default="", max_length=120)
    k2: str = Field(default="", max_length=120)
    k3: str = Field(default="", max_length=120)
    k4: str = Field(default="", max_length=120)
    k5: str = Field(default="", max_length=120)
    k6: str = Field(default="", max_length=120)
    n: int = 0
    v: float = 0.0


class StatsRollupDay(SQLModel, table=True):
    """Which local days the rollup holds, computed when and in which time zone."""

    __tablename__ = "stats_rollup_day"

    day: str = Field(primary_key=True, max_length=10)
    timezone: str = Field(max_length=64)
    refreshed_at: datetime = Field(sa_type=UTCDateTime)


# The statistics read other posts' rows by time; these keep a month's figures fast.
STATS_INDEXES = (
    Index("ix_stats_outcome_at", ConversationOutcome.__table__.c.at),  # type: ignore[attr-defined]
    Index("ix_stats_handoff_created", Handoff.__table__.c.created),  # type: ignore[attr-defined]
    Index("ix_stats_report_at", Report.__table__.c.at),  # type: ignore[attr-defined]
    Index("ix_stats_ticket_creation_date", Ticket.__table__.c.creation_date),  # type: ignore[attr-defined]
    Index("ix_stats_status_change_at", TicketStatusChange.__table__.c.at),  # type: ignore[attr-defined]
)
