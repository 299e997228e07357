"""The desk's ticket work, for every post: one ticket page with its whole history and the
workflow actions the signed-in post may take (bot/store/workflow.py decides which), the
senior's review queue (S1–S3), the measurement centre's list (S2: receipt or return), the
manager hotline's escalations (M1–M3) and the admin's overview.

    GET  /desk/tickets/{id}                 the ticket, its history and my actions on it
    POST /desk/tickets/{id}/actions/{name}  one workflow action (version, reason, fault_class)
    GET  /desk/review                       S1–S3: dispatches to review, callbacks, transfers to grade
    GET  /desk/centre                       S2: what is dispatched to my branch's centre, notices
    GET  /desk/escalations                  M1–M3: open and recently decided escalations
    GET  /desk/tasks/{id}                   one task (an escalation with its compensation check)
    POST /desk/tasks/{id}/grade             S3: correct / incorrect + note
    POST /desk/tasks/{id}/decision          M1–M3: finding, explanation, compensation
    POST /desk/tasks/{id}/ack               a centre has read a notice
    GET  /desk/admin                        links to all of it, with counts

Every handler goes through ``require_role`` (signed in, the post, CSRF on POST) and the
workflow refuses again what a post may not do; a refusal re-renders the page with the
reason and its status (403 not your post, 404, 409 changed meanwhile, 400 bad input).
Centre staff see only their own branch's tickets and notices.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from aiohttp import web
from sqlmodel import Session, col, func, select

from bot.desk import pages, users
from bot.desk import recordings as desk_recordings
from bot.desk.auth import Identity, require_role, settings_of
from bot.jobs import store as jobs_store
from bot.sla import board as sla_board
from bot.sla.watch import WatchConfig
from bot.store import service, workflow
from bot.store import surveys as survey_store
from bot.store.db import DB_KEY
from bot.store.errors import Conflict, NotFound, ServiceError
from bot.store.models import (
    DeskTask,
    DeskTaskKind,
    DeskTaskState,
    Handoff,
    HandoffQueue,
    HandoffState,
    LineRow,
    LineTest,
    MeasurementCentreRow,
    Ticket,
    TicketStatusChange,
    utc,
    utcnow,
)
from bot.store.workflow import Actor

log = structlog.get_logger(__name__)

SENIOR_POSTS = ("senior", "admin")
CENTRE_POSTS = ("centre", "admin")
MANAGER_POSTS = ("manager", "admin")
MAX_TEXT = 2000
TICKET_ID = r"{id:[A-Za-z0-9._-]{1,40}}"
TASK_ID = r"{id:[0-9]{1,9}}"  # fits PostgreSQL's integer; longer is simply not found
RECENT = 20

TASK_KIND_NAMES = {
    "senior_transfer": "transfer from a junior (S1, graded S3)",
    "callback": "call back with the answer (S2)",
    "escalation": "escalation to the manager hotline (M1–M3)",
    "branch_notice": "notice to the branch (chase, manager finding, deadline warning or alarm)",
    "explain_delay": "explain the delay to the customer (U2)",
    "staff_fault": "the customer-service centre's fault, for the team leader (U5)",
}


def actor_of(who: Identity) -> Actor:
    return Actor(who.username, who.role, who.branch)


def time_left(deadline: datetime | None, now: datetime) -> dict[str, Any] | None:
    """How long until the deadline (or since it passed), for people: "3 h 05 min left"."""
    if deadline is None:
        return None
    seconds = (utc(deadline) - now).total_seconds()
    overdue = seconds < 0
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    span = (f"{days} d " if days else "") + f"{hours} h {mins:02d} min"
    return {"overdue": overdue, "text": f"overdue by {span}" if overdue else f"{span} left"}


def _sees_branch(who: Identity, branch: str | None) -> bool:
    """Centre staff see their own branch's tickets only; every other post sees all."""
    return who.role != "centre" or (who.branch is not None and branch == who.branch)


