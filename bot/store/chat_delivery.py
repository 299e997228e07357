"""What each chat conversation was last given (issue 14, resuming after a crash).

One row per conversation: the id of the last input whose reply reached the user
(``delivered_message_id``), the tickets they were told of, their language and step.
The bot writes it after each reply is written out; after a restart (or on another bot
process) it compares it with the last input Rasa saved: when they differ, the reply to
that input never reached the user and is given again instead of taking a new input, and
a ticket stored but never told of is announced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON
from sqlmodel import Field, Session, SQLModel, col, select

from bot.store.models import Report, _when, utcnow


class ChatDelivery(SQLModel, table=True):
    __tablename__ = "chat_delivery"

    conversation_id: str = Field(primary_key=True, max_length=128)
    channel: str = Field(max_length=40)
    language: str | None = Field(default=None, max_length=8)
    last_step: str | None = Field(default=None, max_length=8)
    delivered_message_id: str | None = Field(default=None, max_length=64)
    announced_ticket_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    updated: datetime = _when()


@dataclass(frozen=True)
class Delivered:
    delivered_message_id: str | None
    language: str | None
    last_step: str | None
    announced: frozenset[str]


def get(s: Session, conversation_id: str) -> Delivered | None:
    row = s.get(ChatDelivery, conversation_id)
    if row is None:
        return None
    return Delivered(row.delivered_message_id, row.language, row.last_step, frozenset(row.announced_ticket_ids or []))


def record(s: Session, conversation_id: str, channel: str, *, message_id: str | None, language: str | None,
           last_step: str | None, announced: list[str] | None = None) -> None:
    """The reply to ``message_id`` was written out (and told of ``announced`` tickets)."""
    row = s.get(ChatDelivery, conversation_id)
    if row is None:
        row = ChatDelivery(conversation_id=conversation_id, channel=channel)
    if message_id is not None:
        row.delivered_message_id = message_id
    row.language = language or row.language
    row.last_step = last_step or row.last_step
    if announced:
        row.announced_ticket_ids = sorted({*(row.announced_ticket_ids or []), *announced})
    row.updated = utcnow()
    s.add(row)


def new_tickets(s: Session, conversation_id: str) -> list[str]:
    """The tickets this conversation's new reports made (A10), oldest first."""
    rows = s.exec(select(Report.ticket_id).where(Report.conversation_id == conversation_id, Report.kind == "new")
                  .order_by(col(Report.id))).all()
    return list(dict.fromkeys(rows))
