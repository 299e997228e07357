"""What the dialogue's actions record: reports (A6, A10), messages for the repairman
(A11), conversation outcomes, handoffs to a human (A3, A6, A7, J1), and whether the
operator seats are open (A3 note 1).

Every write is idempotent where an action may retry it: the same conversation never
makes two tickets for one line, two repeat reports on one ticket, or two copies of one
message.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.api.auth import require_reader, require_service
from bot.api.errors import ApiError, canonical_number, parse_body, query_params
from bot.settings import SETTINGS_KEY, Settings
from bot.store import service
from bot.store.db import DB_KEY
from bot.store.models import HandoffState, Outcome
from bot.world.schema import LineTestResultCode

MAX_TEXT = 2000
_CHANNEL = r"^[a-z][a-z0-9_-]{0,39}$"
_STEP = r"^(A(1[01]?|[2-9])|J4)$"  # A1 … A11; J4: a progress question answered by the bot


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BilingualIn(_In):
    zh: str = Field(max_length=MAX_TEXT)
    en: str = Field(max_length=MAX_TEXT)


class LineTestIn(_In):
    test_id: str = Field(min_length=1, max_length=64)
    result: LineTestResultCode
    summary: BilingualIn | None = None  # defaults to bot.linetest.results
    measurements: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def data(self) -> service.LineTestData:
        return service.LineTestData(
            test_id=self.test_id, result=self.result.value,
            summary=self.summary.model_dump() if self.summary else None,
            measurements=self.measurements, started_at=self.started_at, finished_at=self.finished_at,
        )


SymptomCategory = Literal["no_dial_tone", "noise", "cannot_call_out", "cannot_receive", "broadband_down", "other"]


class ReportIn(_In):
    conversation_id: str = Field(min_length=1, max_length=128)
    channel: str = Field(pattern=_CHANNEL)
    language: Literal["zh", "en"]
    kind: Literal["new", "repeat"]
    fault_number: str = Field(min_length=1, max_length=40)
    contact_number: str | None = Field(default=None, max_length=40)
    symptom_category: SymptomCategory | None = None  # A8 note 3
    symptom_text: str | None = Field(default=None, max_length=MAX_TEXT)
    line_test: LineTestIn | None = None

    @model_validator(mode="after")
    def _new_needs_details(self) -> ReportIn:
        # A9–A10: a new report is recorded only with a contact number and a symptom.
        if self.kind == "new":
            missing = [f for f in ("contact_number", "symptom_category") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"a new report needs {' and '.join(missing)}")
        return self


class VoiceMessageIn(_In):
    """A11: typed text (chat) or the id of a recording the phone channel made."""

    conversation_id: str = Field(min_length=1, max_length=128)
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    recording_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,100}$")

    @model_validator(mode="after")
    def _one_of(self) -> VoiceMessageIn:
        if (self.text is None) == (self.recording_id is None):
            raise ValueError("give either text or recording_id")
        return self


class OutcomeIn(_In):
    conversation_id: str = Field(min_length=1, max_length=128)
    channel: str = Field(pattern=_CHANNEL)
    language: Literal["zh", "en"]
    outcome: Outcome
    step: str = Field(pattern=_STEP)
    reason: str | None = Field(default=None, max_length=MAX_TEXT)
    ticket_id: str | None = Field(default=None, min_length=1, max_length=40)
    fault_number: str | None = Field(default=None, max_length=40)


class TranscriptLineIn(_In):
    role: Literal["user", "bot"]
    text: str = Field(max_length=MAX_TEXT)
    at: datetime | None = None


class HandoffIn(_In):
    conversation_id: str = Field(min_length=1, max_length=128)
    channel: str = Field(pattern=_CHANNEL)
    language: Literal["zh", "en"]
    reason: str = Field(min_length=1, max_length=MAX_TEXT)
    fault_number: str | None = Field(default=None, max_length=40)
    ticket_id: str | None = Field(default=None, min_length=1, max_length=40)
    line_test: dict[str, Any] | None = None
    transcript: list[TranscriptLineIn] = Field(default_factory=list, max_length=500)
    queue: Literal["junior", "senior", "manager"] | None = None


# ------------------------------------------------------------------- handlers


async def post_report(request: web.Request) -> web.Response:
    require_service(request)
    body = await parse_body(request, ReportIn)
    settings = request.app[SETTINGS_KEY]
    fault_number, _ = canonical_number(body.fault_number, settings.local_area_code, field="fault_number")
    contact = None
    if body.contact_number is not None:
        contact, _ = canonical_number(body.contact_number, settings.local_area_code, field="contact_number")
    result = await request.app[DB_KEY].run(service.create_report, service.ReportData(
        conversation_id=body.conversation_id, channel=body.channel, language=body.language, kind=body.kind,
        fault_number=fault_number, contact_number=contact, symptom_category=body.symptom_category,
        symptom_text=body.symptom_text, line_test=body.line_test.data() if body.line_test else None,
    ))
    return web.json_response(
        {"ticket_id": result.ticket_id, "created": result.created, "report_count": result.report_count},
        status=201 if result.created else 200,
    )


def recording_file(request: web.Request, recording_id: str | None) -> str | None:
    """The file of a recording the phone channel made (A11, U3's comment), or 422."""
    if recording_id is None:
        return None
    path = request.app[SETTINGS_KEY].recordings_dir / f"{recording_id}.wav"
    if not path.is_file():
        raise ApiError(422, "recording_not_found", f"no recording {recording_id!r}")
    return path.name


async def post_voice_message(request: web.Request) -> web.Response:
    require_service(request)
    body = await parse_body(request, VoiceMessageIn)
    attachment_id, created = await request.app[DB_KEY].run(
        service.add_voice_message, request.match_info["ticket_id"], body.conversation_id, body.text,
        recording_file=recording_file(request, body.recording_id),
    )
    return web.json_response({"attachment_id": attachment_id, "created": created}, status=201 if created else 200)


async def post_outcome(request: web.Request) -> web.Response:
    require_service(request)
    body = await parse_body(request, OutcomeIn)
    fault_number = None
    if body.fault_number is not None:
        fault_number, _ = canonical_number(body.fault_number, request.app[SETTINGS_KEY].local_area_code,
                                           field="fault_number")
    outcome_id = await request.app[DB_KEY].run(service.record_outcome, service.OutcomeData(
        conversation_id=body.conversation_id, channel=body.channel, language=body.language,
        outcome=body.outcome.value, step=body.step, reason=body.reason, ticket_id=body.ticket_id,
        fault_number=fault_number,
    ))
    return web.json_response({"outcome_id": outcome_id}, status=201)


class OutcomesQuery(_In):
    conversation_id: str | None = Field(default=None, min_length=1, max_length=128)


async def get_outcomes(request: web.Request) -> web.Response:
    """Oldest first; the last entry is the conversation's latest outcome."""
    await require_reader(request)
    query = query_params(request, OutcomesQuery)
    return web.json_response(await request.app[DB_KEY].run(service.list_outcomes, query.conversation_id))


async def post_handoff(request: web.Request) -> web.Response:
    require_service(request)
    body = await parse_body(request, HandoffIn)
    fault_number = None
    if body.fault_number is not None:
        fault_number, _ = canonical_number(body.fault_number, request.app[SETTINGS_KEY].local_area_code,
                                           field="fault_number")
    result = await request.app[DB_KEY].run(service.queue_handoff, service.HandoffData(
        conversation_id=body.conversation_id, channel=body.channel, language=body.language, reason=body.reason,
        fault_number=fault_number, ticket_id=body.ticket_id, line_test=body.line_test,
        transcript=[t.model_dump(mode="json", exclude_none=True) for t in body.transcript], queue=body.queue,
    ))
    return web.json_response(
        {"handoff_id": result.handoff_id, "queue": result.queue, "position": result.position,
         "created": result.created},
        status=201 if result.created else 200,
    )


class HandoffsQuery(_In):
    state: HandoffState | None = None
    queue: Literal["junior", "senior", "manager"] | None = None


async def get_handoffs(request: web.Request) -> web.Response:
    await require_reader(request)
    query = query_params(request, HandoffsQuery)
    state = query.state.value if query.state is not None else None
    return web.json_response(await request.app[DB_KEY].run(service.list_handoffs, state, query.queue))


# ---------------------------------------------------------------- opening hours


def _parse_hhmm(text: str) -> time | None:
    """'08:30' → 08:30; '24:00' → None (end of day)."""
    hours, _, minutes = text.strip().partition(":")
    h, m = int(hours), int(minutes)
    if (h, m) == (24, 0):
        return None
    return time(h, m)


def operators_open(settings: Settings, now: datetime | None = None) -> bool:
    """A3 note 1: transfer to a human only when the centre is open.

    ``centre_open_hours`` is ``HH:MM-HH:MM`` in ``settings.timezone`` (several ranges may be
    comma-separated; a range may pass midnight, e.g. 22:00-06:00). ``00:00-24:00`` is always.
    Raises ValueError on a malformed setting.
    """
    local = (now or datetime.now(ZoneInfo(settings.timezone))).astimezone(ZoneInfo(settings.timezone))
    clock = local.time().replace(tzinfo=None)
    for part in settings.centre_open_hours.split(","):
        start_text, sep, end_text = part.partition("-")
        if not sep:
            raise ValueError(f"centre_open_hours: {part!r} is not HH:MM-HH:MM")
        start = _parse_hhmm(start_text) or time(0, 0)
        end = _parse_hhmm(end_text)
        if end is None:  # until midnight
            if clock >= start:
                return True
        elif start <= end:
            if start <= clock < end:
                return True
        elif clock >= start or clock < end:  # passes midnight
            return True
    return False


async def service_status(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    try:
        is_open = operators_open(settings)
    except ValueError as e:
        raise ApiError(500, "misconfigured", f"the centre's opening hours setting is not valid: {e}") from e
    return web.json_response({"operators_open": is_open, "centre_open_hours": settings.centre_open_hours,
                              "timezone": settings.timezone})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/reports", post_report)
    app.router.add_post("/api/tickets/{ticket_id:[A-Za-z0-9._-]{1,40}}/voice-messages", post_voice_message)
    app.router.add_post("/api/outcomes", post_outcome)
    app.router.add_get("/api/outcomes", get_outcomes)
    app.router.add_post("/api/handoffs", post_handoff)
    app.router.add_get("/api/handoffs", get_handoffs)
    app.router.add_get("/api/service/status", service_status)
