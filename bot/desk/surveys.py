"""The satisfaction surveyor's survey pages (U3–U5). The live deadline board is the
surveyor's home (``/desk/surveyor``, U1–U2); these pages sit beside it and link to it.

    GET  /desk/surveyor/surveys              surveys due, in progress, failed, results; counts; CSV form
    GET  /desk/surveyor/surveys.csv          survey results as CSV (UTF-8 with BOM), ?from=&to= (local dates)
    GET  /desk/surveyor/dissatisfied         U4: dissatisfied surveys waiting for a cause; recently handled
    GET  /desk/surveys/{id}                  one survey: attempts, answers, comment, the ticket's whole history
    POST /desk/surveys/{id}/cause            U4–U5: the cause (not ours / the centre's / the telecom side's)
    POST /desk/surveys/{id}/link             a signed link to the survey in the web chat (shown once)
    POST /desk/surveys/{id}/preference       the reporter's number: do-not-call, quiet days
    GET  /desk/surveys/{id}/comment.wav      the spoken comment
    POST /desk/surveys/tasks/{id}/done       U5: the team leader (a senior) says how a staff case was handled

Roles are checked here on the server: the surveyor and admins work the surveys; seniors
and managers may read a survey (it explains a second dispatch or an escalation);
seniors close their team-leader tasks.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from sqlmodel import Session

from bot.desk import pages, work
from bot.desk.auth import Identity, require_role, settings_of
from bot.store import surveys
from bot.store.db import DB_KEY
from bot.store.errors import ServiceError
from bot.store.models import Ticket, utc, utcnow
from bot.store.survey_records import Survey
from bot.survey import links

log = structlog.get_logger(__name__)

SURVEY_POSTS = ("surveyor", "admin")
READERS = ("surveyor", "admin", "senior", "manager")
LISTENERS = ("surveyor", "admin", "senior", "inspector")
TEAM_LEADERS = ("senior", "admin")
SURVEY_ID = r"{id:\d{1,9}}"
WEEKDAYS = [(1, "Mon"), (2, "Tue"), (3, "Wed"), (4, "Thu"), (5, "Fri"), (6, "Sat"), (7, "Sun")]
CSV_DAYS_MAX = 366


def _when(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


def _row(s: Session, survey: Survey) -> dict[str, Any]:
    ticket = s.get(Ticket, survey.ticket_id)
    return {
        "id": survey.id, "ticket_id": survey.ticket_id, "channel": survey.channel, "state": survey.state,
        "state_reason": survey.state_reason, "language": survey.language,
        "fault_number": ticket.fault_number if ticket else None, "branch": ticket.branch if ticket else None,
        "created": _when(survey.created), "next_attempt_at": _when(survey.next_attempt_at),
        "started_at": _when(survey.started_at), "finished_at": _when(survey.finished_at),
        "attempts_made": survey.attempts_made, "fixed": survey.fixed, "attitude": survey.attitude,
        "quality": survey.quality, "wants_comment": survey.wants_comment, "comment_text": survey.comment_text,
        "comment_recording": bool(survey.comment_recording), "stopped_at": survey.stopped_at,
        "result": survey.result, "asked_by": survey.asked_by, "cause": survey.cause, "cause_note": survey.cause_note,
        "cause_by": survey.cause_by, "cause_at": _when(survey.cause_at), "explained_how": survey.explained_how,
        "explained_at": _when(survey.explained_at), "explanation_accepted": survey.explanation_accepted,
        "staff_member": survey.staff_member, "task_id": survey.task_id, "second_ticket_id": survey.second_ticket_id,
        "number": survey.number, "link_expires": _when(survey.link_expires), "link_used_at": _when(survey.link_used_at),
    }


# ------------------------------------------------------------------ the lists


SECTIONS = (("due", "Surveys due", "Nothing due."), ("in_progress", "Surveys in progress", "None in progress."),
            ("failed", "Surveys failed or unreachable", "None failed."), ("results", "Survey results", "No results yet."))


def _surveys_context(s: Session) -> dict[str, Any]:
    sections = [{"key": key, "title": title, "empty": empty,
                 "rows": [_row(s, x) for x in surveys.list_surveys(s, key)]} for key, title, empty in SECTIONS]
    return {"sections": sections, "counts": surveys.counts(s), "queue_size": len(surveys.dissatisfied_queue(s))}


@require_role(*SURVEY_POSTS)
async def surveys_page(request: web.Request, who: Identity) -> web.StreamResponse:
    ctx = await request.app[DB_KEY].run(_surveys_context)
    today = datetime.now(ZoneInfo(settings_of(request).timezone)).date()
    return pages.render(request, "surveys.html", who=who, csv_from=(today - timedelta(days=30)).isoformat(),
                        csv_to=today.isoformat(), **ctx)


def _queue_context(s: Session) -> dict[str, Any]:
    return {"queue": [_row(s, x) for x in surveys.dissatisfied_queue(s)],
            "handled": [_row(s, x) for x in surveys.recently_handled(s)]}


@require_role(*SURVEY_POSTS)
async def dissatisfied_page(request: web.Request, who: Identity) -> web.StreamResponse:
    ctx = await request.app[DB_KEY].run(_queue_context)
    return pages.render(request, "dissatisfied.html", who=who, **ctx)


def _day(raw: str, what: str) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ServiceError(f"{what}: write the date as YYYY-MM-DD", code="invalid_date") from None


@require_role(*SURVEY_POSTS)
async def surveys_csv(request: web.Request, who: Identity) -> web.StreamResponse:
    tz = settings_of(request).timezone
    try:
        since, until = _day(request.query.get("from", ""), "from"), _day(request.query.get("to", ""), "to")
        if since and until and until < since:
            raise ServiceError("“to” is before “from”", code="invalid_date")
        if since and until and (until - since).days > CSV_DAYS_MAX:
            raise ServiceError(f"at most {CSV_DAYS_MAX} days at a time", code="invalid_date")
    except ServiceError as exc:
        return pages.error_page(request, 400, "Bad dates", exc.reason, who=who)
    flt = surveys.CsvFilter(since=surveys.utc_day(since, tz) if since else None,
                            until=surveys.utc_day(until + timedelta(days=1), tz) if until else None)
    rows = await request.app[DB_KEY].run(surveys.csv_rows, flt, tz)
    name = f"surveys-{since or 'start'}-{until or 'now'}.csv"
    log.info("desk.surveys_csv", username=who.username, rows=len(rows))
    return web.Response(body=surveys.to_csv(surveys.CSV_COLUMNS, rows), headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


# ------------------------------------------------------------------ one survey


def _survey_context(s: Session, survey_id: int, who: Identity) -> dict[str, Any] | None:
    survey = s.get(Survey, survey_id)
    if survey is None:
        return None
    ticket_ctx = work._ticket_context(s, survey.ticket_id, work.actor_of(who)) or {}
    pref = surveys.preference(s, survey.number) if survey.number else None
    return {
        "sv": _row(s, survey),
        "attempts": [{"n": a.n, "channel": a.channel, "asked_by": a.asked_by, "started_at": _when(a.started_at),
                      "ended_at": _when(a.ended_at), "outcome": a.outcome, "hangup_cause": a.hangup_cause,
                      "outbound_call_id": a.outbound_call_id} for a in surveys.attempts_of(s, survey_id)],
        "ticket": ticket_ctx.get("tk"), "history": ticket_ctx.get("history", []), "notes": ticket_ctx.get("notes", []),
        "tasks": ticket_ctx.get("tasks", []),
        "staff": surveys.staff_names(s),
        "pref": None if pref is None else {"do_not_call": pref.do_not_call,
                                           "quiet_days": surveys.parse_quiet_days(pref.quiet_days),
                                           "updated_by": pref.updated_by, "updated_at": _when(pref.updated_at)},
        "may_link": survey.state in surveys.LINK_STATES,
    }


async def _survey_page(request: web.Request, who: Identity, survey_id: int, *, status: int = 200,
                       error: str | None = None, link: dict[str, Any] | None = None,
                       typed: dict[str, str] | None = None) -> web.Response:
    ctx = await request.app[DB_KEY].run(_survey_context, survey_id, who)
    if ctx is None:
        return pages.error_page(request, 404, "No such survey", "There is no survey {id}.", who=who,
                                fields={"id": survey_id})
    return pages.render(request, "survey.html", status=status, who=who, error=error, link=link, typed=typed or {},
                        weekdays=WEEKDAYS, explained_how=surveys.EXPLAINED_HOW, works=who.role in SURVEY_POSTS,
                        may_listen=who.role in LISTENERS, **ctx)


@require_role(*READERS)
async def survey_page(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _survey_page(request, who, int(request.match_info["id"]))


def _local_datetime(raw: str, tz: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return utc(value if value.tzinfo else value.replace(tzinfo=ZoneInfo(tz)))


@require_role(*SURVEY_POSTS)
async def record_cause(request: web.Request, who: Identity) -> web.StreamResponse:
    survey_id = int(request.match_info["id"])
    form = await request.post()
    fields = {k: str(form.get(k) or "") for k in ("cause", "note", "explained_how", "explained_at", "accepted",
                                                  "staff_member", "staff_other")}
    typed = {k: v[: surveys.MAX_TEXT] for k, v in fields.items()}
    explained_at = None
    if fields["cause"] == "not_ours":
        explained_at = _local_datetime(fields["explained_at"], settings_of(request).timezone)
        if explained_at is None:
            return await _survey_page(request, who, survey_id, status=400, typed=typed,
                                      error="Say when it was explained (date and time).")
    finding = surveys.CauseFinding(
        cause=fields["cause"], note=fields["note"], explained_how=fields["explained_how"] or None,
        explained_at=explained_at, accepted={"yes": True, "no": False}.get(fields["accepted"]),
        staff_member=fields["staff_other"].strip() or fields["staff_member"] or None)
    try:
        await request.app[DB_KEY].run(surveys.record_cause, survey_id, finding, work.actor_of(who))
    except ServiceError as exc:
        status, _hint = work._refusal(exc)
        return await _survey_page(request, who, survey_id, status=status, error=exc.reason, typed=typed)
    log.info("desk.survey_cause", username=who.username, survey_id=survey_id, cause=fields["cause"])
    return pages.redirect(f"/desk/surveys/{survey_id}")


@require_role(*SURVEY_POSTS)
async def make_link(request: web.Request, who: Identity) -> web.StreamResponse:
    """A new signed link (the previous one stops working); shown once, never stored."""
    survey_id = int(request.match_info["id"])
    settings, db = settings_of(request), request.app[DB_KEY]
    nonce, expires = links.new_nonce(), utcnow() + timedelta(days=settings.survey_link_days)
    try:
        await db.run(surveys.issue_link, survey_id, nonce, expires)
    except ServiceError as exc:
        status, _hint = work._refusal(exc)
        return await _survey_page(request, who, survey_id, status=status, error=exc.reason)
    token = links.make_token(await links.link_key(settings, db), survey_id, nonce, expires)
    log.info("desk.survey_link", username=who.username, survey_id=survey_id)
    return await _survey_page(request, who, survey_id,
                              link={"url": f"{settings.bot_url}/survey/{token}", "expires": expires})


@require_role(*SURVEY_POSTS)
async def set_preference(request: web.Request, who: Identity) -> web.StreamResponse:
    survey_id = int(request.match_info["id"])
    form = await request.post()
    days = [int(str(d)) for d in form.getall("quiet_day", []) if str(d).isdigit()]
    dnc = form.get("do_not_call") == "yes"

    def run(s: Session) -> None:
        survey = surveys.get(s, survey_id)
        if survey.number is None:
            raise ServiceError("this survey has no number to call", code="no_number")
        surveys.set_preference(s, survey.number, by=who.username, do_not_call=dnc, quiet_days=days,
                               reason=f"set on the desk (survey {survey_id})")

    try:
        await request.app[DB_KEY].run(run)
    except ServiceError as exc:
        status, _hint = work._refusal(exc)
        return await _survey_page(request, who, survey_id, status=status, error=exc.reason)
    return pages.redirect(f"/desk/surveys/{survey_id}")


@require_role(*LISTENERS)
async def comment_audio(request: web.Request, who: Identity) -> web.StreamResponse:
    survey_id = int(request.match_info["id"])
    survey = await request.app[DB_KEY].run(lambda s: s.get(Survey, survey_id))
    path = settings_of(request).recordings_dir / survey.comment_recording if survey and survey.comment_recording \
        else None
    if path is None or not path.is_file():
        return pages.error_page(request, 404, "No recording", "This survey has no recorded comment.", who=who)
    log.info("desk.survey_comment_served", survey_id=survey_id, by=who.username)
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "no-store",
                                           "X-Content-Type-Options": "nosniff"})


@require_role(*TEAM_LEADERS)
async def team_task_done(request: web.Request, who: Identity) -> web.StreamResponse:
    task_id = int(request.match_info["id"])
    note = str((await request.post()).get("note") or "")[: surveys.MAX_TEXT]
    try:
        await request.app[DB_KEY].run(surveys.finish_team_task, task_id, work.actor_of(who), note)
    except ServiceError as exc:
        status, _hint = work._refusal(exc)
        return pages.error_page(request, status, "Not done", exc.reason, who=who)
    return pages.redirect("/desk/review")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/desk/surveyor/surveys", surveys_page)
    app.router.add_get("/desk/surveyor/surveys.csv", surveys_csv)
    app.router.add_get("/desk/surveyor/dissatisfied", dissatisfied_page)
    app.router.add_get(f"/desk/surveys/{SURVEY_ID}", survey_page)
    app.router.add_post(f"/desk/surveys/{SURVEY_ID}/cause", record_cause)
    app.router.add_post(f"/desk/surveys/{SURVEY_ID}/link", make_link)
    app.router.add_post(f"/desk/surveys/{SURVEY_ID}/preference", set_preference)
    app.router.add_get(f"/desk/surveys/{SURVEY_ID}/comment.wav", comment_audio)
    app.router.add_post(r"/desk/surveys/tasks/{id:\d{1,9}}/done", team_task_done)
