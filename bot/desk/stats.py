"""The statistician's and deputy managers' desk pages (T1–T5), and the live dashboard.

    GET  /desk/dashboard                   today's and this week's main figures (manager, admin, statistician, deputy)
    GET  /desk/reports                     the reports; the statistician generates one here
    POST /desk/reports/generate            kind + first day of the period (statistician, admin)
    GET  /desk/reports/{id}                one report: its frozen figures, charts, history, versions
    POST /desk/reports/{id}/refresh|comment|submit|correct   (statistician, admin)
    POST /desk/reports/{id}/approve|send-back                (deputy, admin)
    GET  /desk/reports/{id}/export.xlsx|export.pdf           ?lang=zh|en

Who may do what is checked here on the server (``require_role``) and again by the
report's own rules (:mod:`bot.stats.reports`).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from typing import Any

import structlog
from aiohttp import web
from sqlmodel import Session

from bot.desk import pages
from bot.desk.auth import Identity, require_role, settings_of
from bot.settings import Settings
from bot.stats import charts, exports, periods, reports
from bot.stats.dashboard import dashboard
from bot.stats.reports import Options, Who
from bot.store.db import DB_KEY
from bot.store.errors import ServiceError
from bot.store.stats import StatsReport

log = structlog.get_logger(__name__)

READERS = ("statistician", "deputy", "admin", "manager")
DASHBOARD = ("manager", "admin", "statistician", "deputy")
WRITERS = ("statistician", "admin")
APPROVERS = ("deputy", "admin")
LANGS = ("zh", "en")

_chart_lock = threading.Lock()  # matplotlib's font cache is shared: one drawing at a time
_chart_cache: OrderedDict[tuple[int, str, str], dict[str, str]] = OrderedDict()
CHART_CACHE_SIZE = 16


def options(settings: Settings) -> Options:
    from zoneinfo import ZoneInfo

    return Options(ZoneInfo(settings.timezone), settings.stats_settle_days, settings.survey_satisfied_from)


def font(settings: Settings) -> str | None:
    return str(settings.stats_font_file) if settings.stats_font_file else None


def report_svgs(report: StatsReport, lang: str, font_file: str | None) -> dict[str, str]:
    """The report's charts, drawn once per version of its numbers and language."""
    assert report.id is not None
    key = (report.id, report.figures_at.isoformat(), lang)
    with _chart_lock:
        if key in _chart_cache:
            _chart_cache.move_to_end(key)
            return _chart_cache[key]
        svgs = charts.all_svgs(report.figures, lang, font_file)
        _chart_cache[key] = svgs
        while len(_chart_cache) > CHART_CACHE_SIZE:
            _chart_cache.popitem(last=False)
        return svgs


def _who(identity: Identity) -> Who:
    return Who(identity.username, identity.role)


def _lang(request: web.Request) -> str:
    lang = request.query.get("lang", "zh")
    return lang if lang in LANGS else "zh"


# ------------------------------------------------------------------ dashboard


@require_role(*DASHBOARD)
async def dashboard_page(request: web.Request, who: Identity) -> web.StreamResponse:
    settings = settings_of(request)
    opts = options(settings)
    data = await request.app[DB_KEY].run(dashboard, opts.tz,
                                         fresh_within_s=settings.stats_dashboard_fresh_s,
                                         satisfied_from=opts.satisfied_from)
    return pages.render(request, "stats_dashboard.html", who=who, d=data)


# ------------------------------------------------------------------ reports


def _list(s: Session) -> list[StatsReport]:
    return reports.list_reports(s)


@require_role(*READERS)
async def reports_page(request: web.Request, who: Identity) -> web.StreamResponse:
    rows = [r for r in await request.app[DB_KEY].run(_list) if reports.may_read(r.kind, who.role)]
    return pages.render(request, "stats_reports.html", who=who, reports=rows, kinds=periods.KINDS,
                        may_write=who.role in WRITERS)


@require_role(*WRITERS)
async def generate(request: web.Request, who: Identity) -> web.StreamResponse:
    form = await request.post()
    kind = str(form.get("kind") or "")
    try:
        start = date.fromisoformat(str(form.get("start") or ""))
    except ValueError:
        return pages.error_page(request, 400, "Bad date", "The period's first day is a date: YYYY-MM-DD.", who=who)
    try:
        report, _created = await request.app[DB_KEY].run(reports.generate, kind, start,
                                                         options(settings_of(request)), _who(who))
    except ServiceError as e:
        return pages.error_page(request, e.status, "Refused", e.reason, who=who)
    return pages.redirect(f"/desk/reports/{report.id}")


def _report_context(s: Session, report_id: int) -> tuple[StatsReport, list[Any], list[StatsReport]]:
    report = reports.get(s, report_id)
    return report, reports.events(s, report_id), reports.versions(s, report)


