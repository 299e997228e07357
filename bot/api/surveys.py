"""The survey dialogue's API (U3): the thin Rasa actions (actions/survey.py) record the
survey here as it is asked, under the conversation the survey was opened for (the call's
UUID, or the web chat that claimed it). The internal token only: these are writes.

    POST /api/surveys/{id}/start     {conversation_id}                  → the survey (language, line, date)
    POST /api/surveys/{id}/answers   {conversation_id, question, value | text | recording_id}
    POST /api/surveys/{id}/finish    {conversation_id, stopped_at?, reason?}
    POST /api/surveys/{id}/opt-out   {conversation_id}                  "don't call me again"
    GET  /api/surveys/{id}           a reader of personal data: the survey as stored
    GET  /api/surveys?state=&result=&since=&limit=   the same, newest first (since: ISO date or time, UTC)

Refusals: 404 no such survey, 409 the survey is not open in that conversation (it ended,
or another conversation asks it), 400 an answer that is not one (a rating outside 1–5).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from bot.api.auth import require_personal_reader, require_service
from bot.api.errors import ApiError, parse_body
from bot.api.records import recording_file
from bot.settings import SETTINGS_KEY
from bot.store import surveys
from bot.store.db import DB_KEY
from bot.store.models import Ticket, utc
from bot.store.survey_records import Survey, SurveyState

RESULTS = ("satisfied", "dissatisfied", "not_fixed")

SURVEY_ID = r"{survey_id:\d{1,9}}"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str = Field(min_length=1, max_length=128)


class AnswerIn(_In):
    question: Literal["fixed", "attitude", "quality", "wants_comment", "comment"]
    value: bool | int | None = None
    text: str | None = Field(default=None, max_length=surveys.MAX_TEXT)
    recording_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,100}$")


class FinishIn(_In):
    stopped_at: Literal["fixed", "attitude", "quality", "comment"] | None = None
    reason: str | None = Field(default=None, max_length=200)


def _survey_id(request: web.Request) -> int:
    return int(request.match_info["survey_id"])


def _rules(request: web.Request) -> surveys.SurveyRules:
    return surveys.SurveyRules.from_settings(request.app[SETTINGS_KEY])


async def _answer(request: web.Request, fn: Callable[..., Survey], *args: Any, **kw: Any) -> web.Response:
    """Run ``fn(session, *args)`` and answer with the survey it returns, as stored."""

    def run(s: Session) -> dict[str, Any]:
        return surveys.view(s, fn(s, *args, **kw))

    return web.json_response(await request.app[DB_KEY].run(run))


async def post_start(request: web.Request) -> web.Response:
    """The survey as the dialogue needs it, with the report's date in the centre's zone."""
    require_service(request)
    body = await parse_body(request, _In)
    zone = ZoneInfo(request.app[SETTINGS_KEY].timezone)

    def run(s: Session) -> dict[str, Any]:
        survey = surveys.start_conversation(s, _survey_id(request), body.conversation_id)
        ticket = s.get(Ticket, survey.ticket_id)
        reported = utc(ticket.creation_date).astimezone(zone).date().isoformat() if ticket is not None else ""
        return {**surveys.view(s, survey), "reported_on": reported}

    return web.json_response(await request.app[DB_KEY].run(run))


async def post_answer(request: web.Request) -> web.Response:
    require_service(request)
    body = await parse_body(request, AnswerIn)
    answer = surveys.Answer(question=body.question, value=body.value, text=body.text,
                            recording_file=recording_file(request, body.recording_id))
    return await _answer(request, surveys.record_answer, _survey_id(request), body.conversation_id, answer,
                         _rules(request))


async def post_finish(request: web.Request) -> web.Response:
    require_service(request)
    body = await parse_body(request, FinishIn)
    return await _answer(request, surveys.finish, _survey_id(request), body.conversation_id, _rules(request),
                         stopped_at=body.stopped_at, reason=body.reason)


async def post_opt_out(request: web.Request) -> web.Response:
    require_service(request)
    body = await parse_body(request, _In)
    return await _answer(request, surveys.opt_out, _survey_id(request), body.conversation_id, _rules(request))


async def get_survey(request: web.Request) -> web.Response:
    await require_personal_reader(request)
    return await _answer(request, surveys.get, _survey_id(request))


async def list_surveys(request: web.Request) -> web.Response:
    await require_personal_reader(request)
    q = request.query
    unknown = set(q) - {"state", "result", "since", "limit"}
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown query parameter(s): {', '.join(sorted(unknown))}")
    state, result = q.get("state") or None, q.get("result") or None
    if state is not None and state not in {st.value for st in SurveyState}:
        raise ApiError(400, "invalid_parameter", f"state is one of {', '.join(st.value for st in SurveyState)}")
    if result is not None and result not in RESULTS:
        raise ApiError(400, "invalid_parameter", f"result is one of {', '.join(RESULTS)}")
    since = None
    if q.get("since"):
        try:
            since = utc(datetime.fromisoformat(q["since"]))
        except ValueError:
            raise ApiError(400, "invalid_parameter", "since is an ISO date or time (2026-12-01)") from None
    raw_limit = q.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 500:
        raise ApiError(400, "invalid_parameter", "limit is 1 to 500")

    def run(s: Session) -> list[dict[str, Any]]:
        return [surveys.view(s, x) for x in surveys.find(s, state=state, result=result, since=since,
                                                         limit=int(raw_limit))]

    return web.json_response(await request.app[DB_KEY].run(run))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/surveys", list_surveys)
    app.router.add_post(f"/api/surveys/{SURVEY_ID}/start", post_start)
    app.router.add_post(f"/api/surveys/{SURVEY_ID}/answers", post_answer)
    app.router.add_post(f"/api/surveys/{SURVEY_ID}/finish", post_finish)
    app.router.add_post(f"/api/surveys/{SURVEY_ID}/opt-out", post_opt_out)
    app.router.add_get(f"/api/surveys/{SURVEY_ID}", get_survey)
