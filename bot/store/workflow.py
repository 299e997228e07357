"""The ticket workflow: one table of what each post may do to a ticket, and when.

Every change of a ticket's state, from the desk, the dialogue's actions or the ticket
API, is one :data:`ACTIONS` entry performed by :func:`perform`. An action names the
posts that may take it, the sub-steps it starts from and the sub-step it leads to; the
TMF621 status follows from the sub-step (:data:`STATUS_OF`), so the TMF621 status graph
is derived from this table, never kept beside it. Each performed action writes one
history row (who, when, why, which action, sub-step and status either side), bumps the
ticket's version (optimistic locking: a writer holding an older version gets a
conflict, nothing is overwritten) and, where the process hands work to another post,
opens a :class:`~bot.store.models.DeskTask` for it.

Sub-steps and where they come from (process.md):

    new               recorded, not yet handled (API; a desk J6 report before dispatch)
    awaiting_review   a dispatch waiting for a senior (J6 "a senior reviews every dispatch";
                      the bot's own A10 reports start here)
    dispatched        with the branch's measurement centre, deadline running (S2)
    returned          the centre sent it back with a reason; a senior decides again
    callback          S2: no dispatch needed, call the customer back with the answer
    waiting, on_hold  TMF621 pending / held, set by another system through the API
    answered          answered on the spot or by the callback (J5, J6, S1, S2)
    receipt_received  the centre's completion receipt (回单) (S2)
    withdrawn         J5 "return" (退单): the report is withdrawn
    rejected          J2: the caller is not the line's owner
    closed            done

Escalations to the manager hotline (J4, J6, S1) do not move the sub-step: the fault's
own work (a dispatch, say) goes on while the manager looks into it. They are an action
in the history and an open task for the manager.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import CursorResult, update
from sqlmodel import Session, col, select

from bot import scope as scopes
from bot.sla.clock import WorkCalendar, moment_reaching
from bot.store import knowledge
from bot.store.errors import Conflict, IllegalTransition, NotFound, ServiceError
from bot.store.models import (
    OPEN_STATUSES,
    DeskRole,
    DeskTask,
    DeskTaskKind,
    DeskTaskState,
    FaultClassRow,
    LineRow,
    MeasurementCentreRow,
    Report,
    ReportKind,
    Ticket,
    TicketNote,
    TicketStatus,
    TicketStatusChange,
    utc,
    utcnow,
)
from bot.store.survey_records import survey_due

if TYPE_CHECKING:
    from bot.settings import Settings

log = structlog.get_logger(__name__)


class SubStep(str, Enum):
    new = "new"
    awaiting_review = "awaiting_review"
    dispatched = "dispatched"
    returned = "returned"
    callback = "callback"
    waiting = "waiting"
    on_hold = "on_hold"
    answered = "answered"
    receipt_received = "receipt_received"
    withdrawn = "withdrawn"
    rejected = "rejected"
    closed = "closed"


STATUS_OF: Mapping[str, str] = {
    "new": "acknowledged",
    "awaiting_review": "acknowledged",
    "dispatched": "inProgress",
    "returned": "pending",
    "callback": "pending",
    "waiting": "pending",
    "on_hold": "held",
    "answered": "resolved",
    "receipt_received": "resolved",
    "withdrawn": "cancelled",
    "rejected": "rejected",
    "closed": "closed",
}

# A ticket written before the workflow existed has no sub-step: read it from its status.
SUB_STEP_FOR_STATUS: Mapping[str, str] = {
    "acknowledged": "new", "inProgress": "dispatched", "pending": "waiting", "held": "on_hold",
    "resolved": "answered", "closed": "closed", "rejected": "rejected", "cancelled": "withdrawn",
}

FINAL_SUB_STEPS = frozenset({"withdrawn", "rejected", "closed"})
OPEN_SUB_STEPS = frozenset({"new", "awaiting_review", "dispatched", "returned", "callback", "waiting", "on_hold"})
DONE_SUB_STEPS = frozenset({"answered", "receipt_received"})

J, S, C, M, A = (DeskRole.junior.value, DeskRole.senior.value, DeskRole.centre.value,
                 DeskRole.manager.value, DeskRole.admin.value)
U = DeskRole.surveyor.value  # U4: a dissatisfied customer who refuses the explanation → M1–M2
API = "api"  # another system, through the ticket API's PATCH
SYSTEM = "system"  # the bot itself: the deadline watch's chases (U2)


@dataclass(frozen=True)
class Action:
    name: str
    roles: frozenset[str]
    from_steps: frozenset[str]
    to_step: str | None  # None: the sub-step stays (a chase, a note, an escalation)
    step: str  # the process step it comes from, for the history and the docs
    label_zh: str
    label_en: str
    needs_reason: bool = True
    params: tuple[str, ...] = ()  # required parameters besides the reason

    def allowed_for(self, role: str) -> bool:
        return role in self.roles or role == A


def _a(name: str, roles: set[str], from_steps: set[str] | frozenset[str], to_step: str | None, step: str,
       zh: str, en: str, *, needs_reason: bool = True, params: tuple[str, ...] = ()) -> Action:
    return Action(name, frozenset(roles), frozenset(from_steps), to_step, step, zh, en, needs_reason, params)


_OPEN_OR_DONE = OPEN_SUB_STEPS | DONE_SUB_STEPS

ACTIONS: Mapping[str, Action] = {a.name: a for a in (
    _a("reject_owner_mismatch", {J, S}, {"new", "awaiting_review"}, "rejected", "J2",
       "资料不符，请机主本人申告", "Owner data mismatch: the owner must report in person"),
    _a("request_dispatch", {J, S}, {"new"}, "awaiting_review", "J6",
       "派单（待高级话务员审核）", "Dispatch (a senior reviews it)"),
    _a("approve_dispatch", {S}, {"awaiting_review", "returned"}, "dispatched", "S2",
       "审核通过并派单", "Approve and dispatch", params=("fault_class",)),
    _a("no_dispatch_needed", {S}, {"awaiting_review", "returned"}, "callback", "S2",
       "无需派单，回访答复", "No dispatch needed: call back with the answer"),
    _a("callback_done", {S, J}, {"callback"}, "answered", "S2",
       "已回访答复", "Called back and answered"),
    _a("answer_on_spot", {J, S}, {"new", "awaiting_review", "returned", "dispatched", "callback"}, "answered",
       "J5/J6/S1", "当场答复", "Answered on the spot"),
    _a("chase", {J, S, SYSTEM}, {"dispatched"}, None, "J5/S1/U2", "催单", "Chase the centre"),
    _a("withdraw", {J, S}, {"new", "awaiting_review", "dispatched", "returned", "callback"}, "withdrawn", "J5",
       "退单", "Withdraw (return) the report"),
    _a("receipt", {C}, {"dispatched"}, "receipt_received", "S2",
       "回单（修复完成）", "Completion receipt (repaired)"),
    _a("return_to_review", {C}, {"dispatched"}, "returned", "S2",
       "退回（附原因）", "Return to the senior with a reason"),
    _a("reopen", {J, S}, DONE_SUB_STEPS, "awaiting_review", "J4",
       "故障仍在，重新处理", "Fault still there: reopen"),
    _a("close", {S, M, API}, DONE_SUB_STEPS, "closed", "—", "结单", "Close", needs_reason=False),
    _a("supplement", {J, S}, OPEN_SUB_STEPS, None, "J5",
       "补充申告", "Supplementary report"),
    _a("escalate", {J, S, U}, _OPEN_OR_DONE, None, "J4/J6/S1/U4",
       "转经理热线", "To the manager hotline"),
    _a("note", {J, S, C, M, U, API}, _OPEN_OR_DONE | FINAL_SUB_STEPS, None, "—", "备注", "Note"),
    # The TMF621 API's generic moves (PATCH status), for systems that know only TMF621.
    _a("api_start", {API}, {"new", "awaiting_review", "returned"}, "dispatched", "—", "处理中", "In progress",
       needs_reason=False),
    _a("api_pending", {API}, {"dispatched"}, "waiting", "—", "等待", "Pending", needs_reason=False),
    _a("api_hold", {API}, {"dispatched"}, "on_hold", "—", "挂起", "Held", needs_reason=False),
    _a("api_resume", {API}, {"waiting", "on_hold"}, "dispatched", "—", "继续处理", "Resumed", needs_reason=False),
    _a("api_resolve", {API}, {"dispatched"}, "answered", "—", "已解决", "Resolved", needs_reason=False),
    _a("api_reject", {API}, {"new", "awaiting_review"}, "rejected", "—", "拒绝", "Rejected", needs_reason=False),
    _a("api_cancel", {API}, OPEN_SUB_STEPS, "withdrawn", "—", "取消", "Cancelled", needs_reason=False),
    _a("api_reopen", {API}, DONE_SUB_STEPS, "dispatched", "—", "重新处理", "Reopened", needs_reason=False),
)}



def _status_graph(actions: list[Action]) -> Mapping[str, frozenset[str]]:
    return {
        status: frozenset(
            STATUS_OF[a.to_step] for a in actions if a.to_step is not None
            for f in a.from_steps if STATUS_OF[f] == status and STATUS_OF[a.to_step] != status
        )
        for status in (s.value for s in TicketStatus)
    }


# The TMF621 status graphs, derived from the actions, never kept beside them (TMF621
# lists the states but defines no transitions, ecosystem-notes §6): every move some
# post can make, and the moves the ticket API's PATCH can make on its own.
ALLOWED_STATUS_TRANSITIONS = _status_graph(list(ACTIONS.values()))
API_STATUS_TRANSITIONS = _status_graph([a for a in ACTIONS.values() if a.allowed_for(API) and not a.params
                                        and API in a.roles])


@dataclass(frozen=True)
class Actor:
    """Who acts: a desk user (role, branch for centre staff) or another system (``api``)."""

    username: str
    role: str
    branch: str | None = None


@dataclass(frozen=True)
class CompensationRules:
    """M3: overdue and unresolved by more than ``after_overdue_hours`` → eligible; the
    amount by customer type (the branch pays)."""

    after_overdue_hours: float = 24.0
    amounts: Mapping[str, float] = field(default_factory=lambda: {"residential": 20.0, "business": 100.0})
    big_customer_amount: float = 200.0
    currency: str = "CNY"


    @classmethod
    def from_settings(cls, settings: Settings) -> CompensationRules:
        return cls(settings.compensation_after_overdue_hours, dict(settings.compensation_amounts),
                   settings.compensation_big_customer_amount, settings.compensation_currency)


@dataclass(frozen=True)
class Compensation:
    eligible: bool
    amount: float
    currency: str
    overdue_hours: float
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"eligible": self.eligible, "amount": self.amount, "currency": self.currency,
                "overdue_hours": round(self.overdue_hours, 1), "why": self.why}


@dataclass(frozen=True)
class ActionResult:
    ticket: Ticket
    action: str
    from_step: str
    to_step: str
    task_id: int | None = None


# ------------------------------------------------------------------- queries


def sub_step_of(ticket: Ticket) -> str:
    return ticket.sub_step or SUB_STEP_FOR_STATUS.get(ticket.status, "new")


def available_actions(ticket: Ticket, actor: Actor) -> list[Action]:
    """What ``actor`` may do to ``ticket`` now (the desk shows these buttons)."""
    step = sub_step_of(ticket)
    return [a for a in ACTIONS.values()
            if step in a.from_steps and a.allowed_for(actor.role) and _scope_ok(ticket, actor)
            and not (actor.role != API and a.name.startswith("api_"))]


def _scope_ok(ticket: Ticket, actor: Actor) -> bool:
    """An actor acts only on what it may see (bot/scope.py): centre staff on what was
    dispatched to their own branch's centre."""
    return scopes.sees_ticket(scopes.of(actor), ticket.branch)


