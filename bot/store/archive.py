"""The archive (D1): every night, the day's finished reports, conversations' outcomes,
survey results and entered texts are classified and archived as immutable records.

What is archived (``kind``), one record per source row (unique ``source_table`` +
``source_id`` + ``kind``):

=============  ==========================  =============================================
kind           source row                  finished at
=============  ==========================  =============================================
report         ``ticket_status_change``    a ticket moved from an open status to resolved,
               that finished a ticket      closed, rejected or cancelled (a reopened
                                           ticket finished again is a second report)
conversation   ``conversation_outcome``    how a conversation with the bot ended
text           ``attachment`` (A11 the     when it was entered
               caller's message),
               ``report`` (the symptom the
               caller typed or said),
               ``ticket_note`` (operators'
               notes)
=============  ==========================  =============================================

Classification, from what is stored:

- **fault class**: the ticket's own (a senior's, S2) → else from the ticket's last
  line test (open circuit, short circuit, earth fault, high resistance, foreign
  voltage → 用户线路故障; customer equipment → 用户终端故障) → else from the symptom
  (broadband down → 宽带故障); a derived class is used only if the world lists it.
  ``fault_class_source`` says which (``ticket``, ``line_test``, ``symptom`` or none).
- **branch**: the ticket's; else the exchange of the fault number (longest prefix).
- **channel**: the ticket's or the conversation's (``voice``, ``webchat``, ``desk``, ``api``).
- **outcome**: a report's final sub-step (``answered``, ``receipt_received``,
  ``rejected``, ``withdrawn``, ``closed``); a conversation's outcome (``accepted``,
  ``handed_off``, ``abandoned`` …, with its ``step``); a text's ticket's status.
- **customer type**: the line's (``residential``, ``business``, ``government`` …),
  ``big_customer`` beside it; ``unknown`` when the number is no line of the world.

Not archived: the world file's own open faults (example data, made anew at each world
load) and anything about them.

The run for night D (:func:`archive_day`) takes everything finished before the end of
D (local time) that is not archived yet, so a report finished late, or left by a
missed night, lands in the next night's run; its ``day`` is the day it finished and
``run_day`` the night it was archived (``late`` when they differ). Running the same
night twice adds nothing: the unique key refuses a second copy (INSERT … ON CONFLICT
DO NOTHING). Records are never updated or deleted: this module has no code for it,
and the database refuses it (triggers on SQLite and PostgreSQL, migration 0008_i12d).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import JSON, Date, Text, UniqueConstraint, and_, exists, func, or_, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col, select

from bot.store.errors import ServiceError
from bot.store.models import (
    Attachment,
    ConversationOutcome,
    ExchangeRow,
    FaultClassRow,
    LineRow,
    LineTest,
    Report,
    Ticket,
    TicketNote,
    TicketOrigin,
    TicketStatusChange,
    UTCDateTime,
    utc,
    utcnow,
)

if TYPE_CHECKING:
    from bot.jobs import JobContext
    from bot.store.db import Database

log = structlog.get_logger(__name__)

FINISHED_STATUSES = ("resolved", "closed", "rejected", "cancelled")
KINDS = ("report", "conversation", "survey", "text")
TEXT_KINDS = ("caller_message", "symptom_text", "operator_note")
LINE_TEST_FAULT_CLASS = {
    "open_circuit": "用户线路故障", "short_circuit": "用户线路故障", "earth_fault": "用户线路故障",
    "high_resistance": "用户线路故障", "foreign_voltage": "用户线路故障", "cpe_fault": "用户终端故障",
}
SYMPTOM_FAULT_CLASS = {"broadband_down": "宽带故障"}
BATCH = 500
ANALYZE_EVERY = 16  # batches, once the run is long (PostgreSQL: see _fresh_statistics)
EXPORT_MAX = 50_000


class ArchiveRecord(SQLModel, table=True):
    """One archived item. Immutable: inserted once by the nightly run, never changed."""

    __tablename__ = "archive_record"
    __table_args__ = (
        UniqueConstraint("source_table", "source_id", "kind", name="uq_archive_record_source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20, index=True)
    subkind: str | None = Field(default=None, max_length=30)  # a text's kind; a report's TMF621 status
    source_table: str = Field(max_length=40)
    source_id: int
    day: date = Field(sa_type=Date, index=True)  # the local day it finished
    run_day: date = Field(sa_type=Date, index=True)  # the night whose run archived it
    finished_at: datetime = Field(sa_type=UTCDateTime)
    archived_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ticket_id: str | None = Field(default=None, max_length=40, index=True)
    conversation_id: str | None = Field(default=None, max_length=128)
    fault_number: str | None = Field(default=None, max_length=20)
    fault_class: str | None = Field(default=None, max_length=100, index=True)
    fault_class_source: str | None = Field(default=None, max_length=20)
    branch: str | None = Field(default=None, max_length=100, index=True)
    channel: str | None = Field(default=None, max_length=40)
    outcome: str | None = Field(default=None, max_length=40)
    step: str | None = Field(default=None, max_length=8)
    customer_type: str | None = Field(default=None, max_length=40)
    big_customer: bool = False
    symptom_category: str | None = Field(default=None, max_length=40)
    language: str | None = Field(default=None, max_length=8)
    author: str | None = Field(default=None, max_length=100)  # who entered a text (an operator's note)
    title: str = Field(default="", max_length=300)
    text: str = Field(default="", sa_type=Text)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # the source as it was, for the record


@dataclass
class ArchiveSummary:
    day: date
    counts: dict[str, int] = field(default_factory=dict)
    late: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "counts": self.counts, "late": self.late, "total": self.total}


# ------------------------------------------------------------------ time


def local_day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of a local day, in UTC."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_date(moment: datetime, timezone: str) -> date:
    return utc(moment).astimezone(ZoneInfo(timezone)).date()


# ------------------------------------------------------------------ classification


@dataclass
class _World:
    """What classification reads, cached for one batch."""

    s: Session
    fault_classes: set[str]
    lines: dict[str, LineRow | None] = field(default_factory=dict)
    branches: dict[str, str | None] = field(default_factory=dict)
    tickets: dict[str, Ticket | None] = field(default_factory=dict)

    def line(self, number: str | None) -> LineRow | None:
        if not number:
            return None
        if number not in self.lines:
            self.lines[number] = self.s.get(LineRow, number)
        return self.lines[number]

    def exchange_branch(self, number: str | None) -> str | None:
        if not number:
            return None
        if number not in self.branches:
            prefixes = [number[:i] for i in range(len(number), 0, -1)]
            row = self.s.exec(select(ExchangeRow).where(col(ExchangeRow.prefix).in_(prefixes))
                              .order_by(func.length(ExchangeRow.prefix).desc())).first()
            self.branches[number] = row.branch if row is not None else None
        return self.branches[number]

    def ticket(self, ticket_id: str | None) -> Ticket | None:
        if not ticket_id:
            return None
        if ticket_id not in self.tickets:
            self.tickets[ticket_id] = self.s.get(Ticket, ticket_id)
        return self.tickets[ticket_id]

    def known(self, fault_class: str) -> bool:
        return not self.fault_classes or fault_class in self.fault_classes


def classify_fault(w: _World, ticket: Ticket | None) -> tuple[str | None, str | None]:
    if ticket is None:
        return None, None
    if ticket.fault_class:
        return ticket.fault_class, "ticket"
    test = w.s.exec(select(LineTest).where(LineTest.ticket_id == ticket.id)
                    .order_by(col(LineTest.finished_at).desc(), col(LineTest.id).desc())).first()
    derived = LINE_TEST_FAULT_CLASS.get(test.result) if test is not None else None
    if derived and w.known(derived):
        return derived, "line_test"
    derived = SYMPTOM_FAULT_CLASS.get(ticket.symptom_category or "")
    if derived and w.known(derived):
        return derived, "symptom"
    return None, None


def fault_class_of(s: Session, ticket: Ticket) -> str | None:
    """The ticket's fault class as the archive classifies it (the junior's page uses it
    to suggest articles before a senior has classified the fault)."""
    return classify_fault(_World(s, {r.name for r in s.exec(select(FaultClassRow))}), ticket)[0]


def _common(w: _World, ticket: Ticket | None, number: str | None) -> dict[str, Any]:
    """The classification every kind shares: from the ticket, else from the number."""
    number = number or (ticket.fault_number if ticket is not None else None)
    line = w.line(number)
    fault_class, source = classify_fault(w, ticket)
    return {
        "ticket_id": ticket.id if ticket is not None else None,
        "fault_number": number,
        "fault_class": fault_class, "fault_class_source": source,
        "branch": (ticket.branch if ticket is not None and ticket.branch else None) or w.exchange_branch(number),
        "customer_type": line.customer_type if line is not None else "unknown",
        "big_customer": bool(line.big_customer) if line is not None else False,
        "symptom_category": ticket.symptom_category if ticket is not None else None,
        "language": ticket.language if ticket is not None else None,
        "channel": ticket.channel if ticket is not None else None,
    }


def _ticket_snapshot(w: _World, t: Ticket) -> dict[str, Any]:
    history = w.s.exec(select(TicketStatusChange).where(TicketStatusChange.ticket_id == t.id)
                       .order_by(col(TicketStatusChange.id))).all()
    reports = w.s.exec(select(func.count()).select_from(Report).where(Report.ticket_id == t.id)).one()
    return {
        "ticket": {"id": t.id, "name": t.name, "status": t.status, "sub_step": t.sub_step,
                   "created": utc(t.creation_date).isoformat(), "channel": t.channel, "origin": t.origin,
                   "symptom_text": t.symptom_text, "fault_class": t.fault_class, "centre_id": t.centre_id,
                   "dispatched_at": utc(t.dispatched_at).isoformat() if t.dispatched_at else None,
                   "deadline": utc(t.expected_resolution_date).isoformat() if t.expected_resolution_date else None,
                   "resolved": utc(t.resolution_date).isoformat() if t.resolution_date else None,
                   "chase_count": t.chase_count, "reports": int(reports)},
        "history": [{"at": utc(h.at).isoformat(), "action": h.action, "author": h.author, "from": h.from_sub_step,
                     "to": h.to_sub_step, "status": h.to_status, "reason": h.reason} for h in history],
    }


def _report_record(w: _World, c: TicketStatusChange) -> dict[str, Any] | None:
    ticket = w.ticket(c.ticket_id)
    if ticket is None:
        return None
    return {**_common(w, ticket, None), "kind": "report", "subkind": c.to_status,
            "source_table": "ticket_status_change", "source_id": c.id, "finished_at": utc(c.at),
            "outcome": c.to_sub_step or c.to_status, "author": c.author,
            "title": ticket.name[:300],
            "text": "\n".join(dict.fromkeys(x for x in (ticket.description, ticket.symptom_text, c.reason) if x)),
            "data": _ticket_snapshot(w, ticket)}


def _conversation_record(w: _World, o: ConversationOutcome) -> dict[str, Any]:
    ticket = w.ticket(o.ticket_id)
    common = _common(w, ticket, o.fault_number)
    return {**common, "kind": "conversation", "subkind": None, "source_table": "conversation_outcome",
            "source_id": o.id, "finished_at": utc(o.at), "conversation_id": o.conversation_id,
            "channel": o.channel, "language": o.language, "outcome": o.outcome, "step": o.step,
            "title": f"{o.outcome} @ {o.step}", "text": o.reason or "",
            "data": {"outcome": {"outcome": o.outcome, "step": o.step, "reason": o.reason, "channel": o.channel,
                                 "language": o.language, "ticket_id": o.ticket_id}}}


def _text_record(w: _World, table: str, row_id: int | None, ticket_id: str | None, at: datetime, subkind: str,
                 body: str, *, author: str | None = None, conversation_id: str | None = None,
                 channel: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    ticket = w.ticket(ticket_id)
    common = _common(w, ticket, None)
    return {**common, "kind": "text", "subkind": subkind, "source_table": table, "source_id": row_id,
            "finished_at": utc(at), "conversation_id": conversation_id, "author": author,
            "channel": channel or common["channel"], "outcome": ticket.status if ticket is not None else None,
            "title": (ticket.name if ticket is not None else subkind)[:300], "text": body,
            "data": {"text": body, "author": author, **(extra or {})}}


# ------------------------------------------------------------------ sources


@dataclass(frozen=True)
class _Source:
    """One kind of source row: how to find the unarchived ones finished before a time,
    and how to turn one into a record."""

    kind: str
    table: str
    model: Any
    at: Any  # the column that says when it finished
    where: Callable[[], Sequence[Any]]
    record: Callable[[_World, Any], dict[str, Any] | None]


def _not_world(ticket_id: Any) -> Any:
    """The world file's own open faults are example data, made anew at every world load:
    not the centre's work, never archived."""
    return ticket_id.not_in(select(Ticket.id).where(Ticket.origin == TicketOrigin.world.value))


