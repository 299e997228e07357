"""The quality inspector's post (Q1–Q8) on the desk, and everyone's own scores.

    GET  /desk/quality                         the inspector's home: samples to score, spot check, flags
    POST /desk/quality/spot-check              post / person / period → a new sample (Q1)
    GET  /desk/quality/batches/{id}            one draw's samples
    GET  /desk/quality/samples/{id}            a sample: the work, its transcript and recordings, the scorecard
    POST /desk/quality/samples/{id}/score      score it (a draft, or submitted)
    POST /desk/quality/scores/{id}/change      change a submitted score, with a reason (history kept)
    POST /desk/quality/samples/{id}/violations record a violation against the sample's person (Q8)
    POST /desk/quality/violations/{id}/withdraw
    GET  /desk/quality/handoffs                Q6: contacts passed back and forth or left waiting
    POST /desk/quality/handoffs/{id}/review
    GET  /desk/quality/people                  whose scores I may see (me; the people I supervise)
    GET  /desk/quality/people/{username}       a person's submitted scores and violations
    GET  /desk/quality/reports                 Q8: the weekly QA analysis reports (inspectors, deputies, admins)
    POST /desk/quality/reports/generate        the report of a week (its Monday)
    GET  /desk/quality/reports/{id}            one report: figures, history, versions, the review's forms
    POST /desk/quality/reports/{id}/refresh|comment|submit|correct   (inspector, admin)
    POST /desk/quality/reports/{id}/approve|send-back                (deputy, admin)
    GET  /desk/quality/reports/{id}/export.pdf|export.xlsx           ?lang=zh|en

Inspectors (and admins) do everything; every signed-in person sees their own scores and
violations, and their supervisors see them too (bot/quality/scoring.py ``may_see``),
checked here on the server for every request.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from multidict import MultiMapping
from sqlmodel import Session, col, select

from bot.desk import pages
from bot.desk import recordings as desk_recordings
from bot.desk import stats as desk_stats
from bot.desk.auth import Identity, require_role, settings_of
from bot.quality import handoffs, sampler, scoring, transcripts, weekly
from bot.settings import Settings
from bot.stats import reports
from bot.stats.reports import Options, Who
from bot.store.db import DB_KEY
from bot.store.errors import NotFound, ServiceError
from bot.store.models import Handoff, HandoffMessage, utc, utcnow
from bot.store.quality import QaBatch, QaSample, QaScore, QaViolation
from bot.store.stats import StatsReport

log = structlog.get_logger(__name__)

INSPECTORS = tuple(sorted(scoring.INSPECTORS))
ID = r"{id:[0-9]{1,9}}"
ROLE_LINES = {"user": "caller", "bot": "bot", "caller": "caller", "operator": "operator", "system": "system"}


def cards(settings: Settings) -> dict[str, scoring.Card]:
    return scoring.load_cards(settings.qa_scorecards_file)


def _status(e: ServiceError) -> int:
    return 403 if e.code == "forbidden_action" else e.status


# ------------------------------------------------------------------ the data for pages


def transcript(s: Session, sample: QaSample) -> list[dict[str, Any]]:
    """The sample's conversation, numbered (a violation's evidence names a line): what
    the caller and the bot said before the handoff, then the live chat with the operator."""
    lines: list[dict[str, Any]] = []
    if sample.handoff_id is None:
        return lines
    h = s.get(Handoff, sample.handoff_id)
    if h is None:
        return lines
    for line in h.transcript or []:
        if isinstance(line, dict):
            role = str(line.get("role", ""))
            lines.append({"who": ROLE_LINES.get(role, role), "text": str(line.get("text", "")), "at": line.get("at")})
        else:
            lines.append({"who": "", "text": str(line), "at": None})
    for m in s.exec(select(HandoffMessage).where(HandoffMessage.handoff_id == h.id).order_by(col(HandoffMessage.id))):
        lines.append({"who": m.author if m.sender == "operator" and m.author else m.sender, "text": m.text,
                      "at": utc(m.at)})
    for n, line in enumerate(lines, 1):
        line["n"] = n
    return lines


def _home(s: Session) -> dict[str, Any]:
    scored = set(s.exec(select(QaScore.sample_id).where(QaScore.state == "submitted")))
    recent = list(s.exec(select(QaSample).order_by(col(QaSample.id).desc()).limit(300)))
    to_score = [r for r in recent if r.id not in scored][:100]
    batches = list(s.exec(select(QaBatch).order_by(col(QaBatch.id).desc()).limit(30)))
    flags = handoffs.list_flags(s, state="open", limit=1000)
    violations = list(s.exec(select(QaViolation).order_by(col(QaViolation.id).desc()).limit(20)))
    return {"to_score": to_score, "batches": batches, "open_flags": len(flags), "violations": violations}


def _sample_context(s: Session, sample_id: int) -> dict[str, Any]:
    sample = scoring.get_sample(s, sample_id)
    score = scoring.score_of(s, sample_id)
    return {"sample": sample, "score": score,
            "history": scoring.history(s, score.id) if score is not None and score.id is not None else [],
            "violations": list(s.exec(select(QaViolation).where(QaViolation.sample_id == sample_id)
                                      .order_by(col(QaViolation.id)))),
            "transcript": transcript(s, sample)}


def given_items(form: MultiMapping[Any], card: scoring.Card) -> dict[str, dict[str, Any]]:
    """The scorecard form's fields (``<item>.points``, ``<item>.found``, ``<item>.comment``,
    ``<item>.recording_at``, ``<item>.transcript_line``) as :func:`scoring.evaluate` takes them."""
    given: dict[str, dict[str, Any]] = {}
    for item in card.items:
        row: dict[str, Any] = {}
        if item.instant_fail:
            row["found"] = str(form.get(f"{item.id}.found") or "") in ("1", "on", "yes", "true")
        else:
            row["points"] = str(form.get(f"{item.id}.points") or "").strip()
        for extra in ("comment", "recording_at", "transcript_line"):
            row[extra] = str(form.get(f"{item.id}.{extra}") or "").strip()
        given[item.id] = row
    return given


def _local_day(raw: str, what: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError as e:
        raise ServiceError(f"{what} is a date YYYY-MM-DD, not {raw[:20]!r}", code="invalid_period") from e


def period(start: str, end: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Two local days (both included) as a UTC period."""
    first, last = _local_day(start, "the first day"), _local_day(end or start, "the last day")
    return (datetime.combine(first, time(0), tzinfo=tz).astimezone(ZoneInfo("UTC")),
            datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz).astimezone(ZoneInfo("UTC")))