@require_role(*READERS)
async def report_page(request: web.Request, who: Identity) -> web.StreamResponse:
    report_id = int(request.match_info["id"])
    try:
        report, events, versions = await request.app[DB_KEY].run(_report_context, report_id)
    except ServiceError as e:
        return pages.error_page(request, e.status, "No such report", e.reason, who=who)
    other = reports.OTHER_KINDS.get(report.kind)
    if other is not None:  # another post's report (the weekly QA report): its own page
        return pages.redirect(f"{other.page}/{report.id}")
    lang = _lang(request)
    svgs = await asyncio.to_thread(report_svgs, report, lang, font(settings_of(request)))
    return pages.render(request, "stats_report.html", who=who, r=report, f=report.figures, events=events,
                        versions=versions, svgs=svgs, chart_lang=lang,
                        may_write=who.role in WRITERS, may_approve=who.role in APPROVERS,
                        volume_tables=exports.VOLUME_TABLES, handling_tables=exports.HANDLING_TABLES,
                        handling_numbers=exports.HANDLING_NUMBERS, centre_columns=exports.CENTRE_COLUMNS,
                        survey_columns=exports.SURVEY_COLUMNS, survey_tables=exports.SURVEY_TABLES)


ReportAction = Callable[[Session, int, Options, Who, str | None], StatsReport]


def report_actions(writers: tuple[str, ...], approvers: tuple[str, ...]) -> dict[str, tuple[tuple[str, ...], ReportAction]]:
    """T5's review steps of a report, each with the posts that may take it (the QA report,
    Q8, has the same steps with its own posts)."""
    return {
        "refresh": (writers, lambda s, rid, o, w, text: reports.refresh_figures(s, rid, o, w)),
        "comment": (writers, lambda s, rid, o, w, text: reports.comment(s, rid, w, text)),
        "submit": (writers, lambda s, rid, o, w, text: reports.submit(s, rid, w, text)),
        "correct": (writers, lambda s, rid, o, w, text: reports.correct(s, rid, o, w, text)),
        "approve": (approvers, lambda s, rid, o, w, text: reports.approve(s, rid, w, text)),
        "send-back": (approvers, lambda s, rid, o, w, text: reports.send_back(s, rid, w, text)),
    }


ACTIONS = report_actions(WRITERS, APPROVERS)


def _action_handler(name: str) -> Any:
    roles, fn = ACTIONS[name]

    @require_role(*roles)
    async def handler(request: web.Request, who: Identity) -> web.StreamResponse:
        report_id = int(request.match_info["id"])
        form = await request.post()
        text = str(form.get("text") or "")
        try:
            result = await request.app[DB_KEY].run(fn, report_id, options(settings_of(request)), _who(who), text)
        except ServiceError as e:
            status = 403 if e.code == "forbidden_action" else e.status
            return pages.error_page(request, status, "Refused", e.reason, who=who)
        log.info("desk.stats_report_action", report_id=report_id, action=name, username=who.username)
        return pages.redirect(f"/desk/reports/{result.id}")

    handler.__name__ = f"report_{name.replace('-', '_')}"
    return handler


@require_role(*READERS)
async def export(request: web.Request, who: Identity) -> web.StreamResponse:
    report_id = int(request.match_info["id"])
    fmt = request.match_info["fmt"]
    try:
        report = await request.app[DB_KEY].run(reports.get, report_id)
    except ServiceError as e:
        return pages.error_page(request, e.status, "No such report", e.reason, who=who)
    if not reports.may_read(report.kind, who.role):
        return pages.error_page(request, 403, "Not for your post", "This report is not for your post.", who=who)
    return await export_response(report, fmt, _lang(request), font(settings_of(request)))


MIME = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf"}


async def export_response(report: StatsReport, fmt: str, lang: str, font_file: str | None) -> web.Response:
    """The report as XLSX or PDF (made off the event loop), as a download."""
    other = reports.OTHER_KINDS.get(report.kind)
    if fmt == "xlsx":
        body = await asyncio.to_thread(other.xlsx if other is not None else exports.xlsx, report, lang)
    else:
        def draw() -> bytes:
            with _chart_lock:
                return (other.pdf if other is not None else exports.pdf)(report, lang, font_file)

        body = await asyncio.to_thread(draw)
    name = f"report-{report.kind}-{report.period_start}-v{report.version}.{fmt}"
    return web.Response(body=body, content_type=MIME[fmt], headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/desk/dashboard", dashboard_page)
    app.router.add_get("/desk/reports", reports_page)
    app.router.add_post("/desk/reports/generate", generate)
    app.router.add_get(r"/desk/reports/{id:\d{1,9}}", report_page)
    for name in ACTIONS:
        app.router.add_post(rf"/desk/reports/{{id:\d{{1,9}}}}/{name}", _action_handler(name))
    app.router.add_get(r"/desk/reports/{id:\d{1,9}}/export.{fmt:xlsx|pdf}", export)
