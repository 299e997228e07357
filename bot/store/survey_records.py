"""The satisfaction survey's records (U3–U5): one survey per resolved fault report, its
attempts, the do-not-call list and the customers' quiet days, which browser a web-chat
conversation came from, second dispatches, and the install's own secrets.

Kept apart from ``bot.store.surveys`` (what the survey does) so that the workflow can
open a survey on the centre's receipt (S2 → U3) without importing the survey's logic,
which itself builds on the workflow.

No ``from __future__ import annotations`` here: SQLModel reads the annotations at
class-creation time.
"""

import re
from datetime import datetime
from enum import Enum
from typing import Any

import structlog
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from bot.jobs.store import schedule_once
from bot.store.models import Report, Ticket, UTCDateTime, utcnow
from telnum import mask_number

log = structlog.get_logger(__name__)


def _when(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kw)


def _maybe_when(**kw: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, **kw)


class SurveyState(str, Enum):
    due = "due"  # waiting for its next call (phone) or for the user to open the chat
    in_progress = "in_progress"  # a call is placed or talking, or the chat dialogue runs
    completed = "completed"  # every question answered
    stopped = "stopped"  # some answered, then silence, a wrong answer or a hang-up (stopped_at says where)
    unreachable = "unreachable"  # every attempt failed (no answer, busy, voicemail), or the chat never opened
    no_contact = "no_contact"  # no usable contact number: nobody was called
    do_not_call = "do_not_call"  # the number is on the do-not-call list: nobody was called
    opted_out = "opted_out"  # "don't call me again" during the survey: answers kept, number listed


OPEN_STATES = frozenset({SurveyState.due.value, SurveyState.in_progress.value})
FINAL_STATES = frozenset(s.value for s in SurveyState) - OPEN_STATES


class SurveyChannel(str, Enum):
    phone = "phone"
    webchat = "webchat"


# The questions in the order the dialogue asks them; where a survey stopped is one of these.
QUESTIONS = ("fixed", "attitude", "quality", "comment")


