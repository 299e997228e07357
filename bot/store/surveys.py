"""The satisfaction survey (U3–U5): what the dialogue records, what each attempt's end
means, and the surveyor's findings on the dissatisfied.

Every function takes an open :class:`~sqlmodel.Session` first (``db.run(fn, …)``).
The survey is opened by the workflow on the centre's receipt
(``survey_records.survey_due``); from then on:

- **attempts** are claimed once (a conditional update and a unique (survey, n) row):
  attempt N of a survey happens once however many bot processes run the job;
- the **dialogue** (Rasa, through ``bot/api/surveys.py``) starts the survey under its
  conversation id, records each answer as it is given (so a hang-up keeps what was
  said), and finishes it: completed, or stopped at a question;
- "**not fixed**" makes a second dispatch at once (U5: a new ticket linked to the
  first, into the seniors' review queue like any first dispatch, counted);
- "**don't call me again**" puts the number on the do-not-call list;
- a **dissatisfied** result waits in the surveyor's queue for a cause (U4–U5).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import CursorResult, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.settings import parse_hours
from bot.store import workflow
from bot.store.errors import Conflict, NotFound, ServiceError
from bot.store.models import (
    DeskTask,
    DeskTaskKind,
    DeskTaskState,
    DeskUser,
    OutboundCall,
    Ticket,
    TicketNote,
    TicketStatus,
    TicketStatusChange,
    utc,
    utcnow,
)
from bot.store.service import new_ticket_id
from bot.store.survey_records import (
    FINAL_STATES,
    QUESTIONS,
    ChatBrowser,
    ContactPreference,
    InstallSecret,
    SecondDispatch,
    Survey,
    SurveyAttempt,
    SurveyChannel,
    SurveyState,
    usable_number,
)
from telnum import group_digits, mask_number

log = structlog.get_logger(__name__)

STAFF_FAULT_TASK = "staff_fault"  # U5: the centre's fault → a task for the team leader (a senior)
TEAM_LEADER_ROLE = "senior"
CAUSES = ("not_ours", "centre", "telecom")
EXPLAINED_HOW = ("phone", "chat", "sms", "visit")
RATINGS = range(1, 6)
NOT_REACHED = frozenset({"no_answer", "busy", "rejected", "failed", "no_response"})
MAX_TEXT = 2000


# ------------------------------------------------------------------ the rules


@dataclass(frozen=True)
class SurveyRules:
    """When and how often the bot calls, and which ratings count as satisfied."""

    attempts: int = 3  # HOTLINE_SURVEY_ATTEMPTS
    retry_hours: float = 2.0  # HOTLINE_SURVEY_RETRY_HOURS
    calling_start: time = time(9, 0)  # HOTLINE_SURVEY_CALLING_HOURS, local
    calling_end: time | None = time(20, 0)  # None: until midnight
    timezone: str = "Asia/Shanghai"
    satisfied_from: int = 4  # U4: 4 satisfied, 5 very satisfied; below is dissatisfied
    chat_wait_days: float = 3.0  # a chat reporter who never comes back: the phone, else unreachable

    @classmethod
    def from_settings(cls, settings: Any) -> SurveyRules:
        start, end = parse_hours(settings.survey_calling_hours)
        return cls(attempts=settings.survey_attempts, retry_hours=settings.survey_retry_hours,
                   calling_start=start, calling_end=end, timezone=settings.timezone,
                   satisfied_from=settings.survey_satisfied_from, chat_wait_days=settings.survey_chat_wait_days)

    def next_call_time(self, earliest: datetime, quiet_days: Iterable[int] = ()) -> datetime:
        """The first moment from ``earliest`` inside the calling hours (local time) on a
        day that is not one of the customer's quiet days (ISO weekdays, 1 = Monday)."""
        quiet = set(quiet_days)
        zone = ZoneInfo(self.timezone)
        local = utc(earliest).astimezone(zone)
        for _ in range(9):
            day = local.date()
            start = _local(day, self.calling_start, zone)
            end = _local(day + timedelta(days=1), time(0), zone) if self.calling_end is None \
                else _local(day, self.calling_end, zone)
            if day.isoweekday() not in quiet and local < end:
                return utc(max(local, start))
            local = _local(day + timedelta(days=1), time(0), zone)
        raise ServiceError("every day of the week is a quiet day", code="no_calling_day")


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone)


def parse_quiet_days(text: str) -> list[int]:
    days = sorted({int(p) for p in re.findall(r"\d+", text or "")})
    if any(d < 1 or d > 7 for d in days):
        raise ServiceError("quiet days are weekdays 1 (Monday) to 7 (Sunday)", code="invalid_quiet_days")
    if len(days) == 7:
        raise ServiceError("a customer cannot be quiet every day: use the do-not-call list", code="invalid_quiet_days")
    return days


# ------------------------------------------------------------------ reading


def get(s: Session, survey_id: int, *, fresh: bool = False) -> Survey:
    row = s.get(Survey, survey_id, populate_existing=fresh)
    if row is None:
        raise NotFound(f"no survey {survey_id}", code="survey_not_found")
    return row


def for_ticket(s: Session, ticket_id: str) -> Survey | None:
    return s.exec(select(Survey).where(Survey.ticket_id == ticket_id)).first()


def attempts_of(s: Session, survey_id: int) -> list[SurveyAttempt]:
    return list(s.exec(select(SurveyAttempt).where(SurveyAttempt.survey_id == survey_id)
                       .order_by(col(SurveyAttempt.n))))


def quiet_days_of(s: Session, number: str | None) -> list[int]:
    pref = s.get(ContactPreference, number) if number else None
    return parse_quiet_days(pref.quiet_days) if pref is not None and pref.quiet_days else []


