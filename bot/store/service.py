"""The ticket service: the one place that writes tickets and what hangs off them.

Every writer (the records API the dialogue's actions call, the TMF621 ticket API, the
world loader, later the operator desk) goes through these functions, so status rules,
idempotency and report counting live in one place. Every function takes an open
:class:`~sqlmodel.Session` first, so it can be run with ``Database.run(fn, …)``; the
caller's transaction commits or rolls back the whole of it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, and_, delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot import scope as scopes
from bot.linetest.results import summary_for
from bot.store.errors import Conflict as Conflict  # re-exported: callers catch these from here
from bot.store.errors import IllegalTransition as IllegalTransition
from bot.store.errors import NotFound as NotFound
from bot.store.errors import ServiceError as ServiceError
from bot.store.models import (
    OPEN_STATUSES,
    Attachment,
    ConversationOutcome,
    EngineeringWorkRow,
    EngineeringWorkTarget,
    ExchangeRow,
    Handoff,
    HandoffQueue,
    HandoffState,
    LineRow,
    LineTest,
    MeasurementCentreRow,
    RepairmanMessage,
    Report,
    ReportKind,
    Ticket,
    TicketNote,
    TicketOrigin,
    TicketStatus,
    TicketStatusChange,
    utc,
    utcnow,
)
from bot.world.schema import OpenFault
from telnum import mask_number

log = structlog.get_logger(__name__)

# ----------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class LineTestData:
    test_id: str
    result: str
    summary: dict[str, str] | None = None  # defaults to the standard texts for ``result``
    measurements: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class ReportData:
    conversation_id: str
    channel: str
    language: str
    kind: str  # "new" | "repeat"
    fault_number: str  # canonical digits
    contact_number: str | None = None
    symptom_category: str | None = None
    symptom_text: str | None = None
    line_test: LineTestData | None = None


@dataclass(frozen=True)
class ReportResult:
    ticket_id: str
    created: bool
    report_count: int


@dataclass(frozen=True)
class OutcomeData:
    conversation_id: str
    channel: str
    language: str
    outcome: str
    step: str
    reason: str | None = None
    ticket_id: str | None = None
    fault_number: str | None = None


@dataclass(frozen=True)
class HandoffData:
    conversation_id: str
    channel: str
    language: str
    reason: str
    fault_number: str | None = None
    ticket_id: str | None = None
    line_test: dict[str, Any] | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    queue: str | None = None


@dataclass(frozen=True)
class HandoffResult:
    handoff_id: int
    queue: str
    position: int
    created: bool


@dataclass(frozen=True)
class TicketCreateData:
    description: str
    severity: str
    ticket_type: str = "fault"
    name: str | None = None
    priority: str = "Medium"
    channel: str = "api"
    fault_number: str | None = None
    contact_number: str | None = None
    symptom_category: str | None = None
    symptom_text: str | None = None
    branch: str | None = None
    notes: Sequence[tuple[str, str]] = ()  # (author, text)
    author: str = "api"  # who records it: another system, or a desk operator (J5/J6)
    conversation_id: str | None = None  # the desk: the handed-off conversation it came from
    language: str | None = None


@dataclass
class TicketView:
    """A ticket with everything the TMF621 rendering needs, loaded in one go."""

    ticket: Ticket
    report_count: int = 0
    reports: list[Report] = field(default_factory=list)
    notes: list[TicketNote] = field(default_factory=list)
    history: list[TicketStatusChange] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    last_test: LineTest | None = None
    repairman_message: RepairmanMessage | None = None


SYMPTOM_NAMES = {
    # A8 note 3: the keypad menu of common symptoms.
    "no_dial_tone": "No dial tone",
    "noise": "Noise on the line",
    "cannot_call_out": "Cannot call out",
    "cannot_receive": "Cannot receive calls",
    "broadband_down": "Broadband down",
    "other": "Other fault",
}

# ------------------------------------------------------------------ ticket ids


def new_ticket_id() -> str:
    """``TT-`` and 8 digits: short enough to read out to a caller digit by digit."""
    return f"TT-{secrets.randbelow(10**8):08d}"


def _insert_ticket(s: Session, ticket: Ticket) -> bool:
    """Insert under a savepoint; False if a unique constraint refused it."""
    try:
        with s.begin_nested():
            s.add(ticket)
            s.flush()
    except IntegrityError:
        return False
    return True


# -------------------------------------------------------------------- reports


def _conversation_ticket(s: Session, conversation_id: str, fault_number: str) -> Ticket | None:
    return s.exec(
        select(Ticket).where(Ticket.conversation_id == conversation_id, Ticket.fault_number == fault_number)
    ).first()


def open_ticket_on(s: Session, fault_number: str) -> Ticket | None:
    """The newest open ticket on a line (A5–A6: is this a repeat report?)."""
    return s.exec(
        select(Ticket)
        .where(Ticket.fault_number == fault_number, col(Ticket.status).in_(OPEN_STATUSES))
        .order_by(col(Ticket.creation_date).desc(), col(Ticket.id).desc())
    ).first()


def report_count(s: Session, ticket_id: str) -> int:
    return int(s.exec(select(func.count()).select_from(Report).where(Report.ticket_id == ticket_id)).one())


def create_report(s: Session, data: ReportData) -> ReportResult:
    """A10 (new: a ticket with its first report) or A6 (repeat: one more report).

    Idempotent: a retry from the same conversation for the same line returns what the
    first call made.
    """
    if data.kind == ReportKind.new.value:
        return _new_report(s, data)
    if data.kind == ReportKind.repeat.value:
        return _repeat_report(s, data)
    raise ServiceError(f"unknown report kind {data.kind!r}; new or repeat", code="invalid_kind")


def _new_report(s: Session, data: ReportData) -> ReportResult:
    existing = _conversation_ticket(s, data.conversation_id, data.fault_number)
    if existing is not None:
        return ReportResult(existing.id, False, report_count(s, existing.id))
    now = utcnow()
    line = s.get(LineRow, data.fault_number)
    exchange = exchange_for(s, data.fault_number)
    category = data.symptom_category or "other"
    for _attempt in range(5):
        ticket = Ticket(
            id=new_ticket_id(),
            name=SYMPTOM_NAMES.get(category, category),
            description=data.symptom_text or SYMPTOM_NAMES.get(category, category),
            severity="Major",
            # J3: big customers are served first.
            priority="High" if line is not None and line.big_customer else "Medium",
            channel=data.channel,
            fault_number=data.fault_number,
            contact_number=data.contact_number,
            symptom_category=category,
            symptom_text=data.symptom_text,
            branch=(line.branch if line is not None and line.branch else None)
            or (exchange.branch if exchange else None),
            language=data.language,
            status=TicketStatus.acknowledged.value,
            status_change_reason="reported by the caller",
            status_change_date=now,
            creation_date=now,
            last_update=now,
            origin=TicketOrigin.conversation.value,
            conversation_id=data.conversation_id,
            # J6: the bot's A10 report is a dispatch, and a senior reviews every dispatch (S2).
            sub_step="awaiting_review",
        )
        if _insert_ticket(s, ticket):
            break
        # Either a concurrent retry of this very create won the race (return its
        # ticket) or the random id collided (try another one).
        existing = _conversation_ticket(s, data.conversation_id, data.fault_number)
        if existing is not None:
            return ReportResult(existing.id, False, report_count(s, existing.id))
    else:  # pragma: no cover - five id collisions in a row
        raise Conflict("could not allocate a ticket id", code="ticket_id_exhausted")
    s.add(TicketStatusChange(ticket_id=ticket.id, from_status=None, to_status=ticket.status,
                             reason="reported by the caller", author=data.channel, at=now,
                             action="report", to_sub_step=ticket.sub_step))
    s.add(_report_row(ticket.id, data, ReportKind.new.value, now))
    if data.line_test is not None:
        record_line_test(s, data.fault_number, data.line_test, ticket_id=ticket.id)
    s.flush()
    log.info("ticket_created", ticket_id=ticket.id, conversation_id=data.conversation_id,
             fault_number=mask_number(data.fault_number), channel=data.channel)
    return ReportResult(ticket.id, True, 1)


def _report_row(ticket_id: str, data: ReportData, kind: str, at: datetime) -> Report:
    return Report(
        ticket_id=ticket_id,
        kind=kind,
        at=at,
        channel=data.channel,
        language=data.language,
        conversation_id=data.conversation_id,
        contact_number=data.contact_number,
        symptom_category=data.symptom_category,
        symptom_text=data.symptom_text,
    )


def _repeat_report(s: Session, data: ReportData) -> ReportResult:
    ticket = open_ticket_on(s, data.fault_number)
    if ticket is None:
        raise NotFound("there is no open ticket on this line to add a repeat report to", code="no_open_ticket")
    already = s.exec(
        select(Report).where(Report.ticket_id == ticket.id, Report.conversation_id == data.conversation_id)
    ).first()
    if already is None:
        now = utcnow()
        try:
            with s.begin_nested():
                s.add(_report_row(ticket.id, data, ReportKind.repeat.value, now))
                s.flush()
        except IntegrityError:
            pass  # a concurrent retry of the same report got there first
        else:
            count = report_count(s, ticket.id)
            # TMF621 mapping: a repeat report is also a note on the open ticket.
            s.add(TicketNote(ticket_id=ticket.id, author=data.channel, at=now,
                             text=f"Repeat report #{count} via {data.channel}"
                             + (f": {data.symptom_text}" if data.symptom_text else "")))
            ticket.last_update = now
            s.add(ticket)
            if data.line_test is not None:
                record_line_test(s, data.fault_number, data.line_test, ticket_id=ticket.id)
            s.flush()
            log.info("repeat_report", ticket_id=ticket.id, conversation_id=data.conversation_id,
                     fault_number=mask_number(data.fault_number), report_count=count)
    return ReportResult(ticket.id, False, report_count(s, ticket.id))


# ------------------------------------------------------------ line tests etc.


def record_line_test(s: Session, fault_number: str, test: LineTestData, *, ticket_id: str | None = None) -> int:
    summary = test.summary or summary_for(test.result)
    row = LineTest(
        ticket_id=ticket_id,
        fault_number=fault_number,
        test_id=test.test_id,
        result=test.result,
        summary_zh=summary.get("zh", ""),
        summary_en=summary.get("en", ""),
        measurements=dict(test.measurements),
        started_at=test.started_at,
        finished_at=test.finished_at or utcnow(),
    )
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


def get_ticket_row(s: Session, ticket_id: str, scope: scopes.Scope | None = None) -> Ticket:
    """The ticket; one out of ``scope`` (bot/scope.py) is not there for that reader."""
    ticket = s.get(Ticket, ticket_id)
    if ticket is None or (scope is not None and not scopes.sees_ticket(scope, ticket.branch)):
        raise NotFound(f"no ticket with id {ticket_id!r}", code="ticket_not_found")
    return ticket


def add_voice_message(
    s: Session, ticket_id: str, conversation_id: str, text: str | None, *, recording_file: str | None = None
) -> tuple[int, bool]:
    """A11: the caller's message for the repairman, typed in chat (``text``) or recorded
    on the phone (``recording_file``, a WAV under the recordings folder). Returns
    (id, created); the same message from the same conversation on a ticket is stored once."""
    if (text is None) == (recording_file is None):
        raise ValueError("a voice message is either text or a recording")
    ticket = get_ticket_row(s, ticket_id)
    key = text if text is not None else f"recording:{recording_file}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    mime_type = "text/plain" if text is not None else "audio/wav"

    def existing() -> Attachment | None:
        return s.exec(
            select(Attachment).where(
                Attachment.ticket_id == ticket.id,
                Attachment.conversation_id == conversation_id,
                Attachment.content_hash == digest,
            )
        ).first()

    found = existing()
    if found is None:
        row = Attachment(ticket_id=ticket.id, kind="voiceMessage", mime_type=mime_type, text=text,
                         file_path=recording_file, content_hash=digest, conversation_id=conversation_id)
        try:
            with s.begin_nested():
                s.add(row)
                s.flush()
        except IntegrityError:
            found = existing()
        else:
            ticket.last_update = utcnow()
            s.add(ticket)
            assert row.id is not None
            return row.id, True
    assert found is not None and found.id is not None
    return found.id, False


def add_repairman_message(s: Session, ticket_id: str, zh: str, en: str, *, at: datetime | None = None) -> int:
    ticket = get_ticket_row(s, ticket_id)
    row = RepairmanMessage(ticket_id=ticket.id, zh=zh, en=en, at=at or utcnow())
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


# ------------------------------------------------------------------ outcomes


def record_outcome(s: Session, data: OutcomeData) -> int:
    row = ConversationOutcome(
        conversation_id=data.conversation_id, channel=data.channel, language=data.language,
        outcome=data.outcome, step=data.step, reason=data.reason, ticket_id=data.ticket_id,
        fault_number=data.fault_number,
    )
    s.add(row)
    s.flush()
    assert row.id is not None
    log.info("conversation_outcome", conversation_id=data.conversation_id, outcome=data.outcome, step=data.step,
             fault_number=mask_number(data.fault_number) if data.fault_number else None)
    return row.id


def outcome_dict(row: ConversationOutcome) -> dict[str, Any]:
    return {
        "id": row.id, "conversation_id": row.conversation_id, "channel": row.channel,
        "language": row.language, "outcome": row.outcome, "step": row.step, "reason": row.reason,
        "ticket_id": row.ticket_id, "fault_number": row.fault_number, "at": utc(row.at).isoformat(),
    }


def list_outcomes(s: Session, conversation_id: str | None = None, *, limit: int = 500) -> list[dict[str, Any]]:
    """Oldest first: the last one is the conversation's latest outcome."""
    q = select(ConversationOutcome)
    if conversation_id is not None:
        q = q.where(ConversationOutcome.conversation_id == conversation_id)
    q = q.order_by(col(ConversationOutcome.at), col(ConversationOutcome.id)).limit(limit)
    return [outcome_dict(r) for r in s.exec(q).all()]


