"""The bot's aiohttp application: chat API, web chat, ticket API, inventory, health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from bot import desk
from bot.api import events, inventory, records, tickets
from bot.api import knowledge as api_knowledge
from bot.api import outbound_calls as api_outbound_calls
from bot.api import quality as api_quality
from bot.api import recordings as api_recordings
from bot.api import stats as api_stats
from bot.api import surveys as api_surveys
from bot.api import workflow as api_workflow
from bot.api.errors import error_middleware
from bot.boundary import MAX_BODY_BYTES, install_request_ids, request_id_middleware
from bot.chat import api as chat_api
from bot.chat.dialogue import RasaDialogue
from bot.chat.prompts import PromptCatalogue
from bot.chat.service import AbandonRecorder, ChatService, ConversationState
from bot.chat.turns import DialogueCapacity, TurnLocks, turn_locks_for
from bot.jobs import JOBS_KEY, JobContext, Jobs
from bot.metrics import CHAT_TURN_SECONDS, CHAT_TURNS, CONVERSATIONS_ABANDONED, metrics_handler
from bot.periodic import every
from bot.quality import scheduled as quality_jobs
from bot.settings import SETTINGS_KEY, Settings
from bot.sla import watch as deadline_watch
from bot.stats import scheduled as stats_jobs
from bot.store import archive, chat_delivery, surveys
from bot.store import recordings as call_recordings
from bot.store import service as store
from bot.store.db import DB_KEY, Database
from bot.survey.caller import ATTEMPT_JOB, SWEEP_JOB, SurveyCaller

if TYPE_CHECKING:
    from voice.control import FreeswitchControl  # voice/ loads only when the phone is on

log = structlog.get_logger()
STATIC_DIR = Path(__file__).parent / "web" / "static"
HTTP_SESSION_KEY = web.AppKey("http_session", aiohttp.ClientSession)
SWEEP_INTERVAL_S = 30.0
VOICE_CHAT_KEY = web.AppKey("voice_chat", ChatService)
VOICE_STATUS_KEY = web.AppKey("voice_status", dict)
FREESWITCH_CONTROL_KEY: web.AppKey[FreeswitchControl] = web.AppKey("freeswitch_control")
SURVEY_CALLER_KEY = web.AppKey("survey_caller", SurveyCaller)


def create_app(settings: Settings, db: Database | None = None) -> web.Application:
    app = web.Application(middlewares=[request_id_middleware, error_middleware, _timing_middleware],
                          client_max_size=MAX_BODY_BYTES)
    install_request_ids(app)
    app[SETTINGS_KEY] = settings
    app[DB_KEY] = db or Database.from_settings(settings)
    app[JOBS_KEY] = Jobs(app, app[DB_KEY], settings)
    # U3: survey calls and their retries are jobs; the phone (_voice) gives it the calls.
    app[SURVEY_CALLER_KEY] = SurveyCaller(app[DB_KEY], surveys.SurveyRules.from_settings(settings), None,
                                          app[JOBS_KEY])
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_chat)
    register_jobs(app)
    app.cleanup_ctx.append(_warm_segmenter)
    app[VOICE_STATUS_KEY] = {"enabled": False}
    if settings.voice_enabled:
        app.cleanup_ctx.append(_voice)
    app.cleanup_ctx.append(_jobs)  # last: jobs start once the services they use are up
    tickets.setup_routes(app)
    events.setup_routes(app)
    inventory.setup_routes(app)
    records.setup_routes(app)
    api_outbound_calls.setup_routes(app)
    api_recordings.setup_routes(app)
    api_workflow.setup_routes(app)
    api_surveys.setup_routes(app)
    api_knowledge.setup_routes(app)  # D1-D2: the archive, the knowledge base
    api_stats.setup_routes(app)
    api_quality.setup_routes(app)  # Q1-Q8: samples, scores, violations, hand-off flags
    chat_api.setup_routes(app)
    desk.setup_routes(app)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/", _index)
    app.router.add_get("/survey/{token}", _index)  # U3: a signed survey link opens the chat page
    app.router.add_static("/static/", STATIC_DIR)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    db = app[DB_KEY]
    await asyncio.to_thread(db.upgrade)
    yield
    db.dispose()


async def _chat(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    session = aiohttp.ClientSession()
    app[HTTP_SESSION_KEY] = session
    db = app[DB_KEY]

    # One turn at a time per conversation, for every channel (and every bot process on PostgreSQL).
    locks = turn_locks_for(settings.database_url, settings.chat_turn_wait_s)
    service = build_chat_service(settings, session, "webchat", db, turn_locks=locks)
    app[chat_api.CHAT_SERVICE_KEY] = service
    app[VOICE_CHAT_KEY] = build_chat_service(settings, session, "voice", db, turn_locks=locks)

    # Per process, not a job: each process ends its own idle conversations, which live in
    # its memory (ChatService); the leader cannot see another process's conversations.
    async with every(SWEEP_INTERVAL_S, lambda: service.end_idle(settings.chat_idle_timeout_s), "chat.sweep_failed"):
        yield
    await locks.close()
    await session.close()


def register_jobs(app: web.Application) -> None:
    """The bot's periodic work that is the cluster's, not one process's (bot/jobs/)."""
    settings, jobs = app[SETTINGS_KEY], app[JOBS_KEY]
    jobs.every("call_recording_retention", settings.call_recording_sweep_s, _recording_retention)
    jobs.every(deadline_watch.JOB_KIND, settings.sla_sweep_s, deadline_watch.sweep)  # U1-U2
    jobs.kind(deadline_watch.NOTIFY_KIND, events.notify, max_attempts=8)  # TMF621 events to hubs
    jobs.cron("nightly_archive", archive.nightly_archive, hour=settings.archive_hour, minute=0)  # D1
    stats_jobs.register(jobs, settings)  # T5: the nightly recount and the reports due (bot/stats/scheduled.py)
    quality_jobs.register(jobs, settings)  # Q1/Q6: the daily sample and hand-off flags (bot/quality/scheduled.py)
    # U3: "place attempt N of survey S" (due jobs, retries scheduled by the caller), and a
    # sweep: web-chat surveys nobody came back for, and any phone attempt that is due.
    jobs.kind(ATTEMPT_JOB, _survey_call, max_attempts=2)
    jobs.every(SWEEP_JOB, settings.survey_sweep_s, _survey_sweep)