def preference(s: Session, number: str) -> ContactPreference | None:
    return s.get(ContactPreference, number)


def _iso(value: datetime | None) -> str | None:
    return utc(value).isoformat() if value is not None else None


def view(s: Session, survey: Survey) -> dict[str, Any]:
    """The survey as the API and the dialogue see it (the number masked)."""
    ticket = s.get(Ticket, survey.ticket_id)
    return {
        "id": survey.id, "ticket_id": survey.ticket_id, "channel": survey.channel, "state": survey.state,
        "state_reason": survey.state_reason, "language": survey.language,
        "number": mask_number(survey.number) if survey.number else None,
        "fault_number": ticket.fault_number if ticket is not None else None,
        "reported": _iso(ticket.creation_date) if ticket is not None else None,
        "attempts_made": survey.attempts_made, "next_attempt_at": _iso(survey.next_attempt_at),
        "answers": {"fixed": survey.fixed, "attitude": survey.attitude, "quality": survey.quality,
                    "wants_comment": survey.wants_comment, "comment_text": survey.comment_text,
                    "comment_recording": bool(survey.comment_recording)},
        "stopped_at": survey.stopped_at, "result": survey.result, "cause": survey.cause,
        "second_ticket_id": survey.second_ticket_id, "conversation_id": survey.conversation_id,
        "asked_by": survey.asked_by, "created": _iso(survey.created), "started_at": _iso(survey.started_at),
        "finished_at": _iso(survey.finished_at),
    }


# ------------------------------------------------------------------ attempts


def claim_attempt(s: Session, survey_id: int, n: int, *, channel: str, asked_by: str,
                  conversation_id: str | None = None, now: datetime | None = None) -> SurveyAttempt | None:
    """Attempt ``n`` of a due survey starts now, or None when it is not due for attempt
    ``n`` any more (another process took it, the survey ended, the user opened the chat)."""
    now = now or utcnow()
    result = s.execute(update(Survey).where(col(Survey.id) == survey_id, col(Survey.state) == SurveyState.due.value,
                                            col(Survey.attempts_made) == n - 1)
                       .values(state=SurveyState.in_progress.value, attempts_made=n, next_attempt_at=None,
                               asked_by=asked_by, conversation_id=conversation_id))
    if cast("CursorResult[Any]", result).rowcount != 1:
        return None
    attempt = SurveyAttempt(survey_id=survey_id, n=n, channel=channel, asked_by=asked_by, started_at=now,
                            conversation_id=conversation_id)
    try:
        with s.begin_nested():
            s.add(attempt)
            s.flush()
    except IntegrityError:  # the unique (survey, n): someone else's attempt n
        return None
    return attempt


def attach_call(s: Session, survey_id: int, n: int, outbound_call_id: int, channel_uuid: str | None) -> None:
    """The attempt's call is placed: its record, and the conversation the call will be."""
    attempt = _attempt(s, survey_id, n)
    attempt.outbound_call_id = outbound_call_id
    attempt.conversation_id = channel_uuid
    s.add(attempt)
    survey = get(s, survey_id)
    survey.conversation_id = channel_uuid
    s.add(survey)


def release_attempt(s: Session, survey_id: int, n: int, retry_at: datetime, why: str) -> None:
    """The call could not even be placed (the switch is down, the line limit): the
    attempt does not count; the survey is due again at ``retry_at``."""
    attempt = s.exec(select(SurveyAttempt).where(SurveyAttempt.survey_id == survey_id, SurveyAttempt.n == n)).first()
    if attempt is not None:
        s.delete(attempt)
    s.execute(update(Survey).where(col(Survey.id) == survey_id, col(Survey.state) == SurveyState.in_progress.value)
              .values(state=SurveyState.due.value, attempts_made=n - 1, next_attempt_at=retry_at,
                      state_reason=why[:200], conversation_id=None))


def _attempt(s: Session, survey_id: int, n: int) -> SurveyAttempt:
    attempt = s.exec(select(SurveyAttempt).where(SurveyAttempt.survey_id == survey_id, SurveyAttempt.n == n)).first()
    if attempt is None:
        raise NotFound(f"survey {survey_id} has no attempt {n}", code="attempt_not_found")
    return attempt


@dataclass(frozen=True)
class AfterAttempt:
    """What an attempt's end left: the survey's state, and the next attempt if one is due."""

    state: str
    next_attempt: int | None = None
    next_at: datetime | None = None


def call_ended(s: Session, survey_id: int, n: int, result: str, hangup_cause: str | None, rules: SurveyRules,
               *, now: datetime | None = None) -> AfterAttempt:
    """The call of attempt ``n`` is over (``result`` as voice/outbound.py classifies it).

    Answered and the reporter said something: the dialogue has finished or stopped the
    survey. Not reached (no answer, busy, rejected, failed), or answered with nothing
    said (a voicemail box, or someone who hung up at the greeting): the next attempt
    ``retry_hours`` later inside the calling hours, or, after the last, unreachable."""
    now = now or utcnow()
    survey = get(s, survey_id, fresh=True)
    attempt = _attempt(s, survey_id, n)
    if attempt.ended_at is not None:  # told twice (a restart's recovery, say)
        return AfterAttempt(survey.state)
    said = _answered_any(survey)
    outcome = result if result != "answered" else ("answered" if said or survey.state in FINAL_STATES
                                                   else "no_response")
    attempt.outcome, attempt.hangup_cause, attempt.ended_at = outcome, (hangup_cause or "")[:64] or None, now
    s.add(attempt)
    if survey.state != SurveyState.in_progress.value or survey.attempts_made != n:
        return AfterAttempt(survey.state)  # the dialogue ended it (completed, stopped, opted out)
    if said:
        _stop(survey, now, reason="the call ended")
        s.add(survey)
        return AfterAttempt(survey.state)
    return _next_or_unreachable(s, survey, n, rules, now, f"attempt {n}: {outcome}"
                                + (f" ({hangup_cause})" if hangup_cause else ""))