def _sources() -> list[_Source]:
    return [
        _Source("report", "ticket_status_change", TicketStatusChange, TicketStatusChange.at,
                lambda: [col(TicketStatusChange.to_status).in_(FINISHED_STATUSES),
                         or_(col(TicketStatusChange.from_status).is_(None),
                             col(TicketStatusChange.from_status).not_in(FINISHED_STATUSES)),
                         _not_world(col(TicketStatusChange.ticket_id))],
                _report_record),
        _Source("conversation", "conversation_outcome", ConversationOutcome, ConversationOutcome.at,
                lambda: [], _conversation_record),
        _Source("text", "attachment", Attachment, Attachment.created, lambda: [_not_world(col(Attachment.ticket_id))],
                lambda w, a: _text_record(
                    w, "attachment", a.id, a.ticket_id, a.created, "caller_message",
                    a.text or f"[{a.mime_type}]", conversation_id=a.conversation_id,
                    extra={"attachment_id": a.id, "mime_type": a.mime_type, "kind": a.kind,
                           "recorded": a.file_path is not None})),
        _Source("text", "report", Report, Report.at,
                lambda: [col(Report.symptom_text).is_not(None), Report.symptom_text != "",
                         _not_world(col(Report.ticket_id))],
                lambda w, r: _text_record(
                    w, "report", r.id, r.ticket_id, r.at, "symptom_text", r.symptom_text or "",
                    conversation_id=r.conversation_id, channel=r.channel,
                    extra={"report_kind": r.kind, "symptom_category": r.symptom_category})),
        _Source("text", "ticket_note", TicketNote, TicketNote.at, lambda: [_not_world(col(TicketNote.ticket_id))],
                lambda w, n: _text_record(w, "ticket_note", n.id, n.ticket_id, n.at, "operator_note", n.text,
                                          author=n.author)),
    ]