def centre_for(s: Session, ticket: Ticket) -> MeasurementCentreRow | None:
    if ticket.branch is None:
        return None
    return s.exec(select(MeasurementCentreRow).where(MeasurementCentreRow.branch == ticket.branch)
                  .order_by(col(MeasurementCentreRow.id))).first()


def fault_classes(s: Session) -> list[str]:
    return [r.name for r in s.exec(select(FaultClassRow).order_by(col(FaultClassRow.name)))]


def compensation_for(ticket: Ticket, line: LineRow | None, rules: CompensationRules, *,
                     now: datetime | None = None) -> Compensation:
    """M3's rule: how overdue the fault is (unresolved: until now; resolved: until its
    resolution) and what the customer type is owed once past the threshold."""
    now = now or utcnow()
    deadline = ticket.expected_resolution_date
    if deadline is None:
        return Compensation(False, 0.0, rules.currency, 0.0, "no completion deadline on this ticket")
    end = ticket.resolution_date if ticket.resolution_date is not None else now
    overdue = max(0.0, (utc(end) - utc(deadline)).total_seconds() / 3600)
    if overdue <= rules.after_overdue_hours:
        return Compensation(False, 0.0, rules.currency, overdue,
                            f"overdue {overdue:.1f} h, not more than {rules.after_overdue_hours:g} h")
    if line is not None and line.big_customer:
        amount, kind = rules.big_customer_amount, "big customer"
    else:
        kind = line.customer_type if line is not None else "residential"
        amount = rules.amounts.get(kind, rules.amounts.get("residential", 0.0))
    return Compensation(amount > 0, amount, rules.currency, overdue,
                        f"overdue {overdue:.1f} h > {rules.after_overdue_hours:g} h; {kind}")