def _next_or_unreachable(s: Session, survey: Survey, n: int, rules: SurveyRules, now: datetime,
                         why: str) -> AfterAttempt:
    survey.conversation_id = None
    if n >= rules.attempts:
        survey.state, survey.finished_at = SurveyState.unreachable.value, now
        survey.state_reason = f"{n} attempts, none reached the reporter; last {why}"[:200]
        s.add(survey)
        log.info("survey.unreachable", survey_id=survey.id, attempts=n)
        return AfterAttempt(survey.state)
    at = rules.next_call_time(now + timedelta(hours=rules.retry_hours), quiet_days_of(s, survey.number))
    survey.state, survey.next_attempt_at, survey.state_reason = SurveyState.due.value, at, why[:200]
    s.add(survey)
    return AfterAttempt(survey.state, n + 1, at)


def defer(s: Session, survey_id: int, at: datetime, why: str) -> None:
    """Not now (outside the calling hours, a quiet day): due again at ``at``."""
    s.execute(update(Survey).where(col(Survey.id) == survey_id, col(Survey.state) == SurveyState.due.value)
              .values(next_attempt_at=at, state_reason=why[:200]))


def refuse_do_not_call(s: Session, survey_id: int, *, now: datetime | None = None) -> bool:
    """The number went on the do-not-call list after the survey was opened: no call."""
    survey = get(s, survey_id, fresh=True)
    if survey.state != SurveyState.due.value or survey.number is None:
        return False
    pref = s.get(ContactPreference, survey.number)
    if pref is None or not pref.do_not_call:
        return False
    survey.state, survey.finished_at = SurveyState.do_not_call.value, now or utcnow()
    survey.state_reason = "the number is on the do-not-call list"
    s.add(survey)
    return True


def due_phone_surveys(s: Session, now: datetime, *, limit: int = 100) -> list[tuple[int, int]]:
    """(survey, next attempt) for phone surveys whose next attempt is due by ``now``."""
    rows = s.exec(select(Survey.id, Survey.attempts_made).where(
        Survey.state == SurveyState.due.value, Survey.channel == SurveyChannel.phone.value,
        col(Survey.next_attempt_at) <= now).order_by(col(Survey.next_attempt_at), col(Survey.id)).limit(limit)).all()
    return [(int(i or 0), int(m) + 1) for i, m in rows]


def attempt_of_call(s: Session, outbound_call_id: int) -> tuple[int, int] | None:
    """(survey, attempt) an outbound call was made for."""
    row = s.exec(select(SurveyAttempt).where(SurveyAttempt.outbound_call_id == outbound_call_id)).first()
    return (row.survey_id, row.n) if row is not None else None


def unfinished_calls(s: Session) -> list[tuple[int, int, dict[str, Any]]]:
    """(survey, attempt, its ended call) for attempts whose call ended while nobody was
    following it (the bot stopped mid-call): the caller settles them at start-up."""
    rows = s.exec(select(SurveyAttempt, OutboundCall).join(
        OutboundCall, col(OutboundCall.id) == col(SurveyAttempt.outbound_call_id)).where(
        col(SurveyAttempt.ended_at).is_(None), OutboundCall.state == "ended")).all()
    return [(a.survey_id, a.n, {"result": c.result or "failed", "hangup_cause": c.hangup_cause}) for a, c in rows]


# ------------------------------------------------------------------ web chat


def remember_browser(s: Session, conversation_id: str, browser_id: str) -> None:
    if s.get(ChatBrowser, conversation_id) is None:
        s.add(ChatBrowser(conversation_id=conversation_id, browser_id=browser_id))
        s.flush()


def pending_for_browser(s: Session, browser_id: str) -> int | None:
    """The oldest web-chat survey due for a reporter who used this browser."""
    row = s.exec(select(Survey.id).join(Ticket, col(Ticket.id) == col(Survey.ticket_id))
                 .join(ChatBrowser, col(ChatBrowser.conversation_id) == col(Ticket.conversation_id))
                 .where(ChatBrowser.browser_id == browser_id, Survey.state == SurveyState.due.value,
                        Survey.channel == SurveyChannel.webchat.value)
                 .order_by(col(Survey.created), col(Survey.id))).first()
    return int(row) if row is not None else None


def claim_chat(s: Session, survey_id: int, conversation_id: str, via: str) -> bool:
    """The chat page (``webchat``) or a signed link (``link``) opens the survey in
    ``conversation_id``: the next attempt, asked by the bot in that channel."""
    survey = get(s, survey_id, fresh=True)
    asked_by = "bot (signed link)" if via == "link" else "bot (web chat)"
    if survey.state in (SurveyState.unreachable.value, SurveyState.no_contact.value) and via == "link":
        # A link the desk sent reopens a survey nobody could be reached for.
        survey.state, survey.finished_at = SurveyState.due.value, None
        s.add(survey)
        s.flush()
    return claim_attempt(s, survey_id, survey.attempts_made + 1, channel=via, asked_by=asked_by,
                         conversation_id=conversation_id) is not None