def _pending(s: Session, src: _Source, end: datetime, after_id: int, limit: int) -> list[Any]:
    """The next rows, in id order after ``after_id`` (a run walks each source once: no
    batch scans again what an earlier one looked at), finished before ``end`` and not
    archived yet."""
    archived = exists().where(col(ArchiveRecord.source_table) == src.table, col(ArchiveRecord.kind) == src.kind,
                              col(ArchiveRecord.source_id) == src.model.id)
    q = (select(src.model).where(col(src.model.id) > after_id, col(src.at) < end, ~archived, *src.where())
         .order_by(src.model.id).limit(limit))
    return list(s.exec(q))


def _insert(s: Session, rows: list[dict[str, Any]]) -> int:
    """Insert, skipping any the unique key already holds (a concurrent or repeated run)."""
    if not rows:
        return 0
    dialect = s.get_bind().dialect.name
    table = ArchiveRecord.__table__  # type: ignore[attr-defined]
    insert = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    stmt = insert.on_conflict_do_nothing(index_elements=["source_table", "source_id", "kind"]).returning(table.c.id)
    # One statement for the batch (compiled once, sent as multi-row inserts by SQLAlchemy),
    # counted by RETURNING: a batch's rowcount is not reliable on every driver.
    return len(s.execute(stmt, rows).all())