# ------------------------------------------------------------------ handlers


@require_role(*INSPECTORS)
async def home(request: web.Request, who: Identity) -> web.StreamResponse:
    data = await request.app[DB_KEY].run(_home)
    today = utcnow().astimezone(ZoneInfo(settings_of(request).timezone)).date()
    return pages.render(request, "quality.html", who=who, posts=sampler.POSTS,
                        yesterday=(today - timedelta(days=1)).isoformat(), **data)


@require_role(*INSPECTORS)
async def spot_check(request: web.Request, who: Identity) -> web.StreamResponse:
    form = await request.post()
    tz = ZoneInfo(settings_of(request).timezone)
    post = str(form.get("post") or "").strip() or None
    person = str(form.get("person") or "").strip()[:64] or None
    try:
        start, end = period(str(form.get("start") or ""), str(form.get("end") or ""), tz)
        try:
            limit = int(str(form.get("limit") or "20"))
        except ValueError as e:
            raise ServiceError("how many is a whole number", code="invalid_limit") from e
        drawn = await request.app[DB_KEY].run(sampler.spot_check, who.username, start, end, tz, post=post,
                                              person=person, limit=limit)
    except ServiceError as e:
        return pages.error_page(request, _status(e), "Refused", e.reason, who=who)
    return pages.redirect(f"/desk/quality/batches/{drawn.batch.id}")


