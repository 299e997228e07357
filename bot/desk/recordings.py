"""Q2 on the desk: operators' call recordings, for the posts that may listen to them
(quality inspectors, senior operators, admins).

    GET /desk/recordings             the latest recordings (the inspector's home)
    GET /desk/recordings/{id}/audio  one recording's WAV, for the page's <audio> player

Ticket pages and (for seniors) handoff pages show the recordings of that ticket or
handoff with a player, through :func:`for_page`. Every request is checked here on the
server (``require_role``): a junior or a centre who types the URL gets 403, the same as
a hidden player would suggest.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from sqlmodel import Session

from bot.desk import pages
from bot.desk.auth import Identity, require_role, settings_of
from bot.store import recordings
from bot.store.db import DB_KEY
from bot.store.errors import NotFound
from bot.store.models import CallRecording, utc

log = structlog.get_logger(__name__)

RECENT = 50


def may_listen(who: Identity) -> bool:
    return who.role in recordings.LISTENING_POSTS


def _row(r: CallRecording) -> dict[str, Any]:
    return {
        "id": r.id, "handoff_id": r.handoff_id, "ticket_id": r.ticket_id, "operator": r.operator,
        "started_at": utc(r.started_at), "ended_at": utc(r.ended_at), "seconds": r.duration_s,
        "channels": r.channels, "sample_rate": r.sample_rate,
        "deleted_at": utc(r.deleted_at) if r.deleted_at else None, "deleted_reason": r.deleted_reason,
    }


async def for_page(request: web.Request, who: Identity, *, ticket_id: str | None = None,
                   handoff_id: int | None = None) -> list[dict[str, Any]] | None:
    """The recordings a ticket or handoff page shows, or None for a post that may not
    listen (the page then shows nothing about them)."""
    if not may_listen(who):
        return None
    rows = await request.app[DB_KEY].run(recordings.list_recordings, ticket_id=ticket_id, handoff_id=handoff_id)
    return [_row(r) for r in rows]


def _recent(s: Session) -> list[CallRecording]:
    return recordings.list_recordings(s, limit=RECENT)


@require_role(*recordings.LISTENING_POSTS)
async def recordings_page(request: web.Request, who: Identity) -> web.StreamResponse:
    rows = await request.app[DB_KEY].run(_recent)
    return pages.render(request, "recordings.html", who=who, recordings=[_row(r) for r in rows])


@require_role(*recordings.LISTENING_POSTS)
async def recording_audio(request: web.Request, who: Identity) -> web.StreamResponse:
    recording_id = int(request.match_info["id"])
    try:
        row = await request.app[DB_KEY].run(recordings.get_recording, recording_id)
    except NotFound:
        return pages.error_page(request, 404, "No such recording", "There is no recording {id}.", who=who,
                                fields={"id": recording_id})
    path = settings_of(request).call_recordings_dir / row.file_name
    if row.deleted_at is not None or not path.is_file():
        return pages.error_page(request, 410, "Recording deleted",
                                row.deleted_reason or "The recording file is no longer there.", who=who)
    log.info("call_recording.served", recording_id=row.id, handoff_id=row.handoff_id, by=who.username)
    return web.FileResponse(path, headers={"Content-Type": recordings.MIME_TYPE, "Cache-Control": "no-store",
                                           "X-Content-Type-Options": "nosniff"})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/desk/recordings", recordings_page)
    # At most 9 digits: the id fits PostgreSQL's integer, a longer one is simply not found.
    app.router.add_get(r"/desk/recordings/{id:[0-9]{1,9}}/audio", recording_audio)