def _archive_batch(s: Session, src: _Source, end: datetime, run_day: date, timezone: str, now: datetime,
                   after_id: int) -> tuple[int, int, int, int]:
    """(rows looked at, records added, of which late, the last id looked at) for one
    batch of one source."""
    pending = _pending(s, src, end, after_id, BATCH)
    if not pending:
        return 0, 0, 0, after_id
    w = _World(s, {r.name for r in s.exec(select(FaultClassRow))})
    rows = []
    late = 0
    for item in pending:
        record = src.record(w, item)
        if record is None:
            continue
        record["day"] = local_date(record["finished_at"], timezone)
        record["run_day"] = run_day
        record["archived_at"] = now
        late += record["day"] < run_day
        rows.append(record)
    return len(pending), _insert(s, rows), late, int(pending[-1].id)


def _fresh_statistics(db: Database) -> None:
    """PostgreSQL plans "not archived yet" from its statistics of archive_record; while a
    run grows the table (a first run over months of history) stale ones make it scan the
    table for every row (minutes instead of seconds). ANALYZE samples a bounded number of
    rows, so it stays cheap however large the archive is."""
    if not db.is_sqlite:
        db.call(lambda s: s.execute(text("ANALYZE archive_record")))


def archive_day(db: Database, day: date, *, timezone: str | None = None, now: datetime | None = None) -> ArchiveSummary:
    """D1: archive night ``day``: everything finished before the end of that local day
    and not archived yet. Idempotent; safe to run again, late or twice. Each batch is
    its own transaction, so a first run over a long history does not hold the store."""
    if timezone is None:
        from bot.settings import get_settings

        timezone = get_settings().timezone
    now = now or utcnow()
    _, end = local_day_bounds(day, timezone)
    if end > now:
        raise ValueError(f"{day.isoformat()} has not ended yet ({timezone}); the archive runs the day after (D1)")
    summary = ArchiveSummary(day)
    for src in _sources():
        added, last_id = 0, 0
        for batch in itertools.count():
            if batch & (batch - 1) == 0 or batch % ANALYZE_EVERY == 0:  # 0, 1, 2, 4, 8, 16, 32, 48 …
                _fresh_statistics(db)
            seen, n, late, last_id = db.call(_archive_batch, src, end, day, timezone, now, last_id)
            added += n
            summary.late += late
            if seen < BATCH:
                break
        key = src.kind if src.kind != "text" else f"text:{src.table}"
        summary.counts[key] = summary.counts.get(key, 0) + added
    log.info("archive.run", day=day.isoformat(), **{k.replace(":", "_"): v for k, v in summary.counts.items()},
             late=summary.late)
    return summary