# ------------------------------------------------------------------- perform


def perform(
    s: Session,
    ticket_id: str,
    action_name: str,
    actor: Actor,
    *,
    reason: str | None = None,
    expected_version: int | None = None,
    params: Mapping[str, Any] | None = None,
    handoff_id: int | None = None,
    now: datetime | None = None,
) -> ActionResult:
    """Perform one workflow action on a ticket, or refuse it with a reason.

    ``expected_version`` is the version the actor's screen showed; when the ticket has
    changed since, the action is refused (409 ``stale``) and the actor reloads.
    """
    action = ACTIONS.get(action_name)
    if action is None:
        raise ServiceError(f"unknown action {action_name!r}; one of {', '.join(sorted(ACTIONS))}",
                           code="unknown_action")
    params = dict(params or {})
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > 2000:
        raise ServiceError("the reason is longer than 2000 characters", code="reason_too_long")
    if action.needs_reason and reason is None:
        raise ServiceError(f"{action.name} needs a reason", code="reason_required")
    for p in action.params:
        if not str(params.get(p) or "").strip():
            raise ServiceError(f"{action.name} needs {p}", code="param_required")
    ticket = s.get(Ticket, ticket_id, populate_existing=True)
    if ticket is None or not _scope_ok(ticket, actor):  # out of scope: not there (no probing ids)
        raise NotFound(f"no ticket {ticket_id}")
    if not action.allowed_for(actor.role):
        raise ServiceError(f"a {actor.role} may not {action.name} (who may: {', '.join(sorted(action.roles))})",
                           code="forbidden_action")
    read_version = ticket.version
    if expected_version is not None and expected_version != read_version:
        raise stale_conflict(s, ticket, expected_version)
    step = sub_step_of(ticket)
    if step not in action.from_steps:
        options = sorted(a.name for a in available_actions(ticket, actor))
        raise IllegalTransition(
            f"{action.name} is not possible while the ticket is {step}"
            f" (possible now: {', '.join(options) if options else 'nothing'})")
    now = now or utcnow()
    # The guard: one conditional UPDATE, so of two writers that read the same version
    # exactly one succeeds (PostgreSQL re-checks the WHERE after the other commits).
    result = s.execute(update(Ticket).where(col(Ticket.id) == ticket_id, col(Ticket.version) == read_version)
                       .values(version=read_version + 1))
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise stale_conflict(s, s.get(Ticket, ticket_id, populate_existing=True) or ticket, read_version)
    ticket.version = read_version + 1
    to_step = action.to_step or step
    task_id = _apply(s, ticket, action, actor, reason, params, now, handoff_id)
    from_status, to_status = ticket.status, STATUS_OF[to_step]
    s.add(TicketStatusChange(
        ticket_id=ticket.id, from_status=from_status, to_status=to_status, reason=reason, author=actor.username,
        at=now, action=action.name, from_sub_step=step, to_sub_step=to_step))
    if to_status != from_status:
        ticket.status = to_status
        ticket.status_change_reason = reason or action.label_en
        ticket.status_change_date = now
        if to_status == TicketStatus.resolved.value:
            ticket.resolution_date = now
        elif to_status in OPEN_STATUSES:  # reopened: it is not resolved any more
            ticket.resolution_date = None
    ticket.sub_step = to_step
    ticket.last_update = now
    s.add(ticket)
    s.flush()
    log.info("ticket_action", ticket_id=ticket.id, action=action.name, actor=actor.username, role=actor.role,
             from_step=step, to_step=to_step, version=ticket.version)
    return ActionResult(ticket, action.name, step, to_step, task_id)