async def _survey_call(ctx: JobContext) -> None:
    await ctx.app[SURVEY_CALLER_KEY].place_attempt(int(ctx.payload["survey_id"]), int(ctx.payload["attempt"]))


async def _survey_sweep(ctx: JobContext) -> None:
    await ctx.app[SURVEY_CALLER_KEY].sweep()


async def _recording_retention(ctx: JobContext) -> None:
    """Q2: operators' call recordings are kept HOTLINE_CALL_RECORDING_RETENTION_DAYS; the
    sweep deletes older files (off the event loop, with the store's work) and logs each.
    Idempotent: a deleted recording is marked, the next sweep skips it."""
    await ctx.db.run(call_recordings.sweep_expired, ctx.settings.call_recordings_dir,
                     ctx.settings.call_recording_retention_days)


async def _jobs(app: web.Application) -> AsyncIterator[None]:
    jobs = app[JOBS_KEY]
    if app[SETTINGS_KEY].jobs_enabled:
        await jobs.start()
    yield
    await jobs.stop()


async def _warm_segmenter(app: web.Application) -> AsyncIterator[None]:
    """jieba loads its dictionary in a second or more: in the background at start-up, so
    the first knowledge-base search or junior's page (D2) does not wait for it."""
    from bot.search.chinese import default_segmenter

    task = asyncio.create_task(asyncio.to_thread(default_segmenter().load))
    yield
    if not task.done():
        await asyncio.wait({task}, timeout=30)


def build_chat_service(
    settings: Settings, session: aiohttp.ClientSession, channel: str, db: Database, *, timeout_s: float | None = None,
    turn_locks: TurnLocks | None = None,
) -> ChatService:
    """The dialogue as one channel (webchat, voice) sees it; abandonment goes to ``db``."""
    return ChatService(
        RasaDialogue(session, settings.rasa_url, timeout_s or settings.rasa_timeout_s),
        PromptCatalogue.load(settings.nlu_dir / "prompts.yml"),
        channel=channel,
        action_health_url=f"http://127.0.0.1:{settings.action_port}/health",
        session=session,
        record_abandoned=abandon_recorder(db),
        turn_locks=turn_locks or TurnLocks(settings.chat_turn_wait_s),
        # A chat resumes after a restart of the bot, Rasa or the actions; a call ends with the bot.
        deliveries=StoredDeliveries(db) if channel == "webchat" else None,
        capacity=DialogueCapacity(settings.dialogue_max_turns, settings.chat_turn_wait_s)
        if channel == "webchat" else None,
    )


