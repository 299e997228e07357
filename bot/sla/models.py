"""U1–U2 tables: the watch of each dispatch, the violations recorded against centres,
and TMF621 events about tickets (with the hubs that listen to them).

No ``from __future__ import annotations`` here: SQLModel reads the annotations at
class-creation time.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.store.models import UTCDateTime, utcnow


class DeadlineWatch(SQLModel, table=True):
    """One dispatch of a ticket, watched until its receipt. A second dispatch (a reopen,
    a return dispatched again) is a new watch with the next ``dispatch_no``, so its
    warning and alarm are its own. ``warned_at`` / ``alarmed_at`` are set in the same
    transaction as what they send: set once, sent once."""

    __tablename__ = "deadline_watch"
    __table_args__ = (
        UniqueConstraint("ticket_id", "dispatch_no", name="uq_deadline_watch_ticket_dispatch"),
        UniqueConstraint("ticket_id", "dispatched_at", name="uq_deadline_watch_ticket_dispatched_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(max_length=40, index=True)  # no FK: the record outlives a world reload
    dispatch_no: int
    centre_id: str = Field(max_length=64, index=True)
    branch: str | None = Field(default=None, max_length=100)
    dispatched_at: datetime = Field(sa_type=UTCDateTime)
    allowance_hours: float
    working_hours_only: bool = False
    deadline_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # as last computed
    warned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    alarmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    end_reason: str | None = Field(default=None, max_length=40)  # the sub-step it left for
    created: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeadlineViolation(SQLModel, table=True):
    """U2: a centre missed a completion deadline — one per dispatch, counted in the
    centre's assessment."""

    __tablename__ = "deadline_violation"
    __table_args__ = (UniqueConstraint("ticket_id", "dispatch_no", name="uq_deadline_violation_ticket_dispatch"),)

    id: int | None = Field(default=None, primary_key=True)
    watch_id: int = Field(index=True)
    ticket_id: str = Field(max_length=40, index=True)
    dispatch_no: int
    centre_id: str = Field(max_length=64, index=True)
    centre_name: str = Field(max_length=200)
    branch: str | None = Field(default=None, max_length=100)
    deadline_at: datetime = Field(sa_type=UTCDateTime)
    detected_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # the receipt (or the watch's end)
    late_by_s: float | None = None  # from the deadline to the receipt; None while still open


class TicketEvent(SQLModel, table=True):
    """A TMF621 event about a ticket (``GET …/troubleTicket/{id}/event``; sent to every
    registered hub). ``dedupe_key`` makes an event once per cause."""

    __tablename__ = "ticket_event"
    __table_args__ = (UniqueConstraint("ticket_id", "dedupe_key", name="uq_ticket_event_ticket_dedupe"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    ticket_id: str = Field(max_length=40, index=True)
    event_type: str = Field(max_length=80)
    dedupe_key: str = Field(max_length=120)
    title: str = Field(max_length=200)
    description: str = Field(sa_type=Text)
    priority: str = Field(default="Medium", max_length=20)
    event_time: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    event: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # {"troubleTicket": {…}}


class EventHub(SQLModel, table=True):
    """A TMF621 hub: another system's listener that gets every event (``POST …/hub``)."""

    __tablename__ = "event_hub"

    id: int | None = Field(default=None, primary_key=True)
    callback: str = Field(max_length=500)
    query: str | None = Field(default=None, max_length=500)
    created_by: str = Field(max_length=100)
    created: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