def expire_chat_surveys(s: Session, rules: SurveyRules,
                        now: datetime | None = None) -> list[tuple[int, int, datetime]]:
    """Web-chat surveys nobody came back for within ``chat_wait_days``: by phone when the
    report has a usable contact number (returns (survey, next attempt, its time)), else
    unreachable."""
    now = now or utcnow()
    cutoff = now - timedelta(days=rules.chat_wait_days)
    stale = s.exec(select(Survey).where(Survey.state == SurveyState.due.value,
                                        Survey.channel == SurveyChannel.webchat.value,
                                        col(Survey.created) <= cutoff)).all()
    to_call: list[tuple[int, int, datetime]] = []
    for survey in stale:
        ticket = s.get(Ticket, survey.ticket_id)
        number = ticket.contact_number if ticket is not None else None
        if usable_number(number) and number is not None and not _dnc(s, number):
            at = rules.next_call_time(now, quiet_days_of(s, number))
            survey.channel, survey.number, survey.next_attempt_at = SurveyChannel.phone.value, number, at
            survey.state_reason = f"not back in the web chat within {rules.chat_wait_days:g} days: by phone"
            to_call.append((int(survey.id or 0), survey.attempts_made + 1, at))
        else:
            survey.state, survey.finished_at = SurveyState.unreachable.value, now
            survey.state_reason = f"not back in the web chat within {rules.chat_wait_days:g} days"
        s.add(survey)
    return to_call


def _dnc(s: Session, number: str) -> bool:
    pref = s.get(ContactPreference, number)
    return pref is not None and pref.do_not_call


# ------------------------------------------------------------------ the signed link


def install_secret(s: Session, name: str, make: str) -> str:
    """The install's secret ``name``: stored once (``make`` when none yet), the same for
    every process that asks."""
    row = s.get(InstallSecret, name)
    if row is not None:
        return row.value
    try:
        with s.begin_nested():
            s.add(InstallSecret(name=name, value=make))
            s.flush()
    except IntegrityError:  # another process made it first
        pass
    row = s.get(InstallSecret, name, populate_existing=True)
    assert row is not None
    return row.value


LINK_STATES = frozenset({SurveyState.due.value, SurveyState.unreachable.value, SurveyState.no_contact.value})


def issue_link(s: Session, survey_id: int, nonce: str, expires: datetime) -> Survey:
    """A new signed link for the survey (the previous one stops working)."""
    survey = get(s, survey_id, fresh=True)
    if survey.state not in LINK_STATES:
        raise Conflict(f"survey {survey_id} is {survey.state}: a link is only for a survey still to be answered",
                       code="survey_not_open")
    survey.link_nonce, survey.link_expires, survey.link_used_at = nonce, expires, None
    s.add(survey)
    return survey


def use_link(s: Session, survey_id: int, nonce: str, conversation_id: str, *, now: datetime | None = None) -> None:
    """The link is opened: once. Refused when it was used, replaced, or expired."""
    now = now or utcnow()
    result = s.execute(update(Survey).where(col(Survey.id) == survey_id, col(Survey.link_nonce) == nonce,
                                            col(Survey.link_expires) > now)
                       .values(link_nonce=None, link_used_at=now))
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise Conflict("this survey link was used already, replaced by a newer one, or has expired",
                       code="link_used")
    if not claim_chat(s, survey_id, conversation_id, "link"):
        raise Conflict("this survey has been answered already", code="survey_not_open")


# ------------------------------------------------------------------ the dialogue's answers


def start_conversation(s: Session, survey_id: int, conversation_id: str) -> Survey:
    """The dialogue begins the survey (``/start_survey``): only in the conversation the
    survey was opened for (the call's UUID, or the chat that claimed it)."""
    survey = get(s, survey_id, fresh=True)
    if survey.state != SurveyState.in_progress.value or survey.conversation_id != conversation_id:
        raise Conflict(f"survey {survey_id} is not open in this conversation ({survey.state})",
                       code="survey_not_open")
    survey.started_at = survey.started_at or utcnow()
    s.add(survey)
    return survey


def _open_in(s: Session, survey_id: int, conversation_id: str) -> Survey:
    survey = get(s, survey_id, fresh=True)
    if survey.conversation_id != conversation_id:
        raise Conflict(f"survey {survey_id} is not asked in this conversation", code="survey_not_open")
    if survey.state != SurveyState.in_progress.value:
        raise Conflict(f"survey {survey_id} is {survey.state}", code="survey_not_open")
    return survey


@dataclass(frozen=True)
class Answer:
    question: str  # fixed | attitude | quality | wants_comment | comment
    value: bool | int | None = None
    text: str | None = None  # the words said or typed (fixed: kept for the second dispatch; comment)
    recording_file: str | None = None  # comment on the phone


def record_answer(s: Session, survey_id: int, conversation_id: str, answer: Answer, rules: SurveyRules,
                  *, now: datetime | None = None) -> Survey:
    """One answer, stored as it is given. "Not fixed" makes the second dispatch now."""
    now = now or utcnow()
    survey = _open_in(s, survey_id, conversation_id)
    q, v = answer.question, answer.value
    if q in ("fixed", "wants_comment"):
        if not isinstance(v, bool):
            raise ServiceError(f"{q} is true or false", code="invalid_answer")
        setattr(survey, q, v)
    elif q in ("attitude", "quality"):
        if isinstance(v, bool) or not isinstance(v, int) or v not in RATINGS:
            raise ServiceError(f"{q} is a rating from 1 to 5", code="invalid_answer")
        setattr(survey, q, v)
    elif q == "comment":
        text = (answer.text or "").strip()[:MAX_TEXT] or None
        if text is None and answer.recording_file is None:
            raise ServiceError("a comment is text or a recording", code="invalid_answer")
        survey.comment_text, survey.comment_recording = text, answer.recording_file
        if survey.wants_comment is None:
            survey.wants_comment = True
    else:
        raise ServiceError(f"unknown question {q!r}; one of {', '.join((*QUESTIONS, 'wants_comment'))}",
                           code="invalid_answer")
    survey.result = result_of(survey, rules)
    s.add(survey)
    s.flush()
    if q == "fixed" and v is False and survey.second_ticket_id is None:
        words = "回访：用户表示故障未修复 / survey: the reporter says the fault is not fixed"
        if answer.text:
            words += f" — “{answer.text.strip()[:500]}”"
        ticket = second_dispatch(s, survey, "not_fixed", words, "survey", now=now)
        survey.second_ticket_id = ticket.id
        survey.cause, survey.cause_by, survey.cause_at = "telecom", "survey", now
        survey.cause_note = "not fixed: second dispatch made at once"
    elif q == "comment" and survey.second_ticket_id is not None and survey.comment_text:
        s.add(TicketNote(ticket_id=survey.second_ticket_id, author="survey", at=now,
                         text=f"回访意见 / survey comment: {survey.comment_text}"))
    s.add(survey)
    s.flush()
    log.info("survey.answer", survey_id=survey.id, question=q, result=survey.result)
    return survey


