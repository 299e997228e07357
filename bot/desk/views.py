"""The desk's pages: sign-in and sign-out, the handoff queue (J1), taking a caller,
and the taken caller's full context (J2: the line's owner data to check against what
the caller says; J3: the big-customer flag; J4: open and past tickets on the line)."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from sqlmodel import Session, col, select

from bot.desk import auth, datamanager, junior, live, pages, surveyor, users, work
from bot.desk import jobs as desk_jobs
from bot.desk import quality as desk_quality
from bot.desk import recordings as desk_recordings
from bot.desk import stats as desk_stats
from bot.desk import surveys as desk_surveys
from bot.desk.auth import Identity, require_role
from bot.store import service, workflow
from bot.store.db import DB_KEY
from bot.store.models import OPEN_STATUSES, Handoff, HandoffState, utc, utcnow

log = structlog.get_logger(__name__)

# J3: big customers are queued for seniors; a senior also serves the juniors' queue (S1).
# Complaints (issue 13 item 5) wait in the manager hotline's own queue (M2), shown on its home page.
QUEUES_FOR_ROLE: dict[str, tuple[str, ...]] = {"junior": ("junior",), "senior": ("senior", "junior"),
                                               "manager": ("manager",)}
OPERATORS = tuple(QUEUES_FOR_ROLE)
CALLER_ROLES = {"user": "caller", "bot": "bot"}


# ------------------------------------------------------------------ sign-in


async def login_page(request: web.Request) -> web.StreamResponse:
    if await auth.current_identity(request) is not None:
        return pages.redirect("/desk/")
    return _login_form(request)


def _login_form(request: web.Request, *, status: int = 200, error: str | None = None,
                username: str = "") -> web.Response:
    token = request.cookies.get(auth.LOGIN_COOKIE) or ""
    if not 20 <= len(token) <= 100:
        token = auth.new_token()
    response = pages.render(request, "login.html", status=status, error=error, username=username, csrf=token,
                            who=None)
    auth.set_login_cookie(response, auth.settings_of(request), token)
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    cookie = request.cookies.get(auth.LOGIN_COOKIE) or ""
    if not cookie or not auth.same_token(form.get("csrf"), cookie):
        log.warning("desk.login_csrf_refused")
        return pages.error_page(request, 403, "Form refused",
                                "The sign-in form's security token is missing or wrong. Reload the sign-in "
                                "page and try again (cookies must be allowed for this site).")
    raw_username, password = str(form.get("username") or ""), str(form.get("password") or "")
    shown = raw_username.strip()[:64]
    result = await auth.sign_in(request, raw_username, password)
    if result.token is None:
        error = result.error
        if result.locked_until is not None:
            error = (f"{error} Try again after "
                     f"{pages.local_time(result.locked_until, auth.settings_of(request).timezone)}.")
        return _login_form(request, status=result.status, error=error, username=shown)
    settings = auth.settings_of(request)
    token = result.token
    response = pages.redirect("/desk/")
    auth.set_session_cookie(response, settings, token)
    auth.clear_login_cookie(response, settings)
    return response


@require_role()
async def logout(request: web.Request, who: Identity) -> web.StreamResponse:
    token = request.cookies.get(auth.SESSION_COOKIE, "")
    await request.app[DB_KEY].run(auth.close_session, token)
    log.info("desk.logout", username=who.username)
    response = pages.redirect(auth.LOGIN_PATH)
    auth.clear_session_cookie(response, auth.settings_of(request))
    return response


# ------------------------------------------------------------------ the queue


def _queue_rows(s: Session, queues: tuple[str, ...], operator: str) -> tuple[list[Handoff], list[Handoff]]:
    """(waiting in the operator's queues, oldest first; taken by this operator)."""
    waiting = s.exec(
        select(Handoff).where(col(Handoff.queue).in_(queues), Handoff.state == HandoffState.queued.value)
        .order_by(col(Handoff.created), col(Handoff.id))
    ).all()
    mine = s.exec(
        select(Handoff).where(Handoff.state == HandoffState.taken.value, Handoff.taken_by == operator)
        .order_by(col(Handoff.taken_at).desc(), col(Handoff.id).desc()).limit(50)
    ).all()
    return list(waiting), list(mine)


@require_role()
async def desk_home(request: web.Request, who: Identity) -> web.StreamResponse:
    queues = QUEUES_FOR_ROLE.get(who.role)
    if queues is None or who.role in HOMES:
        # Measurement centres, the manager hotline and admins have their own pages (work.py).
        return pages.redirect(HOMES[who.role])
    waiting, mine, notes = await request.app[DB_KEY].run(_home_rows, queues, who.username)
    return pages.render(request, "queue.html", who=who, queues=queues, role_name=users.ROLE_NAMES[who.role],
                        waiting=[_handoff_view(h) for h in waiting], mine=[_handoff_view(h) for h in mine],
                        notes=notes)


HOMES = {"centre": "/desk/centre", "manager": "/desk/escalations", "admin": "/desk/admin",
         "inspector": "/desk/quality", "surveyor": "/desk/surveyor",
         "datamanager": "/desk/datamanager", "statistician": "/desk/reports", "deputy": "/desk/reports"}


def _home_rows(s: Session, queues: tuple[str, ...], operator: str) -> tuple[list[Handoff], list[Handoff], list[Any]]:
    waiting, mine = _queue_rows(s, queues, operator)
    # S3: a senior's "incorrect" on this operator's transfers; it counts in assessment.
    return waiting, mine, workflow.assessment_notes(s, operator)[:20]


def _handoff_view(h: Handoff) -> dict[str, Any]:
    """The handoff for a template. Values stay plain text: the template escapes them."""
    transcript = []
    for line in h.transcript or []:
        if isinstance(line, dict):
            role = str(line.get("role", ""))
            transcript.append({"who": CALLER_ROLES.get(role, role), "text": str(line.get("text", "")),
                               "at": line.get("at")})
        else:
            transcript.append({"who": "", "text": str(line), "at": None})
    line_test = h.line_test if isinstance(h.line_test, dict) else None
    return {
        "id": h.id, "queue": h.queue, "state": h.state, "created": utc(h.created),
        "channel": h.channel, "language": h.language, "reason": h.reason,
        "fault_number": h.fault_number, "ticket_id": h.ticket_id, "conversation_id": h.conversation_id,
        "line_test": None if line_test is None else {
            "result": str(line_test.get("result") or ""),
            "summary": "" if line_test.get("summary") is None else str(line_test.get("summary")),
        },
        "transcript": transcript, "taken_by": h.taken_by,
        "taken_at": utc(h.taken_at) if h.taken_at else None,
    }


# ------------------------------------------------------------------ take


async def _load(request: web.Request, who: Identity) -> tuple[Handoff | None, web.Response | None]:
    """The handoff named in the path, or the page refusing it (404, or 403 when it is
    in a queue this operator's post does not serve)."""
    handoff_id = int(request.match_info["id"])
    row = await request.app[DB_KEY].run(_get_handoff, handoff_id)
    if row is None:
        return None, pages.error_page(request, 404, "No such caller", f"There is no handoff {handoff_id}.",
                                      who=who)
    if row.queue not in QUEUES_FOR_ROLE[who.role]:
        log.warning("desk.queue_refused", username=who.username, role=who.role, handoff_id=handoff_id)
        return None, pages.error_page(request, 403, "Not your queue",
                                      f"Handoff {handoff_id} waits in the {row.queue} queue, which your post "
                                      "does not serve.", who=who)
    return row, None


def _get_handoff(s: Session, handoff_id: int) -> Handoff | None:
    return s.get(Handoff, handoff_id)


@require_role(*OPERATORS)
async def take(request: web.Request, who: Identity) -> web.StreamResponse:
    row, refused = await _load(request, who)
    if refused is not None:
        return refused
    assert row is not None and row.id is not None
    try:
        await request.app[DB_KEY].run(service.take_handoff, row.id, who.username)
    except service.Conflict as e:
        return pages.error_page(request, 409, "Already taken", e.reason, who=who, handoff_id=row.id)
    except service.NotFound as e:
        return pages.error_page(request, 404, "No such caller", e.reason, who=who)
    return pages.redirect(f"/desk/handoffs/{row.id}")


# ------------------------------------------------------------------ one caller


def _context(s: Session, fault_number: str | None) -> dict[str, Any]:
    if not fault_number:
        return {"lookup": None, "open_tickets": [], "past_tickets": []}
    views, _total = service.list_tickets(s, fault_number=fault_number, limit=50)
    now = utcnow()
    tickets = [{
        "id": v.ticket.id, "status": v.ticket.status, "created": utc(v.ticket.creation_date),
        "channel": v.ticket.channel, "symptom": v.ticket.symptom_text or v.ticket.symptom_category or "",
        "description": v.ticket.description, "report_count": v.report_count,
        "last_test": v.last_test.result if v.last_test else None,
        "sub_step": workflow.sub_step_of(v.ticket), "version": v.ticket.version,
        # J4: in progress and not overdue → tell the progress; overdue → the manager hotline.
        "deadline": utc(v.ticket.expected_resolution_date) if v.ticket.expected_resolution_date else None,
        "overdue": v.ticket.expected_resolution_date is not None and v.ticket.status in OPEN_STATUSES
        and utc(v.ticket.expected_resolution_date) < now,
        "resolved": utc(v.ticket.resolution_date) if v.ticket.resolution_date else None,
        "repairman": v.repairman_message.zh if v.repairman_message else None,
    } for v in views]
    return {
        "lookup": service.lookup_number(s, fault_number, "fixed"),
        "open_tickets": [t for t in tickets if t["status"] in OPEN_STATUSES],
        "past_tickets": [t for t in tickets if t["status"] not in OPEN_STATUSES],
    }


@require_role(*OPERATORS)
async def handoff_page(request: web.Request, who: Identity) -> web.StreamResponse:
    row, refused = await _load(request, who)
    if refused is not None:
        return refused
    assert row is not None
    context = await request.app[DB_KEY].run(_context, row.fault_number)
    calls = await desk_recordings.for_page(request, who, handoff_id=row.id)  # Q2: seniors only
    suggestions = await request.app[DB_KEY].run(datamanager.suggestions_for, row)  # D2: approved articles
    return pages.render(request, "handoff.html", who=who, h=_handoff_view(row), symptoms=service.SYMPTOM_NAMES,
                        recordings=calls, suggestions=suggestions, **context)


async def _to_home(_: web.Request) -> web.Response:
    return pages.redirect("/desk/")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/desk", _to_home)
    app.router.add_get("/desk/", desk_home)
    app.router.add_get("/desk/login", login_page)
    app.router.add_post("/desk/login", login_submit)
    app.router.add_post("/desk/logout", logout)
    # At most 9 digits: the id fits PostgreSQL's integer, a longer one is simply not found.
    app.router.add_post(r"/desk/handoffs/{id:[0-9]{1,9}}/take", take)
    app.router.add_get(r"/desk/handoffs/{id:[0-9]{1,9}}", handoff_page)
    live.setup_routes(app)  # J1: the live chat with a taken web-chat user (bot/desk/live.py)
    junior.setup_routes(app)
    work.setup_routes(app)  # tickets, review, centre, escalations, admin (bot/desk/work.py)
    desk_recordings.setup_routes(app)  # Q2: operators' call recordings (bot/desk/recordings.py)
    desk_surveys.setup_routes(app)  # U3–U5: the surveyor's survey pages (bot/desk/surveys.py)
    datamanager.setup_routes(app)  # D1-D2: the archive, the knowledge base (bot/desk/datamanager.py)
    desk_stats.setup_routes(app)  # T1-T5: the dashboard and the reports (bot/desk/stats.py)
    desk_jobs.setup_routes(app)  # the job scheduler, for admins (bot/desk/jobs.py)
    surveyor.setup_routes(app)  # U1-U2: the deadline board and explanations (bot/desk/surveyor.py)
    desk_quality.setup_routes(app)  # Q1-Q8: samples, scores, violations, hand-offs (bot/desk/quality.py)