def _not_your_branch(request: web.Request, who: Identity, ticket_id: str) -> web.Response:
    log.warning("desk.branch_refused", username=who.username, branch=who.branch, ticket_id=ticket_id)
    return pages.error_page(request, 403, "Not your branch",
                            f"Ticket {ticket_id} belongs to another branch; your centre ({who.branch}) "
                            "sees and acts on its own branch's tickets only.", who=who)


# ------------------------------------------------------------------ one ticket


def _history_row(h: TicketStatusChange) -> dict[str, Any]:
    action = workflow.ACTIONS.get(h.action or "")
    return {"at": utc(h.at), "author": h.author, "action": h.action or "—",
            "label": f"{action.label_zh} / {action.label_en}" if action else (h.action or "—"),
            "from_step": h.from_sub_step, "to_step": h.to_sub_step,
            "from_status": h.from_status, "to_status": h.to_status, "reason": h.reason}


def _ticket_context(s: Session, ticket_id: str, actor: Actor) -> dict[str, Any] | None:
    """Everything the ticket page shows, or None when there is no such ticket."""
    ticket = s.get(Ticket, ticket_id)
    if ticket is None:
        return None
    view = service.get_ticket(s, ticket_id)
    t = view.ticket
    centre = s.get(MeasurementCentreRow, t.centre_id) if t.centre_id else None
    line = s.get(LineRow, t.fault_number) if t.fault_number else None
    now = utcnow()
    deadline = t.expected_resolution_date
    open_ = workflow.sub_step_of(t) in workflow.OPEN_SUB_STEPS
    actions = [{"name": a.name, "zh": a.label_zh, "en": a.label_en, "step": a.step,
                "needs_reason": a.needs_reason, "params": list(a.params)}
               for a in workflow.available_actions(t, actor)]
    tasks = s.exec(select(DeskTask).where(DeskTask.ticket_id == ticket_id).order_by(col(DeskTask.id))).all()
    return {
        "t": {
            "id": t.id, "name": t.name, "description": t.description, "fault_number": t.fault_number,
            "contact_number": t.contact_number, "symptom_category": t.symptom_category,
            "symptom": service.SYMPTOM_NAMES.get(t.symptom_category or "", t.symptom_category or ""),
            "symptom_text": t.symptom_text, "branch": t.branch, "status": t.status,
            "sub_step": workflow.sub_step_of(t), "fault_class": t.fault_class, "channel": t.channel,
            "centre": f"{centre.name} ({centre.id})" if centre else t.centre_id,
            "created": utc(t.creation_date), "dispatched_at": utc(t.dispatched_at) if t.dispatched_at else None,
            "deadline": utc(deadline) if deadline else None,
            "left": time_left(deadline, now) if open_ else None,
            "resolved": utc(t.resolution_date) if t.resolution_date else None,
            "chase_count": t.chase_count, "version": t.version, "priority": t.priority,
        },
        "line": None if line is None else {"owner": line.owner, "big_customer": line.big_customer,
                                           "customer_type": line.customer_type},
        "reports": [{"at": utc(r.at), "kind": r.kind, "channel": r.channel, "contact_number": r.contact_number,
                     "symptom": service.SYMPTOM_NAMES.get(r.symptom_category or "", r.symptom_category or ""),
                     "symptom_text": r.symptom_text} for r in view.reports],
        "last_test": None if view.last_test is None else {
            "result": view.last_test.result, "summary": view.last_test.summary_zh or view.last_test.summary_en,
            "at": utc(view.last_test.finished_at)},
        "notes": [{"at": utc(n.at), "author": n.author, "text": n.text} for n in view.notes],
        "history": [_history_row(h) for h in view.history],
        "repairman": view.repairman_message.zh if view.repairman_message else None,
        "actions": actions,
        "fault_classes": workflow.fault_classes(s),
        "tasks": [_task_row(k) for k in tasks],
        "surveys": survey_store.ticket_links(s, ticket_id),  # U3–U5
    }