def _batch(s: Session, batch_id: int) -> tuple[QaBatch | None, list[QaSample]]:
    return s.get(QaBatch, batch_id), list(s.exec(select(QaSample).where(QaSample.batch_id == batch_id)
                                                  .order_by(col(QaSample.id))))


@require_role(*INSPECTORS)
async def batch_page(request: web.Request, who: Identity) -> web.StreamResponse:
    batch, samples = await request.app[DB_KEY].run(_batch, int(request.match_info["id"]))
    if batch is None:
        return pages.error_page(request, 404, "Not found", "There is no such sample.", who=who)
    return pages.render(request, "quality_batch.html", who=who, batch=batch, samples=samples)


async def _render_sample(request: web.Request, who: Identity, sample_id: int, *, status: int = 200,
                         error: str | None = None, typed: MultiMapping[Any] | None = None) -> web.Response:
    try:
        data = await request.app[DB_KEY].run(_sample_context, sample_id)
    except ServiceError as e:
        return pages.error_page(request, e.status, "Not found", e.reason, who=who)
    sample: QaSample = data["sample"]
    if not data["transcript"] and sample.conversation_id:  # the bot alone: its tracker's lines
        lines = await asyncio.to_thread(transcripts.bot_transcript, settings_of(request).tracker_db,
                                        sample.conversation_id)
        data["transcript"] = [{**line, "n": n} for n, line in enumerate(lines, 1)]
    card = cards(settings_of(request)).get(sample.post)
    calls = await desk_recordings.for_page(request, who, handoff_id=sample.handoff_id) \
        if sample.handoff_id is not None else None
    return pages.render(request, "quality_sample.html", status=status, who=who, card=card, error=error,
                        typed=typed or {}, recordings=calls, **data)