def result_of(survey: Survey, rules: SurveyRules) -> str | None:
    """not_fixed, dissatisfied (a rating below ``satisfied_from``), satisfied (both
    ratings given and good), or None (not enough said)."""
    if survey.fixed is False:
        return "not_fixed"
    ratings = [r for r in (survey.attitude, survey.quality) if r is not None]
    if any(r < rules.satisfied_from for r in ratings):
        return "dissatisfied"
    if len(ratings) == 2:
        return "satisfied"
    return None


def _answered_any(survey: Survey) -> bool:
    return any(v is not None for v in (survey.fixed, survey.attitude, survey.quality, survey.wants_comment,
                                       survey.comment_text, survey.comment_recording))


def first_unanswered(survey: Survey) -> str | None:
    if survey.fixed is None:
        return "fixed"
    if survey.attitude is None:
        return "attitude"
    if survey.quality is None:
        return "quality"
    if survey.wants_comment is None or (survey.wants_comment and not (survey.comment_text or survey.comment_recording)):
        return "comment"
    return None


def _stop(survey: Survey, now: datetime, *, reason: str, at: str | None = None) -> None:
    survey.state, survey.finished_at = SurveyState.stopped.value, now
    survey.stopped_at = at or first_unanswered(survey)
    survey.state_reason = reason[:200]


def finish(s: Session, survey_id: int, conversation_id: str, rules: SurveyRules, *, stopped_at: str | None = None,
           reason: str | None = None, now: datetime | None = None) -> Survey:
    """The dialogue is done with the survey: completed when every question was answered,
    else stopped where it stopped (silence or wrong answers past the limit, "goodbye")."""
    now = now or utcnow()
    survey = _open_in(s, survey_id, conversation_id)
    if stopped_at is not None and stopped_at not in QUESTIONS:
        raise ServiceError(f"stopped_at is one of {', '.join(QUESTIONS)}", code="invalid_answer")
    survey.result = result_of(survey, rules)
    missing = first_unanswered(survey)
    if missing is None:
        survey.state, survey.finished_at, survey.stopped_at = SurveyState.completed.value, now, None
        survey.state_reason = None
    else:
        _stop(survey, now, reason=reason or "the dialogue ended", at=stopped_at or missing)
    _end_chat_attempt(s, survey, now)
    s.add(survey)
    log.info("survey.finished", survey_id=survey.id, state=survey.state, stopped_at=survey.stopped_at,
             result=survey.result)
    return survey


def opt_out(s: Session, survey_id: int, conversation_id: str, rules: SurveyRules, *,
            now: datetime | None = None) -> Survey:
    """"Don't call me again": the number goes on the do-not-call list; what was said stays."""
    now = now or utcnow()
    survey = _open_in(s, survey_id, conversation_id)
    survey.result = result_of(survey, rules)
    survey.state, survey.finished_at = SurveyState.opted_out.value, now
    survey.stopped_at, survey.state_reason = first_unanswered(survey), "the reporter asked not to be called again"
    number = survey.number or (t.contact_number if (t := s.get(Ticket, survey.ticket_id)) is not None else None)
    if number:
        set_preference(s, number, do_not_call=True, by="survey", reason=f"said so in survey {survey.id}")
    _end_chat_attempt(s, survey, now)
    s.add(survey)
    log.info("survey.opted_out", survey_id=survey.id, number=mask_number(number) if number else None)
    return survey


def conversation_ended(s: Session, conversation_id: str, reason: str, *, now: datetime | None = None) -> bool:
    """The survey's conversation ended without the dialogue finishing it (a hang-up, the
    chat closed or went idle): what was answered stays, and where it stopped is kept.
    Nothing said yet: a chat survey is due again on the next visit; a call's attempt is
    settled by its end (:func:`call_ended`). False when no survey runs in it."""
    now = now or utcnow()
    survey = s.exec(select(Survey).where(Survey.conversation_id == conversation_id)).first()
    if survey is None:
        return False
    if survey.state != SurveyState.in_progress.value:
        return True
    if _answered_any(survey):
        _stop(survey, now, reason=f"the reporter left ({reason})")
        _end_chat_attempt(s, survey, now)
    elif survey.channel == SurveyChannel.webchat.value or _last_attempt_channel(s, survey) == "link":
        attempt = _last_attempt(s, survey)
        if attempt is not None:
            attempt.outcome, attempt.ended_at = "left", now
            s.add(attempt)
        survey.state, survey.conversation_id = SurveyState.due.value, None
        survey.state_reason = f"left the chat before answering ({reason})"
    s.add(survey)
    return True


def _last_attempt(s: Session, survey: Survey) -> SurveyAttempt | None:
    return s.exec(select(SurveyAttempt).where(SurveyAttempt.survey_id == survey.id)
                  .order_by(col(SurveyAttempt.n).desc())).first()


def _last_attempt_channel(s: Session, survey: Survey) -> str | None:
    attempt = _last_attempt(s, survey)
    return attempt.channel if attempt is not None else None


