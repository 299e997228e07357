"""T5: the periodic reports and their review.

    draft ──submit──▶ submitted ──approve──▶ approved
      ▲                   │
      │               send back (reason)
      │                   ▼
      └── (comment) ── returned ──submit──▶ submitted …

A report is generated as a draft with its figures computed then (a snapshot, JSON); the
statistician reviews it, may refresh the numbers while it is a draft and add a comment,
and submits it to the deputy managers. From submission on its numbers never change: a
deputy approves it (for the provincial centre) or sends it back with a reason; a later
correction is a new version (v2, v3 …) with fresh numbers, linked to the one it corrects,
which keeps its own. Every step is an event with who and when.

Generation is idempotent: one report per kind and period (the first version); the
scheduled run and a statistician asking at the same moment get the same draft.

Another post's periodic report runs on the same machinery (:func:`register_kind`): the
quality inspectors' weekly QA analysis report (Q8, ``bot/quality/weekly.py``) is drafted,
refreshed, submitted by its own post and approved by a deputy manager the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import CursorResult, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.stats import periods, rollup
from bot.stats.figures import Period, compute
from bot.stats.sqltime import local_day
from bot.store.errors import Conflict, NotFound, ServiceError
from bot.store.models import utcnow
from bot.store.stats import ReportState, StatsReport, StatsReportEvent

log = structlog.get_logger(__name__)

STATISTICIAN, DEPUTY, ADMIN, SCHEDULER = "statistician", "deputy", "admin", "scheduler"
MAX_TEXT = 4000
WRITERS = frozenset({STATISTICIAN, ADMIN, SCHEDULER})  # generate, refresh, comment, submit, correct
APPROVERS = frozenset({DEPUTY, ADMIN})  # approve, send back
READERS = frozenset({STATISTICIAN, DEPUTY, ADMIN, "manager"})


@dataclass(frozen=True)
class Who:
    username: str
    role: str


SCHEDULED = Who(SCHEDULER, SCHEDULER)


@dataclass(frozen=True)
class Options:
    """What figures need from the settings."""

    tz: ZoneInfo
    settle_days: float = 7.0
    satisfied_from: int = 4  # HOTLINE_SURVEY_SATISFIED_FROM: the survey's satisfied ratings (U4)


@dataclass(frozen=True)
class OtherKind:
    """A report kind of another post on this machinery: who writes it (generate, refresh,
    comment, submit, correct; deputies approve every kind), its periods and its figures."""

    name: str
    writers: frozenset[str]
    period_starting: Callable[[date], Period]
    figures: Callable[[Session, Period, Options, datetime], dict[str, Any]]
    readers: frozenset[str]  # who else may read it (its figures may name people)
    page: str  # where its page is: page + "/{id}"
    pdf: Callable[[StatsReport, str, str | None], bytes]  # (report, lang, font file)
    xlsx: Callable[[StatsReport, str], bytes]  # (report, lang)


OTHER_KINDS: dict[str, OtherKind] = {}


def register_kind(kind: OtherKind) -> None:
    OTHER_KINDS[kind.name] = kind


def may_read(kind: str, role: str) -> bool:
    """Another post's report is for its writers and readers only (a statistician does not
    read the inspectors' scores of people); every statistics report is for the statistics' readers."""
    other = OTHER_KINDS.get(kind)
    return other is None or role in other.writers | other.readers


def writers_of(kind: str) -> frozenset[str]:
    other = OTHER_KINDS.get(kind)
    return other.writers if other is not None else WRITERS


def _period(kind: str, start: date) -> Period:
    other = OTHER_KINDS.get(kind)
    return other.period_starting(start) if other is not None else periods.period_starting(kind, start)


def _may(who: Who, roles: frozenset[str], what: str) -> None:
    if who.role not in roles:
        raise ServiceError(f"a {who.role} may not {what} a report", code="forbidden_action")


def _text(value: str | None, what: str, *, required: bool) -> str | None:
    value = (value or "").strip() or None
    if required and value is None:
        raise ServiceError(f"{what} is required", code="reason_required")
    if value is not None and len(value) > MAX_TEXT:
        raise ServiceError(f"{what} is longer than {MAX_TEXT} characters", code="text_too_long")
    return value


def _event(s: Session, report_id: int, action: str, who: Who, now: datetime, note: str | None = None) -> None:
    s.add(StatsReportEvent(report_id=report_id, action=action, actor=who.username, role=who.role, at=now, note=note))


def get(s: Session, report_id: int) -> StatsReport:
    row = s.get(StatsReport, report_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no report {report_id}", code="report_not_found")
    return row


def events(s: Session, report_id: int) -> list[StatsReportEvent]:
    return list(s.exec(select(StatsReportEvent).where(StatsReportEvent.report_id == report_id)
                       .order_by(col(StatsReportEvent.at), col(StatsReportEvent.id))))


def versions(s: Session, report: StatsReport) -> list[StatsReport]:
    return list(s.exec(select(StatsReport).where(StatsReport.kind == report.kind,
                                                 StatsReport.period_start == report.period_start)
                       .order_by(col(StatsReport.version))))


def list_reports(s: Session, *, kind: str | None = None, state: str | None = None,
                 limit: int = 200) -> list[StatsReport]:
    q = select(StatsReport)
    if kind is not None:
        q = q.where(StatsReport.kind == kind)
    if state is not None:
        q = q.where(StatsReport.state == state)
    return list(s.exec(q.order_by(col(StatsReport.period_start).desc(), col(StatsReport.kind),
                                  col(StatsReport.version).desc()).limit(limit)))


def _figures(s: Session, kind: str, period: Period, options: Options, now: datetime, *,
             recount: bool = False) -> dict[str, Any]:
    """The period's figures; ``recount``: every day of it recounted from the store first
    (a refresh or a correction asks for the numbers as they are now, settled days too)."""
    other = OTHER_KINDS.get(kind)
    if other is not None:
        figures = other.figures(s, period, options, now)
        figures["kind"] = kind
        return figures
    if recount:
        rollup.refresh(s, period.start, min(period.last, local_day(now, options.tz)), options.tz, now=now)
    figures = compute(s, period, options.tz, settle_days=options.settle_days, now=now,
                      satisfied_from=options.satisfied_from)
    figures["kind"] = kind
    return figures


def generate(s: Session, kind: str, start: date, options: Options, who: Who = SCHEDULED, *,
             now: datetime | None = None) -> tuple[StatsReport, bool]:
    """The draft of ``kind`` for the period starting ``start``: made now with its figures,
    or the report already made for that period (``created`` False). A period that has
    not ended yet is refused."""
    _may(who, writers_of(kind), "generate")
    period = _period(kind, start)
    now = now or utcnow()
    if period.end > local_day(now, options.tz):
        raise ServiceError(f"the {kind} period {period.start} … {period.last} has not ended yet",
                           code="period_not_ended")
    existing = _first_version(s, kind, period)
    if existing is not None:
        return existing, False
    report = StatsReport(kind=kind, period_start=period.start.isoformat(), period_end=period.end.isoformat(),
                         version=1, state=ReportState.draft.value, timezone=options.tz.key,
                         figures=_figures(s, kind, period, options, now), figures_at=now,
                         generated_by=who.username, created=now)
    try:
        with s.begin_nested():  # the scheduler and a person at the same moment: one draft
            s.add(report)
            s.flush()
    except IntegrityError:
        found = _first_version(s, kind, period)
        assert found is not None
        return found, False
    assert report.id is not None
    _event(s, report.id, "generated", who, now)
    s.flush()
    log.info("stats.report_generated", report_id=report.id, kind=kind, start=report.period_start, by=who.username)
    return report, True


def _first_version(s: Session, kind: str, period: Period) -> StatsReport | None:
    return s.exec(select(StatsReport).where(StatsReport.kind == kind,
                                            StatsReport.period_start == period.start.isoformat(),
                                            StatsReport.version == 1)).first()


def generate_due(s: Session, options: Options, *, now: datetime | None = None) -> list[StatsReport]:
    """The scheduled run (T5): for each kind, the report of the newest period that has
    ended, if it was not made yet. Safe to run as often as wanted."""
    now = now or utcnow()
    today = local_day(now, options.tz)
    made = []
    for kind in periods.KINDS:
        period = periods.last_complete(kind, today)
        report, created = generate(s, kind, period.start, options, now=now)
        if created:
            made.append(report)
    return made


def _move(s: Session, report: StatsReport, from_states: tuple[str, ...], **values: Any) -> None:
    """One conditional UPDATE on the state: of two people acting at once, one wins."""
    assert report.id is not None
    result = s.execute(update(StatsReport).where(col(StatsReport.id) == report.id,
                                                 col(StatsReport.state).in_(from_states)).values(**values))
    if cast("CursorResult[Any]", result).rowcount != 1:
        current = get(s, report.id)
        raise Conflict(f"report {report.id} is {current.state} now, not {' or '.join(from_states)}",
                       code="illegal_transition")
    s.refresh(report)


def refresh_figures(s: Session, report_id: int, options: Options, who: Who, *,
                    now: datetime | None = None) -> StatsReport:
    """Recompute a draft's numbers (late data came in); never after submission."""
    report = get(s, report_id)
    _may(who, writers_of(report.kind), "refresh")
    now = now or utcnow()
    if report.state != ReportState.draft.value:
        raise Conflict(f"report {report_id} is {report.state}: its numbers are frozen"
                       " (a correction is a new version)", code="figures_frozen")
    period = Period(date.fromisoformat(report.period_start), date.fromisoformat(report.period_end))
    _move(s, report, (ReportState.draft.value,),
          figures=_figures(s, report.kind, period, options, now, recount=True), figures_at=now)
    _event(s, report_id, "refreshed", who, now)
    return report


