"""``POST /api/chat/{conversation_id}`` (design.md §4)."""

from __future__ import annotations

import re
from typing import Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.api.errors import chat_json_object, json_error, validate
from bot.chat import handoff_api
from bot.chat.dialogue import DialogueUnavailable
from bot.chat.service import ChatInput, ChatReply, ChatService
from bot.chat.turns import BUSY_REASON, TURN_IN_PROGRESS_REASON, DialogueBusy, TurnInProgress
from bot.settings import SETTINGS_KEY
from bot.store.db import DB_KEY
from bot.survey import chat as survey_chat

log = structlog.get_logger()

CHAT_SERVICE_KEY = web.AppKey("chat_service", ChatService)
REPLY_KEY = web.RequestKey("chat_reply", web.StreamResponse)
_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_TEXT = 2000

UNAVAILABLE = {
    "zh": "对不起，智能客服暂时无法服务，您已确认的内容不会丢失，请稍后再试或拨打人工服务。",
    "en": "Sorry, the assistant is temporarily unavailable. Nothing you confirmed is lost; "
    "please try again shortly or call an operator.",
}


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    dtmf: str | None = Field(default=None, pattern=r"^[0-9*#]{1,64}$")
    event: Literal["start", "no_input", "end"] | None = None
    language: Literal["zh", "en"] | None = None
    # With "start" (U3): the page's id for this browser (a survey due for a reporter who
    # used it is opened), or a signed survey link's token.
    browser: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{8,64}$")
    survey_token: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_input(self) -> ChatBody:
        given = [k for k in ("text", "dtmf", "event") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("send exactly one of text, dtmf or event")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        if (self.browser is not None or self.survey_token is not None) and self.event != "start":
            raise ValueError("browser and survey_token go with the start event only")
        return self


async def post_chat(request: web.Request) -> web.StreamResponse:
    conversation_id = request.match_info["conversation_id"]
    if not _CONVERSATION_ID.match(conversation_id):
        return json_error(400, "bad_conversation_id", "conversation id: 1–128 of A-Z a-z 0-9 _ . : -")
    raw = await chat_json_object(request)
    if isinstance(raw, web.Response):
        return raw
    body = validate(ChatBody, raw, code="bad_input")
    service = request.app[CHAT_SERVICE_KEY]
    chat_input = ChatInput(text=body.text, dtmf=body.dtmf, event=body.event, language=body.language)
    if body.event == "start":
        survey_id = await survey_chat.survey_to_open(request.app[SETTINGS_KEY], request.app[DB_KEY], conversation_id,
                                                     browser=body.browser, token=body.survey_token)
        if survey_id is not None:  # U3: the survey instead of the main menu
            chat_input = ChatInput(event="start_survey", survey_id=survey_id, language=body.language)
    try:
        if body.event == "end":
            await service.end(conversation_id, reason="user_left")
            return web.json_response({"conversation_id": conversation_id, "messages": [], "ended": True,
                                      "handoff": None, "expect": {"kind": "none"}})
        reply = await service.turn(conversation_id, chat_input, deliver=lambda reply: write_out(request, reply))
        written = request.get(REPLY_KEY)
        return written if written is not None else web.json_response(reply.as_json())
    except TurnInProgress:
        return turn_in_progress(service.language_of(conversation_id))
    except DialogueBusy:
        return busy(service.language_of(conversation_id))
    except DialogueUnavailable as exc:
        log.error("chat.dialogue_unavailable", conversation_id=conversation_id, error=str(exc))
        lang = service.language_of(conversation_id)
        return web.json_response(
            {"error": "dialogue_unavailable", "reason": UNAVAILABLE[lang], "language": lang}, status=503
        )


async def write_out(request: web.Request, reply: ChatReply) -> bool:
    """The reply, written out within the turn: only what was written counts as told
    (bot/store/chat_delivery.py); a reply lost on the way is given again next time."""
    response = web.json_response(reply.as_json())
    request[REPLY_KEY] = response
    try:
        await response.prepare(request)
        await response.write_eof()
    except (ConnectionError, RuntimeError) as exc:  # the client is gone
        log.info("chat.reply_not_delivered", conversation_id=reply.conversation_id, error=str(exc)[:100])
        return False
    return True


def turn_in_progress(language: str) -> web.Response:
    """409: this conversation's previous turn is still running (and did not end within
    the turn wait); nothing of this input reached the dialogue: send it again."""
    return json_error(409, "turn_in_progress", TURN_IN_PROGRESS_REASON, language=language)


def busy(language: str) -> web.Response:
    """429: every dialogue slot stayed taken for the turn wait; nothing was taken."""
    response = json_error(429, "busy", BUSY_REASON, language=language)
    response.headers["Retry-After"] = "2"
    return response


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/chat/{conversation_id}", post_chat)
    handoff_api.setup_routes(app)  # J1: waiting for an operator, the live chat
