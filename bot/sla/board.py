"""What the desk shows of the deadline watch (U1–U2): the live board of every running
dispatch (share of its deadline used, warned, overdue, violations), the surveyor's
"explain the delay" tasks, and violations per centre (its assessment).

Every figure is computed from the stored history at the moment the page is drawn, with
the same clock as the watch (bot/sla/clock.py), so the board is right between sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, func, update
from sqlmodel import Session, col, select

from bot.sla.clock import WATCHED_SUB_STEPS
from bot.sla.models import DeadlineViolation, DeadlineWatch
from bot.sla.watch import WatchConfig, allowance_hours, assess_watch
from bot.store.errors import Conflict, NotFound, ServiceError
from bot.store.models import (
    DeskTask,
    DeskTaskKind,
    DeskTaskState,
    MeasurementCentreRow,
    Ticket,
    TicketNote,
    utc,
    utcnow,
)
from bot.store.workflow import Actor

EXPLAIN_HOW = ("phone", "sms", "visit", "wechat", "other")
MAX_BOARD = 500


@dataclass(frozen=True)
class DeadlineRow:
    ticket_id: str
    fault_number: str | None
    centre_id: str
    centre_name: str
    branch: str | None
    dispatch_no: int
    dispatched_at: datetime
    deadline: datetime | None
    share: float  # of the deadline used, 0…(more than 1 when overdue)
    paused: bool
    warned_at: datetime | None
    overdue: bool
    alarmed_at: datetime | None
    violations: int  # against this ticket, every dispatch
    working_hours_only: bool
    chase_count: int

    @property
    def percent(self) -> int:
        return int(self.share * 100)


def deadline_rows(s: Session, cfg: WatchConfig, *, now: datetime | None = None, branch: str | None = None,
                  ticket_ids: list[str] | None = None) -> list[DeadlineRow]:
    """Every running dispatch (of ``branch``; of ``ticket_ids``), overdue first, then by
    share used. A dispatch no sweep has seen yet is shown as the watch will see it."""
    now = now or utcnow()
    q = select(Ticket).where(col(Ticket.sub_step).in_(WATCHED_SUB_STEPS), col(Ticket.dispatched_at).is_not(None),
                             col(Ticket.centre_id).is_not(None))
    if branch is not None:
        q = q.where(Ticket.branch == branch)
    if ticket_ids is not None:
        q = q.where(col(Ticket.id).in_(ticket_ids))
    tickets = s.exec(q.order_by(col(Ticket.dispatched_at)).limit(MAX_BOARD)).all()
    centres = {c.id: c for c in s.exec(select(MeasurementCentreRow))}
    violations = dict(s.exec(select(DeadlineViolation.ticket_id, func.count()).where(
        col(DeadlineViolation.ticket_id).in_([t.id for t in tickets])).group_by(col(DeadlineViolation.ticket_id))).all())
    rows = []
    for t in tickets:
        assert t.dispatched_at is not None and t.centre_id is not None
        centre = centres.get(t.centre_id)
        watch = s.exec(select(DeadlineWatch).where(DeadlineWatch.ticket_id == t.id,
                                                   DeadlineWatch.dispatched_at == utc(t.dispatched_at))).first()
        if watch is None:
            if centre is None:
                continue
            last = s.exec(select(func.max(DeadlineWatch.dispatch_no)).where(DeadlineWatch.ticket_id == t.id)).one()
            watch = DeadlineWatch(ticket_id=t.id, dispatch_no=int(last or 0) + 1, centre_id=centre.id,
                                  branch=t.branch, dispatched_at=utc(t.dispatched_at),
                                  allowance_hours=allowance_hours(t, centre, cfg),
                                  working_hours_only=bool(centre.working_hours))  # not stored
        state = assess_watch(s, watch, centre, cfg, now)
        rows.append(DeadlineRow(
            ticket_id=t.id, fault_number=t.fault_number, centre_id=t.centre_id,
            centre_name=centre.name if centre else t.centre_id, branch=t.branch, dispatch_no=watch.dispatch_no,
            dispatched_at=utc(t.dispatched_at), deadline=state.deadline, share=state.share, paused=state.paused,
            warned_at=utc(watch.warned_at) if watch.warned_at else None,
            overdue=state.overdue, alarmed_at=utc(watch.alarmed_at) if watch.alarmed_at else None,
            violations=int(violations.get(t.id, 0)), working_hours_only=watch.working_hours_only,
            chase_count=t.chase_count))
    rows.sort(key=lambda r: (not r.overdue, -r.share, r.ticket_id))
    return rows


@dataclass(frozen=True)
class CentreViolations:
    centre_id: str
    centre_name: str
    branch: str | None
    total: int
    this_month: int
    still_open: int  # no receipt yet


def violations_by_centre(s: Session, tz: str, now: datetime | None = None) -> list[CentreViolations]:
    """U2: the violations each centre's assessment counts (this month in local time)."""
    local_now = (now or utcnow()).astimezone(ZoneInfo(tz))
    month_start = local_now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    out: dict[str, dict[str, Any]] = {}
    for v in s.exec(select(DeadlineViolation)):
        row = out.setdefault(v.centre_id, {"name": v.centre_name, "branch": v.branch, "total": 0, "month": 0,
                                           "open": 0})
        row["total"] += 1
        row["month"] += utc(v.detected_at) >= month_start
        row["open"] += v.ended_at is None
    return sorted((CentreViolations(cid, r["name"], r["branch"], r["total"], r["month"], r["open"])
                   for cid, r in out.items()), key=lambda c: (-c.total, c.centre_id))