def stale_conflict(s: Session, ticket: Ticket, had: int) -> Conflict:
    last = s.exec(select(TicketStatusChange).where(TicketStatusChange.ticket_id == ticket.id)
                  .order_by(col(TicketStatusChange.id).desc())).first()
    who = f" by {last.author} at {utc(last.at).isoformat(timespec='seconds')}" if last is not None else ""
    return Conflict(f"ticket {ticket.id} was changed{who} after you opened it (your version {had}, "
                    f"now {ticket.version}); reload it and try again", code="stale")


def _apply(s: Session, ticket: Ticket, action: Action, actor: Actor, reason: str | None,
           params: Mapping[str, Any], now: datetime, handoff_id: int | None) -> int | None:
    """What an action does besides moving the sub-step; returns a task it opened."""
    name = action.name
    if name == "approve_dispatch":
        fault_class = str(params["fault_class"]).strip()
        known = fault_classes(s)
        if known and fault_class not in known:
            raise ServiceError(f"unknown fault class {fault_class!r}; one of {', '.join(known)}",
                               code="invalid_fault_class")
        centre = centre_for(s, ticket)
        if centre is None:
            raise ServiceError(f"no measurement centre serves branch {ticket.branch!r}", code="no_centre")
        ticket.fault_class = fault_class
        ticket.centre_id = centre.id
        _start_dispatch(ticket, centre, now)
        return None
    if name == "api_reopen":
        # The fault is back with the centre: a new dispatch with a fresh deadline (U1-U2
        # watch it again, as a dispatch of its own).
        centre = s.get(MeasurementCentreRow, ticket.centre_id) if ticket.centre_id else None
        if centre is not None:
            _start_dispatch(ticket, centre, now)
        return None
    if name == "no_dispatch_needed":
        return _open_task(s, DeskTaskKind.callback, S, ticket, actor, reason or "", now, handoff_id=handoff_id)
    if name == "callback_done":
        _finish_tasks(s, ticket.id, DeskTaskKind.callback, actor, now, {"answer": reason})
        return None
    if name == "chase":
        ticket.chase_count += 1
        return _open_task(s, DeskTaskKind.branch_notice, C, ticket, actor, f"催单 / chase: {reason}", now,
                          outcome={"chase": ticket.chase_count})
    if name in ("receipt", "return_to_review"):
        _finish_tasks(s, ticket.id, DeskTaskKind.branch_notice, actor, now, {"by": name})
        if name == "receipt":
            survey_due(s, ticket, now)  # S2: the receipt goes to the surveyor → U3
        return None
    if name == "api_resolve":
        survey_due(s, ticket, now)  # another system's word that the repair is done
    if name == "supplement":
        s.add(Report(ticket_id=ticket.id, kind=ReportKind.supplement.value, at=now, channel=str(params.get("channel") or "desk"),
                     symptom_text=reason, contact_number=params.get("contact_number") or None))
        return None
    if name == "escalate":
        return _open_task(s, DeskTaskKind.escalation, M, ticket, actor, reason or "", now, handoff_id=handoff_id,
                          outcome={"from_step": sub_step_of(ticket)})
    if name == "note":
        s.add(TicketNote(ticket_id=ticket.id, author=actor.username, text=reason or "", at=now))
        return None
    return None