def conversation_reported(s: Session, conversation_id: str) -> bool:
    """Did this conversation put a new report on a ticket (A10)?"""
    return s.exec(
        select(Report.id).where(Report.conversation_id == conversation_id, Report.kind == ReportKind.new)
    ).first() is not None


def latest_outcome(s: Session, conversation_id: str) -> dict[str, Any] | None:
    row = s.exec(
        select(ConversationOutcome)
        .where(ConversationOutcome.conversation_id == conversation_id)
        .order_by(col(ConversationOutcome.at).desc(), col(ConversationOutcome.id).desc())
    ).first()
    return outcome_dict(row) if row is not None else None


# ------------------------------------------------------------------ handoffs


def queue_handoff(s: Session, data: HandoffData) -> HandoffResult:
    """J1: put the caller in the queue for a human seat. A conversation is queued once:
    a retry returns the handoff already waiting."""
    waiting = s.exec(
        select(Handoff).where(Handoff.conversation_id == data.conversation_id,
                              Handoff.state == HandoffState.queued.value)
    ).first()
    if waiting is not None:
        assert waiting.id is not None
        return HandoffResult(waiting.id, waiting.queue, _position(s, waiting), False)
    queue = data.queue or HandoffQueue.junior.value
    if data.fault_number and queue == HandoffQueue.junior.value:
        line = s.get(LineRow, data.fault_number)
        if line is not None and line.big_customer:
            queue = HandoffQueue.senior.value  # J3: big customers go straight to a senior
    row = Handoff(
        conversation_id=data.conversation_id, channel=data.channel, language=data.language,
        reason=data.reason, fault_number=data.fault_number, ticket_id=data.ticket_id,
        line_test=data.line_test, transcript=list(data.transcript), queue=queue,
    )
    s.add(row)
    s.flush()
    assert row.id is not None
    position = _position(s, row)
    log.info("handoff_queued", handoff_id=row.id, conversation_id=data.conversation_id, queue=queue,
             position=position, fault_number=mask_number(data.fault_number) if data.fault_number else None)
    return HandoffResult(row.id, queue, position, True)


