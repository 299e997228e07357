"""J1 in the web chat: a user waiting for an operator, then talking to them.

* ``GET /api/chat-handoff/{id}?since=N`` — the wait (state, place in the queue, seconds
  waited, whether to offer the return to the bot) and, once an operator took the chat,
  their name and the live messages after id ``N``. The page polls it.
* ``POST /api/chat-handoff/{id}/messages`` ``{"text": "…"}`` — the user's line of the
  live chat (only once taken).
* ``POST /api/chat-handoff/{id}/return`` — the offer taken: back to the dialogue at A2
  (``/return_to_bot``); the answer is a chat reply. Refused (409) once an operator took it.
* ``POST /api/chat-handoff/{id}/leave`` — the page was closed (a beacon). A reload sends
  it too, so the user counts as gone only if no poll follows within
  ``handoff_chat_leave_grace_s``; a page that stopped polling for ``handoff_chat_gone_s``
  is gone as well. Gone while waiting = abandoned, with the wait (J1).

Only handoffs of the web chat channel are reachable here: a call's handoff is the
phone's business (voice/call/handoff.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from bot.api.errors import chat_json_object, json_error
from bot.chat.dialogue import DialogueUnavailable
from bot.chat.service import ChatInput
from bot.chat.turns import DialogueBusy, TurnInProgress
from bot.periodic import every
from bot.settings import SETTINGS_KEY, Settings
from bot.store import handoffs
from bot.store.db import DB_KEY, Database
from bot.store.errors import Conflict
from bot.store.models import HandoffState

log = structlog.get_logger(__name__)

CHANNEL = "webchat"
SWEEP_S = 5.0


class WaitingChats:
    """Which web-chat users waiting for an operator still have the page open."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._seen: dict[str, float] = {}  # conversation id → last poll (monotonic)
        self._leaving: dict[str, asyncio.Task[None]] = {}

    def seen(self, conversation_id: str) -> None:
        self._seen[conversation_id] = time.monotonic()
        task = self._leaving.pop(conversation_id, None)
        if task is not None:
            task.cancel()  # a reload: the page came back

    def forget(self, conversation_id: str) -> None:
        self._seen.pop(conversation_id, None)

    def left(self, conversation_id: str) -> None:
        if conversation_id in self._leaving:
            return
        self._leaving[conversation_id] = asyncio.create_task(self._leave_later(conversation_id))

    async def _leave_later(self, conversation_id: str) -> None:
        try:
            await asyncio.sleep(self._settings.handoff_chat_leave_grace_s)
            await self.gone(conversation_id, "chat closed")
        finally:
            if self._leaving.get(conversation_id) is asyncio.current_task():
                self._leaving.pop(conversation_id, None)

    async def gone(self, conversation_id: str, reason: str) -> str:
        self.forget(conversation_id)
        status = await self._db.run(handoffs.status_for_conversation, conversation_id)
        if status is None or status.channel != CHANNEL:
            return ""
        ended = await self._db.run(handoffs.caller_left, status.handoff_id, reason)
        if ended:
            log.info("chat.handoff_left", conversation_id=conversation_id, handoff_id=status.handoff_id,
                     ended=ended, reason=reason)
        return ended

    async def sweep(self) -> None:
        cutoff = time.monotonic() - self._settings.handoff_chat_gone_s
        for conversation_id, at in list(self._seen.items()):
            if at < cutoff:
                await self.gone(conversation_id, "chat stopped polling")

    async def close(self) -> None:
        for task in list(self._leaving.values()):
            task.cancel()
        for task in list(self._leaving.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


WAITING_CHATS_KEY = web.AppKey("waiting_chats", WaitingChats)


def _waiting(request: web.Request) -> WaitingChats:
    return request.app[WAITING_CHATS_KEY]


async def _status(request: web.Request, since: int | None) -> handoffs.HandoffStatus | web.Response:
    conversation_id = request.match_info["conversation_id"]
    status = await request.app[DB_KEY].run(handoffs.status_for_conversation, conversation_id, since_id=since)
    if status is None or status.channel != CHANNEL:
        return json_error(404, "no_handoff", "this conversation is not waiting for an operator")
    return status


def _since(request: web.Request) -> int | web.Response:
    raw = request.query.get("since", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        return json_error(400, "bad_since", "since: the id of the last message seen (a whole number)")
    return int(raw)


def _as_json(status: handoffs.HandoffStatus, settings: Settings) -> dict[str, Any]:
    body = status.as_json()
    body["offer_after_s"] = settings.handoff_offer_seconds
    body["offer"] = status.state == HandoffState.queued.value and status.waited_s >= settings.handoff_offer_seconds
    body["ended"] = status.state in handoffs.ENDED_STATES
    return body


async def get_handoff(request: web.Request) -> web.Response:
    since = _since(request)
    if isinstance(since, web.Response):
        return since
    status = await _status(request, since)
    if isinstance(status, web.Response):
        return status
    settings = request.app[SETTINGS_KEY]
    body = _as_json(status, settings)
    conversation_id = request.match_info["conversation_id"]
    if status.state in (HandoffState.queued.value, HandoffState.taken.value):
        _waiting(request).seen(conversation_id)
    else:
        _waiting(request).forget(conversation_id)
    if body["offer"] and status.return_offers == 0:
        # J1: the offer is shown once the wait passed the setting; count it once.
        with contextlib.suppress(Conflict):
            body["return_offers"] = await request.app[DB_KEY].run(handoffs.count_offer, status.handoff_id)
    return web.json_response(body)


async def post_message(request: web.Request) -> web.Response:
    body = await chat_json_object(request)
    if isinstance(body, web.Response):
        return body
    text = body.get("text")
    if set(body) != {"text"} or not isinstance(text, str):
        return json_error(400, "bad_input", 'send {"text": "…"} and nothing else')
    status = await _status(request, None)
    if isinstance(status, web.Response):
        return status
    # Refusals (empty, too long, nobody there yet, over) are ServiceErrors: 4xx with a reason.
    message = await request.app[DB_KEY].run(handoffs.add_message, status.handoff_id, "caller", text)
    _waiting(request).seen(request.match_info["conversation_id"])
    return web.json_response({"message": message}, status=201)


async def post_return(request: web.Request) -> web.Response:
    from bot.chat.api import CHAT_SERVICE_KEY, UNAVAILABLE, busy, turn_in_progress

    status = await _status(request, None)
    if isinstance(status, web.Response):
        return status
    conversation_id = request.match_info["conversation_id"]
    try:
        await request.app[DB_KEY].run(handoffs.return_to_bot, status.handoff_id)
    except Conflict as e:
        now = await request.app[DB_KEY].run(handoffs.status, status.handoff_id)
        return json_error(409, e.code, e.reason, handoff=_as_json(now, request.app[SETTINGS_KEY]))
    _waiting(request).forget(conversation_id)
    service = request.app[CHAT_SERVICE_KEY]
    try:
        reply = await service.turn(conversation_id, ChatInput(event="return_to_bot"))
    except TurnInProgress:
        return turn_in_progress(service.language_of(conversation_id))
    except DialogueBusy:
        return busy(service.language_of(conversation_id))
    except DialogueUnavailable as exc:
        log.error("chat.dialogue_unavailable", conversation_id=conversation_id, error=str(exc))
        lang = service.language_of(conversation_id)
        return json_error(503, "dialogue_unavailable", UNAVAILABLE[lang], language=lang)
    return web.json_response(reply.as_json())


async def post_leave(request: web.Request) -> web.Response:
    status = await _status(request, None)
    if isinstance(status, web.Response):
        return status
    if status.state in (HandoffState.queued.value, HandoffState.taken.value):
        _waiting(request).left(request.match_info["conversation_id"])
    return web.json_response({"state": status.state}, status=202)


async def _waiting_chats(app: web.Application) -> AsyncIterator[None]:
    # Per process, not a job (bot/jobs/): which pages still poll is known only to the
    # process that serves them (WaitingChats._seen is its memory).
    waiting = app[WAITING_CHATS_KEY]
    async with every(SWEEP_S, waiting.sweep, "chat.handoff_sweep_failed"):
        yield
    await waiting.close()


def setup_routes(app: web.Application) -> None:
    app[WAITING_CHATS_KEY] = WaitingChats(app[DB_KEY], app[SETTINGS_KEY])
    app.cleanup_ctx.append(_waiting_chats)
    # Not under /api/chat/: the polls are no dialogue turns (the turn-time metric).
    base = "/api/chat-handoff/{conversation_id:[A-Za-z0-9_.:-]{1,128}}"
    app.router.add_get(base, get_handoff)
    app.router.add_post(base + "/messages", post_message)
    app.router.add_post(base + "/return", post_return)
    app.router.add_post(base + "/leave", post_leave)