def _end_chat_attempt(s: Session, survey: Survey, now: datetime) -> None:
    """A chat's attempt ends with its survey; a call's with the call (call_ended)."""
    attempt = _last_attempt(s, survey)
    if attempt is not None and attempt.outbound_call_id is None and attempt.ended_at is None:
        attempt.outcome, attempt.ended_at = "done", now
        s.add(attempt)


# ------------------------------------------------------------------ U5: second dispatch


def second_dispatch(s: Session, survey: Survey, why: str, words: str, by: str, *,
                    now: datetime | None = None) -> Ticket:
    """二次派单: a new ticket for the same fault, linked to the first, waiting for a
    senior's review like any first dispatch (S2), and counted (T4)."""
    now = now or utcnow()
    first = s.get(Ticket, survey.ticket_id)
    if first is None:
        raise NotFound(f"the surveyed ticket {survey.ticket_id} is gone", code="ticket_not_found")
    description = f"二次派单（原工单 {first.id}）/ second dispatch of {first.id}: {words}"[:MAX_TEXT]
    for _attempt in range(5):
        ticket = Ticket(
            id=new_ticket_id(), name=first.name, description=description, severity=first.severity,
            priority="High", ticket_type=first.ticket_type, channel="survey", fault_number=first.fault_number,
            contact_number=first.contact_number, symptom_category=first.symptom_category,
            symptom_text=first.symptom_text, branch=first.branch, language=first.language,
            status=TicketStatus.acknowledged.value, status_change_reason="second dispatch", status_change_date=now,
            creation_date=now, last_update=now, origin="second_dispatch", sub_step="awaiting_review")
        try:
            with s.begin_nested():
                s.add(ticket)
                s.flush()
            break
        except IntegrityError:
            continue
    else:  # pragma: no cover - five id collisions in a row
        raise Conflict("could not allocate a ticket id", code="ticket_id_exhausted")
    s.add(TicketStatusChange(ticket_id=ticket.id, from_status=None, to_status=ticket.status, reason=words[:MAX_TEXT],
                             author=by, at=now, action="second_dispatch", to_sub_step=ticket.sub_step))
    s.add(TicketNote(ticket_id=ticket.id, author=by, at=now, text=f"二次派单，原工单 {first.id} / second dispatch "
                                                               f"of {first.id} (survey {survey.id})"))
    s.add(TicketNote(ticket_id=first.id, author=by, at=now, text=f"二次派单 {ticket.id} / second dispatch "
                                                              f"{ticket.id} (survey {survey.id}): {words}"[:MAX_TEXT]))
    s.add(SecondDispatch(first_ticket_id=first.id, ticket_id=ticket.id, survey_id=survey.id, why=why,
                         created_by=by, created=now))
    s.flush()
    log.info("survey.second_dispatch", survey_id=survey.id, first_ticket_id=first.id, ticket_id=ticket.id, why=why)
    return ticket


def second_dispatch_of(s: Session, ticket_id: str) -> SecondDispatch | None:
    """The second dispatch this ticket is (its link to the first), if it is one."""
    return s.exec(select(SecondDispatch).where(SecondDispatch.ticket_id == ticket_id)).first()


def ticket_links(s: Session, ticket_id: str) -> dict[str, Any]:
    """What a ticket page says about surveys: the ticket's survey, and the first ticket
    when this one is a second dispatch."""
    survey = for_ticket(s, ticket_id)
    second = second_dispatch_of(s, ticket_id)
    return {"survey": None if survey is None else {"id": survey.id, "state": survey.state, "result": survey.result},
            "second_of": None if second is None else {"first_ticket_id": second.first_ticket_id,
                                                      "survey_id": second.survey_id, "why": second.why}}


# ------------------------------------------------------------------ U4–U5: the surveyor


@dataclass(frozen=True)
class CauseFinding:
    """The surveyor's finding on a dissatisfied survey."""

    cause: str  # not_ours | centre | telecom
    note: str
    explained_how: str | None = None  # not_ours: how the customer was told …
    explained_at: datetime | None = None  # … and when
    accepted: bool | None = None  # not_ours: did the customer accept it? no → manager hotline
    staff_member: str | None = None  # centre: who