def nightly_day(now: datetime, timezone: str) -> date:
    """The night the archive works on at ``now``: yesterday, local time."""
    return local_date(now, timezone) - timedelta(days=1)


async def nightly_archive(ctx: JobContext) -> None:
    """D1, the nightly job (bot/jobs/, ``HOTLINE_ARCHIVE_HOUR`` local time): the night
    before the run was due (a run made late by a missing leader archives the night it
    was meant for, and whatever was missed before it). Idempotent, so a retry or a
    second leader's run adds nothing."""
    import asyncio

    day = nightly_day(ctx.scheduled_for, ctx.settings.timezone)
    await asyncio.to_thread(archive_day, ctx.db, day, timezone=ctx.settings.timezone)


# ------------------------------------------------------------------ reading


@dataclass(frozen=True)
class ArchiveFilter:
    kind: str | None = None
    subkind: str | None = None
    day_from: date | None = None
    day_to: date | None = None
    fault_class: str | None = None
    branch: str | None = None
    channel: str | None = None
    outcome: str | None = None
    customer_type: str | None = None
    ticket_id: str | None = None
    q: str | None = None  # words in the title or text (substring, any script)
    late: bool | None = None

    def where(self) -> list[Any]:
        out: list[Any] = []
        for name in ("kind", "subkind", "fault_class", "branch", "channel", "outcome", "customer_type", "ticket_id"):
            value = getattr(self, name)
            if value:
                out.append(getattr(ArchiveRecord, name) == value)
        if self.day_from is not None:
            out.append(col(ArchiveRecord.day) >= self.day_from)
        if self.day_to is not None:
            out.append(col(ArchiveRecord.day) <= self.day_to)
        if self.late is True:
            out.append(col(ArchiveRecord.run_day) > col(ArchiveRecord.day))
        elif self.late is False:
            out.append(col(ArchiveRecord.run_day) == col(ArchiveRecord.day))
        if self.q:
            pattern = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            out.append(or_(col(ArchiveRecord.title).ilike(pattern, escape="\\"),
                           col(ArchiveRecord.text).ilike(pattern, escape="\\")))
        return [and_(*out)] if out else []


FILTER_FIELDS = ("kind", "subkind", "from", "to", "fault_class", "branch", "channel", "outcome", "customer_type",
                 "ticket_id", "q", "late")


