"""Q2: recordings of bridged operator calls. FreeSWITCH records the caller's channel
while it is bridged to an operator's phone (``record_session``; stereo: the caller left,
the operator right); the phone channel stores one row per bridge here, attaches the file
to the ticket (a TMF621 ``attachment`` of type ``callRecording``) and lists it on the
handoff. Only the posts in :data:`LISTENING_POSTS` (and the staff API token) may play or
download them.

Retention: :func:`sweep_expired` deletes the files older than the retention and marks
their rows deleted; the rows stay (who talked to whom, when, and when the file went).
Like ``bot.store.service``, every function takes an open :class:`~sqlmodel.Session` first.
"""

from __future__ import annotations

import hashlib
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.store.errors import NotFound, ServiceError
from bot.store.models import Attachment, CallRecording, DeskRole, Handoff, Ticket, utc, utcnow

log = structlog.get_logger(__name__)

# Q2: quality inspectors listen to operators' calls; seniors review their juniors' calls.
LISTENING_POSTS: tuple[str, ...] = (DeskRole.inspector.value, DeskRole.senior.value, DeskRole.admin.value)
ATTACHMENT_KIND = "callRecording"
MIME_TYPE = "audio/wav"
RETENTION_ACTOR = "retention"
MAX_LIST = 200


@dataclass(frozen=True)
class WavFacts:
    """What the file itself says (the WAV header) and its size on disk."""

    seconds: float
    sample_rate: int
    channels: int
    size_bytes: int


def wav_facts(path: Path) -> WavFacts:
    """Read a recording's header (blocking: call it off the event loop). Raises
    ``OSError`` when the file is not there and ``wave.Error`` when it is not a WAV."""
    size = path.stat().st_size
    with wave.open(str(path), "rb") as w:
        rate, channels, frames = w.getframerate(), w.getnchannels(), w.getnframes()
    return WavFacts(frames / rate if rate else 0.0, rate, channels, size)


@dataclass(frozen=True)
class RecordingData:
    """One bridged call, as the phone channel saw it end."""

    handoff_id: int
    file_name: str  # under the bot's call recordings folder
    fs_path: str  # Record-File-Path: where FreeSWITCH wrote it
    conversation_id: str
    started_at: datetime
    ended_at: datetime
    facts: WavFacts
    operator: str | None = None  # the desk username the call was bridged to
    extension: str | None = None


def _hash(file_name: str) -> str:
    return hashlib.sha256(f"call-recording:{file_name}".encode()).hexdigest()


def add_recording(s: Session, data: RecordingData) -> CallRecording:
    """Store the recording (once per file: a retried store finds the first row) and,
    when the handoff has a ticket, attach it there."""
    if "/" in data.file_name or data.file_name.startswith("."):
        raise ServiceError(f"not a plain file name: {data.file_name!r}", code="bad_file_name")
    found = s.exec(select(CallRecording).where(CallRecording.file_name == data.file_name)).first()
    if found is not None:
        return found
    handoff = s.get(Handoff, data.handoff_id)
    if handoff is None:
        raise NotFound(f"no handoff {data.handoff_id}", code="handoff_not_found")
    ticket = s.get(Ticket, handoff.ticket_id) if handoff.ticket_id else None
    row = CallRecording(
        handoff_id=data.handoff_id, ticket_id=ticket.id if ticket else None, conversation_id=data.conversation_id,
        operator=data.operator, extension=data.extension, file_name=data.file_name, fs_path=data.fs_path,
        duration_s=round(data.facts.seconds, 3), size_bytes=data.facts.size_bytes,
        sample_rate=data.facts.sample_rate, channels=data.facts.channels,
        started_at=data.started_at, ended_at=data.ended_at,
    )
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:  # the same file stored at the same moment by a retry
        again = s.exec(select(CallRecording).where(CallRecording.file_name == data.file_name)).first()
        assert again is not None
        return again
    if ticket is not None:
        attachment = Attachment(ticket_id=ticket.id, kind=ATTACHMENT_KIND, mime_type=MIME_TYPE,
                                file_path=data.file_name, content_hash=_hash(data.file_name),
                                conversation_id=data.conversation_id)
        s.add(attachment)
        s.flush()
        row.attachment_id = attachment.id
        ticket.last_update = utcnow()
        s.add_all([row, ticket])
        s.flush()
    log.info("call_recording.stored", recording_id=row.id, handoff_id=row.handoff_id, ticket_id=row.ticket_id,
             operator=row.operator, seconds=row.duration_s, channels=row.channels, rate=row.sample_rate)
    return row


def get_recording(s: Session, recording_id: int) -> CallRecording:
    row = s.get(CallRecording, recording_id)
    if row is None:
        raise NotFound(f"no call recording {recording_id}", code="recording_not_found")
    s.expunge(row)
    return row