def _task_row(k: DeskTask) -> dict[str, Any]:
    return {"id": k.id, "kind": k.kind, "kind_name": TASK_KIND_NAMES.get(k.kind, k.kind), "role": k.role,
            "branch": k.branch, "state": k.state, "ticket_id": k.ticket_id, "handoff_id": k.handoff_id,
            "reason": k.reason, "created_by": k.created_by, "created": utc(k.created),
            "done_by": k.done_by, "done_at": utc(k.done_at) if k.done_at else None,
            "outcome": k.outcome or {}, "grade": k.grade, "grade_note": k.grade_note, "graded_by": k.graded_by}


async def _ticket_page(request: web.Request, who: Identity, ticket_id: str, *, status: int = 200,
                       error: str | None = None, hint: str | None = None,
                       typed: dict[str, str] | None = None) -> web.Response:
    ctx = await request.app[DB_KEY].run(_ticket_context, ticket_id, actor_of(who))
    if ctx is None:
        return pages.error_page(request, 404, "No such ticket", f"There is no ticket {ticket_id}.", who=who)
    if not _sees_branch(who, ctx["t"]["branch"]):
        return _not_your_branch(request, who, ticket_id)
    calls = await desk_recordings.for_page(request, who, ticket_id=ticket_id)  # Q2: None unless allowed
    return pages.render(request, "ticket.html", status=status, who=who, error=error, hint=hint,
                        typed=typed or {}, recordings=calls, **ctx)


