"""Q2: operators' call recordings in the store (bot/store/recordings.py): one row per
bridged call, attached to the handoff's ticket as a TMF621 attachment, listed on the
handoff; the retention sweep deletes old files, keeps the rows and logs what went.
SQLite and PostgreSQL."""

from __future__ import annotations

import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import select
from structlog.testing import capture_logs

from bot.api.tickets import render_ticket
from bot.store import recordings, service
from bot.store.db import Database
from bot.store.errors import ServiceError
from bot.store.models import Attachment, CallRecording

CALLED_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def write_wav(path: Path, seconds: float, rate: int = 8000, channels: int = 2) -> Path:
    """A stereo call: a tone for the caller (left) and another for the operator (right)."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    sides = [0.3 * np.sin(2 * np.pi * hz * t) for hz in (440.0, 660.0)[:channels]]
    frames = (np.stack(sides, axis=1) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames.tobytes())
    return path


def handoff(db: Database, conversation: str, *, ticket: bool = True) -> tuple[int, str | None]:
    ticket_id = None
    if ticket:
        ticket_id = db.call(service.create_report, service.ReportData(
            conversation_id=conversation, channel="voice", language="zh", kind="new", fault_number="057187650001",
            contact_number="13800138000", symptom_category="noise")).ticket_id
    result = db.call(service.queue_handoff, service.HandoffData(
        conversation_id=conversation, channel="voice", language="zh", reason="caller_asked",
        fault_number="057187650001", ticket_id=ticket_id))
    return result.handoff_id, ticket_id


def stored(db: Database, folder: Path, handoff_id: int, name: str, *, seconds: float = 2.5,
           started: datetime = CALLED_AT) -> CallRecording:
    facts = recordings.wav_facts(write_wav(folder / name, seconds))
    return db.call(recordings.add_recording, recordings.RecordingData(
        handoff_id=handoff_id, file_name=name, fs_path=f"/var/lib/freeswitch/recordings/{name}",
        conversation_id="call-1", started_at=started, ended_at=started + timedelta(seconds=seconds),
        facts=facts, operator="jun", extension="2001"))


def test_the_header_says_what_freeswitch_wrote(tmp_path: Path) -> None:
    facts = recordings.wav_facts(write_wav(tmp_path / "a.wav", 1.5))
    assert (facts.sample_rate, facts.channels) == (8000, 2)
    assert facts.seconds == pytest.approx(1.5)
    assert facts.size_bytes == 44 + 1.5 * 8000 * 2 * 2
    with pytest.raises(OSError):
        recordings.wav_facts(tmp_path / "missing.wav")


def test_a_recording_is_attached_to_the_ticket_once(demo_db: Database, tmp_path: Path) -> None:
    handoff_id, ticket_id = handoff(demo_db, "call-1")
    assert ticket_id is not None
    row = stored(demo_db, tmp_path, handoff_id, f"{handoff_id}-call-1-1.wav")
    again = stored(demo_db, tmp_path, handoff_id, f"{handoff_id}-call-1-1.wav")  # a retried store
    assert again.id == row.id and row.ticket_id == ticket_id and row.attachment_id is not None
    assert (row.sample_rate, row.channels, row.duration_s, row.operator) == (8000, 2, 2.5, "jun")

    view = demo_db.call(service.get_ticket, ticket_id)
    attached = [a for a in view.attachments if a.kind == recordings.ATTACHMENT_KIND]
    assert [a.id for a in attached] == [row.attachment_id]
    tmf = render_ticket(view, "http://bot.test")["attachment"]
    assert tmf == [{
        "id": str(row.attachment_id), "attachmentType": "callRecording", "mimeType": "audio/wav",
        "creationDate": tmf[0]["creationDate"], "@type": "Attachment", "name": row.file_name,
        "url": f"/api/attachments/{row.attachment_id}/content",
        "description": "recording of the call with the operator (stereo: caller left, operator right)",
    }]
    assert demo_db.call(recordings.recording_for_attachment, row.attachment_id).id == row.id  # type: ignore[union-attr]


def test_a_handoff_without_a_ticket_lists_its_recordings(demo_db: Database, tmp_path: Path) -> None:
    handoff_id, _ = handoff(demo_db, "call-2", ticket=False)
    first = stored(demo_db, tmp_path, handoff_id, "first.wav", started=CALLED_AT)
    second = stored(demo_db, tmp_path, handoff_id, "second.wav", started=CALLED_AT + timedelta(minutes=1))
    assert first.attachment_id is None and first.ticket_id is None
    listed = demo_db.call(recordings.list_recordings, handoff_id=handoff_id)
    assert [r.id for r in listed] == [second.id, first.id]  # newest first: a senior's leg after the junior's
    shown = recordings.recording_dict(listed[0])
    assert shown["url"] == f"/api/recordings/{second.id}/content"
    assert "file_name" not in shown and "fs_path" not in shown


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b.wav", ".hidden.wav"])
def test_only_plain_file_names_are_stored(demo_db: Database, tmp_path: Path, name: str) -> None:
    handoff_id, _ = handoff(demo_db, "call-3", ticket=False)
    with pytest.raises(ServiceError, match="plain file name"):
        demo_db.call(recordings.add_recording, recordings.RecordingData(
            handoff_id=handoff_id, file_name=name, fs_path=name, conversation_id="call-3",
            started_at=CALLED_AT, ended_at=CALLED_AT, facts=recordings.WavFacts(1.0, 8000, 2, 100)))


def test_retention_deletes_old_files_keeps_the_rows_and_logs_them(demo_db: Database, tmp_path: Path) -> None:
    handoff_id, ticket_id = handoff(demo_db, "call-4")
    old = stored(demo_db, tmp_path, handoff_id, "old.wav", started=CALLED_AT - timedelta(days=91))
    recent = stored(demo_db, tmp_path, handoff_id, "recent.wav", started=CALLED_AT - timedelta(days=89))
    with capture_logs() as logs:
        deleted = demo_db.call(recordings.sweep_expired, tmp_path, 90, now=CALLED_AT)
    assert [d["recording_id"] for d in deleted] == [old.id]
    assert not (tmp_path / "old.wav").exists() and (tmp_path / "recent.wav").exists()
    row = demo_db.call(recordings.get_recording, old.id)  # type: ignore[arg-type]
    assert row.deleted_at == CALLED_AT and row.deleted_by == "retention" and "90 days" in (row.deleted_reason or "")
    assert recordings.recording_dict(row)["url"] is None
    kept = demo_db.call(lambda s: [a.id for a in s.exec(select(Attachment)).all()
                                   if a.kind == recordings.ATTACHMENT_KIND])
    assert kept == [recent.attachment_id]  # the deleted one is off the ticket
    entries = [e for e in logs if e["event"] == "call_recording.deleted"]
    assert len(entries) == 1 and entries[0]["recording_id"] == old.id and entries[0]["file_was_there"] is True
    assert entries[0]["ticket_id"] == ticket_id and entries[0]["age_days"] == 91.0
    assert "13800138000" not in repr(entries) and "057187650001" not in repr(entries)
    assert demo_db.call(recordings.sweep_expired, tmp_path, 90, now=CALLED_AT) == []  # nothing twice


def test_a_file_already_gone_is_still_marked_deleted(demo_db: Database, tmp_path: Path) -> None:
    handoff_id, _ = handoff(demo_db, "call-5", ticket=False)
    row = stored(demo_db, tmp_path, handoff_id, "gone.wav", started=CALLED_AT - timedelta(days=100))
    (tmp_path / "gone.wav").unlink()
    deleted = demo_db.call(recordings.sweep_expired, tmp_path, 90, now=CALLED_AT)
    assert [(d["recording_id"], d["file_was_there"]) for d in deleted] == [(row.id, False)]


def test_retention_also_deletes_old_files_that_were_never_stored(demo_db: Database, tmp_path: Path) -> None:
    import os

    handoff_id, _ = handoff(demo_db, "call-6", ticket=False)
    now = datetime.now(UTC)
    kept = stored(demo_db, tmp_path, handoff_id, "kept.wav", started=now - timedelta(days=1))
    stray_old, stray_new = write_wav(tmp_path / "stray-old.wav", 1), write_wav(tmp_path / "stray-new.wav", 1)
    for f in (stray_old, tmp_path / kept.file_name):  # written long ago (the stored one's row says otherwise)
        stamp = (now - timedelta(days=120)).timestamp()
        os.utime(f, (stamp, stamp))
    with capture_logs() as logs:
        deleted = demo_db.call(recordings.sweep_expired, tmp_path, 90, now=now)
    assert [d.get("file") for d in deleted] == ["stray-old.wav"]
    assert not stray_old.exists() and stray_new.exists() and (tmp_path / kept.file_name).exists()
    [entry] = [e for e in logs if e["event"] == "call_recording.deleted"]
    assert entry["reason"] == "retention, never stored" and entry["age_days"] >= 119


def test_call_recordings_never_share_the_voice_messages_folder(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from bot.settings import Settings

    with pytest.raises(ValidationError, match="must not be HOTLINE_RECORDINGS_DIR"):
        Settings(recordings_dir=tmp_path / "r", call_recordings_dir=tmp_path / "r")
    assert Settings(recordings_dir=tmp_path / "r", call_recordings_dir=tmp_path / "c").fs_recordings_path == str(
        (tmp_path / "c").resolve())
