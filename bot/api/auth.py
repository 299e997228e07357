"""Who is calling an API.

- Staff APIs: a desk account's bearer token (``POST /api/session``), or the staff API
  token (``HOTLINE_STAFF_API_TOKEN``), which acts as ``api``.
- The bot's own services (the action server recording reports, outcomes and handoffs,
  looking lines up): the internal token (``HOTLINE_INTERNAL_API_TOKEN``; ``make run``
  makes one per start) or the staff API token.
- Reading personal data (tickets, handoff contexts, outcomes, line owners): either.
Tokens travel as ``Authorization: Bearer <token>``."""

from __future__ import annotations

from aiohttp import web

from bot import scope as scopes
from bot.api.errors import ApiError
from bot.desk import auth
from bot.settings import SETTINGS_KEY
from bot.store import workflow
from bot.store.db import DB_KEY
from bot.store.workflow import Actor


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None


async def actor_of(request: web.Request) -> Actor:
    token = _bearer(request)
    if token is None:
        raise ApiError(401, "unauthorized", "sign in: POST /api/session, then send Authorization: Bearer <token>")
    staff = request.app[SETTINGS_KEY].staff_api_token
    if staff is not None and auth.same_token(token, staff.get_secret_value()):
        return Actor("api", workflow.API)
    if not 20 <= len(token) <= 100:
        raise ApiError(401, "unauthorized", "the token is not valid")
    who = await request.app[DB_KEY].run(auth.session_identity, token)
    if who is None:
        raise ApiError(401, "unauthorized", "the token is not valid or has expired; sign in again")
    return Actor(who.username, who.role, who.branch)


def _service_token(request: web.Request, token: str | None) -> bool:
    settings = request.app[SETTINGS_KEY]
    if token is None:
        return False
    return any(secret is not None and auth.same_token(token, secret.get_secret_value())
               for secret in (settings.internal_api_token, settings.staff_api_token))


def require_service(request: web.Request) -> None:
    """Only the bot's own services (or another system with the staff token) write records."""
    settings = request.app[SETTINGS_KEY]
    if settings.internal_api_token is None and settings.staff_api_token is None:
        raise ApiError(403, "internal_api_closed",
                       "set HOTLINE_INTERNAL_API_TOKEN for the bot and the action server")
    if not _service_token(request, _bearer(request)):
        raise ApiError(401, "unauthorized", "the bot's services send Authorization: Bearer "
                                            "<HOTLINE_INTERNAL_API_TOKEN>")


async def require_reader(request: web.Request) -> None:
    """Personal data is read by the bot's services, staff systems or signed-in staff."""
    if not _service_token(request, _bearer(request)):
        await actor_of(request)


async def reader_scope(request: web.Request) -> scopes.Scope:
    """What the caller may read (bot/scope.py): the bot's services and the staff token see
    everything; a desk account's token what its post may."""
    if _service_token(request, _bearer(request)):
        return scopes.SERVICE_SCOPE
    return scopes.of(await actor_of(request))


async def require_personal_reader(request: web.Request) -> scopes.Scope:
    """Hotline-wide personal records (handoffs, outcomes, surveys, outbound calls, line
    owners): the services, the staff token, and the posts whose scope includes them."""
    scope = await reader_scope(request)
    if not scopes.reads_personal(scope):
        raise ApiError(403, "forbidden", f"a {scope.role} does not read these records; "
                                         "a centre reads its own branch's tickets")
    return scope
