"""Quality inspection over HTTP for other systems (Q1–Q8).

    GET  /api/quality/samples[?day=YYYY-MM-DD&post=&person=]   samples (newest first, at most 500)
    GET  /api/quality/samples/{id}                 one sample with its score, history and violations
    POST /api/quality/spot-checks {"start", "end"?, "post"?, "person"?, "limit"?}   Q1: draw a sample
    POST /api/quality/samples/{id}/score {"items": {item: {points|found, comment?, recording_at?,
                                         transcript_line?}}, "comment"?, "submit"?}
    POST /api/quality/scores/{id}/change {"items", "comment"?, "reason"}   after submission: with a reason
    POST /api/quality/samples/{id}/violations {"rule"?, "description", "evidence"?}
    GET  /api/quality/people/{username}            a person's submitted scores and violations
    GET  /api/quality/handoff-flags                Q6's flags
    GET  /api/quality/scorecards                   the scorecards in use
    GET  /api/quality/reports                      Q8: the weekly QA analysis reports
    GET  /api/quality/reports/{id}                 with its frozen figures and history
    GET  /api/quality/reports/{id}/export.pdf|xlsx ?lang=zh|en
    POST /api/quality/reports {"start"}            the week's report (its Monday; 201 made, 200 already there)
    POST /api/quality/reports/{id}/{action} {"text"?}  refresh|comment|submit|correct (inspector),
                                                   approve|send-back (deputy)

Who: the staff API token reads everything (another system); a desk bearer token
(``POST /api/session``) of an inspector or admin reads and writes; anybody signed in
reads their own record, a supervisor the records of the people of the posts they
supervise (bot/quality/scoring.py); the weekly reports are also a deputy manager's, who
approves them. Bad input is a 4xx with a reason.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel import Session, col, select

from bot.api.auth import actor_of
from bot.api.errors import ApiError, path_id, read_json
from bot.desk import quality as desk_quality
from bot.desk import stats as desk_stats
from bot.desk.quality import cards, period
from bot.quality import handoffs, sampler, scoring, weekly
from bot.settings import SETTINGS_KEY
from bot.stats import reports
from bot.stats.reports import Who
from bot.store.db import DB_KEY
from bot.store.errors import ServiceError
from bot.store.quality import QaHandoffFlag, QaSample, QaScore, QaScoreChange, QaViolation
from bot.store.workflow import Actor

WRITERS = scoring.INSPECTORS
READERS = WRITERS | {"api"}


def _iso(x: datetime | None) -> str | None:
    return x.isoformat() if x is not None else None


def sample_dict(r: QaSample) -> dict[str, Any]:
    return {"id": r.id, "batch_id": r.batch_id, "post": r.post, "kind": r.kind, "ref": r.ref, "person": r.person,
            "work_at": _iso(r.work_at), "day": r.day, "ticket_id": r.ticket_id, "handoff_id": r.handoff_id,
            "conversation_id": r.conversation_id, "details": r.details}


def score_dict(r: QaScore) -> dict[str, Any]:
    return {"id": r.id, "sample_id": r.sample_id, "post": r.post, "person": r.person, "card": r.card,
            "card_version": r.card_version, "items": r.items, "points": r.points, "max_points": r.max_points,
            "percent": r.percent, "instant_fail": r.instant_fail, "passed": r.passed, "comment": r.comment,
            "state": r.state, "version": r.version, "scored_by": r.scored_by, "work_at": _iso(r.work_at),
            "submitted_at": _iso(r.submitted_at), "updated": _iso(r.updated)}


def change_dict(c: QaScoreChange) -> dict[str, Any]:
    return {"version": c.version, "action": c.action, "actor": c.actor, "at": _iso(c.at), "reason": c.reason,
            "before": c.before, "after": c.after}


def violation_dict(v: QaViolation) -> dict[str, Any]:
    return {"id": v.id, "person": v.person, "post": v.post, "sample_id": v.sample_id, "score_id": v.score_id,
            "rule": v.rule, "description": v.description, "evidence": v.evidence, "recorded_by": v.recorded_by,
            "at": _iso(v.at), "work_at": _iso(v.work_at), "counted": v.withdrawn_at is None,
            "withdrawn_at": _iso(v.withdrawn_at), "withdrawn_by": v.withdrawn_by,
            "withdrawn_reason": v.withdrawn_reason}


def flag_dict(f: QaHandoffFlag) -> dict[str, Any]:
    return {"id": f.id, "subject": f.subject, "reason": f.reason, "ticket_id": f.ticket_id,
            "conversation_id": f.conversation_id, "passes": f.passes, "longest_wait_s": f.longest_wait_s,
            "waited_at": f.waited_at, "path": f.path, "first_at": _iso(f.first_at),
            "detected_at": _iso(f.detected_at), "state": f.state, "reviewed_by": f.reviewed_by, "note": f.note}


async def _actor(request: web.Request, roles: frozenset[str]) -> Actor:
    actor = await actor_of(request)
    if actor.role not in roles:
        raise ApiError(403, "forbidden", f"quality inspection is for inspectors and administrators, "
                                         f"not for a {actor.role}")
    return actor


def _refused(e: ServiceError) -> ApiError:
    return ApiError(403 if e.code == "forbidden_action" else e.status, e.code, e.reason)


def _str(body: dict[str, Any], key: str, *, max_len: int = 2000) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise ApiError(400, "invalid_field", f"{key} is text of at most {max_len} characters")
    return value


def _items(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    items = body.get("items")
    if not isinstance(items, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in items.items()):
        raise ApiError(400, "invalid_field", "items is an object: {item id: {points | found, comment?, "
                                             "recording_at?, transcript_line?}}")
    for v in items.values():
        for key in ("comment", "recording_at"):
            if v.get(key) is not None and not isinstance(v[key], str):
                raise ApiError(400, "invalid_field", f"{key} is text")
        if "found" in v and not isinstance(v["found"], bool):
            raise ApiError(400, "invalid_field", "found is true or false")
        if v.get("points") is not None and (isinstance(v["points"], bool) or not isinstance(v["points"], int | float)):
            raise ApiError(400, "invalid_field", "points is a number")
    return items


def _list(s: Session, day: str | None, post: str | None, person: str | None) -> list[QaSample]:
    q = select(QaSample)
    if day is not None:
        q = q.where(QaSample.day == day)
    if post is not None:
        q = q.where(QaSample.post == post)
    if person is not None:
        q = q.where(QaSample.person == person)
    return list(s.exec(q.order_by(col(QaSample.id).desc()).limit(500)))


async def list_samples(request: web.Request) -> web.Response:
    await _actor(request, READERS)
    unknown = sorted(set(request.query) - {"day", "post", "person"})
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown query parameter(s): {', '.join(unknown)}; "
                                                 "supported: day, post, person")
    day = request.query.get("day")
    if day is not None:
        try:
            date.fromisoformat(day)
        except ValueError as e:
            raise ApiError(400, "invalid_parameter", f"day is a date YYYY-MM-DD, not {day[:20]!r}") from e
    post = request.query.get("post")
    if post is not None and post not in sampler.POSTS:
        raise ApiError(400, "invalid_parameter", f"post is one of {', '.join(sampler.POSTS)}")
    rows = await request.app[DB_KEY].run(_list, day, post, request.query.get("person"))
    return web.json_response({"samples": [sample_dict(r) for r in rows]})


def _one(s: Session, sample_id: int) -> dict[str, Any]:
    sample = scoring.get_sample(s, sample_id)
    score = scoring.score_of(s, sample_id)
    return {**sample_dict(sample), "score": score_dict(score) if score else None,
            "history": [change_dict(c) for c in scoring.history(s, score.id)] if score and score.id else [],
            "violations": [violation_dict(v) for v in s.exec(select(QaViolation)
                                                             .where(QaViolation.sample_id == sample_id))]}


async def get_sample(request: web.Request) -> web.Response:
    await _actor(request, READERS)
    return web.json_response(await request.app[DB_KEY].run(_one, path_id(request, "sample")))


async def spot_check(request: web.Request) -> web.Response:
    actor = await _actor(request, WRITERS)
    body = await read_json(request)
    tz = ZoneInfo(request.app[SETTINGS_KEY].timezone)
    limit = body.get("limit", 20)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ApiError(400, "invalid_field", "limit is a whole number")
    try:
        start, end = period(_str(body, "start", max_len=10) or "", _str(body, "end", max_len=10) or "", tz)
        drawn = await request.app[DB_KEY].run(sampler.spot_check, actor.username, start, end, tz,
                                              post=_str(body, "post", max_len=20),
                                              person=_str(body, "person", max_len=64), limit=limit)
    except ServiceError as e:
        raise _refused(e) from e
    b = drawn.batch
    return web.json_response({"batch": {"id": b.id, "origin": b.origin, "post": b.post, "person": b.person,
                                        "period": {"start": _iso(b.period_start), "end": _iso(b.period_end)},
                                        "population": b.population, "size": b.size},
                              "samples": [sample_dict(r) for r in drawn.samples]}, status=201)


async def score(request: web.Request) -> web.Response:
    actor = await _actor(request, WRITERS)
    sample_id = path_id(request, "sample")
    body = await read_json(request)
    submit = body.get("submit", False)
    if not isinstance(submit, bool):
        raise ApiError(400, "invalid_field", "submit is true or false")
    try:
        row = await request.app[DB_KEY].run(scoring.score_sample, cards(request.app[SETTINGS_KEY]), sample_id,
                                            _items(body), actor.username, actor.role,
                                            comment=_str(body, "comment"), submit=submit)
    except ServiceError as e:
        raise _refused(e) from e
    return web.json_response(score_dict(row))


async def change(request: web.Request) -> web.Response:
    actor = await _actor(request, WRITERS)
    score_id = path_id(request, "score")
    body = await read_json(request)
    try:
        row = await request.app[DB_KEY].run(scoring.change_score, cards(request.app[SETTINGS_KEY]), score_id,
                                            _items(body), actor.username, actor.role, _str(body, "reason"),
                                            comment=_str(body, "comment"))
    except ServiceError as e:
        raise _refused(e) from e
    return web.json_response(score_dict(row))


async def violation(request: web.Request) -> web.Response:
    actor = await _actor(request, WRITERS)
    sample_id = path_id(request, "sample")
    body = await read_json(request)
    try:
        row = await request.app[DB_KEY].run(scoring.record_violation, sample_id, _str(body, "rule", max_len=60) or "other",
                                            _str(body, "description"), _str(body, "evidence"),
                                            actor.username, actor.role)
    except ServiceError as e:
        raise _refused(e) from e
    return web.json_response(violation_dict(row), status=201)


async def person(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    username = request.match_info["username"]
    role = "inspector" if actor.role == "api" else actor.role  # another system reads every record
    try:
        record = await request.app[DB_KEY].run(scoring.person_record, actor.username, role, username)
    except ServiceError as e:
        raise _refused(e) from e
    return web.json_response({"person": record.person, "post": record.post, "violations_counted": record.counted,
                              "scores": [score_dict(r) for r in record.scores],
                              "violations": [violation_dict(v) for v in record.violations]})


async def flags(request: web.Request) -> web.Response:
    await _actor(request, READERS)
    rows = await request.app[DB_KEY].run(handoffs.list_flags)
    return web.json_response({"flags": [flag_dict(f) for f in rows]})


async def scorecards(request: web.Request) -> web.Response:
    await _actor(request, READERS)
    data = cards(request.app[SETTINGS_KEY])
    return web.json_response({post: {"version": c.version, "pass_percent": c.pass_percent,
                                     "max_points": c.max_points, "items": [asdict(i) for i in c.items]}
                              for post, c in data.items()})


REPORT_READERS = READERS | {"deputy"}


async def _report_reader(request: web.Request) -> Who:
    actor = await _actor(request, REPORT_READERS)
    return Who(actor.username, reports.SCHEDULER if actor.role == "api" else actor.role)


def _report_id(request: web.Request) -> int:
    return path_id(request, "report")


def _load_report(s: Session, report_id: int) -> dict[str, Any]:
    report, events, _ = desk_quality.report_of(s, report_id)
    return {**reports.report_dict(report, with_figures=True), "events": [reports.event_dict(e) for e in events]}


async def list_reports(request: web.Request) -> web.Response:
    await _report_reader(request)
    rows = await request.app[DB_KEY].run(reports.list_reports, kind=weekly.KIND)
    return web.json_response([reports.report_dict(r) for r in rows])


async def get_report(request: web.Request) -> web.Response:
    await _report_reader(request)
    return web.json_response(await request.app[DB_KEY].run(_load_report, _report_id(request)))


async def export_report(request: web.Request) -> web.Response:
    await _report_reader(request)
    lang = request.query.get("lang", "zh")
    if lang not in ("zh", "en") or set(request.query) - {"lang"}:
        raise ApiError(400, "invalid_parameter", "the only parameter is lang: zh or en")
    report, _, _ = await request.app[DB_KEY].run(desk_quality.report_of, _report_id(request))
    return await desk_stats.export_response(report, request.match_info["fmt"], lang,
                                            desk_stats.font(request.app[SETTINGS_KEY]))


async def generate_report(request: web.Request) -> web.Response:
    who = await _report_reader(request)
    body = await read_json(request)
    if set(body) - {"start"}:
        raise ApiError(400, "invalid_field", "the only field is start (the week's Monday, YYYY-MM-DD)")
    raw = _str(body, "start", max_len=10) or ""
    try:
        start = date.fromisoformat(raw)
    except ValueError as e:
        raise ApiError(400, "invalid_field", f"start is a date YYYY-MM-DD, not {raw[:20]!r}") from e
    try:
        report, created = await request.app[DB_KEY].run(weekly.generate, start,
                                                        desk_stats.options(request.app[SETTINGS_KEY]), who)
    except ServiceError as e:
        raise _refused(e) from e
    return web.json_response(reports.report_dict(report, with_figures=True), status=201 if created else 200)


async def act_on_report(request: web.Request) -> web.Response:
    who = await _report_reader(request)
    report_id, action = _report_id(request), request.match_info["action"]
    body = await read_json(request) if request.can_read_body else {}
    if set(body) - {"text"}:
        raise ApiError(400, "invalid_field", "the only field is text")
    text = _str(body, "text", max_len=4000) or ""
    roles, fn = desk_quality.REPORT_ACTIONS[action]
    if who.role not in roles:
        raise ApiError(403, "forbidden", f"a {who.role} may not {action} a weekly QA report")

    def run(s: Session) -> Any:
        desk_quality.report_of(s, report_id)
        return fn(s, report_id, desk_stats.options(request.app[SETTINGS_KEY]), who, text)

    try:
        result = await request.app[DB_KEY].run(run)
    except ServiceError as e:
        raise _refused(e) from e
    return web.json_response(reports.report_dict(result))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/quality/reports", list_reports)
    app.router.add_post("/api/quality/reports", generate_report)
    app.router.add_get("/api/quality/reports/{id}", get_report)
    app.router.add_get("/api/quality/reports/{id}/export.{fmt:xlsx|pdf}", export_report)
    app.router.add_post("/api/quality/reports/{id}/{action:refresh|comment|submit|correct|approve|send-back}",
                        act_on_report)
    app.router.add_get("/api/quality/samples", list_samples)
    app.router.add_get("/api/quality/samples/{id}", get_sample)
    app.router.add_post("/api/quality/spot-checks", spot_check)
    app.router.add_post("/api/quality/samples/{id}/score", score)
    app.router.add_post("/api/quality/scores/{id}/change", change)
    app.router.add_post("/api/quality/samples/{id}/violations", violation)
    app.router.add_get(r"/api/quality/people/{username:[^/]{1,64}}", person)
    app.router.add_get("/api/quality/handoff-flags", flags)
    app.router.add_get("/api/quality/scorecards", scorecards)