def comment(s: Session, report_id: int, who: Who, text: str | None, *, now: datetime | None = None) -> StatsReport:
    """The statistician's comment for the deputy managers (while a draft or sent back)."""
    report = get(s, report_id)
    _may(who, writers_of(report.kind), "comment on")
    note = _text(text, "the comment", required=True)
    now = now or utcnow()
    _move(s, report, (ReportState.draft.value, ReportState.returned.value), comment=note)
    _event(s, report_id, "commented", who, now, note)
    return report


def submit(s: Session, report_id: int, who: Who, note: str | None = None, *,
           now: datetime | None = None) -> StatsReport:
    """To the deputy managers: from here on the numbers are frozen."""
    report = get(s, report_id)
    _may(who, writers_of(report.kind) - {SCHEDULER}, "submit")
    note = _text(note, "the comment", required=False)
    now = now or utcnow()
    values: dict[str, Any] = {"state": ReportState.submitted.value, "submitted_by": who.username,
                              "submitted_at": now, "decided_by": None, "decided_at": None}
    if note is not None:
        values["comment"] = note
    _move(s, report, (ReportState.draft.value, ReportState.returned.value), **values)
    _event(s, report_id, "submitted", who, now, note)
    log.info("stats.report_submitted", report_id=report_id, by=who.username)
    return report


