"""Voice messages (A11): 8 kHz mono WAV files under one folder, named by recording id.

The call session writes them; the bot's API attaches one to a ticket when the caller
confirms it (V10) and serves it only to an authorised user."""

from __future__ import annotations

import asyncio
import os
import re
import wave
from dataclasses import dataclass
from pathlib import Path

from voice.media import resample_pcm

STORED_RATE = 8000  # phone audio: storing more would only add size
_ID = re.compile(r"^[A-Za-z0-9-]{1,100}$")


class BadRecordingId(ValueError):
    pass


@dataclass(frozen=True)
class Recording:
    id: str
    path: Path
    seconds: float


class RecordingStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_of(self, recording_id: str) -> Path:
        """The file of a recording id; ids are checked so none can name a path outside."""
        if not _ID.match(recording_id):
            raise BadRecordingId(recording_id)
        return self.folder / f"{recording_id}.wav"

    async def save(self, recording_id: str, pcm: bytes, rate: int) -> Recording:
        path = self.path_of(recording_id)
        return await asyncio.to_thread(self._write, recording_id, path, pcm, rate)

    def _write(self, recording_id: str, path: Path, pcm: bytes, rate: int) -> Recording:
        if rate != STORED_RATE:
            pcm = resample_pcm(pcm, rate, STORED_RATE)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(STORED_RATE)
            w.writeframes(pcm)
        os.replace(tmp, path)  # never a half-written message under its real name
        return Recording(recording_id, path, len(pcm) / 2 / STORED_RATE)

    async def load_pcm(self, path: Path, rate: int) -> bytes:
        return await asyncio.to_thread(self._read, path, rate)

    @staticmethod
    def _read(path: Path, rate: int) -> bytes:
        with wave.open(str(path), "rb") as w:
            src_rate = w.getframerate()
            pcm = w.readframes(w.getnframes())
        return pcm if src_rate == rate else resample_pcm(pcm, src_rate, rate)
