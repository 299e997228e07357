"""Calls the bot places (voice/outbound.py): ``POST /api/outbound-calls`` starts one
(the bot's services or staff systems: the internal or staff token), ``GET
/api/outbound-calls/{id}`` says how it went (a reader of personal data: it holds the
callee's number).

Refusals say why: a number no caller gave or used (422), the concurrent-call limit
(429), the phone or FreeSWITCH's control connection down (503).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import require_personal_reader, require_service
from bot.api.errors import ApiError, canonical_number, parse_body, path_id
from bot.settings import SETTINGS_KEY
from bot.store import outbound_calls as store
from bot.store.db import DB_KEY

if TYPE_CHECKING:
    from voice.outbound import OutboundCalls  # voice/ loads only when the phone is on

OUTBOUND_CALLS_KEY: web.AppKey[OutboundCalls] = web.AppKey("outbound_calls")


class OutboundCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=1, max_length=40)
    purpose: Literal["test_call"]
    ref_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    language: Literal["zh", "en"] = "zh"


async def post_outbound_call(request: web.Request) -> web.Response:
    require_service(request)
    body = await parse_body(request, OutboundCallIn)
    number, _ = canonical_number(body.number, request.app[SETTINGS_KEY].local_area_code, field="number")
    calls = request.app.get(OUTBOUND_CALLS_KEY)
    if calls is None:
        raise ApiError(503, "outbound_calls_off",
                       "outbound calls need the phone (HOTLINE_VOICE_ENABLED) and FreeSWITCH's control "
                       "connection (HOTLINE_ESL_PASSWORD)")
    from voice.outbound import OutboundRefused

    try:
        row = await calls.place(number, body.purpose, ref_id=body.ref_id, language=body.language,
                                requested_by="api")
    except OutboundRefused as e:
        raise ApiError(e.status, e.code, e.reason) from e
    return web.json_response(row, status=202)


async def get_outbound_call(request: web.Request) -> web.Response:
    await require_personal_reader(request)
    call_id = path_id(request, "outbound call", "call_id")
    return web.json_response(await request.app[DB_KEY].run(store.get, call_id))


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/outbound-calls", post_outbound_call)
    app.router.add_get("/api/outbound-calls/{call_id}", get_outbound_call)