def filter_from_query(query: Mapping[str, str]) -> ArchiveFilter:
    """An archive filter from a query string (the desk's form, the API, the exports);
    ServiceError (400) naming the bad field. Empty values mean "any"."""

    def value(name: str, most: int = 100) -> str | None:
        raw = (query.get(name) or "").strip()
        if len(raw) > most:
            raise ServiceError(f"{name} is longer than {most} characters", code="invalid_parameter")
        return raw or None

    def day(name: str) -> date | None:
        raw = value(name, 10)
        if raw is None:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError as e:
            raise ServiceError(f"{name} is a date YYYY-MM-DD, not {raw!r}", code="invalid_parameter") from e

    kind = value("kind")
    if kind is not None and kind not in KINDS:
        raise ServiceError(f"kind is one of {', '.join(KINDS)}", code="invalid_parameter")
    late_raw = value("late")
    if late_raw not in (None, "yes", "no", "true", "false"):
        raise ServiceError("late is yes or no", code="invalid_parameter")
    f = ArchiveFilter(kind=kind, subkind=value("subkind"), day_from=day("from"), day_to=day("to"),
                      fault_class=value("fault_class"), branch=value("branch"), channel=value("channel"),
                      outcome=value("outcome"), customer_type=value("customer_type"),
                      ticket_id=value("ticket_id", 40), q=value("q", 200),
                      late=None if late_raw is None else late_raw in ("yes", "true"))
    if f.day_from and f.day_to and f.day_from > f.day_to:
        raise ServiceError("from is after to", code="invalid_parameter")
    return f


def list_records(s: Session, f: ArchiveFilter, *, limit: int = 50, offset: int = 0) -> tuple[list[ArchiveRecord], int]:
    """The matching records, newest first, and how many match in all."""
    where = f.where()
    total = int(s.exec(select(func.count()).select_from(ArchiveRecord).where(*where)).one())
    rows = s.exec(select(ArchiveRecord).where(*where)
                  .order_by(col(ArchiveRecord.finished_at).desc(), col(ArchiveRecord.id).desc())
                  .limit(limit).offset(offset)).all()
    return list(rows), total


def iter_records(s: Session, f: ArchiveFilter) -> Iterator[ArchiveRecord]:
    """Every matching record, oldest first (exports)."""
    yield from s.exec(select(ArchiveRecord).where(*f.where())
                      .order_by(col(ArchiveRecord.finished_at), col(ArchiveRecord.id)))


def get_record(s: Session, record_id: int) -> ArchiveRecord | None:
    return s.get(ArchiveRecord, record_id)


def facets(s: Session) -> dict[str, list[str]]:
    """The values each filter can take, from what is archived (for the filter menus)."""
    out: dict[str, list[str]] = {}
    for name in ("kind", "subkind", "fault_class", "branch", "channel", "outcome", "customer_type"):
        column = getattr(ArchiveRecord, name)
        out[name] = [v for v in s.exec(select(column).where(column.is_not(None)).distinct().order_by(column)) if v]
    return out


def last_run_day(s: Session) -> date | None:
    return s.exec(select(func.max(ArchiveRecord.run_day))).one()


EXPORT_COLUMNS = ("id", "kind", "subkind", "day", "finished_at", "run_day", "late", "ticket_id",
                  "conversation_id", "fault_number", "fault_class", "fault_class_source", "branch", "channel",
                  "outcome", "step", "customer_type", "big_customer", "symptom_category", "language", "author",
                  "title", "text")


def export_row(r: ArchiveRecord, timezone: str) -> list[Any]:
    zone = ZoneInfo(timezone)
    values = {**r.model_dump(), "finished_at": utc(r.finished_at).astimezone(zone).replace(tzinfo=None),
              "late": r.run_day > r.day}
    return [values[c] for c in EXPORT_COLUMNS]


def record_dict(r: ArchiveRecord) -> dict[str, Any]:
    out = r.model_dump(mode="json")
    out["finished_at"] = utc(r.finished_at).isoformat()
    out["archived_at"] = utc(r.archived_at).isoformat()
    out["late"] = r.run_day > r.day
    return out


def export_file(s: Session, f: ArchiveFilter, fmt: str, timezone: str) -> bytes:
    """The matching records as CSV or XLSX (local times), oldest first. ServiceError when
    more match than one export carries: narrow the filters."""
    from bot.exports import csv_bytes, xlsx_bytes

    _rows, total = list_records(s, f, limit=1)
    if total > EXPORT_MAX:
        raise ServiceError(f"{total} records match; one export carries at most {EXPORT_MAX}: "
                           "narrow the filters (e.g. fewer days)", code="too_many")
    rows = (export_row(r, timezone) for r in iter_records(s, f))
    if fmt == "csv":
        return csv_bytes(EXPORT_COLUMNS, rows)
    if fmt == "xlsx":
        return xlsx_bytes(EXPORT_COLUMNS, rows, sheet="archive")
    raise ServiceError("format is csv or xlsx", code="invalid_parameter")
