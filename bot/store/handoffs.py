"""J1: a caller waiting for a human seat, and the live text conversation once an
operator took them (web chat). The phone and the web chat ask here how the wait is
going; the operator desk posts messages and finishes the conversation.

Every state change is one conditional UPDATE on the handoff's state, so a caller going
back to the bot and an operator taking them at the same moment end one way only: the
first write wins, the other gets a :class:`Conflict` saying what happened. Like
``bot.store.service``, every function takes an open :class:`~sqlmodel.Session` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, func, update
from sqlmodel import Session, col, select

from bot.store.errors import Conflict, NotFound, ServiceError
from bot.store.models import (
    ConversationOutcome,
    DeskUser,
    Handoff,
    HandoffMessage,
    HandoffMessageSender,
    HandoffState,
    Outcome,
    utc,
    utcnow,
)

log = structlog.get_logger(__name__)

MAX_MESSAGE = 2000  # characters of one live-chat message
MAX_MESSAGES_PER_POLL = 200
ENDED_STATES = frozenset({HandoffState.abandoned.value, HandoffState.returned.value, HandoffState.done.value})


@dataclass(frozen=True)
class HandoffStatus:
    """How one handoff stands, as the caller's channel sees it."""

    handoff_id: int
    conversation_id: str
    channel: str
    language: str
    state: str
    queue: str
    position: int | None  # place in the queue while waiting (1 = next)
    waited_s: float  # waiting so far, or until taken / ended
    return_offers: int
    operator: str | None = None  # the operator's display name once taken
    operator_username: str | None = None
    operator_extension: str | None = None  # the SIP phone a call is bridged to (J1)
    reason: str = ""
    fault_number: str | None = None
    ticket_id: str | None = None
    end_reason: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """For the caller's web chat: no usernames or extensions."""
        return {
            "handoff_id": self.handoff_id, "state": self.state, "queue": self.queue, "position": self.position,
            "waited_s": round(self.waited_s, 1), "return_offers": self.return_offers, "operator": self.operator,
            "messages": self.messages,
        }