def record_cause(s: Session, survey_id: int, finding: CauseFinding, surveyor: workflow.Actor, *,
                 now: datetime | None = None) -> Survey:
    """U4–U5, once per survey: not our fault → explained (how, when), and when the
    customer does not accept it → the manager hotline (M1–M2); the customer-service
    centre's fault → the staff member is recorded and the team leader (a senior) gets
    a task; the telecom side's fault → a second dispatch, reviewed by a senior."""
    now = now or utcnow()
    if surveyor.role not in ("surveyor", "admin"):
        raise ServiceError("only the satisfaction surveyor records a dissatisfied survey's cause",
                           code="forbidden_action")
    note = finding.note.strip()
    if finding.cause not in CAUSES:
        raise ServiceError(f"cause is one of {', '.join(CAUSES)}", code="invalid_cause")
    if not note:
        raise ServiceError("say what was found (the note)", code="reason_required")
    if len(note) > MAX_TEXT:
        raise ServiceError(f"the note is longer than {MAX_TEXT} characters", code="reason_too_long")
    survey = get(s, survey_id, fresh=True)
    if survey.result != "dissatisfied":
        raise Conflict(f"survey {survey_id} is not a dissatisfied one ({survey.result or 'no result'})",
                       code="not_dissatisfied")
    if finding.cause == "not_ours":
        if finding.explained_how not in EXPLAINED_HOW:
            raise ServiceError(f"say how it was explained: {', '.join(EXPLAINED_HOW)}", code="invalid_explanation")
        if finding.explained_at is None:
            raise ServiceError("say when it was explained", code="invalid_explanation")
        if utc(finding.explained_at) > now + timedelta(minutes=5):
            raise ServiceError("the explanation cannot be in the future", code="invalid_explanation")
        if finding.accepted is None:
            raise ServiceError("say whether the customer accepted the explanation", code="invalid_explanation")
    staff = (finding.staff_member or "").strip()[:100] or None
    if finding.cause == "centre" and staff is None:
        raise ServiceError("name the staff member involved", code="staff_required")
    result = s.execute(update(Survey).where(col(Survey.id) == survey_id, col(Survey.cause).is_(None))
                       .values(cause=finding.cause, cause_note=note, cause_by=surveyor.username, cause_at=now))
    if cast("CursorResult[Any]", result).rowcount != 1:
        s.refresh(survey)
        raise Conflict(f"survey {survey_id}'s cause was recorded already by {survey.cause_by}", code="already_recorded")
    s.refresh(survey)
    ticket = s.get(Ticket, survey.ticket_id)
    if finding.cause == "not_ours":
        survey.explained_how, survey.explained_at = finding.explained_how, finding.explained_at
        survey.explanation_accepted = finding.accepted
        if not finding.accepted and ticket is not None:
            survey.task_id = _to_manager(s, ticket, surveyor, survey, note, now)
    elif finding.cause == "centre":
        survey.staff_member = staff
        survey.task_id = _team_leader_task(s, survey, ticket, surveyor, staff or "", note, now)
    elif survey.second_ticket_id is None:
        survey.second_ticket_id = second_dispatch(s, survey, "telecom", f"回访不满意 / dissatisfied: {note}",
                                                  surveyor.username, now=now).id
    if ticket is not None:
        s.add(TicketNote(ticket_id=survey.ticket_id, author=surveyor.username, at=now,
                         text=f"回访原因 / survey cause: {finding.cause}: {note}"[:MAX_TEXT]))
    s.add(survey)
    s.flush()
    log.info("survey.cause", survey_id=survey_id, cause=finding.cause, surveyor=surveyor.username,
             task_id=survey.task_id, second_ticket_id=survey.second_ticket_id)
    return survey


def _to_manager(s: Session, ticket: Ticket, surveyor: workflow.Actor, survey: Survey, note: str,
                now: datetime) -> int:
    """M1–M2: the existing escalation, with the ticket's history; a closed ticket (no
    more actions) still gets the manager's task."""
    reason = f"回访不满意，解释未被接受 / dissatisfied, explanation not accepted (survey {survey.id}): {note}"
    actor = workflow.Actor(surveyor.username, "surveyor")
    if any(a.name == "escalate" for a in workflow.available_actions(ticket, actor)):
        done = workflow.perform(s, ticket.id, "escalate", actor, reason=reason[:MAX_TEXT], now=now)
        assert done.task_id is not None
        return done.task_id
    task = DeskTask(kind=DeskTaskKind.escalation.value, role="manager", ticket_id=ticket.id, reason=reason[:MAX_TEXT],
                    created_by=surveyor.username, created=now, outcome={"from_step": workflow.sub_step_of(ticket),
                                                                        "survey_id": survey.id})
    s.add(task)
    s.flush()
    assert task.id is not None
    return task.id


def _team_leader_task(s: Session, survey: Survey, ticket: Ticket | None, surveyor: workflow.Actor, staff: str,
                      note: str, now: datetime) -> int:
    task = DeskTask(kind=STAFF_FAULT_TASK, role=TEAM_LEADER_ROLE, ticket_id=ticket.id if ticket else None,
                    reason=f"回访不满意，客服中心责任 / the customer-service centre's fault (survey {survey.id}); "
                           f"staff member: {staff}; {note}"[:MAX_TEXT],
                    created_by=surveyor.username, created=now, outcome={"survey_id": survey.id, "staff_member": staff})
    s.add(task)
    s.flush()
    assert task.id is not None
    return task.id


def finish_team_task(s: Session, task_id: int, leader: workflow.Actor, note: str, *,
                     now: datetime | None = None) -> DeskTask:
    """The team leader says how the staff member's case was handled (U5)."""
    if leader.role not in (TEAM_LEADER_ROLE, "admin"):
        raise ServiceError("only a senior operator (the team leader) handles this", code="forbidden_action")
    note = note.strip()
    if not note:
        raise ServiceError("say how it was handled", code="reason_required")
    task = s.get(DeskTask, task_id, populate_existing=True)
    if task is None or task.kind != STAFF_FAULT_TASK:
        raise NotFound(f"no team leader task {task_id}")
    now = now or utcnow()
    result = s.execute(update(DeskTask).where(col(DeskTask.id) == task_id,
                                              col(DeskTask.state) == DeskTaskState.open.value)
                       .values(state=DeskTaskState.done.value, done_by=leader.username, done_at=now,
                               outcome={**(task.outcome or {}), "handled": note[:MAX_TEXT]}))
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise Conflict(f"task {task_id} was done already by {task.done_by}", code="already_done")
    s.refresh(task)
    return task


def set_preference(s: Session, number: str, *, by: str, do_not_call: bool | None = None,
                   quiet_days: Sequence[int] | None = None, reason: str | None = None,
                   now: datetime | None = None) -> ContactPreference:
    if not usable_number(number):
        raise ServiceError("not a number we could call", code="invalid_number")
    pref = s.get(ContactPreference, number) or ContactPreference(number=number)
    if do_not_call is not None:
        pref.do_not_call = do_not_call
    if quiet_days is not None:
        pref.quiet_days = ",".join(str(d) for d in parse_quiet_days(",".join(map(str, quiet_days))))
    pref.reason, pref.updated_by, pref.updated_at = (reason or pref.reason), by, now or utcnow()
    s.add(pref)
    s.flush()
    return pref