def _position(s: Session, row: Handoff) -> int:
    assert row.id is not None
    return int(s.exec(
        select(func.count()).select_from(Handoff).where(
            Handoff.queue == row.queue, Handoff.state == HandoffState.queued.value, col(Handoff.id) <= row.id
        )
    ).one())


def handoff_dict(row: Handoff) -> dict[str, Any]:
    return {
        "handoff_id": row.id, "conversation_id": row.conversation_id, "channel": row.channel,
        "language": row.language, "reason": row.reason, "fault_number": row.fault_number,
        "ticket_id": row.ticket_id, "line_test": row.line_test, "transcript": row.transcript,
        "queue": row.queue, "state": row.state, "created": utc(row.created).isoformat(),
        "taken_by": row.taken_by, "taken_at": utc(row.taken_at).isoformat() if row.taken_at else None,
    }


def list_handoffs(s: Session, state: str | None = None, queue: str | None = None) -> list[dict[str, Any]]:
    q = select(Handoff)
    if state is not None:
        q = q.where(Handoff.state == state)
    if queue is not None:
        q = q.where(Handoff.queue == queue)
    return [handoff_dict(r) for r in s.exec(q.order_by(col(Handoff.id))).all()]


def take_handoff(s: Session, handoff_id: int, operator: str, *, now: datetime | None = None) -> Handoff:
    """J1 → J2: an operator takes a waiting caller. The state check and the write are
    one conditional UPDATE, so of two operators taking at once exactly one wins and
    the other gets a Conflict naming who has it."""
    now = now or utcnow()
    result = s.execute(
        update(Handoff)
        .where(col(Handoff.id) == handoff_id, col(Handoff.state) == HandoffState.queued.value)
        .values(state=HandoffState.taken.value, taken_by=operator, taken_at=now)
    )
    row = s.get(Handoff, handoff_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no handoff {handoff_id}")
    if cast("CursorResult[Any]", result).rowcount != 1:
        if row.state == HandoffState.taken.value:
            raise Conflict(f"handoff {handoff_id} was already taken by {row.taken_by}", code="already_taken")
        raise Conflict(f"handoff {handoff_id} is {row.state}, not waiting", code="not_waiting")
    log.info("handoff_taken", handoff_id=handoff_id, operator=operator, queue=row.queue)
    return row


# ----------------------------------------------------------------- inventory


def _prefixes(number: str) -> list[str]:
    return [number[:i] for i in range(1, len(number) + 1)]


def exchange_for(s: Session, number: str) -> ExchangeRow | None:
    """A4: the exchange whose prefix is the longest match for ``number``."""
    rows = s.exec(select(ExchangeRow).where(col(ExchangeRow.prefix).in_(_prefixes(number)))).all()
    return max(rows, key=lambda e: len(e.prefix), default=None)


def exchange_dict(e: ExchangeRow | None) -> dict[str, str] | None:
    return None if e is None else {"prefix": e.prefix, "name": e.name, "branch": e.branch}


def engineering_for(s: Session, number: str, *, now: datetime | None = None) -> EngineeringWorkRow | None:
    """A5: a current engineering work covering the line or one of its prefixes."""
    now = now or utcnow()
    targets = s.exec(
        select(EngineeringWorkTarget).where(
            or_(
                and_(col(EngineeringWorkTarget.kind) == "line", col(EngineeringWorkTarget.value) == number),
                and_(col(EngineeringWorkTarget.kind) == "prefix",
                     col(EngineeringWorkTarget.value).in_(_prefixes(number))),
            )
        )
    ).all()
    work_ids = sorted({t.work_id for t in targets})
    for work_id in work_ids:
        work = s.get(EngineeringWorkRow, work_id)
        if work is not None and (work.until is None or utc(work.until) > now):
            return work
    return None


def latest_line_test(s: Session, ticket_id: str) -> LineTest | None:
    return s.exec(
        select(LineTest).where(LineTest.ticket_id == ticket_id)
        .order_by(col(LineTest.finished_at).desc(), col(LineTest.id).desc())
    ).first()


def latest_repairman_message(s: Session, ticket_id: str) -> RepairmanMessage | None:
    return s.exec(
        select(RepairmanMessage).where(RepairmanMessage.ticket_id == ticket_id)
        .order_by(col(RepairmanMessage.at).desc(), col(RepairmanMessage.id).desc())
    ).first()


def _sub_step(ticket: Ticket) -> str:
    from bot.store import workflow  # the workflow builds on this module's errors and rows

    return workflow.sub_step_of(ticket)


def lookup_number(s: Session, number: str, kind: str) -> dict[str, Any]:
    """What the dialogue needs to know about a (canonical) number, A4–A6.

    State precedence: unknown_prefix > repaired > engineering > open_fault > normal.
    """
    exchange = exchange_for(s, number)
    line = s.get(LineRow, number)
    work = engineering_for(s, number) if exchange is not None else None
    ticket = open_ticket_on(s, number) if exchange is not None else None
    if exchange is None:
        state = "unknown_prefix"  # A4
    elif line is not None and line.repaired:
        state = "repaired"  # A5, V4 repaired variant
    elif work is not None:
        state = "engineering"  # A5, V4 engineering variant
    elif ticket is not None:
        state = "open_fault"  # A6
    else:
        state = "normal"  # A8
    open_fault: dict[str, Any] | None = None
    if ticket is not None:
        message = latest_repairman_message(s, ticket.id)
        test = latest_line_test(s, ticket.id)
        open_fault = {
            "ticket_id": ticket.id,
            "report_count": report_count(s, ticket.id),
            # J4 automated (issue 13 item 4): where the ticket is, and when it should be done.
            "status": ticket.status,
            "sub_step": _sub_step(ticket),
            "expected_resolution": utc(ticket.expected_resolution_date).isoformat()
            if ticket.expected_resolution_date else None,
            "repairman_message": None if message is None else {"zh": message.zh, "en": message.en},
            "last_test": None if test is None else {
                "result": test.result,
                "at": utc(test.finished_at).isoformat(),
                "summary": {"zh": test.summary_zh, "en": test.summary_en},
            },
        }
    return {
        "number": number,
        "kind": kind,
        "known_prefix": exchange is not None,
        "exchange": exchange_dict(exchange),
        "line": None if line is None else {
            "owner": line.owner,
            "big_customer": line.big_customer,
            "customer_type": line.customer_type,
            "branch": line.branch or (exchange.branch if exchange else None),
        },
        "state": state,
        "engineering": None if work is None else {
            "id": work.id,
            "description": {"zh": work.description_zh, "en": work.description_en},
            "until": utc(work.until).isoformat() if work.until else None,
        },
        "open_fault": open_fault,
    }


# -------------------------------------------------------------- ticket views


def _views(s: Session, tickets: Sequence[Ticket]) -> list[TicketView]:
    """Load every ticket's children with one query per table, not per ticket."""
    views = {t.id: TicketView(ticket=t) for t in tickets}
    if not views:
        return []
    ids = list(views)
    for r in s.exec(select(Report).where(col(Report.ticket_id).in_(ids)).order_by(col(Report.at), col(Report.id))):
        views[r.ticket_id].reports.append(r)
    for n in s.exec(select(TicketNote).where(col(TicketNote.ticket_id).in_(ids)).order_by(col(TicketNote.id))):
        views[n.ticket_id].notes.append(n)
    for h in s.exec(select(TicketStatusChange).where(col(TicketStatusChange.ticket_id).in_(ids))
                    .order_by(col(TicketStatusChange.id))):
        views[h.ticket_id].history.append(h)
    for a in s.exec(select(Attachment).where(col(Attachment.ticket_id).in_(ids)).order_by(col(Attachment.id))):
        views[a.ticket_id].attachments.append(a)
    for lt in s.exec(select(LineTest).where(col(LineTest.ticket_id).in_(ids))
                     .order_by(col(LineTest.finished_at), col(LineTest.id))):
        assert lt.ticket_id is not None
        views[lt.ticket_id].last_test = lt  # ascending order: the last one wins
    for m in s.exec(select(RepairmanMessage).where(col(RepairmanMessage.ticket_id).in_(ids))
                    .order_by(col(RepairmanMessage.at), col(RepairmanMessage.id))):
        views[m.ticket_id].repairman_message = m
    for v in views.values():
        v.report_count = len(v.reports)
    return [views[t.id] for t in tickets]


def get_ticket(s: Session, ticket_id: str, scope: scopes.Scope | None = None) -> TicketView:
    return _views(s, [get_ticket_row(s, ticket_id, scope)])[0]


def list_tickets(
    s: Session,
    *,
    fault_number: str | None = None,
    status: Iterable[str] | None = None,
    channel: Iterable[str] | None = None,
    offset: int = 0,
    limit: int = 100,
    scope: scopes.Scope | None = None,
) -> tuple[list[TicketView], int]:
    """Newest first, with the total count before paging (for X-Total-Count); only what
    ``scope`` (bot/scope.py) may see."""
    conditions: list[Any] = scopes.ticket_conditions(scope) if scope is not None else []
    if fault_number is not None:
        conditions.append(Ticket.fault_number == fault_number)
    if status is not None:
        conditions.append(col(Ticket.status).in_(list(status)))
    if channel is not None:
        conditions.append(col(Ticket.channel).in_(list(channel)))
    total = int(s.exec(select(func.count()).select_from(Ticket).where(*conditions)).one())
    rows = s.exec(
        select(Ticket).where(*conditions)
        .order_by(col(Ticket.creation_date).desc(), col(Ticket.id).desc()).offset(offset).limit(limit)
    ).all()
    return _views(s, rows), total


def create_ticket(s: Session, data: TicketCreateData) -> TicketView:
    """POST /troubleTicket: a ticket raised by another system, not by a conversation."""
    now = utcnow()
    category = data.symptom_category
    for _attempt in range(5):
        ticket = Ticket(
            id=new_ticket_id(), name=data.name or SYMPTOM_NAMES.get(category or "", "Fault report"),
            description=data.description, severity=data.severity, priority=data.priority,
            ticket_type=data.ticket_type, channel=data.channel, fault_number=data.fault_number,
            contact_number=data.contact_number, symptom_category=category, symptom_text=data.symptom_text,
            branch=data.branch, status=TicketStatus.acknowledged.value, status_change_reason="created",
            status_change_date=now, creation_date=now, last_update=now, origin=TicketOrigin.api.value,
            sub_step="new", conversation_id=data.conversation_id, language=data.language,
        )
        if data.branch is None and data.fault_number:
            exchange = exchange_for(s, data.fault_number)
            ticket.branch = exchange.branch if exchange else None
        if _insert_ticket(s, ticket):
            break
    else:  # pragma: no cover
        raise Conflict("could not allocate a ticket id", code="ticket_id_exhausted")
    s.add(TicketStatusChange(ticket_id=ticket.id, from_status=None, to_status=ticket.status, reason="created",
                             author=data.author, at=now, action="create", to_sub_step=ticket.sub_step))
    for author, text in data.notes:
        s.add(TicketNote(ticket_id=ticket.id, author=author, text=text, at=now))
    s.flush()
    log.info("ticket_created", ticket_id=ticket.id, origin="api",
             fault_number=mask_number(data.fault_number) if data.fault_number else None)
    return get_ticket(s, ticket.id)


def patch_ticket(
    s: Session,
    ticket_id: str,
    *,
    status: str | None = None,
    status_change_reason: str | None = None,
    notes: Sequence[tuple[str, str]] = (),
    severity: str | None = None,
    priority: str | None = None,
    author: str = "api",
    expected_version: int | None = None,
    scope: scopes.Scope | None = None,
) -> TicketView:
    """PATCH /troubleTicket/{id}: status (through the workflow's table), notes, severity,
    priority. ``expected_version`` (If-Match) refuses the patch if the ticket changed."""
    from bot.store import workflow  # the workflow builds on this module's errors and rows

    ticket = get_ticket_row(s, ticket_id, scope)
    if expected_version is not None and expected_version != ticket.version:
        raise workflow.stale_conflict(s, ticket, expected_version)
    now = utcnow()
    if status is not None and status != ticket.status:
        action = workflow.action_for_status(ticket, status)
        workflow.perform(s, ticket_id, action, workflow.Actor(author, workflow.API), reason=status_change_reason,
                         expected_version=ticket.version, now=now)
    elif status_change_reason is not None and status is None:
        raise ServiceError("statusChangeReason needs a status", code="invalid_patch")
    if severity is not None:
        ticket.severity = severity
    if priority is not None:
        ticket.priority = priority
    for note_author, text in notes:
        s.add(TicketNote(ticket_id=ticket.id, author=note_author, text=text, at=now))
    if severity is not None or priority is not None or notes:
        ticket.version += 1
    ticket.last_update = now
    s.add(ticket)
    s.flush()
    return get_ticket(s, ticket.id)


# --------------------------------------------------------------- the world


def add_world_fault(s: Session, fault: OpenFault) -> Ticket:
    """An open fault from the world file: a ticket in progress with ``fault.reports``
    reports, the repairman's message and the last test (A6 plays one of them)."""
    exchange = exchange_for(s, fault.line)
    line = s.get(LineRow, fault.line)
    opened = fault.opened
    category = fault.symptom
    ticket = Ticket(
        id=fault.id, name=SYMPTOM_NAMES.get(category, category),
        description=fault.description or SYMPTOM_NAMES.get(category, category), severity="Major",
        priority="High" if line is not None and line.big_customer else "Medium",
        channel="world", fault_number=fault.line, symptom_category=category,
        symptom_text=fault.description or None,
        branch=(line.branch if line is not None and line.branch else None) or (exchange.branch if exchange else None),
        status=TicketStatus.inProgress.value, status_change_reason="open fault in the world file",
        status_change_date=opened, creation_date=opened, last_update=opened,
        sub_step="dispatched", dispatched_at=opened,
        expected_resolution_date=fault.deadline, origin=TicketOrigin.world.value, world_fault_id=fault.id,
    )
    s.add(ticket)
    s.flush()
    centre = s.exec(select(MeasurementCentreRow).where(MeasurementCentreRow.branch == ticket.branch)
                    .order_by(col(MeasurementCentreRow.id))).first() if ticket.branch else None
    ticket.centre_id = centre.id if centre is not None else None
    s.add(TicketStatusChange(ticket_id=ticket.id, from_status=None, to_status=ticket.status,
                             reason="open fault in the world file", author="world", at=opened,
                             action="world", to_sub_step=ticket.sub_step))
    for i in range(fault.reports):
        s.add(Report(ticket_id=ticket.id, kind=ReportKind.new.value if i == 0 else ReportKind.repeat.value,
                     at=opened, channel="world", symptom_category=category,
                     symptom_text=fault.description or None))
    if fault.repairman_message is not None:
        s.add(RepairmanMessage(ticket_id=ticket.id, zh=fault.repairman_message.zh,
                               en=fault.repairman_message.en, at=opened))
    if fault.last_test is not None:
        record_line_test(s, fault.line, LineTestData(test_id=f"world-{fault.id}", result=fault.last_test.result.value,
                                                     finished_at=fault.last_test.at), ticket_id=ticket.id)
    s.flush()
    return ticket


def delete_world_tickets(s: Session) -> int:
    """Children go by ON DELETE CASCADE."""
    result = s.execute(delete(Ticket).where(col(Ticket.origin) == TicketOrigin.world.value))
    return int(getattr(result, "rowcount", 0) or 0)


def delete_all_conversation_data(s: Session) -> None:
    """``world load --reset``: every ticket, report, outcome and handoff goes."""
    s.execute(delete(LineTest))
    s.execute(delete(Ticket))
    s.execute(delete(ConversationOutcome))
    s.execute(delete(Handoff))


def get_attachment(s: Session, attachment_id: int, scope: scopes.Scope | None = None) -> Attachment:
    row = s.get(Attachment, attachment_id)
    if row is not None and scope is not None:
        ticket = s.get(Ticket, row.ticket_id)
        if not scopes.sees_ticket(scope, ticket.branch if ticket is not None else None):
            row = None
    if row is None:
        raise NotFound(f"no attachment with id {attachment_id}", code="attachment_not_found")
    s.expunge(row)
    return row
