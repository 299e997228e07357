"""The data manager's post (D1–D2) and the knowledge base for every post.

    GET  /desk/datamanager                   home: hard-case tasks (due, overdue), articles to finish
    GET  /desk/archive                       D1: the archive, filtered and searched
    GET  /desk/archive/export.csv|.xlsx      the same filters, as a file
    GET  /desk/archive/{id}                  one archive record
    GET  /desk/kb/tasks/{id}                 a hard case (S3) to enter into the knowledge base
    POST /desk/kb/tasks/{id}/cover           … already covered by an existing article
    GET  /desk/kb/articles                   search the knowledge base (juniors: approved articles)
    GET  /desk/kb/articles/new[?task=ID]     write an article
    POST /desk/kb/articles                   save it (a draft, or submitted for approval)
    GET  /desk/kb/articles/{id}[?version=N]  read it; history for the data manager and seniors
    GET  /desk/kb/articles/{id}/edit         edit: a new version, with the reason
    POST /desk/kb/articles/{id}/edit
    POST /desk/kb/articles/{id}/submit|approve|send-back|retire
    GET  /desk/kb/approvals                  the seniors' approval queue

The archive and the tasks are the data manager's (and an admin's); approvals are for
seniors (and admins); any signed-in post reads approved articles. Every handler checks
the role on the server (``require_role``), and the store refuses again what a role may
not do (bot/store/knowledge.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

import structlog
from aiohttp import web
from multidict import MultiDictProxy, MultiMapping
from sqlmodel import Session

from bot.desk import pages
from bot.desk.auth import Identity, require_role, settings_of
from bot.exports import file_response
from bot.search.chinese import default_segmenter, highlight
from bot.store import archive, kb_search, knowledge, service, workflow
from bot.store.db import DB_KEY
from bot.store.errors import NotFound, ServiceError
from bot.store.knowledge import ArticleInput, KbArticle, KbArticleVersion, KbTask
from bot.store.models import DeskTask, Handoff, Ticket, utc, utcnow

log = structlog.get_logger(__name__)

DM_POSTS = ("datamanager", "admin")
APPROVER_POSTS = knowledge.APPROVERS
ID = r"{id:[0-9]{1,9}}"
PAGE = 50


def _status(exc: ServiceError) -> int:
    if exc.code == "forbidden_action":
        return 403
    return exc.status


# ------------------------------------------------------------------ views of rows


def _task_row(task: KbTask, now: datetime) -> dict[str, Any]:
    return {"id": task.id, "ticket_id": task.ticket_id, "handoff_id": task.handoff_id, "junior": task.junior,
            "senior": task.senior, "reason": task.reason, "senior_note": task.senior_note,
            "created": utc(task.created), "due_at": utc(task.due_at), "state": task.state,
            "status": knowledge.task_status(task, now), "done_at": utc(task.done_at) if task.done_at else None,
            "done_by": task.done_by, "article_id": task.article_id, "outcome": task.outcome, "note": task.note}


def _article_row(a: KbArticle, v: KbArticleVersion | None) -> dict[str, Any]:
    return {"id": a.id, "state": a.state, "current_version": a.current_version,
            "published_version": a.published_version, "created_by": a.created_by, "updated": utc(a.updated),
            "approved_by": a.approved_by, "approved_at": utc(a.approved_at) if a.approved_at else None,
            "retired_by": a.retired_by, "retired_at": utc(a.retired_at) if a.retired_at else None,
            "retire_reason": a.retire_reason,
            "question": v.question if v else "", "answer": v.answer if v else "",
            "fault_class": v.fault_class if v else None, "symptoms": list(v.symptoms) if v else [],
            "keywords": list(v.keywords) if v else []}


def _hit_row(h: kb_search.Hit) -> dict[str, Any]:
    return {**_article_row(h.article, h.version), "version": h.version.version,
            "question_html": h.question_html(), "answer_html": h.answer_html(),
            "keywords_html": h.keywords_html(), "score": h.score}


# ------------------------------------------------------------------ home


def _home(s: Session, timezone: str) -> dict[str, Any]:
    knowledge.ensure_hard_case_tasks(s, timezone)  # hard cases graded before the knowledge base existed
    now = utcnow()
    tasks = knowledge.list_tasks(s, limit=200, now=now)
    drafts = knowledge.list_articles(s, states=(knowledge.ArticleState.draft.value,), limit=50)
    sent_back = {e.article_id: e for a in drafts for e in knowledge.events(s, a.id or 0)[:1] if e.action == "sent_back"}
    return {
        "open_tasks": [_task_row(t, now) for t in tasks if t.state == "open"],
        "done_tasks": [_task_row(t, now) for t in tasks if t.state == "done"][:30],
        "drafts": [{**_article_row(a, knowledge.get_version(s, a.id or 0, a.current_version)),
                    "sent_back": None if a.id not in sent_back else {
                        "by": sent_back[a.id].by, "note": sent_back[a.id].note, "at": utc(sent_back[a.id].at)}}
                   for a in drafts],
        "counts": knowledge.counts(s, now),
        "last_run_day": archive.last_run_day(s),
    }


@require_role(*DM_POSTS)
async def home(request: web.Request, who: Identity) -> web.StreamResponse:
    ctx = await request.app[DB_KEY].run(_home, settings_of(request).timezone)
    return pages.render(request, "datamanager.html", who=who, **ctx)


# ------------------------------------------------------------------ D1: the archive


def _archive_query(query: MultiMapping[str]) -> dict[str, str]:
    return {k: query[k].strip() for k in archive.FILTER_FIELDS if query.get(k, "").strip()}


def _archive_list(s: Session, f: archive.ArchiveFilter, offset: int) -> dict[str, Any]:
    rows, total = archive.list_records(s, f, limit=PAGE, offset=offset)
    return {"records": rows, "total": total, "facets": archive.facets(s), "last_run_day": archive.last_run_day(s)}


def _page_number(query: MultiMapping[str]) -> int:
    raw = query.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 6 and int(raw) > 0 else 1


@require_role(*DM_POSTS)
async def archive_page(request: web.Request, who: Identity) -> web.StreamResponse:
    typed = _archive_query(request.query)
    page = _page_number(request.query)
    try:
        f = archive.filter_from_query(typed)
    except ServiceError as exc:
        ctx = await request.app[DB_KEY].run(_archive_list, archive.ArchiveFilter(kind="none"), 0)
        return pages.render(request, "archive.html", status=400, who=who, error=exc.reason, typed=typed,
                            query=urlencode(typed), page=1, page_size=PAGE, **ctx)
    ctx = await request.app[DB_KEY].run(_archive_list, f, (page - 1) * PAGE)
    return pages.render(request, "archive.html", who=who, error=None, typed=typed, query=urlencode(typed),
                        page=page, page_size=PAGE, **ctx)


@require_role(*DM_POSTS)
async def archive_export(request: web.Request, who: Identity) -> web.StreamResponse:
    fmt = request.match_info["fmt"]
    try:
        f = archive.filter_from_query(_archive_query(request.query))
        data = await request.app[DB_KEY].run(archive.export_file, f, fmt, settings_of(request).timezone)
    except ServiceError as exc:
        return pages.error_page(request, exc.status, "Cannot export", exc.reason, who=who)
    log.info("archive.exported", username=who.username, format=fmt, bytes=len(data))
    return file_response(data, fmt, "archive")


@require_role(*DM_POSTS)
async def archive_record(request: web.Request, who: Identity) -> web.StreamResponse:
    record_id = int(request.match_info["id"])
    row = await request.app[DB_KEY].run(archive.get_record, record_id)
    if row is None:
        return pages.error_page(request, 404, "No such record", "There is no archive record {id}.", who=who,
                                fields={"id": record_id})
    return pages.render(request, "archive_record.html", who=who, r=row, late=row.run_day > row.day,
                        data_text=json.dumps(row.data, ensure_ascii=False, indent=2, sort_keys=True))


# ------------------------------------------------------------------ D2: hard-case tasks


def _task_context(s: Session, task_id: int) -> dict[str, Any]:
    task = knowledge.get_task(s, task_id)
    ticket = s.get(Ticket, task.ticket_id) if task.ticket_id else None
    handoff = s.get(Handoff, task.handoff_id) if task.handoff_id else None
    hard_case = s.get(DeskTask, task.source_task_id)
    view = service.get_ticket(s, ticket.id) if ticket is not None else None
    return {
        "task": _task_row(task, utcnow()),
        "ticket": None if ticket is None or view is None else {
            "id": ticket.id, "fault_number": ticket.fault_number, "status": ticket.status,
            "sub_step": workflow.sub_step_of(ticket), "symptom_category": ticket.symptom_category,
            "symptom_text": ticket.symptom_text, "fault_class": ticket.fault_class,
            "derived_fault_class": archive.fault_class_of(s, ticket), "branch": ticket.branch,
            "last_test": view.last_test.result if view.last_test else None,
            "history": [{"at": utc(h.at), "author": h.author, "action": h.action, "reason": h.reason}
                        for h in view.history],
            "notes": [{"at": utc(n.at), "author": n.author, "text": n.text} for n in view.notes],
        },
        "transcript": [{"who": str(line.get("role", "")), "text": str(line.get("text", ""))}
                       for line in (handoff.transcript if handoff is not None else []) if isinstance(line, dict)],
        "graded_at": utc(hard_case.graded_at) if hard_case is not None and hard_case.graded_at else None,
    }


@require_role(*DM_POSTS)
async def task_page(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _task_page(request, who, int(request.match_info["id"]))


async def _task_page(request: web.Request, who: Identity, task_id: int, *, status: int = 200,
                     error: str | None = None) -> web.Response:
    try:
        ctx = await request.app[DB_KEY].run(_task_context, task_id)
    except NotFound as exc:
        return pages.error_page(request, 404, "No such task", exc.reason, who=who)
    q = request.query.get("q", "")[:200]
    found = await request.app[DB_KEY].run(kb_search.search, q, scope="current", limit=10) if q.strip() else None
    return pages.render(request, "kb_task.html", status=status, who=who, error=error, q=q,
                        found=None if found is None else [_hit_row(h) for h in found.hits], **ctx)


@require_role(*DM_POSTS)
async def cover_task(request: web.Request, who: Identity) -> web.StreamResponse:
    task_id = int(request.match_info["id"])
    form = await request.post()
    raw = str(form.get("article_id") or "").strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        return await _task_page(request, who, task_id, status=400, error="Give the number of an existing article.")
    try:
        await request.app[DB_KEY].run(knowledge.cover_task, task_id, who.username, who.role, int(raw),
                                      str(form.get("note") or ""))
    except ServiceError as exc:
        return await _task_page(request, who, task_id, status=_status(exc), error=exc.reason)
    return pages.redirect("/desk/datamanager")


# ------------------------------------------------------------------ articles


def _form_input(form: MultiDictProxy[Any]) -> ArticleInput:
    return ArticleInput(question=str(form.get("question") or ""), answer=str(form.get("answer") or ""),
                        fault_class=str(form.get("fault_class") or ""),
                        symptoms=tuple(str(x) for x in form.getall("symptoms", [])),
                        keywords=knowledge.split_keywords(str(form.get("keywords") or "")))


def _typed(form: MultiDictProxy[Any]) -> dict[str, Any]:
    return {"question": str(form.get("question") or "")[:knowledge.MAX_QUESTION * 2],
            "answer": str(form.get("answer") or "")[:knowledge.MAX_ANSWER * 2],
            "fault_class": str(form.get("fault_class") or ""), "symptoms": [str(x) for x in form.getall("symptoms", [])],
            "keywords": str(form.get("keywords") or "")[:2000], "reason": str(form.get("reason") or "")[:2000]}


def _editor_context(s: Session, article_id: int | None, task_id: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"fault_classes": workflow.fault_classes(s), "symptom_names": service.SYMPTOM_NAMES,
                           "article": None, "task": None}
    if article_id is not None:
        a = knowledge.get_article(s, article_id)
        out["article"] = _article_row(a, knowledge.get_version(s, article_id, a.current_version))
    if task_id is not None:
        out["task"] = _task_row(knowledge.get_task(s, task_id), utcnow())
    return out


async def _editor(request: web.Request, who: Identity, *, article_id: int | None = None, task_id: int | None = None,
                  status: int = 200, error: str | None = None, typed: dict[str, Any] | None = None) -> web.Response:
    try:
        ctx = await request.app[DB_KEY].run(_editor_context, article_id, task_id)
    except NotFound as exc:
        return pages.error_page(request, 404, "Not found", exc.reason, who=who)
    if typed is None:
        a = ctx["article"]
        typed = {"question": a["question"], "answer": a["answer"], "fault_class": a["fault_class"] or "",
                 "symptoms": a["symptoms"], "keywords": "，".join(a["keywords"]), "reason": ""} if a else {
            "question": "", "answer": (ctx["task"] or {}).get("senior_note") or "", "fault_class": "",
            "symptoms": [], "keywords": "", "reason": ""}
    return pages.render(request, "kb_edit.html", status=status, who=who, error=error, typed=typed, **ctx)


def _int_query(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


@require_role(*DM_POSTS)
async def new_article(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _editor(request, who, task_id=_int_query(request, "task"))


@require_role(*DM_POSTS)
async def create_article(request: web.Request, who: Identity) -> web.StreamResponse:
    form = await request.post()
    raw_task = str(form.get("task_id") or "")
    task_id = int(raw_task) if raw_task.isascii() and raw_task.isdigit() and len(raw_task) <= 9 else None
    submit = form.get("submit") == "yes"
    try:
        article = await request.app[DB_KEY].run(knowledge.create_article, _form_input(form), who.username, who.role,
                                                task_id=task_id, submit=submit)
    except ServiceError as exc:
        return await _editor(request, who, task_id=task_id, status=_status(exc), error=exc.reason,
                             typed=_typed(form))
    return pages.redirect(f"/desk/kb/articles/{article.id}")


@require_role(*DM_POSTS)
async def edit_form(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _editor(request, who, article_id=int(request.match_info["id"]))


def _version_field(form: MultiDictProxy[Any]) -> int | None:
    raw = str(form.get("version") or "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


@require_role(*DM_POSTS)
async def edit_article(request: web.Request, who: Identity) -> web.StreamResponse:
    article_id = int(request.match_info["id"])
    form = await request.post()
    expected = _version_field(form)
    if expected is None:
        return await _editor(request, who, article_id=article_id, status=400, typed=_typed(form),
                             error="The form has no valid article version. Reload the page and try again.")
    try:
        await request.app[DB_KEY].run(knowledge.edit_article, article_id, _form_input(form), who.username, who.role,
                                      str(form.get("reason") or ""), expected_version=expected,
                                      submit=form.get("submit") == "yes")
    except ServiceError as exc:
        return await _editor(request, who, article_id=article_id, status=_status(exc), error=exc.reason,
                             typed=_typed(form))
    return pages.redirect(f"/desk/kb/articles/{article_id}")


def _article_context(s: Session, article_id: int, role: str, wanted: int | None) -> dict[str, Any] | None:
    a = knowledge.get_article(s, article_id)
    insider = role in knowledge.WRITERS or role in knowledge.APPROVERS
    shown = wanted if insider and wanted is not None else knowledge.visible_version(a, role)
    if shown is None:
        return None
    v = knowledge.get_version(s, article_id, shown)
    tasks = [_task_row(t, utcnow()) for t in knowledge.list_tasks(s) if t.article_id == article_id] if insider else []
    return {
        "a": {**_article_row(a, v), "version": shown, "version_author": v.author, "version_at": utc(v.at),
              "version_reason": v.reason},
        "insider": insider,
        "versions": [{"version": x.version, "author": x.author, "at": utc(x.at), "reason": x.reason}
                     for x in knowledge.versions(s, article_id)] if insider else [],
        "events": [{"action": e.action, "by": e.by, "at": utc(e.at), "version": e.version, "note": e.note}
                   for e in knowledge.events(s, article_id)] if insider else [],
        "tasks": tasks,
    }


async def _article_page(request: web.Request, who: Identity, article_id: int, *, status: int = 200,
                        error: str | None = None) -> web.Response:
    wanted = _int_query(request, "version")
    try:
        ctx = await request.app[DB_KEY].run(_article_context, article_id, who.role, wanted)
    except NotFound as exc:
        return pages.error_page(request, 404, "No such article", exc.reason, who=who)
    if ctx is None:  # not approved (yet), or retired: not for this post
        return pages.error_page(request, 404, "No such article",
                                "Article {id} is not in use in the knowledge base.", who=who, fields={"id": article_id})
    q = request.query.get("q", "")[:200]
    terms = (await asyncio.to_thread(lambda: default_segmenter().query(q).terms)) if q.strip() else []
    a = ctx["a"]
    marked = {"question_html": highlight(a["question"], terms), "answer_html": highlight(a["answer"], terms)}
    return pages.render(request, "kb_article.html", status=status, who=who, error=error, q=q, marked=marked,
                        may_write=who.role in knowledge.WRITERS, may_approve=who.role in knowledge.APPROVERS,
                        symptom_names=service.SYMPTOM_NAMES, **ctx)


@require_role()
async def article_page(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _article_page(request, who, int(request.match_info["id"]))


ARTICLE_ACTIONS: dict[str, tuple[Callable[..., KbArticle], bool]] = {
    "submit": (knowledge.submit_article, False),
    "approve": (knowledge.approve_article, True),
    "send-back": (knowledge.send_back_article, True),
    "retire": (knowledge.retire_article, True),
}


@require_role(*DM_POSTS, *APPROVER_POSTS)
async def article_action(request: web.Request, who: Identity) -> web.StreamResponse:
    article_id, name = int(request.match_info["id"]), request.match_info["action"]
    fn, takes_text = ARTICLE_ACTIONS[name]
    form = await request.post()
    args: tuple[Any, ...] = (str(form.get("note") or ""),) if takes_text else ()
    kwargs: dict[str, Any] = {}
    expected = _version_field(form)
    if name != "retire":
        kwargs["expected_version"] = expected
    try:
        await request.app[DB_KEY].run(partial(fn, **kwargs), article_id, who.username, who.role, *args)
    except ServiceError as exc:
        return await _article_page(request, who, article_id, status=_status(exc), error=exc.reason)
    log.info("desk.kb_action", username=who.username, article_id=article_id, action=name)
    back = "/desk/kb/approvals" if name in ("approve", "send-back") and form.get("back") == "approvals" else (
        f"/desk/kb/articles/{article_id}")
    return pages.redirect(back)


# ------------------------------------------------------------------ search and lists


def _search_context(s: Session, role: str, q: str, fault_class: str | None, symptom: str | None,
                    state: str | None, page: int) -> dict[str, Any]:
    insider = role in knowledge.WRITERS or role in knowledge.APPROVERS
    result = kb_search.search(s, q, scope="current" if insider else "published", fault_class=fault_class,
                              symptom=symptom, states=(state,) if insider and state else None, limit=PAGE,
                              offset=(page - 1) * PAGE)
    return {"hits": [_hit_row(h) for h in result.hits], "relaxed": result.relaxed, "insider": insider,
            "fault_classes": workflow.fault_classes(s), "symptom_names": service.SYMPTOM_NAMES,
            "terms": result.query.terms}


@require_role()
async def articles_page(request: web.Request, who: Identity) -> web.StreamResponse:
    q = request.query.get("q", "")
    typed = {"q": q[:200], "fault_class": request.query.get("fault_class", "")[:100],
             "symptom": request.query.get("symptom", "")[:40], "state": request.query.get("state", "")[:20]}
    error = None
    if len(q) > 200:
        error = "The search is longer than 200 characters; only the first 200 are used."
    if typed["symptom"] and typed["symptom"] not in knowledge.SYMPTOMS:
        typed["symptom"] = ""
    if typed["state"] and typed["state"] not in {s.value for s in knowledge.ArticleState}:
        typed["state"] = ""
    page = _page_number(request.query)
    ctx = await request.app[DB_KEY].run(_search_context, who.role, typed["q"], typed["fault_class"] or None,
                                        typed["symptom"] or None, typed["state"] or None, page)
    return pages.render(request, "kb_articles.html", who=who, typed=typed, error=error, page=page,
                        page_size=PAGE, query=urlencode({k: v for k, v in typed.items() if v}), **ctx)


def _approvals(s: Session) -> list[dict[str, Any]]:
    out = []
    for a in knowledge.list_articles(s, states=(knowledge.ArticleState.submitted.value,)):
        assert a.id is not None
        current = knowledge.get_version(s, a.id, a.current_version)
        published = knowledge.get_version(s, a.id, a.published_version) if a.published_version else None
        out.append({**_article_row(a, current), "version_reason": current.reason, "version_author": current.author,
                    "published": None if published is None else _article_row(a, published)})
    return out


@require_role(*APPROVER_POSTS)
async def approvals_page(request: web.Request, who: Identity) -> web.StreamResponse:
    rows = await request.app[DB_KEY].run(_approvals)
    return pages.render(request, "kb_approvals.html", who=who, articles=rows, symptom_names=service.SYMPTOM_NAMES)


# ------------------------------------------------------------------ the junior's page


def suggestions_for(s: Session, handoff: Handoff) -> list[dict[str, Any]]:
    """D2: approved articles for the caller on a handoff page, from the ticket's symptom
    category and fault class (the senior's, or the one the line test suggests) and the
    caller's own words (the ticket's symptom text, else what they said to the bot)."""
    ticket = s.get(Ticket, handoff.ticket_id) if handoff.ticket_id else None
    words = ticket.symptom_text if ticket is not None and ticket.symptom_text else " ".join(
        str(line.get("text", "")) for line in (handoff.transcript or [])
        if isinstance(line, dict) and line.get("role") == "user")[-500:]
    hits = kb_search.suggest(s, symptom=ticket.symptom_category if ticket is not None else None,
                             fault_class=archive.fault_class_of(s, ticket) if ticket is not None else None,
                             text_=words)
    return [_hit_row(h) for h in hits]


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/desk/datamanager", home)
    app.router.add_get("/desk/archive", archive_page)
    app.router.add_get("/desk/archive/export.{fmt:csv|xlsx}", archive_export)
    app.router.add_get(f"/desk/archive/{ID}", archive_record)
    app.router.add_get(f"/desk/kb/tasks/{ID}", task_page)
    app.router.add_post(f"/desk/kb/tasks/{ID}/cover", cover_task)
    app.router.add_get("/desk/kb/articles", articles_page)
    app.router.add_post("/desk/kb/articles", create_article)
    app.router.add_get("/desk/kb/articles/new", new_article)
    app.router.add_get(f"/desk/kb/articles/{ID}", article_page)
    app.router.add_get(f"/desk/kb/articles/{ID}/edit", edit_form)
    app.router.add_post(f"/desk/kb/articles/{ID}/edit", edit_article)
    app.router.add_post(f"/desk/kb/articles/{ID}/{{action:submit|approve|send-back|retire}}", article_action)
    app.router.add_get("/desk/kb/approvals", approvals_page)