# ------------------------------------------------------------------ the surveyor's lists


LIST_STATES = {
    "due": (SurveyState.due.value,),
    "in_progress": (SurveyState.in_progress.value,),
    "failed": (SurveyState.unreachable.value, SurveyState.no_contact.value, SurveyState.do_not_call.value,
               SurveyState.stopped.value, SurveyState.opted_out.value),
    "results": (SurveyState.completed.value, SurveyState.stopped.value, SurveyState.opted_out.value),
}


def list_surveys(s: Session, which: str, *, limit: int = 200) -> list[Survey]:
    states = LIST_STATES[which]
    q = select(Survey).where(col(Survey.state).in_(states))
    if which == "failed":
        # Stopped / opted out with nothing to show are failures; with answers they are results.
        q = q.where((col(Survey.state).in_(LIST_STATES["failed"][:3])) | col(Survey.result).is_(None))
    if which == "results":
        q = q.where(col(Survey.result).is_not(None))
    order = col(Survey.next_attempt_at) if which == "due" else col(Survey.finished_at).desc() \
        if which in ("failed", "results") else col(Survey.started_at).desc()
    return list(s.exec(q.order_by(order, col(Survey.id)).limit(limit)))


def find(s: Session, *, state: str | None = None, result: str | None = None, since: datetime | None = None,
         limit: int = 100) -> list[Survey]:
    """Surveys by state and result, finished (or opened) since a time, newest first: what
    the data manager's archive reads (D1)."""
    q = select(Survey)
    if state is not None:
        q = q.where(Survey.state == state)
    if result is not None:
        q = q.where(Survey.result == result)
    if since is not None:
        q = q.where(col(Survey.created) >= since)
    return list(s.exec(q.order_by(col(Survey.created).desc(), col(Survey.id).desc()).limit(limit)))


def dissatisfied_queue(s: Session, *, limit: int = 200) -> list[Survey]:
    return list(s.exec(select(Survey).where(Survey.result == "dissatisfied", col(Survey.cause).is_(None))
                       .order_by(col(Survey.finished_at), col(Survey.id)).limit(limit)))


def recently_handled(s: Session, *, limit: int = 20) -> list[Survey]:
    return list(s.exec(select(Survey).where(Survey.result == "dissatisfied", col(Survey.cause).is_not(None))
                       .order_by(col(Survey.cause_at).desc()).limit(limit)))


def counts(s: Session) -> dict[str, int]:
    """T4: surveys by state and result, and second dispatches."""
    by_state = dict(s.exec(select(Survey.state, func.count()).group_by(Survey.state)).all())
    by_result = dict(s.exec(select(Survey.result, func.count()).where(col(Survey.result).is_not(None))
                            .group_by(Survey.result)).all())
    out = {f"state_{k}": int(v) for k, v in by_state.items()}
    out.update({f"result_{k}": int(v) for k, v in by_result.items()})
    out["second_dispatches"] = int(s.exec(select(func.count()).select_from(SecondDispatch)).one())
    out["dissatisfied_open"] = int(s.exec(select(func.count()).select_from(Survey).where(
        Survey.result == "dissatisfied", col(Survey.cause).is_(None))).one())
    return out


def team_leader_tasks(s: Session) -> list[DeskTask]:
    return workflow.open_tasks(s, TEAM_LEADER_ROLE, kind=STAFF_FAULT_TASK)


def staff_names(s: Session) -> list[str]:
    """The desk's operators, for "which staff member" (the surveyor may also type a name)."""
    return list(s.exec(select(DeskUser.username).where(col(DeskUser.role).in_(("junior", "senior")))
                       .order_by(col(DeskUser.username))))


# ------------------------------------------------------------------ CSV


CSV_COLUMNS = ("survey", "ticket", "fault_number", "channel", "state", "result", "fixed", "attitude", "quality",
               "comment", "comment_recording", "stopped_at", "attempts", "asked_by", "created", "finished",
               "cause", "cause_note", "second_dispatch")


@dataclass
class CsvFilter:
    since: datetime | None = None
    until: datetime | None = None
    states: tuple[str, ...] = field(default_factory=tuple)


def csv_rows(s: Session, flt: CsvFilter, tz: str) -> list[list[str]]:
    q = select(Survey, Ticket).join(Ticket, col(Ticket.id) == col(Survey.ticket_id))
    if flt.since is not None:
        q = q.where(col(Survey.created) >= flt.since)
    if flt.until is not None:
        q = q.where(col(Survey.created) < flt.until)
    if flt.states:
        q = q.where(col(Survey.state).in_(flt.states))
    zone = ZoneInfo(tz)

    def local(value: datetime | None) -> str:
        return utc(value).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""

    def yes_no(value: bool | None) -> str:
        return "" if value is None else ("yes" if value else "no")

    rows = []
    for survey, ticket in s.exec(q.order_by(col(Survey.created), col(Survey.id)).limit(100_000)):
        rows.append([str(survey.id), ticket.id, group_digits(ticket.fault_number or ""), survey.channel, survey.state,
                     survey.result or "", yes_no(survey.fixed), str(survey.attitude or ""), str(survey.quality or ""),
                     survey.comment_text or "", "yes" if survey.comment_recording else "", survey.stopped_at or "",
                     str(survey.attempts_made), survey.asked_by or "", local(survey.created),
                     local(survey.finished_at), survey.cause or "", survey.cause_note or "",
                     survey.second_ticket_id or ""])
    return rows


def to_csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """UTF-8 with a byte-order mark: Excel then opens the Chinese as Chinese. Cells
    that a spreadsheet would run as a formula are quoted with a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def utc_day(day: date, tz: str) -> datetime:
    """Local midnight of ``day`` in UTC (for "from … to …" filters)."""
    return utc(datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)))
