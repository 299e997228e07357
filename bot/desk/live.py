"""J1, the operator's side of a web-chat user taken from the queue: a live text
conversation in the chat window the user already has open.

* ``POST /desk/handoffs/{id}/messages`` (form: ``csrf``, ``text``) — the operator's line.
  A browser without script gets the handoff page back; the desk's script asks for JSON.
* ``GET /desk/handoffs/{id}/messages.json?since=N`` — the state and the lines after id N
  (the desk's script polls it).
* ``POST /desk/handoffs/{id}/finish`` (form: ``csrf``) — the operator ends the chat.

Only the operator who took the handoff (or an admin) may read, speak or finish; the
CSRF token is checked on every POST (``require_role``). Texts go out as JSON and are put
on the page with ``textContent``, or through the autoescaping templates: inert.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from bot.desk import pages
from bot.desk.auth import Identity, require_role
from bot.store import handoffs
from bot.store.db import DB_KEY
from bot.store.errors import ServiceError

log = structlog.get_logger(__name__)

ROLES = ("junior", "senior", "admin", "manager")  # manager: complaints taken from its queue (M2)


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _refuse(request: web.Request, who: Identity, status: int, code: str, reason: str) -> web.Response:
    if _wants_json(request) or request.path.endswith(".json"):
        return web.json_response({"error": code, "reason": reason}, status=status,
                                 headers={"Cache-Control": "no-store"})
    return pages.error_page(request, status, "Refused", reason, who=who)


async def _taker_status(
    request: web.Request, who: Identity, since: int | None = None
) -> handoffs.HandoffStatus | web.Response:
    handoff_id = int(request.match_info["id"])
    try:
        status = await request.app[DB_KEY].run(handoffs.status, handoff_id, since_id=since)
    except ServiceError as e:
        return _refuse(request, who, e.status, e.code, e.reason)
    if who.role != "admin" and status.operator_username != who.username:
        log.warning("desk.live_refused", username=who.username, handoff_id=handoff_id)
        return _refuse(request, who, 403, "not_taker",
                       f"Only the operator who took handoff {handoff_id} can do this.")
    return status


@require_role(*ROLES)
async def messages_json(request: web.Request, who: Identity) -> web.StreamResponse:
    raw = request.query.get("since", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        return _refuse(request, who, 400, "bad_since", "since: the id of the last message seen")
    status = await _taker_status(request, who, int(raw))
    if isinstance(status, web.Response):
        return status
    return web.json_response({"handoff_id": status.handoff_id, "state": status.state,
                              "messages": status.messages}, headers={"Cache-Control": "no-store"})


@require_role(*ROLES)
async def post_message(request: web.Request, who: Identity) -> web.StreamResponse:
    status = await _taker_status(request, who)
    if isinstance(status, web.Response):
        return status
    form = await request.post()
    text = form.get("text")
    if not isinstance(text, str):
        return _refuse(request, who, 400, "bad_input", "The form needs a text field.")
    try:
        message = await request.app[DB_KEY].run(handoffs.add_message, status.handoff_id, "operator", text,
                                                author=who.username, admin=who.role == "admin")
    except ServiceError as e:
        return _refuse(request, who, e.status, e.code, e.reason)
    if _wants_json(request):
        return web.json_response({"message": message}, status=201, headers={"Cache-Control": "no-store"})
    return pages.redirect(f"/desk/handoffs/{status.handoff_id}#live-chat")


@require_role(*ROLES)
async def finish(request: web.Request, who: Identity) -> web.StreamResponse:
    status = await _taker_status(request, who)
    if isinstance(status, web.Response):
        return status
    try:
        await request.app[DB_KEY].run(handoffs.finish, status.handoff_id, who.username, admin=who.role == "admin")
    except ServiceError as e:
        return _refuse(request, who, e.status, e.code, e.reason)
    if _wants_json(request):
        return web.json_response({"state": "done"}, headers={"Cache-Control": "no-store"})
    return pages.redirect(f"/desk/handoffs/{status.handoff_id}")


def setup_routes(app: web.Application) -> None:
    app.router.add_post(r"/desk/handoffs/{id:[0-9]{1,9}}/messages", post_message)
    app.router.add_get(r"/desk/handoffs/{id:[0-9]{1,9}}/messages.json", messages_json)
    app.router.add_post(r"/desk/handoffs/{id:[0-9]{1,9}}/finish", finish)
