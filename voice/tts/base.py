"""What every TTS engine offers the Speaker, and the one error type."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.chat.prompts import Language

__all__ = ["Language", "Synthesizer", "TtsError"]


class TtsError(Exception):
    """Synthesis failed (engine down, timed out, bad audio) or TTS is misconfigured."""


@runtime_checkable
class Synthesizer(Protocol):
    """One voice. ``synthesize`` turns one sentence into L16le mono PCM at
    ``sample_rate`` and raises ``TtsError`` on any failure."""

    voice_id: str  # stable: part of every cache key, e.g. "piper:en_US-joe-medium"
    sample_rate: int  # native output rate

    async def synthesize(self, text: str) -> bytes: ...
