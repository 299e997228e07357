"""The stored data (SQLModel tables, SQLAlchemy 2).

Tickets follow TMF621 in names and states (design.md §3.8); everything a conversation
records on the way (reports, line tests, attachments, outcomes, handoffs) hangs off them.
The inventory tables hold what the world file says about the network (§3.10) and are
replaced wholesale whenever a world is loaded.

All timestamps are stored in UTC (:class:`UTCDateTime`) and come back aware, in UTC.

No ``from __future__ import annotations`` here: SQLModel reads the annotations at
class-creation time.
"""

from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel

# Named constraints, so later migrations can drop or alter them (SQLite batch mode
# recreates tables and needs the names).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """SQLite drops the zone on the way back; every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as UTC on every backend. SQLite keeps no zone and SQLAlchemy would store
    the wall-clock time of an aware value as is (18:00+08:00 → "18:00"), so values are
    converted to UTC on the way in (naive ones are taken as UTC) and marked UTC on the
    way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)


def _when(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kw)


def _maybe_when() -> Any:
    return Field(default=None, sa_type=UTCDateTime)


# --------------------------------------------------------------------------- tickets


class TicketStatus(str, Enum):
    """TMF621 TroubleTicketStatusType."""

    acknowledged = "acknowledged"
    inProgress = "inProgress"
    pending = "pending"
    held = "held"
    resolved = "resolved"
    closed = "closed"
    rejected = "rejected"
    cancelled = "cancelled"


STATUSES: frozenset[str] = frozenset(s.value for s in TicketStatus)
# A6: a repeat report is one made on a ticket that is still open.
OPEN_STATUSES: frozenset[str] = frozenset({"acknowledged", "inProgress", "pending", "held"})


class TicketOrigin(str, Enum):
    conversation = "conversation"  # A10: a caller's report, through the dialogue
    world = "world"  # an open fault listed in the world file
    api = "api"  # POST /troubleTicket


class TicketBase(SQLModel):
    name: str = Field(max_length=200)
    description: str = Field(sa_type=Text)
    severity: str = Field(max_length=40)
    priority: str = Field(default="Medium", max_length=40)
    ticket_type: str = Field(default="fault", max_length=40)
    channel: str = Field(default="api", max_length=40)
    fault_number: str | None = Field(default=None, max_length=20, index=True)
    contact_number: str | None = Field(default=None, max_length=20)
    symptom_category: str | None = Field(default=None, max_length=40)
    symptom_text: str | None = Field(default=None, sa_type=Text)
    branch: str | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, max_length=8)


class Ticket(TicketBase, table=True):
    # A retried create from the same conversation for the same line must find the
    # ticket it already made (A10 is recorded once). NULL conversation ids (world and
    # API tickets) never collide: NULLs are distinct in unique constraints.
    __table_args__ = (
        UniqueConstraint("conversation_id", "fault_number", name="uq_ticket_conversation_fault"),
    )

    id: str = Field(primary_key=True, max_length=40)
    status: str = Field(default=TicketStatus.acknowledged.value, max_length=20, index=True)
    status_change_reason: str | None = Field(default=None, sa_type=Text)
    status_change_date: datetime = _when()
    creation_date: datetime = _when()
    last_update: datetime = _when()
    expected_resolution_date: datetime | None = _maybe_when()
    resolution_date: datetime | None = _maybe_when()
    origin: str = Field(default=TicketOrigin.api.value, max_length=20)
    world_fault_id: str | None = Field(default=None, max_length=64, unique=True)
    conversation_id: str | None = Field(default=None, max_length=128, index=True)
    # Our steps inside the TMF621 status (bot/store/workflow.py); NULL on tickets made
    # before the workflow existed, read as "new".
    sub_step: str | None = Field(default=None, max_length=30, index=True)
    # Optimistic locking: every change bumps it; a writer that read an older version
    # gets a conflict instead of overwriting (issue 4, §8).
    version: int = Field(default=1)
    fault_class: str | None = Field(default=None, max_length=100)  # S2
    centre_id: str | None = Field(default=None, max_length=64, index=True)  # S2: dispatched to
    dispatched_at: datetime | None = _maybe_when()
    chase_count: int = Field(default=0)