@require_role(*INSPECTORS)
async def sample_page(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _render_sample(request, who, int(request.match_info["id"]))


@require_role(*INSPECTORS)
async def score(request: web.Request, who: Identity) -> web.StreamResponse:
    sample_id = int(request.match_info["id"])
    form = await request.post()
    settings = settings_of(request)
    try:
        sample = await request.app[DB_KEY].run(scoring.get_sample, sample_id)
        card = scoring.card_for(cards(settings), sample.post)
        await request.app[DB_KEY].run(scoring.score_sample, cards(settings), sample_id, given_items(form, card),
                                      who.username, who.role, comment=str(form.get("comment") or ""),
                                      submit=str(form.get("submit") or "") == "1")
    except ServiceError as e:
        return await _render_sample(request, who, sample_id, status=_status(e), error=e.reason, typed=form)
    return pages.redirect(f"/desk/quality/samples/{sample_id}")


@require_role(*INSPECTORS)
async def change(request: web.Request, who: Identity) -> web.StreamResponse:
    score_id = int(request.match_info["id"])
    form = await request.post()
    settings = settings_of(request)
    try:
        row = await request.app[DB_KEY].run(scoring.get_score, score_id)
        card = scoring.card_for(cards(settings), row.card)
        await request.app[DB_KEY].run(scoring.change_score, cards(settings), score_id, given_items(form, card),
                                      who.username, who.role, str(form.get("reason") or ""),
                                      comment=str(form.get("comment") or ""))
    except ServiceError as e:
        if e.code == "score_not_found":
            return pages.error_page(request, 404, "Not found", e.reason, who=who)
        return await _render_sample(request, who, row.sample_id, status=_status(e), error=e.reason, typed=form)
    return pages.redirect(f"/desk/quality/samples/{row.sample_id}")


@require_role(*INSPECTORS)
async def violation(request: web.Request, who: Identity) -> web.StreamResponse:
    sample_id = int(request.match_info["id"])
    form = await request.post()
    try:
        await request.app[DB_KEY].run(scoring.record_violation, sample_id, str(form.get("rule") or "other"),
                                      str(form.get("description") or ""), str(form.get("evidence") or ""),
                                      who.username, who.role)
    except ServiceError as e:
        if e.code == "sample_not_found":
            return pages.error_page(request, 404, "Not found", e.reason, who=who)
        return await _render_sample(request, who, sample_id, status=_status(e), error=e.reason, typed=form)
    return pages.redirect(f"/desk/quality/samples/{sample_id}#violations")


@require_role(*INSPECTORS)
async def withdraw(request: web.Request, who: Identity) -> web.StreamResponse:
    form = await request.post()
    try:
        row = await request.app[DB_KEY].run(scoring.withdraw_violation, int(request.match_info["id"]),
                                            who.username, who.role, str(form.get("reason") or ""))
    except ServiceError as e:
        return pages.error_page(request, _status(e), "Refused", e.reason, who=who)
    where = f"/desk/quality/samples/{row.sample_id}" if row.sample_id else f"/desk/quality/people/{row.person}"
    return pages.redirect(where + "#violations")


@require_role(*INSPECTORS)
async def flags_page(request: web.Request, who: Identity) -> web.StreamResponse:
    rows = await request.app[DB_KEY].run(handoffs.list_flags)
    settings = settings_of(request)
    return pages.render(request, "quality_handoffs.html", who=who, flags=rows,
                        max_passes=settings.qa_handoff_max_passes, max_wait=settings.qa_handoff_max_wait_min)


@require_role(*INSPECTORS)
async def review_flag(request: web.Request, who: Identity) -> web.StreamResponse:
    form = await request.post()
    try:
        await request.app[DB_KEY].run(handoffs.review_flag, int(request.match_info["id"]), who.username,
                                      str(form.get("note") or ""))
    except ServiceError as e:
        return pages.error_page(request, e.status, "Not found", e.reason, who=who)
    return pages.redirect("/desk/quality/handoffs")


@require_role()
async def people_page(request: web.Request, who: Identity) -> web.StreamResponse:
    people = await request.app[DB_KEY].run(scoring.visible_people, who.username, who.role)
    if people == [who.username]:
        return pages.redirect(f"/desk/quality/people/{who.username}")
    return pages.render(request, "quality_people.html", who=who, people=people)


@require_role()
async def person_page(request: web.Request, who: Identity) -> web.StreamResponse:
    person = request.match_info["username"]
    try:
        record = await request.app[DB_KEY].run(scoring.person_record, who.username, who.role, person)
    except ServiceError as e:
        log.warning("desk.qa_record_refused", username=who.username, person=person)
        return pages.error_page(request, _status(e), "Not for you", e.reason, who=who)
    return pages.render(request, "quality_person.html", who=who, record=record,
                        may_inspect=who.role in INSPECTORS)


# ------------------------------------------------------------------ the weekly QA report (Q8)

REPORT_READERS = ("inspector", "admin", "deputy")
REPORT_WRITERS = ("inspector", "admin")
REPORT_APPROVERS = ("deputy", "admin")


def _reports(s: Session) -> list[Any]:
    return reports.list_reports(s, kind=weekly.KIND)


@require_role(*REPORT_READERS)
async def reports_page(request: web.Request, who: Identity) -> web.StreamResponse:
    rows = await request.app[DB_KEY].run(_reports)
    today = utcnow().astimezone(ZoneInfo(settings_of(request).timezone)).date()
    return pages.render(request, "quality_reports.html", who=who, reports=rows,
                        last_monday=weekly.last_week(today).start.isoformat(),
                        may_write=who.role in REPORT_WRITERS)


@require_role(*REPORT_WRITERS)
async def generate_report(request: web.Request, who: Identity) -> web.StreamResponse:
    form = await request.post()
    try:
        start = date.fromisoformat(str(form.get("start") or ""))
    except ValueError:
        return pages.error_page(request, 400, "Bad date", "The week's Monday is a date: YYYY-MM-DD.", who=who)
    try:
        report, _ = await request.app[DB_KEY].run(weekly.generate, start, desk_stats.options(settings_of(request)),
                                                  Who(who.username, who.role))
    except ServiceError as e:
        return pages.error_page(request, _status(e), "Refused", e.reason, who=who)
    return pages.redirect(f"/desk/quality/reports/{report.id}")


def report_of(s: Session, report_id: int) -> tuple[Any, list[Any], list[Any]]:
    report = reports.get(s, report_id)
    if report.kind != weekly.KIND:
        raise NotFound(f"report {report_id} is not a weekly QA report", code="report_not_found")
    return report, reports.events(s, report_id), reports.versions(s, report)


@require_role(*REPORT_READERS)
async def report_page(request: web.Request, who: Identity) -> web.StreamResponse:
    try:
        report, events, versions = await request.app[DB_KEY].run(report_of, int(request.match_info["id"]))
    except ServiceError as e:
        return pages.error_page(request, 404, "No such report", e.reason, who=who)
    lang = request.query.get("lang", "zh")
    return pages.render(request, "quality_report.html", who=who, r=report, f=report.figures, events=events,
                        versions=versions, export_lang=lang if lang in ("zh", "en") else "zh",
                        may_write=who.role in REPORT_WRITERS, may_approve=who.role in REPORT_APPROVERS)


REPORT_ACTIONS = desk_stats.report_actions(REPORT_WRITERS, REPORT_APPROVERS)


def _report_action(name: str) -> Any:
    roles, fn = REPORT_ACTIONS[name]

    def act(s: Session, report_id: int, o: Options, w: Who, text: str) -> StatsReport:
        report_of(s, report_id)  # a QA report, or not found
        return fn(s, report_id, o, w, text)

    @require_role(*roles)
    async def handler(request: web.Request, who: Identity) -> web.StreamResponse:
        form = await request.post()
        try:
            result = await request.app[DB_KEY].run(act, int(request.match_info["id"]),
                                                   desk_stats.options(settings_of(request)),
                                                   Who(who.username, who.role), str(form.get("text") or ""))
        except ServiceError as e:
            return pages.error_page(request, _status(e), "Refused", e.reason, who=who)
        log.info("desk.qa_report_action", action=name, username=who.username)
        return pages.redirect(f"/desk/quality/reports/{result.id}")

    handler.__name__ = f"qa_report_{name.replace('-', '_')}"
    return handler


@require_role(*REPORT_READERS)
async def report_export(request: web.Request, who: Identity) -> web.StreamResponse:
    try:
        report, _, _ = await request.app[DB_KEY].run(report_of, int(request.match_info["id"]))
    except ServiceError as e:
        return pages.error_page(request, 404, "No such report", e.reason, who=who)
    lang = request.query.get("lang", "zh")
    return await desk_stats.export_response(report, request.match_info["fmt"], lang if lang in ("zh", "en") else "zh",
                                            desk_stats.font(settings_of(request)))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/desk/quality/reports", reports_page)
    app.router.add_post("/desk/quality/reports/generate", generate_report)
    app.router.add_get(rf"/desk/quality/reports/{ID}", report_page)
    for name in REPORT_ACTIONS:
        app.router.add_post(rf"/desk/quality/reports/{ID}/{name}", _report_action(name))
    app.router.add_get(rf"/desk/quality/reports/{ID}/export.{{fmt:xlsx|pdf}}", report_export)
    app.router.add_get("/desk/quality", home)
    app.router.add_post("/desk/quality/spot-check", spot_check)
    app.router.add_get(rf"/desk/quality/batches/{ID}", batch_page)
    app.router.add_get(rf"/desk/quality/samples/{ID}", sample_page)
    app.router.add_post(rf"/desk/quality/samples/{ID}/score", score)
    app.router.add_post(rf"/desk/quality/scores/{ID}/change", change)
    app.router.add_post(rf"/desk/quality/samples/{ID}/violations", violation)
    app.router.add_post(rf"/desk/quality/violations/{ID}/withdraw", withdraw)
    app.router.add_get("/desk/quality/handoffs", flags_page)
    app.router.add_post(rf"/desk/quality/handoffs/{ID}/review", review_flag)
    app.router.add_get("/desk/quality/people", people_page)
    app.router.add_get(r"/desk/quality/people/{username:[^/]{1,64}}", person_page)