class Survey(SQLModel, table=True):
    """U3: the survey of one resolved fault report (census: every one gets a row)."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(foreign_key="ticket.id", ondelete="CASCADE", unique=True, max_length=40)
    channel: str = Field(max_length=20)  # phone | webchat
    number: str | None = Field(default=None, max_length=20)  # the contact number called (canonical)
    language: str = Field(default="zh", max_length=8)
    state: str = Field(default=SurveyState.due.value, max_length=20, index=True)
    state_reason: str | None = Field(default=None, max_length=200)  # why no call, why it stopped …
    created: datetime = _when(index=True)  # due since: the centre's receipt
    next_attempt_at: datetime | None = _maybe_when(index=True)
    attempts_made: int = 0
    # What the reporter said (None: not asked or not answered).
    fixed: bool | None = None
    attitude: int | None = None  # 1–5, 5 very satisfied
    quality: int | None = None  # 1–5
    wants_comment: bool | None = None
    comment_text: str | None = Field(default=None, max_length=2000)
    comment_recording: str | None = Field(default=None, max_length=200)  # a WAV under HOTLINE_RECORDINGS_DIR
    stopped_at: str | None = Field(default=None, max_length=20)  # one of QUESTIONS
    result: str | None = Field(default=None, max_length=20, index=True)  # satisfied | dissatisfied | not_fixed
    conversation_id: str | None = Field(default=None, max_length=128, index=True)  # the dialogue that asked
    asked_by: str | None = Field(default=None, max_length=64)  # who/what asked: bot (phone), bot (web chat) …
    started_at: datetime | None = _maybe_when()
    finished_at: datetime | None = _maybe_when(index=True)  # T4 counts surveys by when they ended
    # U4–U5: the surveyor's finding on a dissatisfied survey.
    cause: str | None = Field(default=None, max_length=20)  # not_ours | centre | telecom
    cause_note: str | None = Field(default=None, max_length=2000)
    cause_by: str | None = Field(default=None, max_length=64)
    cause_at: datetime | None = _maybe_when()
    explained_how: str | None = Field(default=None, max_length=20)  # phone | chat | sms | visit
    explained_at: datetime | None = _maybe_when()
    explanation_accepted: bool | None = None
    staff_member: str | None = Field(default=None, max_length=100)  # the centre's fault: who
    task_id: int | None = None  # the team leader's task, or the manager's escalation
    second_ticket_id: str | None = Field(default=None, max_length=40)  # U5: the second dispatch
    # The signed link the desk sent (one use): its nonce until used.
    link_nonce: str | None = Field(default=None, max_length=40)
    link_expires: datetime | None = _maybe_when()
    link_used_at: datetime | None = _maybe_when()


class SurveyAttempt(SQLModel, table=True):
    """One try at reaching the reporter: a call, or the chat page opened."""

    __tablename__ = "survey_attempt"
    # Attempt N of a survey happens once, however many bot processes run the job.
    __table_args__ = (UniqueConstraint("survey_id", "n", name="uq_survey_attempt_n"),)

    id: int | None = Field(default=None, primary_key=True)
    survey_id: int = Field(foreign_key="survey.id", ondelete="CASCADE", index=True)
    n: int
    channel: str = Field(max_length=20)  # phone | webchat | link
    asked_by: str = Field(max_length=64)
    started_at: datetime = _when()
    ended_at: datetime | None = _maybe_when()
    # answered | no_answer | busy | rejected | failed (the call's result), no_response (answered,
    # nothing said: voicemail), left (the chat closed before an answer), done
    outcome: str | None = Field(default=None, max_length=20)
    hangup_cause: str | None = Field(default=None, max_length=64)  # FreeSWITCH's, as it came
    outbound_call_id: int | None = Field(default=None, index=True)
    conversation_id: str | None = Field(default=None, max_length=128)


class ContactPreference(SQLModel, table=True):
    """What a customer asked of us about calls: never again (the do-not-call list), or
    not on some weekdays (quiet days, ISO 1 = Monday … 7 = Sunday)."""

    __tablename__ = "contact_preference"

    number: str = Field(primary_key=True, max_length=20)
    do_not_call: bool = False
    quiet_days: str = Field(default="", max_length=20)  # "6,7"
    reason: str | None = Field(default=None, max_length=500)
    updated_by: str = Field(default="system", max_length=64)
    updated_at: datetime = _when()


class ChatBrowser(SQLModel, table=True):
    """Which browser a web-chat conversation ran in (the page keeps a random id in
    localStorage), so its reporter gets the survey the next time that browser opens the chat."""

    __tablename__ = "chat_browser"

    conversation_id: str = Field(primary_key=True, max_length=128)
    browser_id: str = Field(max_length=64, index=True)
    at: datetime = _when()


class SecondDispatch(SQLModel, table=True):
    """U5: 二次派单, a new ticket for the same fault, reviewed by a senior like a first
    dispatch and counted (T4)."""

    __tablename__ = "second_dispatch"

    id: int | None = Field(default=None, primary_key=True)
    first_ticket_id: str = Field(max_length=40, index=True)  # no FK: the count outlives a world reload
    ticket_id: str = Field(max_length=40, unique=True)
    survey_id: int | None = Field(default=None, index=True)
    why: str = Field(max_length=20)  # not_fixed (the survey's answer) | telecom (the surveyor's finding)
    created_by: str = Field(max_length=64)
    created: datetime = _when(index=True)  # T4 counts them by when they were made


class InstallSecret(SQLModel, table=True):
    """Secrets this install made for itself when no setting gave one (the survey link's
    HMAC key): every bot process of the install reads the same one."""

    __tablename__ = "install_secret"

    name: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=200)
    created: datetime = _when()


FIRST_CALL_JOB = "survey_call"  # the kind bot/survey/caller.py registers (ATTEMPT_JOB)

SURVEY_TABLES: tuple[type[SQLModel], ...] = (
    Survey, SurveyAttempt, ContactPreference, ChatBrowser, SecondDispatch, InstallSecret)

_USABLE = re.compile(r"1\d{10}|0\d{9,11}")  # a mobile, or a fixed line with its area code


def usable_number(number: str | None) -> bool:
    """A number we can dial: canonical digits (a mobile, or a fixed line with area code)."""
    return number is not None and _USABLE.fullmatch(number) is not None


def on_do_not_call_list(s: Session, number: str) -> bool:
    pref = s.get(ContactPreference, number)
    return pref is not None and pref.do_not_call


def contact_number_of(s: Session, ticket: Ticket) -> str | None:
    """The number the reporter gave to be reached on: the ticket's, else the latest report's."""
    if ticket.contact_number:
        return ticket.contact_number
    return s.exec(select(Report.contact_number).where(Report.ticket_id == ticket.id,
                                                      col(Report.contact_number).is_not(None))
                  .order_by(col(Report.at).desc(), col(Report.id).desc())).first()


def survey_due(s: Session, ticket: Ticket, now: datetime | None = None) -> Survey:
    """U3: the ticket is resolved (S2: the centre's receipt goes to the surveyor), so its
    reporter is surveyed. Called by the workflow inside the receipt's transaction; a
    ticket resolved twice keeps its one survey.

    The channel: web chat when the report came by chat (the page offers the survey),
    else the phone when there is a usable contact number; without one the survey is
    marked ``no_contact`` at once, and a number on the do-not-call list ``do_not_call``:
    nobody is called."""
    existing = s.exec(select(Survey).where(Survey.ticket_id == ticket.id)).first()
    if existing is not None:
        return existing
    now = now or utcnow()
    number = contact_number_of(s, ticket)
    usable = usable_number(number)
    channel = SurveyChannel.webchat.value if ticket.channel == "webchat" else SurveyChannel.phone.value
    survey = Survey(ticket_id=ticket.id, channel=channel, number=number if usable else None,
                    language=ticket.language if ticket.language in ("zh", "en") else "zh", created=now)
    if channel == SurveyChannel.phone.value and not usable:
        survey.state = SurveyState.no_contact.value
        survey.state_reason = "no contact number" if not number else "the contact number is not one we can dial"
        survey.finished_at = now
    elif channel == SurveyChannel.phone.value and number is not None and on_do_not_call_list(s, number):
        survey.state = SurveyState.do_not_call.value
        survey.state_reason = "the number is on the do-not-call list"
        survey.finished_at = now
    else:
        survey.next_attempt_at = now
    s.add(survey)
    s.flush()
    if survey.state == SurveyState.due.value and channel == SurveyChannel.phone.value:
        # The first call, as a due job committed with the receipt (the job keeps to the
        # calling hours and quiet days when it runs: bot/survey/caller.py).
        schedule_once(s, FIRST_CALL_JOB, f"survey-{survey.id}-1", now, {"survey_id": survey.id, "attempt": 1})
    log.info("survey.due", survey_id=survey.id, ticket_id=ticket.id, channel=channel, state=survey.state,
             number=mask_number(number) if number else None)
    return survey