def _start_dispatch(ticket: Ticket, centre: MeasurementCentreRow, now: datetime) -> None:
    """S2: the centre's completion deadline runs from now: its allowance in hours, or in
    working hours when the centre has a working calendar (bot/sla/clock.py)."""
    ticket.dispatched_at = now
    calendar = (WorkCalendar.from_dict(centre.working_hours, "UTC")  # the loader stored its zone
                if centre.working_hours else None)
    deadline = moment_reaching(now, [], calendar, centre.completion_deadline_hours * 3600)
    ticket.expected_resolution_date = deadline or now + timedelta(hours=centre.completion_deadline_hours)


def _open_task(s: Session, kind: DeskTaskKind, role: str, ticket: Ticket, actor: Actor, reason: str,
               now: datetime, *, handoff_id: int | None = None, outcome: dict[str, Any] | None = None) -> int:
    task = DeskTask(kind=kind.value, role=role, branch=ticket.branch if role == C else None,
                    ticket_id=ticket.id, handoff_id=handoff_id, reason=reason, created_by=actor.username,
                    created=now, outcome=outcome)
    s.add(task)
    s.flush()
    assert task.id is not None
    return task.id


def _finish_tasks(s: Session, ticket_id: str, kind: DeskTaskKind, actor: Actor, now: datetime,
                  outcome: dict[str, Any]) -> None:
    for task in s.exec(select(DeskTask).where(DeskTask.ticket_id == ticket_id, DeskTask.kind == kind.value,
                                              DeskTask.state == DeskTaskState.open.value)):
        task.state = DeskTaskState.done.value
        task.done_by, task.done_at = actor.username, now
        task.outcome = {**(task.outcome or {}), **outcome}
        s.add(task)


