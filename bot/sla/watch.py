"""U1–U2, the deadline watch: a periodic job (``deadline_watch``, every
``HOTLINE_SLA_SWEEP_S``) that looks at every dispatched ticket.

* At ``HOTLINE_SLA_WARN_AT`` (0.8) of the completion deadline: one warning to the
  responsible centre — a notice on its desk page to acknowledge, a note on the ticket,
  a TMF621 event.
* At the deadline with no receipt: an alarm and a chase (the workflow's ``chase``: the
  centre's notice says it is overdue, ``chase_count`` goes up), one violation recorded
  against the centre (who, which ticket, how late), a task for the surveyor to explain
  the delay to the customer, and a TMF621 event.

Exactly once: each ticket is handled in one transaction of its own. What a warning or
alarm sends is written in the same transaction as the watch's ``warned_at`` /
``alarmed_at``, which is set by a conditional update (``… WHERE warned_at IS NULL``):
a sweep that comes second (another leader after a kill, a retry) finds it set and sends
nothing; the violation and the events also have unique constraints of their own. The
watch is per dispatch (``dispatch_no``): a ticket dispatched again (after a reopen or a
return) has a new deadline and is warned again, once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.jobs import JobContext
from bot.jobs import store as jobs_store
from bot.settings import Settings
from bot.sla.clock import (
    WATCHED_SUB_STEPS,
    Assessment,
    WorkCalendar,
    assess,
    counted_seconds,
    pauses_from_history,
)
from bot.sla.models import DeadlineViolation, DeadlineWatch, EventHub, TicketEvent
from bot.store import workflow
from bot.store.models import (
    DeskTask,
    DeskTaskKind,
    MeasurementCentreRow,
    Ticket,
    TicketNote,
    TicketStatusChange,
    utc,
    utcnow,
)
from bot.store.workflow import Actor

log = structlog.get_logger(__name__)

WATCHER = Actor("deadline-watch", workflow.SYSTEM)
JOB_KIND = "deadline_watch"
NOTIFY_KIND = "tmf_notify"
TMF_BASE = "/tmf-api/troubleTicket/v5"


@dataclass(frozen=True)
class WatchConfig:
    warn_share: float
    timezone: str  # where the centre's times are shown, and the default of its calendar
    base_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> WatchConfig:
        return cls(settings.sla_warn_at, settings.timezone, settings.bot_url.rstrip("/"))


def calendar_of(centre: MeasurementCentreRow | None, default_tz: str) -> WorkCalendar | None:
    if centre is None or not centre.working_hours:
        return None
    return WorkCalendar.from_dict(centre.working_hours, default_tz)


def history_of(s: Session, ticket_id: str) -> list[tuple[datetime, str | None]]:
    rows = s.exec(select(TicketStatusChange.at, TicketStatusChange.to_sub_step)
                  .where(TicketStatusChange.ticket_id == ticket_id).order_by(col(TicketStatusChange.id))).all()
    return [(utc(at), step) for at, step in rows]


def assess_watch(s: Session, watch: DeadlineWatch, centre: MeasurementCentreRow | None, cfg: WatchConfig,
                 now: datetime) -> Assessment:
    """Where a dispatch's clock stands (pauses read from the ticket's history)."""
    start = utc(watch.dispatched_at)
    pauses = pauses_from_history(history_of(s, watch.ticket_id), start)
    calendar = calendar_of(centre, cfg.timezone) if watch.working_hours_only else None
    return assess(start, watch.allowance_hours, pauses, calendar, cfg.warn_share, now)


def allowance_hours(ticket: Ticket, centre: MeasurementCentreRow, cfg: WatchConfig) -> float:
    """How much clock a dispatch has: what its deadline said when it was dispatched (a
    world file's open fault may name its own), else the centre's completion time."""
    start, deadline = ticket.dispatched_at, ticket.expected_resolution_date
    if start is None or deadline is None or utc(deadline) <= utc(start):
        return centre.completion_deadline_hours
    return counted_seconds(utc(start), [], calendar_of(centre, cfg.timezone), utc(deadline)) / 3600


# ------------------------------------------------------------------ the sweep


def tickets_to_watch(s: Session) -> list[str]:
    """Every ticket whose dispatch is running, and every watch not yet ended (so a ticket
    that got its receipt, or was dispatched again, closes its old watch)."""
    dispatched = s.exec(select(Ticket.id).where(col(Ticket.sub_step).in_(WATCHED_SUB_STEPS),
                                                col(Ticket.dispatched_at).is_not(None),
                                                col(Ticket.centre_id).is_not(None))).all()
    open_watches = s.exec(select(DeadlineWatch.ticket_id).where(col(DeadlineWatch.ended_at).is_(None))).all()
    return sorted(set(dispatched) | set(open_watches))


@dataclass(frozen=True)
class Outcome:
    warned: bool = False
    alarmed: bool = False
    ended: int = 0


def watch_ticket(s: Session, ticket_id: str, cfg: WatchConfig, now: datetime | None = None) -> Outcome:
    """One ticket, in the caller's transaction: start or end its watch, and send what is
    due and was not sent yet."""
    now = now or utcnow()
    ticket = s.get(Ticket, ticket_id, populate_existing=True)
    running = (ticket is not None and workflow.sub_step_of(ticket) in WATCHED_SUB_STEPS
               and ticket.dispatched_at is not None and ticket.centre_id is not None)
    centre = s.get(MeasurementCentreRow, ticket.centre_id) if running and ticket and ticket.centre_id else None
    current = utc(ticket.dispatched_at) if running and ticket and ticket.dispatched_at else None
    ended = _end_watches(s, ticket_id, ticket, keep=current if centre is not None else None, now=now, cfg=cfg)
    if ticket is None or centre is None or current is None:
        return Outcome(ended=ended)
    watch = _watch_for(s, ticket, centre, current, cfg)
    state = assess_watch(s, watch, centre, cfg, now)
    if state.deadline is not None and watch.deadline_at != state.deadline:
        watch.deadline_at = state.deadline
        s.add(watch)
        # The ticket's TMF621 expectedResolutionDate follows the clock (a pause moves it);
        # only for this dispatch: a new dispatch sets its own.
        s.execute(update(Ticket).where(col(Ticket.id) == ticket.id, col(Ticket.dispatched_at) == current)
                  .values(expected_resolution_date=state.deadline))
    warned = state.warning_due and _mark(s, watch, "warned_at", now)
    if warned:
        _send_warning(s, ticket, centre, watch, state, cfg, now)
    alarmed = state.overdue and _mark(s, watch, "alarmed_at", now)
    if alarmed:
        _send_alarm(s, ticket, centre, watch, state, cfg, now)
    s.flush()
    return Outcome(warned, alarmed, ended)


def _watch_for(s: Session, ticket: Ticket, centre: MeasurementCentreRow, dispatched_at: datetime,
               cfg: WatchConfig) -> DeadlineWatch:
    watch = s.exec(select(DeadlineWatch).where(DeadlineWatch.ticket_id == ticket.id,
                                               DeadlineWatch.dispatched_at == dispatched_at)).first()
    if watch is not None:
        return watch
    last = s.exec(select(func.max(DeadlineWatch.dispatch_no)).where(DeadlineWatch.ticket_id == ticket.id)).one()
    watch = DeadlineWatch(ticket_id=ticket.id, dispatch_no=int(last or 0) + 1, centre_id=centre.id,
                          branch=ticket.branch, dispatched_at=dispatched_at,
                          allowance_hours=allowance_hours(ticket, centre, cfg),
                          working_hours_only=bool(centre.working_hours))
    try:
        with s.begin_nested():
            s.add(watch)
            s.flush()
    except IntegrityError:  # another sweep started it meanwhile
        found = s.exec(select(DeadlineWatch).where(DeadlineWatch.ticket_id == ticket.id,
                                                   DeadlineWatch.dispatched_at == dispatched_at)).first()
        assert found is not None
        return found
    log.info("deadline.watch_started", ticket_id=ticket.id, dispatch_no=watch.dispatch_no, centre=centre.id)
    return watch


def _end_watches(s: Session, ticket_id: str, ticket: Ticket | None, *, keep: datetime | None, now: datetime,
                 cfg: WatchConfig) -> int:
    """Close the open watches of a ticket other than its running dispatch (``keep``):
    the receipt came, the ticket was withdrawn, or it was dispatched again. A violation
    gets its final lateness (deadline → the end)."""
    ended = 0
    for watch in s.exec(select(DeadlineWatch).where(DeadlineWatch.ticket_id == ticket_id,
                                                    col(DeadlineWatch.ended_at).is_(None))).all():
        if keep is not None and utc(watch.dispatched_at) == keep:
            continue
        end_at, reason = _end_of(s, watch, ticket, now)
        result = s.execute(update(DeadlineWatch).where(col(DeadlineWatch.id) == watch.id,
                                                       col(DeadlineWatch.ended_at).is_(None))
                           .values(ended_at=end_at, end_reason=reason))
        if cast("CursorResult[Any]", result).rowcount != 1:
            continue
        ended += 1
        violation = s.exec(select(DeadlineViolation).where(DeadlineViolation.watch_id == watch.id)).first()
        if violation is not None and violation.ended_at is None:
            violation.ended_at = end_at
            violation.late_by_s = max(0.0, (end_at - utc(violation.deadline_at)).total_seconds())
            s.add(violation)
        log.info("deadline.watch_ended", ticket_id=ticket_id, dispatch_no=watch.dispatch_no, reason=reason)
    return ended


def _end_of(s: Session, watch: DeadlineWatch, ticket: Ticket | None, now: datetime) -> tuple[datetime, str]:
    """When and how a dispatch ended: the first change after it that left the watched
    sub-steps (the receipt, a return, a withdrawal …), or a new dispatch."""
    if ticket is not None:
        started = False  # the history in order: from the change that made this dispatch on
        for at, step in history_of(s, watch.ticket_id):
            if not started:
                started = at == utc(watch.dispatched_at) and step in WATCHED_SUB_STEPS
            elif step not in WATCHED_SUB_STEPS:
                return at, str(step)
        if ticket.dispatched_at is not None and utc(ticket.dispatched_at) != utc(watch.dispatched_at):
            return utc(ticket.dispatched_at), "dispatched_again"
    return now, "gone"


def _mark(s: Session, watch: DeadlineWatch, column: str, now: datetime) -> bool:
    result = s.execute(update(DeadlineWatch).where(col(DeadlineWatch.id) == watch.id,
                                                   getattr(DeadlineWatch, column).is_(None))
                       .values({column: now}))
    return cast("CursorResult[Any]", result).rowcount == 1


def _local(at: datetime | None, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return utc(at).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if at is not None else "—"


def _send_warning(s: Session, ticket: Ticket, centre: MeasurementCentreRow, watch: DeadlineWatch,
                  state: Assessment, cfg: WatchConfig, now: datetime) -> None:
    share = round(cfg.warn_share * 100)
    text = (f"时限预警：已用完成时限的 {share}%，须于 {_local(state.deadline, cfg.timezone)} 前回单。 / "
            f"Deadline warning: {share}% of the {centre.completion_deadline_hours:g} h completion time used; "
            f"receipt due by {_local(state.deadline, cfg.timezone)} ({cfg.timezone}).")
    s.add(DeskTask(kind=DeskTaskKind.branch_notice.value, role=workflow.C, branch=ticket.branch,
                   ticket_id=ticket.id, reason=text, created_by=WATCHER.username, created=now,
                   outcome={"sla": "warning", "dispatch": watch.dispatch_no,
                            "deadline": state.deadline.isoformat() if state.deadline else None}))
    # A note, not a workflow action: it leaves the ticket's version alone, so nobody's open
    # form goes stale because of a warning.
    s.add(TicketNote(ticket_id=ticket.id, author=WATCHER.username, text=text, at=now))
    add_event(s, ticket, cfg, f"deadline-warning:{watch.dispatch_no}", "deadlineWarning",
              title="Completion deadline warning (U1)", description=text, priority="High", state=state, now=now)
    log.info("deadline.warned", ticket_id=ticket.id, dispatch_no=watch.dispatch_no, centre=centre.id,
             share=round(state.share, 3))


def _send_alarm(s: Session, ticket: Ticket, centre: MeasurementCentreRow, watch: DeadlineWatch,
                state: Assessment, cfg: WatchConfig, now: datetime) -> None:
    deadline = state.deadline or now
    text = (f"超时告警：完成时限 {_local(deadline, cfg.timezone)} 已过，尚未回单。 / "
            f"Overdue: the completion deadline {_local(deadline, cfg.timezone)} ({cfg.timezone}) has passed "
            "with no receipt.")
    notice_id: int | None = None
    if workflow.sub_step_of(ticket) == "dispatched":
        notice_id = workflow.perform(s, ticket.id, "chase", WATCHER, reason=text, now=now).task_id
    if notice_id is not None:  # the chase's notice is the alarm: one notice, flagged overdue
        notice = s.get(DeskTask, notice_id)
        assert notice is not None
        notice.outcome = {**(notice.outcome or {}), "sla": "overdue", "dispatch": watch.dispatch_no}
        s.add(notice)
    else:  # the clock ran out just before the ticket went to wait on the customer: no chase
        s.add(DeskTask(kind=DeskTaskKind.branch_notice.value, role=workflow.C, branch=ticket.branch,
                       ticket_id=ticket.id, reason=text, created_by=WATCHER.username, created=now,
                       outcome={"sla": "overdue", "dispatch": watch.dispatch_no}))
    s.add(DeadlineViolation(watch_id=watch.id or 0, ticket_id=ticket.id, dispatch_no=watch.dispatch_no,
                            centre_id=centre.id, centre_name=centre.name, branch=ticket.branch,
                            deadline_at=deadline, detected_at=now))
    s.add(DeskTask(kind=DeskTaskKind.explain_delay.value, role=workflow.U, ticket_id=ticket.id,
                   reason=(f"向客户解释延误 / Explain the delay to the customer: {centre.name} missed the "
                           f"completion deadline {_local(deadline, cfg.timezone)}."),
                   created_by=WATCHER.username, created=now,
                   outcome={"dispatch": watch.dispatch_no, "deadline": deadline.isoformat(),
                            "centre": centre.id}))
    add_event(s, ticket, cfg, f"deadline-overdue:{watch.dispatch_no}", "overdue",
              title="Completion deadline passed (U2)", description=text, priority="Critical", state=state, now=now)
    log.warning("deadline.overdue", ticket_id=ticket.id, dispatch_no=watch.dispatch_no, centre=centre.id)


# ------------------------------------------------------------------ TMF621 events


def add_event(s: Session, ticket: Ticket, cfg: WatchConfig, dedupe_key: str, deadline_state: str, *,
              title: str, description: str, priority: str, state: Assessment, now: datetime) -> TicketEvent | None:
    """A TroubleTicketAttributeValueChangeEvent: the ticket's ``deadlineState``
    characteristic changed. Once per ``dedupe_key``; each hub gets it through a job."""
    href = f"{cfg.base_url}{TMF_BASE}/troubleTicket/{ticket.id}"
    characteristics = [
        {"name": "deadlineState", "value": deadline_state, "valueType": "string", "@type": "StringCharacteristic"},
        {"name": "deadlineShareUsed", "value": round(state.share, 3), "valueType": "number",
         "@type": "NumberCharacteristic"},
    ]
    body: dict[str, Any] = {"troubleTicket": {
        "id": ticket.id, "href": href, "status": ticket.status, "@type": "TroubleTicket",
        "troubleTicketCharacteristic": characteristics,
        **({"expectedResolutionDate": state.deadline.isoformat()} if state.deadline else {}),
    }}
    event = TicketEvent(event_id=str(uuid.uuid4()), ticket_id=ticket.id,
                        event_type="TroubleTicketAttributeValueChangeEvent", dedupe_key=dedupe_key, title=title,
                        description=description, priority=priority, event_time=now, event=body)
    try:
        with s.begin_nested():
            s.add(event)
            s.flush()
    except IntegrityError:
        return None
    for hub_id in s.exec(select(EventHub.id)).all():
        jobs_store.schedule_once(s, NOTIFY_KIND, f"{event.event_id}:{hub_id}", now,
                                 {"event": event.id, "hub": hub_id})
    return event


# ------------------------------------------------------------------ the job


async def sweep(ctx: JobContext) -> None:
    """The ``deadline_watch`` job: every watched ticket, each in its own transaction.
    A ticket that fails (changed by someone in the same instant) is tried again by the
    next sweep; the run is then recorded as failed with the first error."""
    cfg = WatchConfig.from_settings(ctx.settings)
    failures: list[str] = []
    for ticket_id in await ctx.db.run(tickets_to_watch):
        try:
            await ctx.db.run(watch_ticket, ticket_id, cfg)
        except Exception as exc:  # noqa: BLE001 - one ticket must not stop the others
            log.warning("deadline.ticket_failed", ticket_id=ticket_id, error=str(exc)[:300])
            failures.append(f"{ticket_id}: {type(exc).__name__}: {exc}")
    if failures:
        raise RuntimeError(f"{len(failures)} ticket(s) not watched this time; first: {failures[0]}")