class StoredDeliveries:
    """The chat's :class:`bot.chat.service.DeliveryLog` in the store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, conversation_id: str) -> chat_delivery.Delivered | None:
        return await self._db.run(chat_delivery.get, conversation_id)

    async def record(self, conversation_id: str, channel: str, *, message_id: str | None, language: str | None,
                     last_step: str | None, announced: list[str]) -> None:
        await self._db.run(chat_delivery.record, conversation_id, channel, message_id=message_id,
                           language=language, last_step=last_step, announced=announced)

    async def new_tickets(self, conversation_id: str) -> list[str]:
        return await self._db.run(chat_delivery.new_tickets, conversation_id)


def abandon_recorder(db: Database) -> AbandonRecorder:
    """Stores "abandoned at step X" unless the conversation reached an outcome after
    its last input (web chat closed, caller hung up)."""

    async def record_abandoned(conversation_id: str, state: ConversationState, channel: str, reason: str) -> None:
        if await db.run(surveys.conversation_ended, conversation_id, reason):
            return  # U3: a survey's conversation; the survey keeps what was said and where it stopped
        latest = await db.run(store.latest_outcome, conversation_id)
        if latest and datetime.fromisoformat(latest["at"]).timestamp() >= state.last_input_at - 1:
            return  # the conversation reached an outcome after the last input: not abandoned
        step = state.last_step or "A1"
        if await db.run(store.conversation_reported, conversation_id):
            # Left after A10 (e.g. during the optional A11 message): the report stands.
            await db.run(store.record_outcome,
                         store.OutcomeData(conversation_id, channel, state.language, "accepted", step, reason))
            return
        await db.run(
            store.record_outcome,
            store.OutcomeData(conversation_id, channel, state.language, "abandoned", step, reason),
        )
        CONVERSATIONS_ABANDONED.labels(step).inc()

    return record_abandoned


async def _voice(app: web.Application) -> AsyncIterator[None]:
    """The phone channel (voice/): FreeSWITCH's ESL outbound connections, one call
    session each, on the same dialogue and stores as web chat."""
    settings = app[SETTINGS_KEY]
    from voice.control import FreeswitchControl
    from voice.outbound import OutboundCalls, OutboundSettings
    from voice.service import VoiceService, load_speech_engines

    control = FreeswitchControl(settings)
    # Calls the bot places go out over the control connection (so: only with a password).
    outbound = (OutboundCalls(control, app[DB_KEY], OutboundSettings.from_settings(settings))
                if control.configured else None)
    try:
        engines = await load_speech_engines(settings)
        voice = VoiceService(settings, app[VOICE_CHAT_KEY], engines, db=app[DB_KEY], outbound=outbound)
        await voice.start()
    except Exception as exc:  # noqa: BLE001 - web chat must stay up when the phone side cannot start
        log.error("voice.unavailable", error=str(exc))
        app[VOICE_STATUS_KEY] = {"enabled": True, "running": False, "error": str(exc)}
        yield
        return
    app[VOICE_STATUS_KEY] = {
        "enabled": True, "running": True, "esl_port": voice.server.port,
        "speech_input": sorted(engines.asr_models), "keypad_only": not engines.asr_models,
    }
    control.start()
    app[FREESWITCH_CONTROL_KEY] = control
    if outbound is not None:
        await outbound.start()
        app[api_outbound_calls.OUTBOUND_CALLS_KEY] = outbound
        # U3 by phone: survey calls on the outbound mechanism.
        await app[SURVEY_CALLER_KEY].start(outbound)
    yield
    if outbound is not None:
        await outbound.stop()
    await control.close()
    await voice.stop()


@web.middleware
async def _timing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/chat/"):
        response: web.StreamResponse = await handler(request)
        return response
    started = time.perf_counter()
    response = await handler(request)
    CHAT_TURN_SECONDS.observe(time.perf_counter() - started)
    CHAT_TURNS.labels("webchat", str(response.status)).inc()
    return response


async def _healthz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    service = request.app[chat_api.CHAT_SERVICE_KEY]
    dialogue_ok = await service.dialogue_ready()
    body = {
        "status": "ok" if dialogue_ok else "degraded",
        "dialogue": dialogue_ok,
        "time": datetime.now(UTC).isoformat(),
        "rasa_url": settings.rasa_url,
        "voice": request.app[VOICE_STATUS_KEY],
        "jobs": request.app[JOBS_KEY].status(),
    }
    control = request.app.get(FREESWITCH_CONTROL_KEY)
    if control is not None:
        body["freeswitch"] = await control.status()
    return web.json_response(body)


async def _index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")
