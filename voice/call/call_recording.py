"""Q2 on the phone: every bridge of a caller to an operator's phone is recorded by
FreeSWITCH itself, on the caller's channel, through the call's socket.

Before ``bridge`` the session sets (``set``; facts from ``switch_ivr_async.c``
``switch_ivr_record_session_event``):

- ``RECORD_STEREO=true``: the channel's read stream (the caller) left, its write stream
  (what the caller hears: the operator) right;
- ``record_sample_rate=8000``: the file's rate whatever the codec;
- ``RECORD_BRIDGE_REQ=true``: the media bug writes only while the channel is bridged, so
  neither the ringback nor the hold music after a requeue is in the file;
- ``RECORD_MIN_SEC=1``: a file shorter than that (a bridge that never answered) is
  deleted by FreeSWITCH on close (``RECORD_DISCARDED=true`` on RECORD_STOP);

then executes ``record_session <folder>/<handoff id>-<call uuid>-<n>.wav`` (FreeSWITCH
opens the file and fires RECORD_START with ``Record-File-Path``) and, once the bridge
app returned, ``stop_record_session <same path>`` (RECORD_STOP, with
``variable_record_ms``; a hang-up closes the recording the same way). The file is then
handed to a :class:`RecordingSink` (the store, ``voice.service.StoreHandoffLine``),
which reads it from the bot's side of the shared folder.

The caller is told first: the designers' prompt ``utter_call_may_be_recorded``
(``nlu/domain/responses.yml``), played over unicast before the operator's phone rings.
Without that text in the caller's language the call is not recorded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Protocol, runtime_checkable

from bot.chat.prompts import Language
from voice.esl import EslEvent

# The designers' response the caller hears before a recorded bridge (nlu/domain/responses.yml).
RECORDING_NOTICE_PROMPT = "utter_call_may_be_recorded"


@dataclass
class CallRecordingSettings:
    enabled: bool = False
    fs_dir: str = ""  # the recordings folder as FreeSWITCH sees it (HOTLINE_FS_RECORDINGS_DIR)
    sample_rate: int = 8000
    min_seconds: int = 1  # RECORD_MIN_SEC: shorter files are deleted by FreeSWITCH
    stop_wait_s: float = 3.0  # how long RECORD_STOP may take after stop_record_session
    notice: dict[Language, str] = field(default_factory=dict)  # utter_call_may_be_recorded per language

    def variables(self) -> dict[str, str]:
        return {"RECORD_STEREO": "true", "record_sample_rate": str(self.sample_rate),
                "RECORD_BRIDGE_REQ": "true", "RECORD_MIN_SEC": str(self.min_seconds)}


@dataclass(frozen=True)
class RecordedBridge:
    """One bridge that FreeSWITCH recorded, as the call saw it end."""

    handoff_id: int
    conversation_id: str
    file_name: str
    fs_path: str  # Record-File-Path
    started_at: datetime  # the operator answered (CHANNEL_BRIDGE)
    ended_at: datetime
    operator: str | None
    extension: str | None
    record_ms: int | None  # FreeSWITCH's own count (variable_record_ms on RECORD_STOP)


@runtime_checkable
class RecordingSink(Protocol):
    """Optional on a HandoffLine: where a recorded bridge is stored. Failures are logged
    and the call goes on."""

    async def recorded(self, bridge: RecordedBridge) -> None: ...
    async def discard(self, file_name: str) -> None: ...  # a bridge that never answered


@dataclass
class RecordingInProgress:
    """``record_session`` sent for one bridge; RECORD_START/RECORD_STOP fill it in."""

    handoff_id: int
    conversation_id: str
    file_name: str
    fs_path: str
    operator: str | None
    extension: str | None
    started: bool = False
    stop_sent: bool = False
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    record_ms: int | None = None
    discarded: bool = False
    bridged_at: datetime | None = None  # CHANNEL_BRIDGE: the operator answered
    unbridged_at: datetime | None = None

    def on_event(self, event: EslEvent) -> bool:
        """RECORD_START / RECORD_STOP for this file (True when it was one)."""
        if event.name not in ("RECORD_START", "RECORD_STOP"):
            return False
        if event.headers.get("Record-File-Path") != self.fs_path:
            return False
        if event.name == "RECORD_START":
            self.started = True
            return True
        ms = event.headers.get("variable_record_ms") or ""
        self.record_ms = int(ms) if ms.isdigit() else None
        self.discarded = (event.headers.get("variable_RECORD_DISCARDED") or "").lower() == "true"
        self.stopped.set()
        return True

    def bridged(self) -> RecordedBridge | None:
        if self.bridged_at is None:
            return None
        return RecordedBridge(
            handoff_id=self.handoff_id, conversation_id=self.conversation_id, file_name=self.file_name, fs_path=self.fs_path,
            started_at=self.bridged_at, ended_at=self.unbridged_at or utcnow(), operator=self.operator,
            extension=self.extension, record_ms=self.record_ms)


def utcnow() -> datetime:
    return datetime.now(UTC)


def recording_path(settings: CallRecordingSettings, handoff_id: int, call_id: str, bridge_no: int) -> tuple[str, str]:
    """(file name, the path FreeSWITCH writes). One file per bridge: after a requeue the
    senior's part is a recording of its own, with its own operator."""
    safe_call = "".join(ch for ch in call_id if ch.isalnum() or ch == "-")[:64]
    name = f"{handoff_id}-{safe_call}-{bridge_no}.wav"
    return name, str(PurePosixPath(settings.fs_dir or ".") / name)