class TicketStatusChange(SQLModel, table=True):
    __tablename__ = "ticket_status_change"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(foreign_key="ticket.id", ondelete="CASCADE", index=True, max_length=40)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    reason: str | None = Field(default=None, sa_type=Text)
    author: str = Field(default="system", max_length=100)
    at: datetime = _when()
    # The workflow action that made the change and our sub-steps either side of it;
    # an action may move the sub-step and leave the TMF621 status as it was.
    action: str | None = Field(default=None, max_length=40)
    from_sub_step: str | None = Field(default=None, max_length=30)
    to_sub_step: str | None = Field(default=None, max_length=30)


class TicketNote(SQLModel, table=True):
    __tablename__ = "ticket_note"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(foreign_key="ticket.id", ondelete="CASCADE", index=True, max_length=40)
    author: str = Field(default="system", max_length=100)
    text: str = Field(sa_type=Text)
    at: datetime = _when()


class ReportKind(str, Enum):
    new = "new"
    repeat = "repeat"
    supplement = "supplement"  # J5: 补充申告, recorded by an operator


class Report(SQLModel, table=True):
    """One report made on a ticket; report_count is the number of these (A6 note 2)."""

    # A conversation reports a given fault once, however often the action retries.
    __table_args__ = (UniqueConstraint("ticket_id", "conversation_id", name="uq_report_ticket_conversation"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(foreign_key="ticket.id", ondelete="CASCADE", index=True, max_length=40)
    kind: str = Field(max_length=10)
    at: datetime = _when()
    channel: str = Field(max_length=40)
    language: str | None = Field(default=None, max_length=8)
    conversation_id: str | None = Field(default=None, max_length=128, index=True)
    contact_number: str | None = Field(default=None, max_length=20)
    symptom_category: str | None = Field(default=None, max_length=40)
    symptom_text: str | None = Field(default=None, sa_type=Text)


class LineTest(SQLModel, table=True):
    __tablename__ = "line_test"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str | None = Field(
        default=None, foreign_key="ticket.id", ondelete="CASCADE", index=True, max_length=40
    )
    fault_number: str = Field(max_length=20, index=True)
    test_id: str = Field(max_length=64)  # the unit's own id for the test
    result: str = Field(max_length=40)
    summary_zh: str = Field(default="", sa_type=Text)
    summary_en: str = Field(default="", sa_type=Text)
    measurements: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    started_at: datetime | None = _maybe_when()
    finished_at: datetime = _when()


class Attachment(SQLModel, table=True):
    """A11: the caller's message for the repairman (typed in chat; audio later)."""

    # Idempotency of a typed message without indexing the text itself (too long for
    # a PostgreSQL b-tree entry): its SHA-256 is the key.
    __table_args__ = (
        UniqueConstraint("ticket_id", "conversation_id", "content_hash", name="uq_attachment_content"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(foreign_key="ticket.id", ondelete="CASCADE", index=True, max_length=40)
    kind: str = Field(default="voiceMessage", max_length=40)
    mime_type: str = Field(max_length=100)
    text: str | None = Field(default=None, sa_type=Text)
    file_path: str | None = Field(default=None, max_length=500)
    content_hash: str | None = Field(default=None, max_length=64)
    conversation_id: str | None = Field(default=None, max_length=128)
    created: datetime = _when()


class RepairmanMessage(SQLModel, table=True):
    """A6: what the repairman left on a fault for the next caller."""

    __tablename__ = "repairman_message"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(foreign_key="ticket.id", ondelete="CASCADE", index=True, max_length=40)
    zh: str = Field(sa_type=Text)
    en: str = Field(sa_type=Text)
    at: datetime = _when()


# ---------------------------------------------------------------- conversations


class Outcome(str, Enum):
    accepted = "accepted"  # A10: report recorded
    informed_repaired = "informed_repaired"  # A5: V4, repaired variant
    informed_engineering = "informed_engineering"  # A5: V4, engineering variant
    repeat_informed = "repeat_informed"  # A6–A7: message / last test played, no human wanted
    handed_off = "handed_off"  # A3, A6, A7: transferred to a human
    abandoned = "abandoned"  # caller left mid-flow
    no_input = "no_input"  # A3, A9: nothing entered
    ended = "ended"  # finished for another reason
    progress_informed = "progress_informed"  # J4 automated: the open ticket's state told (issue 13)


class ConversationOutcome(SQLModel, table=True):
    """How a conversation ended, for statistics (T3: at which step a report was settled).

    Several rows per conversation are allowed: a caller can do two things in one call.
    """

    __tablename__ = "conversation_outcome"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(max_length=128, index=True)
    channel: str = Field(max_length=40)
    language: str = Field(max_length=8)
    outcome: str = Field(max_length=40)
    step: str = Field(max_length=8)
    reason: str | None = Field(default=None, sa_type=Text)
    ticket_id: str | None = Field(default=None, max_length=40)  # no FK: outlives a world reload
    fault_number: str | None = Field(default=None, max_length=20)
    at: datetime = _when()


class HandoffQueue(str, Enum):
    junior = "junior"
    senior = "senior"  # J3: big customers go straight here
    manager = "manager"  # M2: complaints go to the manager hotline (issue 13 item 5)


class HandoffState(str, Enum):
    queued = "queued"
    taken = "taken"
    abandoned = "abandoned"  # the caller left while waiting
    returned = "returned"  # J1: the caller took the offer to go back to the bot
    done = "done"


class Handoff(SQLModel, table=True):
    """A caller waiting for a human seat (J1); the operator desk picks these up."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(max_length=128, index=True)
    channel: str = Field(max_length=40)
    language: str = Field(max_length=8)
    reason: str = Field(sa_type=Text)
    fault_number: str | None = Field(default=None, max_length=20)
    ticket_id: str | None = Field(default=None, max_length=40)
    line_test: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    transcript: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    queue: str = Field(default=HandoffQueue.junior.value, max_length=20, index=True)
    state: str = Field(default=HandoffState.queued.value, max_length=20, index=True)
    created: datetime = _when()
    taken_by: str | None = Field(default=None, max_length=64)  # the desk user's username
    taken_at: datetime | None = _maybe_when()
    ended_at: datetime | None = _maybe_when()  # done, abandoned or back to the bot: wait time
    end_reason: str | None = Field(default=None, sa_type=Text)
    return_offers: int = Field(default=0)  # J1: offers to go back to the bot so far
    transferred_from: str | None = Field(default=None, max_length=64)  # J3/J5/J6: the junior


class HandoffMessageSender(str, Enum):
    caller = "caller"
    operator = "operator"
    system = "system"


class HandoffMessage(SQLModel, table=True):
    """J1: the live text conversation between a chat user and the operator who took them."""

    __tablename__ = "handoff_message"

    id: int | None = Field(default=None, primary_key=True)
    handoff_id: int = Field(foreign_key="handoff.id", ondelete="CASCADE", index=True)
    sender: str = Field(max_length=20)
    author: str | None = Field(default=None, max_length=64)  # the operator's username
    text: str = Field(sa_type=Text)
    at: datetime = _when()


class CallRecording(SQLModel, table=True):
    """Q2: one bridged operator call as FreeSWITCH recorded it (``record_session``,
    stereo: the caller left, the operator right), attached to the handoff's ticket.
    The row outlives the file: the retention sweep deletes the file and says when."""

    __tablename__ = "call_recording"

    id: int | None = Field(default=None, primary_key=True)
    # No foreign keys: the record of a recording outlives a world reload's tickets.
    handoff_id: int = Field(index=True)
    ticket_id: str | None = Field(default=None, max_length=40, index=True)
    conversation_id: str = Field(max_length=128, index=True)  # the call's UUID
    operator: str | None = Field(default=None, max_length=64)  # the desk username bridged to
    extension: str | None = Field(default=None, max_length=20)
    file_name: str = Field(max_length=200, unique=True)  # under HOTLINE_CALL_RECORDINGS_DIR
    fs_path: str = Field(max_length=500)  # where FreeSWITCH wrote it (Record-File-Path)
    duration_s: float = 0.0
    size_bytes: int = 0
    sample_rate: int = 8000
    channels: int = 2
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)  # the operator answered
    ended_at: datetime = Field(sa_type=UTCDateTime)
    created: datetime = _when()
    attachment_id: int | None = Field(default=None, index=True)  # the ticket's TMF621 attachment
    deleted_at: datetime | None = _maybe_when()
    deleted_by: str | None = Field(default=None, max_length=64)
    deleted_reason: str | None = Field(default=None, sa_type=Text)


class DeskTaskKind(str, Enum):
    senior_transfer = "senior_transfer"  # J3/J5/J6 → S1; graded by a senior (S3)
    callback = "callback"  # S2: no dispatch needed, call the customer back
    escalation = "escalation"  # J4/J6/S1 → M1–M3
    branch_notice = "branch_notice"  # M3: the branch is told of a finding / compensation; U1-U2 warnings, alarms
    explain_delay = "explain_delay"  # U2: the surveyor explains an overdue repair to the customer


class DeskTaskState(str, Enum):
    open = "open"
    done = "done"


class DeskTask(SQLModel, table=True):
    """Work one post hands to another: who asked, why, for whom, and how it ended."""

    __tablename__ = "desk_task"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30, index=True)
    role: str = Field(max_length=20, index=True)  # the post that does it
    branch: str | None = Field(default=None, max_length=100)  # centre tasks: whose branch
    state: str = Field(default=DeskTaskState.open.value, max_length=20, index=True)
    ticket_id: str | None = Field(default=None, max_length=40, index=True)
    handoff_id: int | None = Field(default=None, index=True)
    reason: str = Field(sa_type=Text)
    created_by: str = Field(max_length=64)
    created: datetime = _when()
    done_by: str | None = Field(default=None, max_length=64)
    done_at: datetime | None = _maybe_when()
    outcome: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # S3: a senior grades a junior's transfer; "incorrect" counts in the junior's assessment.
    grade: str | None = Field(default=None, max_length=20)
    grade_note: str | None = Field(default=None, sa_type=Text)
    graded_by: str | None = Field(default=None, max_length=64)
    graded_at: datetime | None = _maybe_when()


# -------------------------------------------------------------------- inventory


class ExchangeRow(SQLModel, table=True):
    """A4: an exchange prefix (局向); a number under no known prefix is invalid."""

    __tablename__ = "exchange"

    prefix: str = Field(primary_key=True, max_length=20)
    name: str = Field(max_length=200)
    branch: str = Field(max_length=100)


class LineRow(SQLModel, table=True):
    __tablename__ = "subscriber_line"

    number: str = Field(primary_key=True, max_length=20)
    owner: str = Field(max_length=200)
    big_customer: bool = False
    customer_type: str = Field(default="residential", max_length=40)
    branch: str | None = Field(default=None, max_length=100)
    repaired: bool = False  # A5
    line_test: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class EngineeringWorkRow(SQLModel, table=True):
    __tablename__ = "engineering_work"

    id: str = Field(primary_key=True, max_length=64)
    description_zh: str = Field(sa_type=Text)
    description_en: str = Field(sa_type=Text)
    until: datetime | None = _maybe_when()


class EngineeringWorkTarget(SQLModel, table=True):
    """A prefix or a single line affected by a work (A5)."""

    __tablename__ = "engineering_work_target"

    id: int | None = Field(default=None, primary_key=True)
    work_id: str = Field(foreign_key="engineering_work.id", ondelete="CASCADE", index=True, max_length=64)
    kind: str = Field(max_length=10)  # "prefix" | "line"
    value: str = Field(max_length=20, index=True)


class MeasurementCentreRow(SQLModel, table=True):
    __tablename__ = "measurement_centre"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    branch: str = Field(max_length=100)
    completion_deadline_hours: float = 24
    # U1-U2: the world file's working_hours for this centre (days, holidays, workdays) and
    # the zone they are in; None: the deadline counts every hour.
    working_hours: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class FaultClassRow(SQLModel, table=True):
    __tablename__ = "fault_class"

    name: str = Field(primary_key=True, max_length=100)


INVENTORY_TABLES: tuple[type[SQLModel], ...] = (
    EngineeringWorkTarget,
    EngineeringWorkRow,
    LineRow,
    ExchangeRow,
    MeasurementCentreRow,
    FaultClassRow,
)


# ------------------------------------------------------------------ operator desk


class DeskRole(str, Enum):
    """The posts of the human side of the process (process.md J, S, M, Q)."""

    junior = "junior"  # J: junior operator
    senior = "senior"  # S: senior operator
    centre = "centre"  # a branch's measurement management centre
    manager = "manager"  # M: manager hotline
    admin = "admin"
    inspector = "inspector"  # Q: quality inspector (listens to call recordings, Q2)
    surveyor = "surveyor"  # U: satisfaction surveyor (deadline watch U1-U2, surveys U3-U5)
    datamanager = "datamanager"  # D: data manager (the archive D1, the knowledge base D2)
    statistician = "statistician"  # T: statistics and the periodic reports (T1-T5)
    deputy = "deputy"  # T5: a deputy manager, who approves the statistician's reports


class DeskUser(SQLModel, table=True):
    __tablename__ = "desk_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    branch: str | None = Field(default=None, max_length=100)  # centre staff: whose centre
    password_hash: str = Field(max_length=255)  # argon2id, PHC string
    active: bool = True
    extension: str | None = Field(default=None, max_length=20)  # J1: the SIP phone a call is bridged to
    created: datetime = _when()


class DeskSession(SQLModel, table=True):
    """A signed-in browser. Only the token's SHA-256 is stored: a copy of the database
    does not let anyone sign in."""

    __tablename__ = "desk_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="desk_user.id", ondelete="CASCADE", index=True)
    csrf_token: str = Field(max_length=64)
    created: datetime = _when()
    expires: datetime = Field(sa_type=UTCDateTime, index=True)


class DeskLoginThrottle(SQLModel, table=True):
    """Failed sign-ins per username (known or not, so refusals do not reveal which
    usernames exist)."""

    __tablename__ = "desk_login_throttle"

    username: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    window_start: datetime = _when()
    locked_until: datetime | None = _maybe_when()


# --------------------------------------------------------------------- outbound calls


class OutboundCallState(str, Enum):
    dialing = "dialing"  # originate sent, the callee's phone rings
    in_call = "in_call"  # answered: the call's session runs
    ended = "ended"


class OutboundCallResult(str, Enum):
    answered = "answered"
    no_answer = "no_answer"
    busy = "busy"
    rejected = "rejected"
    failed = "failed"


class OutboundCall(SQLModel, table=True):
    """A call the bot placed (voice/outbound.py): why, to whom, and how it went, with
    FreeSWITCH's own hangup cause kept as it came."""

    __tablename__ = "outbound_call"

    id: int | None = Field(default=None, primary_key=True)
    purpose: str = Field(max_length=40, index=True)  # test_call, survey …: picks the call's dialogue
    ref_id: str | None = Field(default=None, max_length=64)  # what the purpose is about (a survey id)
    number: str = Field(max_length=20, index=True)  # canonical digits, one a caller gave or used
    requested_by: str | None = Field(default=None, max_length=64)
    state: str = Field(default=OutboundCallState.dialing.value, max_length=20, index=True)
    result: str | None = Field(default=None, max_length=20)
    hangup_cause: str | None = Field(default=None, max_length=64)  # NO_ANSWER, USER_BUSY …
    channel_uuid: str | None = Field(default=None, max_length=64)
    key_pressed: str | None = Field(default=None, max_length=8)  # the call's one key, if it asked
    created: datetime = _when()
    answered_at: datetime | None = _maybe_when()
    ended_at: datetime | None = _maybe_when()