def recording_for_attachment(s: Session, attachment_id: int) -> CallRecording | None:
    row = s.exec(select(CallRecording).where(CallRecording.attachment_id == attachment_id)).first()
    if row is not None:
        s.expunge(row)
    return row


def list_recordings(s: Session, *, handoff_id: int | None = None, ticket_id: str | None = None,
                    limit: int = MAX_LIST) -> list[CallRecording]:
    """Newest first; deleted ones too (their rows say when and why)."""
    q = select(CallRecording)
    if handoff_id is not None:
        q = q.where(CallRecording.handoff_id == handoff_id)
    if ticket_id is not None:
        q = q.where(CallRecording.ticket_id == ticket_id)
    rows = list(s.exec(q.order_by(col(CallRecording.started_at).desc(), col(CallRecording.id).desc())
                       .limit(min(limit, MAX_LIST))).all())
    for row in rows:
        s.expunge(row)
    return rows


def recording_dict(row: CallRecording) -> dict[str, Any]:
    """For the API and the desk: no file paths, no phone numbers."""
    return {
        "id": row.id, "handoff_id": row.handoff_id, "ticket_id": row.ticket_id,
        "conversation_id": row.conversation_id, "operator": row.operator,
        "started_at": utc(row.started_at).isoformat(), "ended_at": utc(row.ended_at).isoformat(),
        "duration_s": row.duration_s, "size_bytes": row.size_bytes, "sample_rate": row.sample_rate,
        "channels": row.channels, "mime_type": MIME_TYPE, "attachment_id": row.attachment_id,
        "deleted_at": utc(row.deleted_at).isoformat() if row.deleted_at else None,
        "deleted_reason": row.deleted_reason,
        "url": None if row.deleted_at else f"/api/recordings/{row.id}/content",
    }


def sweep_expired(s: Session, files_dir: Path, retention_days: float, *,
                  now: datetime | None = None) -> list[dict[str, Any]]:
    """Delete the files of recordings older than ``retention_days`` (by when the call
    started), mark their rows deleted and take their attachments off the tickets.
    Returns (and logs) what was deleted. The files go first: a failed commit leaves a
    row that the next sweep marks again (a missing file is no error). Files in the
    folder that no stored recording owns go too once they are older than the retention."""
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)
    rows = s.exec(
        select(CallRecording).where(col(CallRecording.deleted_at).is_(None), col(CallRecording.started_at) < cutoff)
        .order_by(col(CallRecording.started_at)).limit(500)
    ).all()
    deleted: list[dict[str, Any]] = []
    for row in rows:
        path = files_dir / row.file_name
        existed = path.is_file()
        path.unlink(missing_ok=True)
        if row.attachment_id is not None:
            s.execute(delete(Attachment).where(col(Attachment.id) == row.attachment_id))
        row.deleted_at = now
        row.deleted_by = RETENTION_ACTOR
        row.deleted_reason = f"older than the retention of {retention_days:g} days"
        s.add(row)
        entry = {"recording_id": row.id, "handoff_id": row.handoff_id, "ticket_id": row.ticket_id,
                 "operator": row.operator, "age_days": round((now - utc(row.started_at)).total_seconds() / 86400, 1),
                 "size_bytes": row.size_bytes, "file_was_there": existed}
        log.info("call_recording.deleted", reason="retention", retention_days=retention_days, **entry)
        deleted.append(entry)
    s.flush()
    deleted += _sweep_unstored(s, files_dir, cutoff, retention_days, now)
    return deleted


def _sweep_unstored(s: Session, files_dir: Path, cutoff: datetime, retention_days: float,
                    now: datetime) -> list[dict[str, Any]]:
    """Files FreeSWITCH wrote that were never stored (the store was down at the end of
    the call, the bot stopped): the retention holds for them too, by the file's age."""
    if not files_dir.is_dir():
        return []
    written = {f: datetime.fromtimestamp(f.stat().st_mtime, UTC) for f in files_dir.glob("*.wav") if f.is_file()}
    old = {f: at for f, at in written.items() if at < cutoff}
    if not old:
        return []
    live = set(s.exec(select(CallRecording.file_name).where(
        col(CallRecording.file_name).in_([f.name for f in old]), col(CallRecording.deleted_at).is_(None))).all())
    deleted: list[dict[str, Any]] = []
    for f, at in old.items():
        if f.name in live:
            continue
        f.unlink(missing_ok=True)
        entry = {"file": f.name, "age_days": round((now - at).total_seconds() / 86400, 1)}
        log.info("call_recording.deleted", reason="retention, never stored", retention_days=retention_days, **entry)
        deleted.append(entry)
    return deleted
