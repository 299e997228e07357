"""Doubles for the call session's collaborators, for tests that are about the phone
channel's mechanics (timing, barge-in, keys, recording), not about the dialogue:

* ``ScriptedDialogue`` answers as the Rasa hotline channel does (prompt name, text,
  custom payload per utterance) from a table: input message → prompts.
* ``ToneSpeech`` "speaks" each text as a tone of fixed length and records the texts
  (the real Piper/espeak paths have their own tests).
* ``ScriptedSpeechIn`` returns the next scripted transcript for each utterance the
  real VAD found (the real Vosk path has its own tests).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.chat.dialogue import BotUtterance, DialogueTurn, DialogueUnavailable

Reply = list[tuple[str, str] | tuple[str, str, dict[str, Any]]]


@dataclass
class ScriptedDialogue:
    """``routes`` maps an input message (exact, or a callable test) to the prompts said."""

    routes: list[tuple[str | Callable[[str], bool], Reply]]
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    down: bool = False
    language: str = "zh"

    async def send(self, conversation_id: str, message: str, metadata: dict[str, Any],
                   message_id: str | None = None) -> DialogueTurn:
        self.received.append((message, dict(metadata)))
        if self.down:
            raise DialogueUnavailable("rasa unreachable: ClientConnectorError")
        for match, reply in self.routes:
            if (match(message) if callable(match) else match == message):
                utterances = [BotUtterance(r[0], r[1], r[2] if len(r) > 2 else None) for r in reply]  # type: ignore[misc]
                return DialogueTurn(utterances, self.language)
        return DialogueTurn([BotUtterance("utter_main_menu", "主菜单", None)], self.language)

    async def ready(self) -> bool:
        return not self.down

    @property
    def messages(self) -> list[str]:
        return [m for m, _ in self.received]


@dataclass
class ToneSpeech:
    """Each text → ``ms`` of a 440 Hz tone (loud, so the double can see where prompts are)."""

    ms: int = 300
    spoken: list[tuple[float, str]] = field(default_factory=list)
    lengths: Mapping[str, int] = field(default_factory=dict)  # text → ms, overrides

    async def speak(self, text: str, language: str, rate: int) -> AsyncIterator[bytes]:
        self.spoken.append((time.monotonic(), text))
        n = rate * self.lengths.get(text, self.ms) // 1000
        t = np.arange(n) / rate
        pcm = (0.3 * np.sin(2 * math.pi * 440 * t) * 32767).astype("<i2").tobytes()
        step = rate // 10 * 2  # 100 ms chunks, as a streaming engine would yield them
        for i in range(0, len(pcm), step):
            yield pcm[i : i + step]
            await asyncio.sleep(0)

    @property
    def texts(self) -> list[str]:
        return [t for _, t in self.spoken]


@dataclass
class ScriptedSpeechIn:
    transcripts: list[str]
    began: list[Mapping[str, Any]] = field(default_factory=list)
    fed_bytes: int = 0
    closed: bool = False

    async def begin(self, expect: Mapping[str, Any]) -> None:
        self.began.append(dict(expect))

    partials: list[str] = field(default_factory=list)  # returned by feed, one per call, if any

    async def feed(self, pcm: bytes) -> str | None:
        self.fed_bytes += len(pcm)
        return self.partials.pop(0) if self.partials else None

    async def end(self) -> str:
        return self.transcripts.pop(0) if self.transcripts else ""

    async def close(self) -> None:
        self.closed = True


def voiced_pcm(rate: int = 8000, ms: int = 800) -> bytes:
    """A vowel-like signal (a 140 Hz glottal pulse train through two formants) that VAD
    takes for speech; a pure tone it may not."""
    n = rate * ms // 1000
    t = np.arange(n) / rate
    f0 = 140 * (1 + 0.05 * np.sin(2 * math.pi * 3 * t))
    phase = 2 * math.pi * np.cumsum(f0) / rate
    sig = sum((1 / k) * np.sin(k * phase) for k in range(1, 25))
    for formant in (700, 1200, 2500):
        sig = sig + 0.3 * np.sin(2 * math.pi * formant * t) * np.sin(phase) ** 2
    sig = sig / np.max(np.abs(sig)) * 0.5 * (1 + 0.3 * np.sin(2 * math.pi * 4 * t))
    return (sig * 32767 * 0.8).astype("<i2").tobytes()


async def until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "the condition") -> None:
    """Wait (polling) until ``cond()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