def _decide(s: Session, report_id: int, who: Who, to_state: ReportState, event: str, note: str | None,
            now: datetime | None) -> StatsReport:
    """A deputy manager's decision on a submitted report, with who and when (T5)."""
    report = get(s, report_id)
    now = now or utcnow()
    _move(s, report, (ReportState.submitted.value,), state=to_state.value, decided_by=who.username,
          decided_at=now, decision_reason=note)
    _event(s, report_id, event, who, now, note)
    log.info(f"stats.report_{event}", report_id=report_id, by=who.username)
    return report


def approve(s: Session, report_id: int, who: Who, note: str | None = None, *,
            now: datetime | None = None) -> StatsReport:
    """A deputy manager approves the report for the provincial centre."""
    _may(who, APPROVERS, "approve")
    return _decide(s, report_id, who, ReportState.approved, "approved", _text(note, "the note", required=False),
                   now)


def send_back(s: Session, report_id: int, who: Who, reason: str | None, *,
              now: datetime | None = None) -> StatsReport:
    """A deputy manager sends it back to the statistician, saying why."""
    _may(who, APPROVERS, "send back")
    return _decide(s, report_id, who, ReportState.returned, "sent_back", _text(reason, "the reason", required=True),
                   now)


def correct(s: Session, report_id: int, options: Options, who: Who, reason: str | None, *,
            now: datetime | None = None) -> StatsReport:
    """A correction of a submitted, approved or returned report: a new version, a draft
    with fresh numbers, linked to this one, which keeps its numbers and is marked superseded."""
    report = get(s, report_id)
    _may(who, writers_of(report.kind) - {SCHEDULER}, "correct")
    why = _text(reason, "the reason for the correction", required=True)
    now = now or utcnow()
    if report.state == ReportState.draft.value:
        raise Conflict(f"report {report_id} is still a draft: refresh its numbers instead", code="still_a_draft")
    if report.superseded_by_id is not None:
        raise Conflict(f"report {report_id} was already corrected by report {report.superseded_by_id}",
                       code="already_corrected")
    period = Period(date.fromisoformat(report.period_start), date.fromisoformat(report.period_end))
    newer = StatsReport(kind=report.kind, period_start=report.period_start, period_end=report.period_end,
                        version=report.version + 1, previous_id=report.id, state=ReportState.draft.value,
                        timezone=options.tz.key, figures=_figures(s, report.kind, period, options, now, recount=True),
                        figures_at=now, generated_by=who.username, created=now, correction_reason=why)
    try:
        with s.begin_nested():
            s.add(newer)
            s.flush()
    except IntegrityError as e:
        raise Conflict(f"report {report_id} is being corrected by someone else", code="already_corrected") from e
    assert newer.id is not None
    result = s.execute(update(StatsReport).where(col(StatsReport.id) == report_id,
                                                 col(StatsReport.superseded_by_id).is_(None))
                       .values(superseded_by_id=newer.id))
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise Conflict(f"report {report_id} was corrected meanwhile", code="already_corrected")
    _event(s, report_id, "corrected", who, now, f"v{newer.version}: {why}")
    _event(s, newer.id, "generated", who, now, f"correction of v{report.version}: {why}")
    s.flush()
    log.info("stats.report_corrected", report_id=report_id, new_id=newer.id, by=who.username)
    return newer


def report_dict(r: StatsReport, *, with_figures: bool = False) -> dict[str, Any]:
    def iso(x: datetime | None) -> str | None:
        return x.isoformat() if x is not None else None

    body: dict[str, Any] = {
        "id": r.id, "kind": r.kind, "period": {"start": r.period_start, "end": r.period_end},
        "version": r.version, "previous_id": r.previous_id, "superseded_by_id": r.superseded_by_id,
        "state": r.state, "timezone": r.timezone, "generated_by": r.generated_by, "created": iso(r.created),
        "figures_at": iso(r.figures_at), "comment": r.comment, "correction_reason": r.correction_reason,
        "submitted_by": r.submitted_by, "submitted_at": iso(r.submitted_at), "decided_by": r.decided_by,
        "decided_at": iso(r.decided_at), "decision_reason": r.decision_reason,
    }
    if with_figures:
        body["figures"] = r.figures
    return body


def event_dict(e: StatsReportEvent) -> dict[str, Any]:
    return {"action": e.action, "actor": e.actor, "role": e.role, "at": e.at.isoformat(), "note": e.note}
