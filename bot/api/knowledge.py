"""The archive (D1) and the knowledge base (D2) over HTTP, for other systems.

Every route takes ``Authorization: Bearer <token>``: a desk account's token
(``POST /api/session``) acting with its role, or the staff API token (``api``).

    GET  /api/archive?kind=&from=&to=&fault_class=&branch=&channel=&outcome=
                     &customer_type=&subkind=&ticket_id=&q=&late=&limit=&offset=
                                              archive records (data manager, admin, staff token)
    GET  /api/archive/export?format=csv|xlsx&…  the same filters, as a file
    GET  /api/archive/{id}                    one record
    POST /api/archive/runs {"day": "YYYY-MM-DD"}  run the archive for a night now (idempotent)
    GET  /api/kb/articles?q=&fault_class=&symptom=&state=&scope=&limit=&offset=
                                              search (juniors and other posts: approved articles)
    GET  /api/kb/articles/{id}[?version=N]    one article (insiders: with versions and history)
    GET  /api/kb/suggestions?symptom=&fault_class=&text=   what the junior's page suggests
    POST /api/kb/articles                     {question, answer, fault_class, symptoms, keywords,
                                               task_id?, submit?} (data manager)
    POST /api/kb/articles/{id}/versions       {… , reason, version, submit?} an edit (data manager)
    POST /api/kb/articles/{id}/submit|approve|send-back|retire  {"version"?, "note"?}
    GET  /api/kb/tasks?state=open|done&overdue=yes|no   hard-case tasks (data manager, admin)

Bad input is a 400 with the reason, a role that may not is a 403, never a 500.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import actor_of
from bot.api.errors import ApiError, parse_body
from bot.exports import file_response
from bot.settings import SETTINGS_KEY
from bot.store import archive, kb_search, knowledge
from bot.store.db import DB_KEY
from bot.store.errors import ServiceError
from bot.store.knowledge import ArticleInput, KbArticle, KbTask
from bot.store.models import utc, utcnow
from bot.store.workflow import Actor

log = structlog.get_logger(__name__)

ARCHIVE_READERS = ("datamanager", "admin", "api")
TASK_READERS = ("datamanager", "admin", "api")
INSIDERS = (*knowledge.WRITERS, *knowledge.APPROVERS, "api")
MAX_LIMIT = 200


def _refuse(exc: ServiceError) -> ApiError:
    return ApiError(403 if exc.code == "forbidden_action" else exc.status, exc.code, exc.reason)


async def _reader(request: web.Request, roles: tuple[str, ...], what: str) -> Actor:
    actor = await actor_of(request)
    if actor.role not in roles:
        raise ApiError(403, "forbidden", f"{what} is for the {', '.join(r for r in roles if r != 'api')} "
                                         f"(and the staff token), not for a {actor.role}")
    return actor


def _only(request: web.Request, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown query parameter(s): {', '.join(unknown)}; "
                                                 f"supported: {', '.join(allowed)}")


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not lo <= int(raw) <= hi:
        raise ApiError(400, "invalid_parameter", f"{name} is a whole number from {lo} to {hi}")
    return int(raw)


def _path_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ApiError(400, "bad_id", f"the id is a whole number, not {raw[:20]!r}")
    return int(raw)


def _filter(request: web.Request) -> archive.ArchiveFilter:
    try:
        return archive.filter_from_query(request.query)
    except ServiceError as exc:
        raise _refuse(exc) from exc


# ------------------------------------------------------------------ D1


async def list_archive(request: web.Request) -> web.Response:
    await _reader(request, ARCHIVE_READERS, "the archive")
    _only(request, (*archive.FILTER_FIELDS, "limit", "offset"))
    f = _filter(request)
    limit, offset = _int(request, "limit", 50, 1, MAX_LIMIT), _int(request, "offset", 0, 0, 10**9)
    rows, total = await request.app[DB_KEY].run(archive.list_records, f, limit=limit, offset=offset)
    return web.json_response({"total": total, "limit": limit, "offset": offset,
                              "records": [archive.record_dict(r) for r in rows]})


async def export_archive(request: web.Request) -> web.Response:
    actor = await _reader(request, ARCHIVE_READERS, "the archive")
    _only(request, (*archive.FILTER_FIELDS, "format"))
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        raise ApiError(400, "invalid_parameter", "format is csv or xlsx")
    f = _filter(request)
    try:
        data = await request.app[DB_KEY].run(archive.export_file, f, fmt, request.app[SETTINGS_KEY].timezone)
    except ServiceError as exc:
        raise _refuse(exc) from exc
    log.info("archive.exported", username=actor.username, format=fmt, bytes=len(data))
    return file_response(data, fmt, "archive")


async def get_archive_record(request: web.Request) -> web.Response:
    await _reader(request, ARCHIVE_READERS, "the archive")
    row = await request.app[DB_KEY].run(archive.get_record, _path_id(request))
    if row is None:
        raise ApiError(404, "not_found", f"no archive record {request.match_info['id']}")
    return web.json_response(archive.record_dict(row))


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: date


async def run_archive(request: web.Request) -> web.Response:
    """D1 by hand (a missed night, a backfill): the same idempotent run as the nightly job."""
    actor = await _reader(request, ("datamanager", "admin", "api"), "running the archive")
    body = await parse_body(request, RunIn)
    db = request.app[DB_KEY]
    try:
        summary = await asyncio.to_thread(archive.archive_day, db, body.day,
                                          timezone=request.app[SETTINGS_KEY].timezone)
    except ValueError as exc:
        raise ApiError(400, "invalid_day", str(exc)) from exc
    log.info("archive.run_by_hand", username=actor.username, day=body.day.isoformat(), total=summary.total)
    return web.json_response(summary.as_dict())


# ------------------------------------------------------------------ D2


def _task_dict(t: KbTask) -> dict[str, Any]:
    return {"id": t.id, "hard_case": t.source_task_id, "ticket_id": t.ticket_id, "handoff_id": t.handoff_id,
            "junior": t.junior, "senior": t.senior, "reason": t.reason, "senior_note": t.senior_note,
            "created": utc(t.created).isoformat(), "due_at": utc(t.due_at).isoformat(), "state": t.state,
            "status": knowledge.task_status(t, utcnow()),
            "done_at": utc(t.done_at).isoformat() if t.done_at else None, "done_by": t.done_by,
            "article_id": t.article_id, "outcome": t.outcome, "note": t.note}


def _article_dict(a: KbArticle, v: knowledge.KbArticleVersion | None, *, insider: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id, "version": v.version if v else None,
        "question": v.question if v else None, "answer": v.answer if v else None,
        "fault_class": v.fault_class if v else None, "symptoms": list(v.symptoms) if v else [],
        "keywords": list(v.keywords) if v else [],
        "approved_by": a.approved_by, "approved_at": utc(a.approved_at).isoformat() if a.approved_at else None,
    }
    if insider:
        out.update({"state": a.state, "current_version": a.current_version,
                    "published_version": a.published_version, "created_by": a.created_by,
                    "updated": utc(a.updated).isoformat(), "retired_by": a.retired_by,
                    "retire_reason": a.retire_reason})
    return out


def _hit_dict(h: kb_search.Hit, insider: bool) -> dict[str, Any]:
    return {**_article_dict(h.article, h.version, insider=insider), "score": round(h.score, 6),
            "highlight": {"question": str(h.question_html()), "answer": str(h.answer_html()),
                          "keywords": [str(k) for k in h.keywords_html()]}}


async def search_articles(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    _only(request, ("q", "fault_class", "symptom", "state", "scope", "limit", "offset"))
    insider = actor.role in INSIDERS
    q = request.query.get("q", "")
    if len(q) > 200:
        raise ApiError(400, "invalid_parameter", "q is at most 200 characters")
    scope = request.query.get("scope", "current" if insider else "published")
    if scope not in ("current", "published") or (scope == "current" and not insider):
        raise ApiError(400 if scope not in ("current", "published") else 403, "invalid_parameter",
                       "scope is published (approved articles) or current (the latest versions: the data "
                       "manager, seniors, admins and the staff token)")
    symptom = request.query.get("symptom") or None
    if symptom is not None and symptom not in knowledge.SYMPTOMS:
        raise ApiError(400, "invalid_parameter", f"symptom is one of {', '.join(knowledge.SYMPTOMS)}")
    state = request.query.get("state") or None
    if state is not None and (state not in {s.value for s in knowledge.ArticleState} or not insider):
        raise ApiError(400, "invalid_parameter", "state (draft, submitted, approved, retired) is for insiders")
    fault_class = (request.query.get("fault_class") or "")[:100] or None
    limit, offset = _int(request, "limit", 20, 1, kb_search.MAX_LIMIT), _int(request, "offset", 0, 0, 10**6)
    result = await request.app[DB_KEY].run(kb_search.search, q, scope=scope, fault_class=fault_class,
                                           symptom=symptom, states=(state,) if state else None,
                                           limit=limit, offset=offset)
    return web.json_response({"query": q, "terms": result.query.terms, "relaxed": result.relaxed,
                              "articles": [_hit_dict(h, insider) for h in result.hits]})


def _article_view(s: Any, article_id: int, role: str, wanted: int | None) -> dict[str, Any] | None:
    a = knowledge.get_article(s, article_id)
    insider = role in INSIDERS
    shown = wanted if insider and wanted is not None else (
        a.current_version if insider else knowledge.visible_version(a, role))
    if shown is None:
        return None
    out = _article_dict(a, knowledge.get_version(s, article_id, shown), insider=insider)
    if insider:
        out["versions"] = [{"version": v.version, "author": v.author, "at": utc(v.at).isoformat(),
                            "reason": v.reason} for v in knowledge.versions(s, article_id)]
        out["history"] = [{"action": e.action, "by": e.by, "at": utc(e.at).isoformat(), "version": e.version,
                           "note": e.note} for e in knowledge.events(s, article_id)]
    return out


async def get_article(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    _only(request, ("version",))
    wanted = _int(request, "version", 0, 1, 10**6) if request.query.get("version") else None
    try:
        body = await request.app[DB_KEY].run(_article_view, _path_id(request), actor.role, wanted)
    except ServiceError as exc:
        raise _refuse(exc) from exc
    if body is None:
        raise ApiError(404, "article_not_found", f"article {request.match_info['id']} is not in use")
    return web.json_response(body)


async def suggestions(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    _only(request, ("symptom", "fault_class", "text", "limit"))
    symptom = request.query.get("symptom") or None
    if symptom is not None and symptom not in knowledge.SYMPTOMS:
        raise ApiError(400, "invalid_parameter", f"symptom is one of {', '.join(knowledge.SYMPTOMS)}")
    text = request.query.get("text", "")
    if len(text) > 500:
        raise ApiError(400, "invalid_parameter", "text is at most 500 characters")
    hits = await request.app[DB_KEY].run(kb_search.suggest, symptom=symptom,
                                         fault_class=(request.query.get("fault_class") or "")[:100] or None,
                                         text_=text, limit=_int(request, "limit", 3, 1, 20))
    return web.json_response({"articles": [_hit_dict(h, actor.role in INSIDERS) for h in hits]})


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=knowledge.MAX_QUESTION)
    answer: str = Field(max_length=knowledge.MAX_ANSWER)
    fault_class: str | None = Field(default=None, max_length=100)
    symptoms: list[str] = Field(default_factory=list, max_length=len(knowledge.SYMPTOMS))
    keywords: list[str] = Field(default_factory=list, max_length=knowledge.MAX_KEYWORDS)
    task_id: int | None = Field(default=None, ge=1)
    submit: bool = False

    def data(self) -> ArticleInput:
        return ArticleInput(self.question, self.answer, self.fault_class, tuple(self.symptoms),
                            tuple(self.keywords))


class EditIn(ArticleIn):
    reason: str = Field(min_length=1, max_length=2000)
    version: int = Field(ge=1)


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(default=None, ge=1)
    note: str | None = Field(default=None, max_length=2000)


async def _write(request: web.Request, fn: Any, *args: Any, **kwargs: Any) -> web.Response:
    try:
        article = await request.app[DB_KEY].run(fn, *args, **kwargs)
        body = await request.app[DB_KEY].run(_article_view, article.id, "admin", None)
    except ServiceError as exc:
        raise _refuse(exc) from exc
    return web.json_response(body, status=201 if fn is knowledge.create_article else 200)


async def create_article(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    body = await parse_body(request, ArticleIn)
    return await _write(request, knowledge.create_article, body.data(), actor.username, actor.role,
                        task_id=body.task_id, submit=body.submit)


async def edit_article(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    body = await parse_body(request, EditIn)
    return await _write(request, knowledge.edit_article, _path_id(request), body.data(), actor.username,
                        actor.role, body.reason, expected_version=body.version, submit=body.submit)


async def article_step(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    body = await parse_body(request, StepIn) if request.can_read_body else StepIn()
    name, article_id = request.match_info["action"], _path_id(request)
    if name == "submit":
        return await _write(request, knowledge.submit_article, article_id, actor.username, actor.role,
                            expected_version=body.version)
    if name == "retire":
        return await _write(request, knowledge.retire_article, article_id, actor.username, actor.role, body.note)
    fn = knowledge.approve_article if name == "approve" else knowledge.send_back_article
    return await _write(request, fn, article_id, actor.username, actor.role, body.note,
                        expected_version=body.version)


async def list_tasks(request: web.Request) -> web.Response:
    await _reader(request, TASK_READERS, "the knowledge-base tasks")
    _only(request, ("state", "overdue", "limit"))
    state = request.query.get("state") or None
    if state not in (None, "open", "done"):
        raise ApiError(400, "invalid_parameter", "state is open or done")
    overdue_raw = request.query.get("overdue") or None
    if overdue_raw not in (None, "yes", "no"):
        raise ApiError(400, "invalid_parameter", "overdue is yes or no")
    overdue = None if overdue_raw is None else overdue_raw == "yes"
    tasks = await request.app[DB_KEY].run(knowledge.list_tasks, state=state, overdue=overdue,
                                          limit=_int(request, "limit", 100, 1, MAX_LIMIT))
    return web.json_response([_task_dict(t) for t in tasks])


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/archive", list_archive)
    app.router.add_get("/api/archive/export", export_archive)
    app.router.add_post("/api/archive/runs", run_archive)
    app.router.add_get("/api/archive/{id}", get_archive_record)
    app.router.add_get("/api/kb/articles", search_articles)
    app.router.add_post("/api/kb/articles", create_article)
    app.router.add_get("/api/kb/articles/{id}", get_article)
    app.router.add_post("/api/kb/articles/{id}/versions", edit_article)
    app.router.add_post("/api/kb/articles/{id}/{action:submit|approve|send-back|retire}", article_step)
    app.router.add_get("/api/kb/suggestions", suggestions)
    app.router.add_get("/api/kb/tasks", list_tasks)
