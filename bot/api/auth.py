"""Who is calling a staff API: a desk account's bearer token (``POST /api/session``),
or the staff API token (``HOTLINE_STAFF_API_TOKEN``), which acts as ``api``."""

from __future__ import annotations

from aiohttp import web

from bot.api.errors import ApiError
from bot.desk import auth
from bot.settings import SETTINGS_KEY
from bot.store import workflow
from bot.store.db import DB_KEY
from bot.store.workflow import Actor


async def actor_of(request: web.Request) -> Actor:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise ApiError(401, "unauthorized", "sign in: POST /api/session, then send Authorization: Bearer <token>")
    token = header.removeprefix("Bearer ").strip()
    staff = request.app[SETTINGS_KEY].staff_api_token
    if staff is not None and auth.same_token(token, staff.get_secret_value()):
        return Actor("api", workflow.API)
    if not 20 <= len(token) <= 100:
        raise ApiError(401, "unauthorized", "the token is not valid")
    who = await request.app[DB_KEY].run(auth.session_identity, token)
    if who is None:
        raise ApiError(401, "unauthorized", "the token is not valid or has expired; sign in again")
    return Actor(who.username, who.role, who.branch)