def _get(s: Session, handoff_id: int) -> Handoff:
    row = s.get(Handoff, handoff_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no handoff {handoff_id}", code="handoff_not_found")
    return row


def latest_for_conversation(s: Session, conversation_id: str) -> Handoff | None:
    """The conversation's newest handoff (a caller may go back to the bot and ask again)."""
    return s.exec(
        select(Handoff).where(Handoff.conversation_id == conversation_id).order_by(col(Handoff.id).desc())
    ).first()


def position(s: Session, row: Handoff) -> int | None:
    if row.state != HandoffState.queued.value or row.id is None:
        return None
    return int(s.exec(
        select(func.count()).select_from(Handoff).where(
            Handoff.queue == row.queue, Handoff.state == HandoffState.queued.value, col(Handoff.id) <= row.id)
    ).one())


def waited_s(row: Handoff, now: datetime | None = None) -> float:
    """From joining the queue to being taken, leaving, or now."""
    end = row.taken_at or row.ended_at or now or utcnow()
    return max(0.0, (utc(end) - utc(row.created)).total_seconds())


def _user(s: Session, username: str | None) -> DeskUser | None:
    if not username:
        return None
    return s.exec(select(DeskUser).where(DeskUser.username == username)).first()


def message_dict(m: HandoffMessage, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": m.id, "sender": m.sender, "text": m.text, "at": utc(m.at).isoformat(),
        "name": names.get(m.author or "") if m.sender == HandoffMessageSender.operator.value else None,
    }


def messages_since(s: Session, handoff_id: int, since_id: int = 0) -> list[dict[str, Any]]:
    rows = s.exec(
        select(HandoffMessage).where(HandoffMessage.handoff_id == handoff_id, col(HandoffMessage.id) > since_id)
        .order_by(col(HandoffMessage.id)).limit(MAX_MESSAGES_PER_POLL)
    ).all()
    authors = {m.author for m in rows if m.author}
    names = {u.username: u.display_name for u in s.exec(
        select(DeskUser).where(col(DeskUser.username).in_(authors))).all()} if authors else {}
    return [message_dict(m, names) for m in rows]


def status(s: Session, handoff_id: int, *, since_id: int | None = None, now: datetime | None = None) -> HandoffStatus:
    """The handoff's state, place in the queue, wait so far, the operator once taken and,
    with ``since_id``, the live-chat messages after that id."""
    return _status(s, _get(s, handoff_id), since_id, now)


def status_for_conversation(
    s: Session, conversation_id: str, *, since_id: int | None = None, now: datetime | None = None
) -> HandoffStatus | None:
    row = latest_for_conversation(s, conversation_id)
    return None if row is None else _status(s, row, since_id, now)


def _status(s: Session, row: Handoff, since_id: int | None, now: datetime | None) -> HandoffStatus:
    assert row.id is not None
    user = _user(s, row.taken_by)
    return HandoffStatus(
        handoff_id=row.id, conversation_id=row.conversation_id, channel=row.channel, language=row.language,
        state=row.state, queue=row.queue, position=position(s, row), waited_s=waited_s(row, now),
        return_offers=row.return_offers,
        operator=(user.display_name if user else row.taken_by) if row.taken_by else None,
        operator_username=row.taken_by, operator_extension=user.extension if user else None,
        reason=row.reason, fault_number=row.fault_number, ticket_id=row.ticket_id, end_reason=row.end_reason,
        messages=messages_since(s, row.id, since_id) if since_id is not None else [],
    )


# ------------------------------------------------------------------ the wait


def _conditional(s: Session, handoff_id: int, from_state: str, **values: Any) -> tuple[bool, Handoff]:
    """UPDATE … WHERE state = from_state; (whether this write won, the row as it is now)."""
    result = s.execute(
        update(Handoff).where(col(Handoff.id) == handoff_id, col(Handoff.state) == from_state).values(**values)
    )
    row = _get(s, handoff_id)
    return cast("CursorResult[Any]", result).rowcount == 1, row


def _refusal(row: Handoff, wanted: str) -> Conflict:
    if row.state == HandoffState.taken.value:
        return Conflict(f"handoff {row.id} was taken by an operator", code="already_taken")
    return Conflict(f"handoff {row.id} is {row.state}, not {wanted}", code=f"handoff_{row.state}")


def count_offer(s: Session, handoff_id: int) -> int:
    """J1: the caller was offered a return to the bot once more; the count so far."""
    ok, row = _conditional(s, handoff_id, HandoffState.queued.value, return_offers=col(Handoff.return_offers) + 1)
    if not ok:
        raise _refusal(row, "waiting")
    return row.return_offers


def return_to_bot(s: Session, handoff_id: int, *, now: datetime | None = None) -> Handoff:
    """J1 "on yes, back to the bot": only while still waiting. An operator who took the
    caller a moment earlier wins (Conflict ``already_taken``)."""
    now = now or utcnow()
    ok, row = _conditional(s, handoff_id, HandoffState.queued.value, state=HandoffState.returned.value,
                           ended_at=now, end_reason="the caller went back to the automated service")
    if not ok:
        raise _refusal(row, "waiting")
    log.info("handoff_returned", handoff_id=handoff_id, waited_s=round(waited_s(row), 1),
             offers=row.return_offers)
    return row


def abandon(s: Session, handoff_id: int, reason: str, *, now: datetime | None = None) -> float:
    """The caller left while waiting (hung up, closed the chat): abandoned, with the wait,
    and a conversation outcome ``abandoned`` at step J1. Returns the seconds waited."""
    now = now or utcnow()
    row = _get(s, handoff_id)
    waited = max(0.0, (now - utc(row.created)).total_seconds())
    text = f"{reason}; waited {waited:.0f} s for an operator"
    ok, row = _conditional(s, handoff_id, HandoffState.queued.value, state=HandoffState.abandoned.value,
                           ended_at=now, end_reason=text)
    if not ok:
        raise _refusal(row, "waiting")
    s.add(ConversationOutcome(conversation_id=row.conversation_id, channel=row.channel, language=row.language,
                              outcome=Outcome.abandoned.value, step="J1", reason=text, ticket_id=row.ticket_id,
                              fault_number=row.fault_number, at=now))
    s.flush()
    log.info("handoff_abandoned", handoff_id=handoff_id, waited_s=round(waited, 1), reason=reason)
    return waited


def caller_left(s: Session, handoff_id: int, reason: str, *, now: datetime | None = None,
                on_phone: bool = False) -> str:
    """The caller closed the chat or hung up: abandoned while waiting, the live chat or
    bridged call finished once taken (the operator sees a note). Returns the state it
    ended in ("" if it had ended)."""
    left = "hung up" if on_phone else "left the chat"
    row = _get(s, handoff_id)
    if row.state == HandoffState.queued.value:
        try:
            abandon(s, handoff_id, reason, now=now)
            return HandoffState.abandoned.value
        except Conflict:
            row = _get(s, handoff_id)  # taken in the meantime: finish it below
    if row.state == HandoffState.taken.value:
        ok, _row = _conditional(s, handoff_id, HandoffState.taken.value, state=HandoffState.done.value,
                                ended_at=now or utcnow(), end_reason=f"the caller {left} ({reason})")
        if ok:
            s.add(HandoffMessage(handoff_id=handoff_id, sender=HandoffMessageSender.system.value,
                                 text=f"The caller {left}."))
            s.flush()
            return HandoffState.done.value
    return ""


# ------------------------------------------------------------------ the live chat


def _clean(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ServiceError("the message is empty", code="empty_message")
    if len(text) > MAX_MESSAGE:
        raise ServiceError(f"the message is too long (at most {MAX_MESSAGE} characters)", code="message_too_long")
    return text.strip()


def _may_speak(row: Handoff, operator: str, admin: bool) -> None:
    if not admin and row.taken_by != operator:
        raise Conflict(f"handoff {row.id} was taken by {row.taken_by or 'nobody'}, not by you", code="not_taker")


def add_message(
    s: Session, handoff_id: int, sender: str, text: str, *, author: str | None = None, admin: bool = False
) -> dict[str, Any]:
    """One line of the live chat, from the caller or from the operator who took them
    (or an admin). Only while taken: before, nobody is there to read it; after, it is over."""
    body = _clean(text)
    if sender not in (HandoffMessageSender.caller.value, HandoffMessageSender.operator.value):
        raise ServiceError(f"unknown sender {sender!r}", code="bad_sender")
    row = _get(s, handoff_id)
    if sender == HandoffMessageSender.operator.value:
        if not author:
            raise ServiceError("an operator's message needs its author", code="no_author")
        _may_speak(row, author, admin)
    if row.state != HandoffState.taken.value:
        code = "not_taken" if row.state == HandoffState.queued.value else "handoff_ended"
        raise Conflict(f"handoff {handoff_id} is {row.state}: no live chat now", code=code)
    message = HandoffMessage(handoff_id=handoff_id, sender=sender,
                             author=author if sender == HandoffMessageSender.operator.value else None, text=body)
    s.add(message)
    s.flush()
    user = _user(s, message.author)
    return message_dict(message, {user.username: user.display_name} if user else {})


def finish(s: Session, handoff_id: int, operator: str, *, admin: bool = False, now: datetime | None = None) -> Handoff:
    """The operator ends the live chat (J1 → done)."""
    row = _get(s, handoff_id)
    _may_speak(row, operator, admin)
    ok, row = _conditional(s, handoff_id, HandoffState.taken.value, state=HandoffState.done.value,
                           ended_at=now or utcnow(), end_reason=f"finished by {operator}")
    if not ok:
        raise _refusal(row, "taken")
    s.add(HandoffMessage(handoff_id=handoff_id, sender=HandoffMessageSender.system.value,
                         text="The operator ended the conversation."))
    s.flush()
    log.info("handoff_finished", handoff_id=handoff_id, operator=operator)
    return row