# ------------------------------------------------------------- the TMF621 PATCH


def action_for_status(ticket: Ticket, to_status: str) -> str:
    """PATCH /troubleTicket/{id} status → the one API action that makes that move."""
    if to_status not in STATUS_OF.values():
        raise ServiceError(f"unknown status {to_status!r}; one of {', '.join(sorted(set(STATUS_OF.values())))}",
                           code="invalid_status")
    step = sub_step_of(ticket)
    for a in ACTIONS.values():
        if (a.to_step is not None and STATUS_OF[a.to_step] == to_status and step in a.from_steps
                and a.allowed_for(API) and not a.params):
            return a.name
    allowed = sorted(API_STATUS_TRANSITIONS.get(ticket.status, frozenset()))
    desk_only = [a.name for a in available_actions(ticket, Actor("desk", A))
                 if a.to_step is not None and STATUS_OF[a.to_step] == to_status]
    hint = f"; at the desk: {', '.join(desk_only)}" if desk_only else ""
    raise IllegalTransition(
        f"a ticket cannot go from {ticket.status} to {to_status} through the API (it is {step};"
        f" allowed from {ticket.status}: {', '.join(allowed) if allowed else f'none, {ticket.status} is final here'})"
        f"{hint}")


# --------------------------------------------------------------------- tasks