def violations_of(s: Session, *, branch: str | None = None, limit: int = 50) -> list[DeadlineViolation]:
    q = select(DeadlineViolation)
    if branch is not None:
        q = q.where(DeadlineViolation.branch == branch)
    return list(s.exec(q.order_by(col(DeadlineViolation.detected_at).desc()).limit(limit)))


def explanations(s: Session, *, done_limit: int = 20) -> tuple[list[DeskTask], list[DeskTask]]:
    """U2: the surveyor's "explain the delay" tasks: open ones (oldest first) and the
    latest explained."""
    open_ = s.exec(select(DeskTask).where(DeskTask.kind == DeskTaskKind.explain_delay.value,
                                          DeskTask.state == DeskTaskState.open.value).order_by(col(DeskTask.id)))
    done = s.exec(select(DeskTask).where(DeskTask.kind == DeskTaskKind.explain_delay.value,
                                         DeskTask.state == DeskTaskState.done.value)
                  .order_by(col(DeskTask.done_at).desc()).limit(done_limit))
    return list(open_), list(done)


def record_explanation(s: Session, task_id: int, surveyor: Actor, *, how: str, when: datetime, what: str,
                       now: datetime | None = None) -> DeskTask:
    """U2: the surveyor explained the delay to the customer — how, when, what was said.
    Recorded once (a second submission is refused with who did it) and noted on the ticket."""
    if surveyor.role not in ("surveyor", "admin"):
        raise ServiceError("only the satisfaction surveyor records explanations", code="forbidden_action")
    if how not in EXPLAIN_HOW:
        raise ServiceError(f"how: one of {', '.join(EXPLAIN_HOW)}", code="invalid_how")
    what = what.strip()
    if not what:
        raise ServiceError("say what the customer was told", code="reason_required")
    if len(what) > 2000:
        raise ServiceError("what was said: at most 2000 characters", code="reason_too_long")
    now = now or utcnow()
    when = utc(when)
    if when > now + timedelta(minutes=5):
        raise ServiceError("when: the explanation cannot be in the future", code="invalid_when")
    task = s.get(DeskTask, task_id, populate_existing=True)
    if task is None or task.kind != DeskTaskKind.explain_delay.value:
        raise NotFound(f"no explanation task {task_id}")
    outcome = {**(task.outcome or {}), "how": how, "when": when.isoformat(), "what": what}
    result = s.execute(update(DeskTask).where(col(DeskTask.id) == task_id,
                                              col(DeskTask.state) == DeskTaskState.open.value)
                       .values(state=DeskTaskState.done.value, done_by=surveyor.username, done_at=now,
                               outcome=outcome))
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise Conflict(f"the delay on ticket {task.ticket_id} was already explained by {task.done_by}",
                       code="already_done")
    if task.ticket_id:
        s.add(TicketNote(ticket_id=task.ticket_id, author=surveyor.username, at=now,
                         text=f"已向客户解释延误 / Delay explained to the customer ({how}, {when.isoformat()}): {what}"))
    s.flush()
    s.refresh(task)
    return task
