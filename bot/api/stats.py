"""Statistics over HTTP for other systems (T1–T5): figures, the dashboard, the reports
with their history, and their exports.

    GET  /api/stats/figures?start=YYYY-MM-DD&end=YYYY-MM-DD   any period (end exclusive, at most 400 days)
    GET  /api/stats/dashboard
    GET  /api/stats/reports[?kind=&state=]
    GET  /api/stats/reports/{id}                  with its frozen figures and history
    GET  /api/stats/reports/{id}/export.xlsx|pdf  ?lang=zh|en
    POST /api/stats/reports {"kind", "start"}     generate (idempotent: 201 made, 200 already there)
    POST /api/stats/reports/{id}/{action} {"text"?}  refresh|comment|submit|correct|approve|send-back

Who: the staff API token (reads and generates, as another system), or a desk bearer token
(``POST /api/session``) of a statistician, deputy manager, manager or admin; the
report's actions follow the same rules as on the desk. Bad input is a 400 with a reason.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from aiohttp import web

from bot.api.auth import actor_of
from bot.api.errors import ApiError, read_json
from bot.desk import stats as desk_stats
from bot.settings import SETTINGS_KEY
from bot.stats import periods, reports
from bot.stats.dashboard import dashboard
from bot.stats.figures import Period, compute
from bot.stats.reports import Who
from bot.store.db import DB_KEY
from bot.store.stats import ReportState, StatsReport

READERS = frozenset({"api", "statistician", "deputy", "admin", "manager"})
MAX_DAYS = 400


async def _reader(request: web.Request) -> Who:
    actor = await actor_of(request)
    if actor.role not in READERS:
        raise ApiError(403, "forbidden", f"statistics are for statisticians, deputy managers, managers and "
                                         f"administrators, not for a {actor.role}")
    # Another system acts like the scheduler: it may read and generate, never review.
    return Who(actor.username, reports.SCHEDULER if actor.role == "api" else actor.role)


def _date(raw: str | None, name: str) -> date:
    if raw is None:
        raise ApiError(400, "invalid_parameter", f"{name} is required (YYYY-MM-DD)")
    try:
        return date.fromisoformat(raw)
    except ValueError as e:
        raise ApiError(400, "invalid_parameter", f"{name} is a date YYYY-MM-DD, not {raw[:20]!r}") from e


def _unknown(request: web.Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown query parameter(s): {', '.join(unknown)}; "
                                                 f"supported: {', '.join(sorted(allowed)) or 'none'}")


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 9:
        raise ApiError(400, "bad_id", f"a report id is a whole number, not {raw[:20]!r}")
    return int(raw)


async def figures(request: web.Request) -> web.Response:
    await _reader(request)
    _unknown(request, {"start", "end"})
    start, end = _date(request.query.get("start"), "start"), _date(request.query.get("end"), "end")
    if end <= start:
        raise ApiError(400, "invalid_parameter", "end (exclusive) must be after start")
    if end - start > timedelta(days=MAX_DAYS):
        raise ApiError(400, "invalid_parameter", f"a period is at most {MAX_DAYS} days")
    opts = desk_stats.options(request.app[SETTINGS_KEY])
    body = await request.app[DB_KEY].run(compute, Period(start, end), opts.tz, settle_days=opts.settle_days,
                                         satisfied_from=opts.satisfied_from)
    return web.json_response(body)


async def dashboard_json(request: web.Request) -> web.Response:
    await _reader(request)
    _unknown(request, set())
    settings = request.app[SETTINGS_KEY]
    opts = desk_stats.options(settings)
    body = await request.app[DB_KEY].run(dashboard, opts.tz,
                                         fresh_within_s=settings.stats_dashboard_fresh_s,
                                         satisfied_from=opts.satisfied_from)
    return web.json_response(body)


async def list_reports(request: web.Request) -> web.Response:
    who = await _reader(request)
    _unknown(request, {"kind", "state"})
    kind, state = request.query.get("kind"), request.query.get("state")
    if kind is not None and kind not in periods.KINDS:
        raise ApiError(400, "invalid_parameter", f"kind is one of {', '.join(periods.KINDS)}")
    states = [s.value for s in ReportState]
    if state is not None and state not in states:
        raise ApiError(400, "invalid_parameter", f"state is one of {', '.join(states)}")
    rows = await request.app[DB_KEY].run(reports.list_reports, kind=kind, state=state)
    return web.json_response([reports.report_dict(r) for r in rows if reports.may_read(r.kind, who.role)])


def _readable(report: StatsReport, who: Who) -> None:
    if not reports.may_read(report.kind, who.role):
        raise ApiError(403, "forbidden", f"a {who.role} may not read a {report.kind} report")


async def get_report(request: web.Request) -> web.Response:
    who = await _reader(request)
    report_id = _id(request)

    def load(s: Any) -> dict[str, Any]:
        report = reports.get(s, report_id)
        _readable(report, who)
        return {**reports.report_dict(report, with_figures=True),
                "events": [reports.event_dict(e) for e in reports.events(s, report_id)]}

    return web.json_response(await request.app[DB_KEY].run(load))


async def export(request: web.Request) -> web.Response:
    who = await _reader(request)
    _unknown(request, {"lang"})
    lang = request.query.get("lang", "zh")
    if lang not in desk_stats.LANGS:
        raise ApiError(400, "invalid_parameter", "lang is zh or en")
    report = await request.app[DB_KEY].run(reports.get, _id(request))
    _readable(report, who)
    return await desk_stats.export_response(report, request.match_info["fmt"], lang,
                                            desk_stats.font(request.app[SETTINGS_KEY]))


async def generate(request: web.Request) -> web.Response:
    who = await _reader(request)
    body = await read_json(request)
    unknown = sorted(set(body) - {"kind", "start"})
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown field(s): {', '.join(unknown)}")
    kind = body.get("kind")
    if not isinstance(kind, str):
        raise ApiError(400, "invalid_request", f"kind is one of {', '.join(periods.KINDS)}")
    start = _date(body.get("start") if isinstance(body.get("start"), str) else None, "start")
    opts = desk_stats.options(request.app[SETTINGS_KEY])
    report, created = await request.app[DB_KEY].run(reports.generate, kind, start, opts, who)
    return web.json_response(reports.report_dict(report, with_figures=True), status=201 if created else 200)


async def act(request: web.Request) -> web.Response:
    who = await _reader(request)
    report_id, action = _id(request), request.match_info["action"]
    body = await read_json(request) if request.can_read_body else {}
    unknown = sorted(set(body) - {"text"})
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown field(s): {', '.join(unknown)}; only text")
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        raise ApiError(400, "invalid_request", "text is a string")
    roles, fn = desk_stats.ACTIONS[action]
    if who.role not in roles:
        raise ApiError(403, "forbidden", f"a {who.role} may not {action} a report")
    opts = desk_stats.options(request.app[SETTINGS_KEY])
    result = await request.app[DB_KEY].run(fn, report_id, opts, who, text)
    return web.json_response(reports.report_dict(result))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/stats/figures", figures)
    app.router.add_get("/api/stats/dashboard", dashboard_json)
    app.router.add_get("/api/stats/reports", list_reports)
    app.router.add_post("/api/stats/reports", generate)
    app.router.add_get("/api/stats/reports/{id}", get_report)
    app.router.add_get("/api/stats/reports/{id}/export.{fmt:xlsx|pdf}", export)
    actions = "|".join(desk_stats.ACTIONS)
    app.router.add_post(f"/api/stats/reports/{{id}}/{{action:{actions}}}", act)
