"""The junior operator at the seat (J2–J6): what can be done with a caller once taken.

    POST /desk/handoffs/{id}/owner-mismatch  J2: the caller is not the line's owner → rejected
    POST /desk/handoffs/{id}/to-senior       J3 (big customer), J5/J6 (cannot handle now) → S1
    POST /desk/handoffs/{id}/new-report      J6: record a new report and test the line
    POST /desk/handoffs/{id}/supplement      J5: a supplementary report on an open ticket, and a test

J4 (a repeat report) needs no form of its own: the open and past tickets on the line are
on the handoff page with their progress and deadline, and each ticket's page has the
actions (a note of what the caller was told, an escalation to the manager hotline when
overdue). Everything after the report (dispatch for review, answer on the spot, chase,
withdraw) is a workflow action on the ticket's page, like for every other post.

Only the operator who took the caller (or an admin) acts on it; a transfer to a senior
puts the caller back in the senior queue and opens a task the senior grades (S3).
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from sqlmodel import Session

from bot.desk import pages
from bot.desk.auth import Identity, require_role, settings_of
from bot.desk.work import actor_of
from bot.linetest.client import LineTestClient, LineTestUnavailable
from bot.store import service, workflow
from bot.store.db import DB_KEY
from bot.store.models import Handoff, HandoffQueue, HandoffState, Ticket, utcnow
from telnum import check_number, mask_number

log = structlog.get_logger(__name__)

OPERATORS = ("junior", "senior", "admin")
MAX_TEXT = 2000
LINE_TEST_WAIT_S = 10.0


class Refused(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def _text(form: Any, name: str, *, required: bool = True) -> str:
    value = str(form.get(name) or "").strip()
    if required and not value:
        raise Refused(400, "Missing", f"Fill in {name.replace('_', ' ')}.")
    if len(value) > MAX_TEXT:
        raise Refused(400, "Too long", f"{name.replace('_', ' ')} is longer than {MAX_TEXT} characters.")
    return value


def _mine(s: Session, handoff_id: int, who: Identity) -> Handoff:
    """The handoff, taken by this operator (an admin may act on any taken one)."""
    row = s.get(Handoff, handoff_id, populate_existing=True)
    if row is None:
        raise Refused(404, "No such caller", f"There is no handoff {handoff_id}.")
    if row.state != HandoffState.taken.value:
        raise Refused(409, "Not at a seat", f"Handoff {handoff_id} is {row.state}: take it first.")
    if row.taken_by != who.username and who.role != "admin":
        raise Refused(403, "Not your caller", f"Handoff {handoff_id} was taken by {row.taken_by}.")
    return row


async def _run(request: web.Request, who: Identity, fn: Any, *args: Any) -> web.StreamResponse:
    try:
        location = await request.app[DB_KEY].run(fn, *args)
    except Refused as r:
        return pages.error_page(request, r.status, r.title, r.message, who=who)
    except service.ServiceError as e:
        status = 403 if e.code == "forbidden_action" else e.status
        return pages.error_page(request, status, "Refused", pages.refusal(request, who, e.code, e.reason), who=who)
    return pages.redirect(location)


def _handoff_id(request: web.Request) -> int:
    return int(request.match_info["id"])


# ------------------------------------------------------------------------ J2


@require_role(*OPERATORS)
async def owner_mismatch(request: web.Request, who: Identity) -> web.StreamResponse:
    form = await request.post()
    handoff_id = _handoff_id(request)

    def run(s: Session) -> str:
        reason = _text(form, "reason", required=False) or "资料不符，请机主本人申告 / owner data mismatch"
        row = _mine(s, handoff_id, who)
        ticket = s.get(Ticket, row.ticket_id) if row.ticket_id else None
        if ticket is not None and workflow.sub_step_of(ticket) in ACTIONS_FROM_REJECT:
            workflow.perform(s, ticket.id, "reject_owner_mismatch", actor_of(who), reason=reason)
        _end(row, f"J2 owner mismatch: {reason}")
        s.add(row)
        log.info("desk.owner_mismatch", handoff_id=handoff_id, operator=who.username)
        return "/desk/"

    return await _run(request, who, run)


ACTIONS_FROM_REJECT = workflow.ACTIONS["reject_owner_mismatch"].from_steps


def _end(row: Handoff, reason: str) -> None:
    row.state = HandoffState.done.value
    row.ended_at = utcnow()
    row.end_reason = reason


# ------------------------------------------------------------------- J3/J5/J6


@require_role(*OPERATORS)
async def to_senior(request: web.Request, who: Identity) -> web.StreamResponse:
    form = await request.post()
    handoff_id = _handoff_id(request)

    def run(s: Session) -> str:
        reason = _text(form, "reason")
        row = _mine(s, handoff_id, who)
        if row.queue == HandoffQueue.senior.value:
            raise Refused(409, "Already with the seniors", f"Handoff {handoff_id} is in the senior queue.")
        row.queue = HandoffQueue.senior.value
        row.state = HandoffState.queued.value
        row.transferred_from = row.taken_by
        row.taken_by, row.taken_at = None, None
        s.add(row)
        workflow.open_senior_transfer(s, handoff_id=handoff_id, ticket_id=row.ticket_id, junior=who.username,
                                      reason=reason)
        ticket = s.get(Ticket, row.ticket_id) if row.ticket_id else None
        if ticket is not None:  # every step lands on the ticket: who, when, why
            workflow.perform(s, ticket.id, "note", actor_of(who), reason=f"转高级话务员 / to a senior: {reason}")
        log.info("desk.to_senior", handoff_id=handoff_id, operator=who.username)
        return "/desk/"

    return await _run(request, who, run)


# ------------------------------------------------------------------- J5/J6


async def _line_test(request: web.Request, number: str) -> tuple[service.LineTestData | None, str | None]:
    """Test the line through the line-test unit; a unit that is down is said, not hidden."""
    settings = settings_of(request)
    try:
        async with LineTestClient(settings.linetest_url) as client:
            test = await client.run(number, max_wait_s=LINE_TEST_WAIT_S)
    except LineTestUnavailable as exc:
        log.warning("desk.line_test_unavailable", number=mask_number(number), reason=exc.reason)
        return None, f"the line-test unit is unavailable ({exc.reason}); test again later"
    if not test.finished or test.result is None:
        return None, f"the line test did not finish within {LINE_TEST_WAIT_S:g} s"
    data = service.LineTestData(
        test_id=test.id, result=test.result.value,
        summary=test.summary.model_dump() if test.summary is not None else None,
        measurements=dict(test.measurements or {}),
        started_at=test.started_at, finished_at=test.finished_at)
    return data, None


def _note_test(s: Session, ticket_id: str, who: Identity, problem: str | None) -> None:
    if problem is not None:
        workflow.perform(s, ticket_id, "note", actor_of(who), reason=f"线路测试未完成 / line test not done: {problem}")


@require_role(*OPERATORS)
async def new_report(request: web.Request, who: Identity) -> web.StreamResponse:
    form = await request.post()
    handoff_id = _handoff_id(request)
    settings = settings_of(request)
    try:
        category = _text(form, "symptom_category")
        if category not in service.SYMPTOM_NAMES:
            raise Refused(400, "Unknown symptom", f"Symptom must be one of {', '.join(service.SYMPTOM_NAMES)}.")
        text = _text(form, "symptom_text", required=False)
        contact = _number(_text(form, "contact_number", required=False), settings.local_area_code, "contact number")
        fault = _number(_text(form, "fault_number", required=False), settings.local_area_code, "fault number")
    except Refused as r:
        return pages.error_page(request, r.status, r.title, r.message, who=who)
    row = await request.app[DB_KEY].run(lambda s: s.get(Handoff, handoff_id))
    number = fault or (row.fault_number if row is not None else None)
    test, problem = (await _line_test(request, number)) if number else (None, "no fault number")

    def run(s: Session) -> str:
        h = _mine(s, handoff_id, who)
        line = h.fault_number or fault
        if not line:
            raise Refused(400, "No fault number", "Ask the caller for the number of the faulty line.")
        view = service.create_ticket(s, service.TicketCreateData(
            description=text or service.SYMPTOM_NAMES[category], severity="Major", channel=h.channel,
            fault_number=line, contact_number=contact or None, symptom_category=category,
            symptom_text=text or None, author=who.username, conversation_id=h.conversation_id,
            language=h.language, notes=[(who.username, f"J6 new report, handoff {handoff_id}")]))
        tid = view.ticket.id
        if test is not None:
            service.record_line_test(s, line, test, ticket_id=tid)
        _note_test(s, tid, who, problem)
        if h.ticket_id is None:
            h.ticket_id = tid
            s.add(h)
        log.info("desk.new_report", handoff_id=handoff_id, ticket_id=tid, operator=who.username)
        return f"/desk/tickets/{tid}"

    return await _run(request, who, run)


def _number(raw: str, area: str, field: str) -> str:
    if not raw:
        return ""
    digits = "".join(ch for ch in raw if ch in "0123456789")
    check = check_number(digits, area)
    if check.error is not None or check.canonical is None or not digits:
        raise Refused(400, "Not a phone number", f"The {field} {raw!r} is not a valid number.")
    return check.canonical


@require_role(*OPERATORS)
async def supplement(request: web.Request, who: Identity) -> web.StreamResponse:
    form = await request.post()
    handoff_id = _handoff_id(request)
    try:
        text = _text(form, "text")
        ticket_id = _text(form, "ticket_id")
        version = int(str(form.get("version") or "0")) or None
    except Refused as r:
        return pages.error_page(request, r.status, r.title, r.message, who=who)
    except ValueError:
        return pages.error_page(request, 400, "Bad form", "The ticket version is not a number.", who=who)
    row = await request.app[DB_KEY].run(lambda s: s.get(Ticket, ticket_id))
    number = row.fault_number if row is not None else None
    test, problem = (await _line_test(request, number)) if number else (None, "no fault number")

    def run(s: Session) -> str:
        h = _mine(s, handoff_id, who)
        t = s.get(Ticket, ticket_id)
        if t is None or t.fault_number != h.fault_number:
            raise Refused(404, "No such ticket", f"{ticket_id} is not a ticket on this caller's line.")
        workflow.perform(s, ticket_id, "supplement", actor_of(who), reason=text, expected_version=version,
                         params={"channel": h.channel})
        if test is not None:
            service.record_line_test(s, t.fault_number or "", test, ticket_id=ticket_id)
        _note_test(s, ticket_id, who, problem)
        if h.ticket_id is None:
            h.ticket_id = ticket_id
            s.add(h)
        return f"/desk/tickets/{ticket_id}"

    return await _run(request, who, run)


def setup_routes(app: web.Application) -> None:
    app.router.add_post(r"/desk/handoffs/{id:[0-9]{1,9}}/owner-mismatch", owner_mismatch)
    app.router.add_post(r"/desk/handoffs/{id:[0-9]{1,9}}/to-senior", to_senior)
    app.router.add_post(r"/desk/handoffs/{id:[0-9]{1,9}}/new-report", new_report)
    app.router.add_post(r"/desk/handoffs/{id:[0-9]{1,9}}/supplement", supplement)
