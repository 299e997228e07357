"""Q2: operators' call recordings over HTTP, for the posts that may listen to them.

    GET /api/recordings?handoff_id=…|ticket_id=…   what was recorded (no file paths)
    GET /api/recordings/{id}/content               the WAV (stereo: caller left, operator right)

Both take the staff API token, or a desk token (``POST /api/session``) of a quality
inspector, a senior operator or an admin; any other post gets 403, no token 401. A
ticket's ``callRecording`` attachment (``/api/attachments/{id}/content``) is served by
:func:`serve_recording` under the same rule. Every download is logged with who fetched it.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from bot.api.auth import actor_of
from bot.api.errors import ApiError
from bot.settings import SETTINGS_KEY
from bot.store import recordings
from bot.store.db import DB_KEY
from bot.store.models import CallRecording
from bot.store.workflow import Actor

log = structlog.get_logger(__name__)


def may_listen(role: str) -> bool:
    return role in recordings.LISTENING_POSTS


async def require_listener(request: web.Request) -> Actor:
    """The staff API token, or a signed-in inspector, senior or admin."""
    actor = await actor_of(request)
    if actor.role != "api" and not may_listen(actor.role):
        log.warning("call_recording.refused", username=actor.username, role=actor.role, path=request.path)
        raise ApiError(403, "forbidden", "call recordings are for quality inspectors, senior operators and "
                                         f"administrators, not for a {actor.role}")
    return actor


def _int_id(raw: str, what: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ApiError(400, "bad_id", f"{what} is a whole number, not {raw[:20]!r}")
    return int(raw)


def serve_recording(request: web.Request, row: CallRecording, who: str) -> web.FileResponse:
    """The file itself (Range requests work: a player can seek), or 410 once deleted."""
    if row.deleted_at is not None:
        raise ApiError(410, "recording_deleted", f"the recording was deleted ({row.deleted_reason or 'deleted'})")
    path = request.app[SETTINGS_KEY].call_recordings_dir / row.file_name
    if not path.is_file():
        raise ApiError(410, "recording_gone", "the recording file is no longer there")
    log.info("call_recording.served", recording_id=row.id, handoff_id=row.handoff_id, by=who)
    return web.FileResponse(path, headers={
        "Content-Type": recordings.MIME_TYPE, "Cache-Control": "no-store",
        "Content-Disposition": f'inline; filename="{row.file_name}"',
    })


async def recording_content(request: web.Request) -> web.FileResponse:
    actor = await require_listener(request)
    recording_id = _int_id(request.match_info["id"], "the recording id")
    row = await request.app[DB_KEY].run(recordings.get_recording, recording_id)
    return serve_recording(request, row, actor.username)


async def list_recordings(request: web.Request) -> web.Response:
    await require_listener(request)
    unknown = sorted(set(request.query) - {"handoff_id", "ticket_id"})
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown query parameter(s): {', '.join(unknown)}; "
                                                 "supported: handoff_id, ticket_id")
    handoff_id = request.query.get("handoff_id")
    ticket_id = request.query.get("ticket_id")
    if handoff_id is None and ticket_id is None:
        raise ApiError(400, "invalid_parameter", "give handoff_id or ticket_id")
    if ticket_id is not None and not 1 <= len(ticket_id) <= 40:
        raise ApiError(400, "invalid_parameter", "ticket_id is 1 to 40 characters")
    rows = await request.app[DB_KEY].run(
        recordings.list_recordings,
        handoff_id=_int_id(handoff_id, "handoff_id") if handoff_id is not None else None, ticket_id=ticket_id)
    return web.json_response([recordings.recording_dict(r) for r in rows])


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/recordings", list_recordings)
    app.router.add_get("/api/recordings/{id}/content", recording_content)
