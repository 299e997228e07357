"""The satisfaction surveyor's post (process.md U), the deadline watch's part (U1–U2):

    GET  /desk/surveyor                          the live deadline board (every running
                                                 dispatch: share of its deadline used, warned,
                                                 overdue, violations), the explanations due,
                                                 violations per centre
    POST /desk/surveyor/explanations/{task_id}   U2: the delay was explained to the customer
                                                 (how, when, what was said)

Surveyors and admins only, checked on the server (``require_role``); times shown in the
centre's zone (``HOTLINE_TIMEZONE``), stored in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from sqlmodel import Session

from bot.desk import pages
from bot.desk.auth import Identity, require_role, settings_of
from bot.desk.work import _refusal, actor_of
from bot.sla import board
from bot.sla.watch import WatchConfig
from bot.store.db import DB_KEY
from bot.store.errors import ServiceError
from bot.store.models import DeskTask, Ticket, utc, utcnow

log = structlog.get_logger(__name__)

SURVEYOR_POSTS = ("surveyor", "admin")
MAX_TEXT = 2000


def _task(s: Session, k: DeskTask) -> dict[str, Any]:
    t = s.get(Ticket, k.ticket_id) if k.ticket_id else None
    outcome = k.outcome or {}
    return {"id": k.id, "ticket_id": k.ticket_id, "reason": k.reason, "created": utc(k.created),
            "fault_number": t.fault_number if t else None, "contact_number": t.contact_number if t else None,
            "deadline": outcome.get("deadline"), "centre": outcome.get("centre"),
            "done_by": k.done_by, "done_at": utc(k.done_at) if k.done_at else None,
            "how": outcome.get("how"), "when": outcome.get("when"), "what": outcome.get("what")}


def _context(s: Session, cfg: WatchConfig) -> dict[str, Any]:
    open_, done = board.explanations(s)
    return {"rows": board.deadline_rows(s, cfg), "due": [_task(s, k) for k in open_],
            "explained": [_task(s, k) for k in done],
            "by_centre": board.violations_by_centre(s, cfg.timezone),
            "violations": board.violations_of(s, limit=20), "warn_percent": round(cfg.warn_share * 100)}


async def _page(request: web.Request, who: Identity, *, status: int = 200, error: str | None = None,
                typed: dict[str, str] | None = None) -> web.Response:
    settings = settings_of(request)
    ctx = await request.app[DB_KEY].run(_context, WatchConfig.from_settings(settings))
    now_local = utcnow().astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m-%dT%H:%M")
    return pages.render(request, "surveyor.html", status=status, who=who, error=error, typed=typed or {},
                        now_local=now_local, how_choices=board.EXPLAIN_HOW, **ctx)


@require_role(*SURVEYOR_POSTS)
async def surveyor_page(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _page(request, who)


@require_role(*SURVEYOR_POSTS)
async def explain(request: web.Request, who: Identity) -> web.StreamResponse:
    task_id = int(request.match_info["id"])
    form = await request.post()
    how, raw_when, what = str(form.get("how") or ""), str(form.get("when") or "").strip(), str(form.get("what") or "")
    typed = {"task": str(task_id), "how": how, "when": raw_when[:20], "what": what[:MAX_TEXT]}
    tz = ZoneInfo(settings_of(request).timezone)
    try:
        when = datetime.fromisoformat(raw_when).replace(tzinfo=tz) if raw_when else utcnow()
    except ValueError:
        return await _page(request, who, status=400, typed=typed,
                           error=f"Explanation {task_id}: when must be a date and time, e.g. 2026-12-07T14:30.")
    try:
        await request.app[DB_KEY].run(board.record_explanation, task_id, actor_of(who), how=how,
                                              when=when, what=what)
    except ServiceError as exc:
        status, _hint = _refusal(exc)
        return await _page(request, who, status=status, typed=typed, error=f"Explanation {task_id}: {exc.reason}")
    log.info("desk.delay_explained", username=who.username, task_id=task_id, how=how)
    return pages.redirect("/desk/surveyor")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/desk/surveyor", surveyor_page)
    app.router.add_post(r"/desk/surveyor/explanations/{id:[0-9]{1,9}}", explain)