def task_dict(t: DeskTask) -> dict[str, Any]:
    return {
        "id": t.id, "kind": t.kind, "role": t.role, "branch": t.branch, "state": t.state,
        "ticket_id": t.ticket_id, "handoff_id": t.handoff_id, "reason": t.reason,
        "created_by": t.created_by, "created": utc(t.created).isoformat(),
        "done_by": t.done_by, "done_at": utc(t.done_at).isoformat() if t.done_at else None,
        "outcome": t.outcome, "grade": t.grade, "grade_note": t.grade_note, "graded_by": t.graded_by,
    }


def open_tasks(s: Session, role: str, *, kind: str | None = None, branch: str | None = None) -> list[DeskTask]:
    q = select(DeskTask).where(DeskTask.role == role, DeskTask.state == DeskTaskState.open.value)
    if kind is not None:
        q = q.where(DeskTask.kind == kind)
    if branch is not None:
        q = q.where(DeskTask.branch == branch)
    return list(s.exec(q.order_by(col(DeskTask.id))))


def open_senior_transfer(s: Session, *, handoff_id: int, ticket_id: str | None, junior: str, reason: str,
                         now: datetime | None = None) -> int:
    """J3/J5/J6 → S1: the junior's transfer, for the senior to handle and grade (S3)."""
    if not reason.strip():
        raise ServiceError("a transfer to a senior needs a reason", code="reason_required")
    task = DeskTask(kind=DeskTaskKind.senior_transfer.value, role=S, ticket_id=ticket_id, handoff_id=handoff_id,
                    reason=reason.strip(), created_by=junior, created=now or utcnow())
    s.add(task)
    s.flush()
    assert task.id is not None
    return task.id


def grade_transfer(s: Session, task_id: int, senior: Actor, grade: str, note: str | None = None, *,
                   now: datetime | None = None, timezone: str | None = None) -> DeskTask:
    """S3: correct → the case joins the hard-case list for the knowledge base (a task for
    the data manager, D2, due in half a working day of ``timezone``'s calendar); incorrect
    → a note to the junior that counts in assessment. A transfer is graded once."""
    if senior.role not in (S, A):
        raise ServiceError("only a senior grades transfers", code="forbidden_action")
    if grade not in ("correct", "incorrect"):
        raise ServiceError("grade is correct or incorrect", code="invalid_grade")
    note = (note or "").strip() or None
    if grade == "incorrect" and note is None:
        raise ServiceError("say why the transfer was not needed: the junior reads it", code="reason_required")
    task = s.get(DeskTask, task_id, populate_existing=True)
    if task is None or task.kind != DeskTaskKind.senior_transfer.value:
        raise NotFound(f"no senior transfer {task_id}")
    now = now or utcnow()
    result = s.execute(update(DeskTask).where(col(DeskTask.id) == task_id, col(DeskTask.grade).is_(None))
                       .values(grade=grade, grade_note=note, graded_by=senior.username, graded_at=now,
                               state=DeskTaskState.done.value, done_by=senior.username, done_at=now))
    if cast("CursorResult[Any]", result).rowcount != 1:
        s.refresh(task)
        raise Conflict(f"transfer {task_id} was already graded {task.grade} by {task.graded_by}", code="already_graded")
    s.refresh(task)
    log.info("transfer_graded", task_id=task_id, grade=grade, senior=senior.username, junior=task.created_by)
    if grade == "correct":
        knowledge.ensure_hard_case_tasks(s, timezone or _default_timezone(), now=now)
    return task


def _default_timezone() -> str:
    from bot.settings import get_settings

    return get_settings().timezone


def hard_cases(s: Session) -> list[DeskTask]:
    """S3 → D2: transfers a senior judged correct, for the knowledge base."""
    return list(s.exec(select(DeskTask).where(DeskTask.kind == DeskTaskKind.senior_transfer.value,
                                              DeskTask.grade == "correct").order_by(col(DeskTask.graded_at).desc())))


def assessment_notes(s: Session, junior: str) -> list[DeskTask]:
    """S3: transfers of this junior a senior judged incorrect; they count in assessment."""
    return list(s.exec(select(DeskTask).where(DeskTask.kind == DeskTaskKind.senior_transfer.value,
                                              DeskTask.created_by == junior, DeskTask.grade == "incorrect")
                       .order_by(col(DeskTask.graded_at).desc())))


