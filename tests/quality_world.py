"""A small hand-made day of every post's work for the quality inspection's tests (Q1–Q8):
counted by hand in tests/unit/test_quality.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session

from bot.store.models import (
    ConversationOutcome,
    DeskTask,
    DeskUser,
    Handoff,
    Ticket,
    TicketStatusChange,
)

DAY = date(2026, 11, 3)
NOON = datetime(2026, 11, 3, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, on DAY


def _users(s: Session, password_hash: str) -> None:
    for name, role in (("jun1", "junior"), ("jun2", "junior"), ("sen1", "senior"), ("dep1", "deputy"),
                       ("insp", "inspector"), ("stat1", "statistician")):
        s.add(DeskUser(username=name, display_name=name, role=role, password_hash=password_hash))


def world(s: Session, *, contacts: int = 40, bot_only: int = 30, english: int = 3, password_hash: str = "x") -> None:
    """On DAY: ``contacts`` junior contacts (jun1 and jun2 in turn), ``english`` English
    contacts, ``bot_only`` conversations the bot settled alone, one handed off; a
    dispatch request, a review and a graded transfer; and a contact the day before."""
    _users(s, password_hash)
    s.add(Ticket(id="T1", name="t", description="d", severity="Minor"))
    s.flush()
    for n in range(contacts + english):
        en = n >= contacts
        at = NOON + timedelta(minutes=n)
        s.add(Handoff(conversation_id=f"c{n}", channel="webchat", language="en" if en else "zh", reason="asked",
                      state="done", created=at - timedelta(minutes=5), taken_by="jun1" if n % 2 == 0 else "jun2",
                      taken_at=at - timedelta(minutes=4), ended_at=at))
        s.add(ConversationOutcome(conversation_id=f"c{n}", channel="webchat", language="zh", outcome="handed_off",
                                  step="A3", at=at - timedelta(minutes=5)))
    for n in range(bot_only):
        s.add(ConversationOutcome(conversation_id=f"b{n}", channel="phone", language="zh", outcome="accepted",
                                  step="A10", at=NOON + timedelta(seconds=n)))
    s.add(Handoff(conversation_id="old", channel="phone", language="zh", reason="asked", state="done",
                  created=NOON - timedelta(days=1), taken_by="jun1", ended_at=NOON - timedelta(days=1)))
    s.add(TicketStatusChange(ticket_id="T1", to_status="acknowledged", action="request_dispatch", author="jun1",
                             at=NOON, from_sub_step="new", to_sub_step="awaiting_review"))
    s.add(TicketStatusChange(ticket_id="T1", to_status="inProgress", action="approve_dispatch", author="sen1",
                             at=NOON + timedelta(minutes=3), from_sub_step="awaiting_review",
                             to_sub_step="dispatched"))
    s.add(DeskTask(kind="senior_transfer", role="senior", state="done", reason="big", created_by="jun2",
                   grade="correct", graded_by="sen1", graded_at=NOON))
