"""Calls the bot places (voice/outbound.py): who may be called, and each call's record.

Only numbers the service's callers gave or used are ever dialled: a ticket's fault or
contact number, a report's contact number, the line a conversation's outcome or handoff
was about. Anything else is refused (:class:`NumberNotKnown`): the bot must not become a
dialler for arbitrary numbers. Like ``bot.store.service``, every function takes an open
:class:`~sqlmodel.Session` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.store.errors import NotFound, ServiceError
from bot.store.models import (
    ConversationOutcome,
    Handoff,
    OutboundCall,
    OutboundCallResult,
    OutboundCallState,
    Report,
    Ticket,
    utcnow,
)

RESULTS = frozenset(r.value for r in OutboundCallResult)


class NumberNotKnown(ServiceError):
    status = 422
    code = "number_not_known"


@dataclass(frozen=True)
class NewOutboundCall:
    purpose: str
    number: str  # canonical digits
    ref_id: str | None = None
    requested_by: str | None = None


def number_is_known(s: Session, number: str) -> bool:
    """The number is one a caller of the service gave or used (see the module's note)."""
    lookups = (
        select(Ticket.id).where((col(Ticket.fault_number) == number) | (col(Ticket.contact_number) == number)),
        select(Report.id).where(col(Report.contact_number) == number),
        select(ConversationOutcome.id).where(col(ConversationOutcome.fault_number) == number),
        select(Handoff.id).where(col(Handoff.fault_number) == number),
    )
    return any(s.exec(q.limit(1)).first() is not None for q in lookups)


def create(s: Session, call: NewOutboundCall) -> dict[str, Any]:
    if not number_is_known(s, call.number):
        raise NumberNotKnown("the bot only calls numbers its callers gave or used "
                             "(a ticket's fault or contact number, a report, a handled call)")
    row = OutboundCall(purpose=call.purpose, ref_id=call.ref_id, number=call.number,
                       requested_by=call.requested_by)
    s.add(row)
    s.flush()
    return _view(row)


def get(s: Session, call_id: int) -> dict[str, Any]:
    row = s.get(OutboundCall, call_id)
    if row is None:
        raise NotFound(f"no outbound call {call_id}")
    return _view(row)


def answered(s: Session, call_id: int, channel_uuid: str) -> None:
    """The callee picked up (first of the originate's +OK or the call reaching the bot)."""
    s.execute(update(OutboundCall)
              .where(col(OutboundCall.id) == call_id, col(OutboundCall.state) == OutboundCallState.dialing.value)
              .values(state=OutboundCallState.in_call.value, result=OutboundCallResult.answered.value,
                      channel_uuid=channel_uuid, answered_at=utcnow()))


def key_pressed(s: Session, call_id: int, key: str) -> None:
    s.execute(update(OutboundCall).where(col(OutboundCall.id) == call_id).values(key_pressed=key[:8]))


def finish(s: Session, call_id: int, result: str, hangup_cause: str | None) -> None:
    """The call is over: ``result`` stands unless it was answered already (an answered
    call that hangs up stays answered); the hangup cause is FreeSWITCH's, as it came."""
    if result not in RESULTS:
        raise ValueError(f"unknown outbound call result {result!r}")
    row = s.get(OutboundCall, call_id)
    if row is None or row.state == OutboundCallState.ended.value:
        return
    if row.result != OutboundCallResult.answered.value:
        row.result = result
    row.hangup_cause = (hangup_cause or "")[:64] or row.hangup_cause
    row.state = OutboundCallState.ended.value
    row.ended_at = utcnow()
    s.add(row)


def end_unfinished(s: Session, cause: str) -> int:
    """At start-up: calls a previous run left dialling or talking cannot be followed any
    more; they end as failed (or answered, if they were), with ``cause``."""
    rows = s.exec(select(OutboundCall).where(col(OutboundCall.state) != OutboundCallState.ended.value)).all()
    for row in rows:
        finish(s, row.id or 0, OutboundCallResult.failed.value, row.hangup_cause or cause)
    return len(rows)


def _view(row: OutboundCall) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": row.id, "purpose": row.purpose, "ref_id": row.ref_id, "number": row.number,
        "requested_by": row.requested_by, "state": row.state, "result": row.result,
        "hangup_cause": row.hangup_cause, "channel_uuid": row.channel_uuid, "key_pressed": row.key_pressed,
        "created": when(row.created), "answered_at": when(row.answered_at), "ended_at": when(row.ended_at),
    }