@require_role()
async def ticket_page(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _ticket_page(request, who, request.match_info["id"])


def _refusal(exc: ServiceError) -> tuple[int, str | None]:
    """A workflow refusal → (HTTP status, a hint for the person)."""
    if exc.code == "forbidden_action":
        return 403, None
    if isinstance(exc, NotFound):
        return 404, None
    if isinstance(exc, Conflict):
        return 409, "The ticket has changed since you opened it. Reload the page to see it as it is now, " \
                    "then decide again (your text is kept below)."
    return 400, None


@require_role()
async def ticket_action(request: web.Request, who: Identity) -> web.StreamResponse:
    ticket_id, name = request.match_info["id"], request.match_info["name"]
    form = await request.post()
    reason = str(form.get("reason") or "")
    fault_class = str(form.get("fault_class") or "")
    typed = {"action": name, "reason": reason[:MAX_TEXT], "fault_class": fault_class}
    raw_version = str(form.get("version") or "").strip()
    if not (raw_version.isascii() and raw_version.isdigit()) or len(raw_version) > 9:
        return await _ticket_page(request, who, ticket_id, status=400, typed=typed,
                                  error="The form has no valid ticket version. Reload the page and try again.")
    params = {"fault_class": fault_class} if fault_class else {}
    try:
        await request.app[DB_KEY].run(workflow.perform, ticket_id, name, actor_of(who), reason=reason,
                                      expected_version=int(raw_version), params=params)
    except ServiceError as exc:
        status, hint = _refusal(exc)
        log.info("desk.action_refused", username=who.username, ticket_id=ticket_id, action=name,
                 code=exc.code, status=status)
        return await _ticket_page(request, who, ticket_id, status=status, error=exc.reason, hint=hint,
                                  typed=typed)
    log.info("desk.action", username=who.username, role=who.role, ticket_id=ticket_id, action=name)
    return pages.redirect(f"/desk/tickets/{ticket_id}")


async def ticket_lookup(request: web.Request) -> web.Response:
    """The overview's "open a ticket" box: GET ?id= → the ticket's page."""
    wanted = request.query.get("id", "").strip()
    if not wanted or len(wanted) > 40 or not all(c.isascii() and (c.isalnum() or c in "._-") for c in wanted):
        return pages.redirect("/desk/")
    return pages.redirect(f"/desk/tickets/{wanted}")


# ------------------------------------------------------------------ the senior's review


REVIEW_STEPS = ("awaiting_review", "returned")


def _last_test(s: Session, ticket: Ticket) -> dict[str, Any] | None:
    test = s.exec(select(LineTest).where(LineTest.ticket_id == ticket.id)
                  .order_by(col(LineTest.finished_at).desc(), col(LineTest.id).desc())).first()
    if test is None:
        return None
    return {"result": test.result, "summary": test.summary_zh or test.summary_en, "at": utc(test.finished_at)}


def _last_change(s: Session, ticket_id: str, action: str) -> TicketStatusChange | None:
    return s.exec(select(TicketStatusChange).where(TicketStatusChange.ticket_id == ticket_id,
                                                   TicketStatusChange.action == action)
                  .order_by(col(TicketStatusChange.id).desc())).first()


def _brief(s: Session, t: Ticket, now: datetime) -> dict[str, Any]:
    step = workflow.sub_step_of(t)
    returned = _last_change(s, t.id, "return_to_review") if step == "returned" else None
    return {
        "id": t.id, "fault_number": t.fault_number, "branch": t.branch, "status": t.status, "sub_step": step,
        "symptom": service.SYMPTOM_NAMES.get(t.symptom_category or "", t.symptom_category or ""),
        "symptom_text": t.symptom_text, "created": utc(t.creation_date), "version": t.version,
        "fault_class": t.fault_class, "chase_count": t.chase_count,
        "deadline": utc(t.expected_resolution_date) if t.expected_resolution_date else None,
        "left": time_left(t.expected_resolution_date, now) if step in workflow.OPEN_SUB_STEPS else None,
        "last_test": _last_test(s, t),
        "returned": None if returned is None else {"reason": returned.reason, "by": returned.author,
                                                   "at": utc(returned.at)},
    }


def _review_context(s: Session) -> dict[str, Any]:
    now = utcnow()
    queue = s.exec(select(Ticket).where(col(Ticket.sub_step).in_(REVIEW_STEPS))
                   .order_by(col(Ticket.creation_date), col(Ticket.id)).limit(200)).all()
    transfers = s.exec(select(DeskTask).where(DeskTask.kind == DeskTaskKind.senior_transfer.value,
                                              col(DeskTask.grade).is_(None)).order_by(col(DeskTask.id))).all()
    return {
        "queue": [_brief(s, t, now) for t in queue],
        "callbacks": [_task_row(k) for k in workflow.open_tasks(s, "senior", kind=DeskTaskKind.callback.value)],
        "transfers": [_task_row(k) for k in transfers],
        "hard_cases": [_task_row(k) for k in workflow.hard_cases(s)[:50]],
        "team_tasks": [_task_row(k) for k in survey_store.team_leader_tasks(s)],  # U5
    }


async def _review_page(request: web.Request, who: Identity, *, status: int = 200, error: str | None = None,
                       typed: dict[str, str] | None = None) -> web.Response:
    ctx = await request.app[DB_KEY].run(_review_context)
    return pages.render(request, "review.html", status=status, who=who, error=error, typed=typed or {}, **ctx)


@require_role(*SENIOR_POSTS)
async def review_page(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _review_page(request, who)


@require_role(*SENIOR_POSTS)
async def grade(request: web.Request, who: Identity) -> web.StreamResponse:
    form = await request.post()
    task_id = int(request.match_info["id"])
    value, note = str(form.get("grade") or ""), str(form.get("note") or "")[:MAX_TEXT]
    try:
        await request.app[DB_KEY].run(workflow.grade_transfer, task_id, actor_of(who), value, note,
                                      timezone=settings_of(request).timezone)
    except ServiceError as exc:
        status, _hint = _refusal(exc)
        return await _review_page(request, who, status=status, error=f"Transfer {task_id}: {exc.reason}",
                                  typed={"task": str(task_id), "note": note})
    log.info("desk.graded", username=who.username, task_id=task_id, grade=value)
    return pages.redirect("/desk/review")


# ------------------------------------------------------------------ the measurement centre


def _centre_context(s: Session, branch: str | None, cfg: WatchConfig) -> dict[str, Any]:
    """Dispatched to the branch's centre (all branches for an admin: ``branch`` None),
    overdue first, then by deadline; recent receipts; open notices; the deadline watch's
    state of each (U1-U2: share used, warned, overdue) and the centre's violations."""
    now = utcnow()
    q = select(Ticket).where(Ticket.sub_step == "dispatched")
    recent_q = select(Ticket).where(Ticket.sub_step == "receipt_received")
    centres_q = select(MeasurementCentreRow)
    if branch is not None:
        q, recent_q = q.where(Ticket.branch == branch), recent_q.where(Ticket.branch == branch)
        centres_q = centres_q.where(MeasurementCentreRow.branch == branch)
    # By deadline, so the overdue come first; tickets without a deadline last (portably:
    # SQLite and PostgreSQL put NULLs at opposite ends).
    deadline = col(Ticket.expected_resolution_date)
    rows = [_brief(s, t, now) for t in s.exec(q.order_by(deadline.is_(None), deadline, col(Ticket.id)).limit(500))]
    recent = s.exec(recent_q.order_by(col(Ticket.last_update).desc()).limit(RECENT)).all()
    notices = workflow.open_tasks(s, "centre", kind=DeskTaskKind.branch_notice.value, branch=branch)
    watched = {r.ticket_id: r for r in sla_board.deadline_rows(s, cfg, now=now, branch=branch)}
    for r in rows:
        r["sla"] = watched.get(r["id"])
    return {
        "violations": [v for v in sla_board.violations_by_centre(s, cfg.timezone, now)
                       if branch is None or v.branch == branch],
        "branch": branch,
        "centres": [f"{c.name} ({c.id}, {c.completion_deadline_hours:g} h)" for c in s.exec(centres_q)],
        "dispatched": rows,
        "overdue_count": sum(1 for r in rows if r["left"] and r["left"]["overdue"]),
        "recent": [{**_brief(s, t, now), "resolved": utc(t.resolution_date) if t.resolution_date else None}
                   for t in recent],
        "notices": [_task_row(k) for k in notices],
    }


async def _centre_page(request: web.Request, who: Identity, *, status: int = 200,
                       error: str | None = None) -> web.Response:
    branch = who.branch if who.role == "centre" else None
    if who.role == "centre" and branch is None:
        return pages.error_page(request, 403, "No branch",
                                "This centre account has no branch. Ask an administrator to set it.", who=who)
    ctx = await request.app[DB_KEY].run(_centre_context, branch, WatchConfig.from_settings(settings_of(request)))
    return pages.render(request, "centre.html", status=status, who=who, error=error, **ctx)


@require_role(*CENTRE_POSTS)
async def centre_page(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _centre_page(request, who)


@require_role(*CENTRE_POSTS)
async def acknowledge(request: web.Request, who: Identity) -> web.StreamResponse:
    task_id = int(request.match_info["id"])
    try:
        await request.app[DB_KEY].run(workflow.acknowledge_notice, task_id, actor_of(who))
    except ServiceError as exc:
        status, _hint = _refusal(exc)
        return await _centre_page(request, who, status=status, error=f"Notice {task_id}: {exc.reason}")
    return pages.redirect("/desk/centre")


# ------------------------------------------------------------------ the manager hotline


def _escalations_context(s: Session) -> dict[str, Any]:
    def row(k: DeskTask) -> dict[str, Any]:
        t = s.get(Ticket, k.ticket_id) if k.ticket_id else None
        return {**_task_row(k), "ticket": None if t is None else _brief(s, t, now)}

    now = utcnow()
    decided = s.exec(select(DeskTask).where(DeskTask.kind == DeskTaskKind.escalation.value,
                                            DeskTask.state == DeskTaskState.done.value)
                     .order_by(col(DeskTask.done_at).desc(), col(DeskTask.id).desc()).limit(RECENT)).all()
    return {"open": [row(k) for k in workflow.open_tasks(s, "manager", kind=DeskTaskKind.escalation.value)],
            "decided": [row(k) for k in decided]}


def _complaint_callers(s: Session, username: str) -> dict[str, Any]:
    """M2, issue 13 item 5: callers the bot handed over with a complaint, waiting in the
    manager hotline's queue, and those this manager took."""
    def row(h: Handoff) -> dict[str, Any]:
        said = [str(t.get("text", "")) for t in (h.transcript or []) if isinstance(t, dict) and t.get("role") == "user"]
        return {"id": h.id, "created": h.created, "channel": h.channel, "language": h.language, "reason": h.reason,
                "fault_number": h.fault_number, "ticket_id": h.ticket_id, "said": said[-1] if said else "",
                "taken_at": h.taken_at}

    waiting = s.exec(select(Handoff).where(Handoff.queue == HandoffQueue.manager.value,
                                           Handoff.state == HandoffState.queued.value)
                     .order_by(col(Handoff.created), col(Handoff.id))).all()
    mine = s.exec(select(Handoff).where(Handoff.queue == HandoffQueue.manager.value,
                                        Handoff.state == HandoffState.taken.value, Handoff.taken_by == username)
                  .order_by(col(Handoff.taken_at).desc(), col(Handoff.id).desc()).limit(RECENT)).all()
    return {"callers": [row(h) for h in waiting], "my_callers": [row(h) for h in mine]}


@require_role(*MANAGER_POSTS)
async def escalations_page(request: web.Request, who: Identity) -> web.StreamResponse:
    ctx = await request.app[DB_KEY].run(_escalations_context)
    ctx.update(await request.app[DB_KEY].run(_complaint_callers, who.username))
    return pages.render(request, "escalations.html", who=who, **ctx)


def _may_see_task(who: Identity, task: dict[str, Any]) -> bool:
    if who.role == "admin":
        return True
    if who.role != task["role"]:
        return False
    return who.role != "centre" or task["branch"] == who.branch


def _task_context(s: Session, task_id: int, rules: workflow.CompensationRules,
                  actor: Actor) -> dict[str, Any] | None:
    task = s.get(DeskTask, task_id)
    if task is None:
        return None
    out: dict[str, Any] = {"task": _task_row(task), "ticket": None, "compensation": None}
    if task.ticket_id:
        ticket_ctx = _ticket_context(s, task.ticket_id, actor)
        if ticket_ctx is not None:
            out["ticket"] = ticket_ctx
            t = s.get(Ticket, task.ticket_id)
            assert t is not None
            line = s.get(LineRow, t.fault_number) if t.fault_number else None
            if task.kind == DeskTaskKind.escalation.value:
                out["compensation"] = workflow.compensation_for(t, line, rules).as_dict()
    return out


async def _task_page(request: web.Request, who: Identity, task_id: int, *, status: int = 200,
                     error: str | None = None, typed: dict[str, str] | None = None) -> web.Response:
    rules = workflow.CompensationRules.from_settings(settings_of(request))
    ctx = await request.app[DB_KEY].run(_task_context, task_id, rules, actor_of(who))
    if ctx is None:
        return pages.error_page(request, 404, "No such task", f"There is no task {task_id}.", who=who)
    if not _may_see_task(who, ctx["task"]):
        log.warning("desk.task_refused", username=who.username, role=who.role, task_id=task_id)
        return pages.error_page(request, 403, "Not for your post",
                                f"Task {task_id} is for the {users.ROLE_NAMES.get(ctx['task']['role'], '?')}"
                                f"{' of another branch' if who.role == 'centre' else ''}.", who=who)
    return pages.render(request, "task.html", status=status, who=who, error=error, typed=typed or {}, **ctx)


@require_role()
async def task_page(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _task_page(request, who, int(request.match_info["id"]))


@require_role(*MANAGER_POSTS)
async def decide(request: web.Request, who: Identity) -> web.StreamResponse:
    task_id = int(request.match_info["id"])
    form = await request.post()
    finding, explanation = str(form.get("finding") or ""), str(form.get("explanation") or "")
    grant = form.get("grant_compensation") == "yes"
    typed = {"finding": finding, "explanation": explanation[:MAX_TEXT]}
    if len(explanation) > MAX_TEXT:
        return await _task_page(request, who, task_id, status=400, typed=typed,
                                error=f"The explanation is longer than {MAX_TEXT} characters.")
    rules = workflow.CompensationRules.from_settings(settings_of(request))
    try:
        await request.app[DB_KEY].run(workflow.decide_escalation, task_id, actor_of(who), finding=finding,
                                      explanation=explanation, rules=rules, grant_compensation=grant)
    except ServiceError as exc:
        status, _hint = _refusal(exc)
        return await _task_page(request, who, task_id, status=status, error=exc.reason, typed=typed)
    log.info("desk.escalation_decided", username=who.username, task_id=task_id, finding=finding, granted=grant)
    return pages.redirect(f"/desk/tasks/{task_id}")


# ------------------------------------------------------------------ admin


def _overview(s: Session) -> dict[str, Any]:
    now = utcnow()

    def tickets(*where: Any) -> int:
        return s.exec(select(func.count()).select_from(Ticket).where(*where)).one()

    def open_tasks(kind: DeskTaskKind, *where: Any) -> int:
        return s.exec(select(func.count()).select_from(DeskTask).where(
            DeskTask.kind == kind.value, DeskTask.state == DeskTaskState.open.value, *where)).one()

    return {
        "counts": {
            "review": tickets(col(Ticket.sub_step).in_(REVIEW_STEPS)),
            "dispatched": tickets(Ticket.sub_step == "dispatched"),
            "overdue": tickets(Ticket.sub_step == "dispatched", col(Ticket.expected_resolution_date) < now),
            "callbacks": open_tasks(DeskTaskKind.callback),
            "transfers": s.exec(select(func.count()).select_from(DeskTask).where(
                DeskTask.kind == DeskTaskKind.senior_transfer.value, col(DeskTask.grade).is_(None))).one(),
            "escalations": open_tasks(DeskTaskKind.escalation),
            "notices": open_tasks(DeskTaskKind.branch_notice),
            "failed_jobs": jobs_store.given_up_count(s),
        },
        "recent": [_brief(s, t, now) for t in s.exec(select(Ticket).order_by(col(Ticket.last_update).desc())
                                                     .limit(RECENT))],
    }


@require_role("admin")
async def admin_page(request: web.Request, who: Identity) -> web.StreamResponse:
    ctx = await request.app[DB_KEY].run(_overview)
    return pages.render(request, "admin.html", who=who, **ctx)


@require_role()
async def lookup(request: web.Request, who: Identity) -> web.StreamResponse:
    return await ticket_lookup(request)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/desk/tickets", lookup)
    app.router.add_get(f"/desk/tickets/{TICKET_ID}", ticket_page)
    app.router.add_post(f"/desk/tickets/{TICKET_ID}/actions/{{name:[a-z_]{{1,40}}}}", ticket_action)
    app.router.add_get("/desk/review", review_page)
    app.router.add_get("/desk/centre", centre_page)
    app.router.add_get("/desk/escalations", escalations_page)
    app.router.add_get("/desk/admin", admin_page)
    app.router.add_get(f"/desk/tasks/{TASK_ID}", task_page)
    app.router.add_post(f"/desk/tasks/{TASK_ID}/grade", grade)
    app.router.add_post(f"/desk/tasks/{TASK_ID}/decision", decide)
    app.router.add_post(f"/desk/tasks/{TASK_ID}/ack", acknowledge)