def decide_escalation(s: Session, task_id: int, manager: Actor, *, finding: str, explanation: str,
                      rules: CompensationRules, grant_compensation: bool = False,
                      now: datetime | None = None) -> DeskTask:
    """M1–M3: the manager records the finding (our fault or not) and the explanation given;
    for our overdue faults the compensation the rules allow (never more); the branch is
    told through a notice task. The ticket's history gets the decision."""
    if manager.role not in (M, A):
        raise ServiceError("only the manager hotline decides escalations", code="forbidden_action")
    if finding not in ("ours", "not_ours"):
        raise ServiceError("finding is ours or not_ours", code="invalid_finding")
    explanation = explanation.strip()
    if not explanation:
        raise ServiceError("record the explanation given to the customer", code="reason_required")
    task = s.get(DeskTask, task_id, populate_existing=True)
    if task is None or task.kind != DeskTaskKind.escalation.value:
        raise NotFound(f"no escalation {task_id}")
    if task.state != DeskTaskState.open.value:
        raise Conflict(f"escalation {task_id} was already decided by {task.done_by}", code="already_decided")
    now = now or utcnow()
    ticket = s.get(Ticket, task.ticket_id) if task.ticket_id else None
    line = s.get(LineRow, ticket.fault_number) if ticket is not None and ticket.fault_number else None
    comp = compensation_for(ticket, line, rules, now=now) if ticket is not None else None
    if grant_compensation and (finding != "ours" or comp is None or not comp.eligible):
        why = comp.why if comp is not None else "no ticket"
        raise ServiceError(f"the rules allow no compensation here ({why})", code="not_eligible")
    outcome = {**(task.outcome or {}), "finding": finding, "explanation": explanation,
               "compensation": ({**comp.as_dict(), "granted": grant_compensation} if comp is not None else None)}
    result = s.execute(update(DeskTask).where(col(DeskTask.id) == task_id, col(DeskTask.state) == "open")
                       .values(state=DeskTaskState.done.value, done_by=manager.username, done_at=now,
                               outcome=outcome))
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise Conflict(f"escalation {task_id} was decided meanwhile", code="already_decided")
    if ticket is not None:
        granted = f"; compensation {comp.amount:g} {comp.currency} granted" if grant_compensation and comp else ""
        text = f"经理热线 / manager hotline: {'our fault' if finding == 'ours' else 'not our fault'}; {explanation}{granted}"
        perform(s, ticket.id, "note", Actor(manager.username, M), reason=text, now=now)
        if ticket.branch is not None:
            notice = DeskTask(kind=DeskTaskKind.branch_notice.value, role=C, branch=ticket.branch,
                              ticket_id=ticket.id, reason=text, created_by=manager.username, created=now,
                              outcome={"escalation": task_id, "finding": finding,
                                       "compensation": outcome["compensation"]})
            s.add(notice)
    s.flush()
    s.refresh(task)
    log.info("escalation_decided", task_id=task_id, finding=finding, granted=grant_compensation)
    return task


def acknowledge_notice(s: Session, task_id: int, actor: Actor, *, now: datetime | None = None) -> DeskTask:
    """The centre has read a notice (a chase, a manager's finding)."""
    task = s.get(DeskTask, task_id, populate_existing=True)
    if task is None or task.kind != DeskTaskKind.branch_notice.value \
            or not scopes.sees_task(scopes.of(actor), task.role, task.branch):  # another branch's: not there
        raise NotFound(f"no notice {task_id}")
    if actor.role not in (C, A):
        raise ServiceError("notices are for the branch's centre", code="forbidden_action")
    if task.state == DeskTaskState.open.value:
        task.state, task.done_by, task.done_at = DeskTaskState.done.value, actor.username, now or utcnow()
        s.add(task)
        s.flush()
    return task
