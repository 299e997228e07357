"""Voice activity detection and endpointing for one call's inbound audio.

``Endpointer`` turns the caller's frames (L16le mono at 8000/16000 Hz, 20 or 30 ms from
unicast, any whole number of 10 ms really) into two events: ``SpeechStarted`` once the
caller has spoken for ``min_speech_ms`` (also the barge-in threshold) and
``SpeechEnded`` after ``end_silence_ms`` of trailing silence or at ``max_utterance_ms``.

Pure and synchronous: webrtcvad (C) classifies a 20 ms frame in microseconds, so this
runs on the event loop, frame by frame. Times are *stream* times: milliseconds of audio
fed since the first frame (or ``reset``), never a wall clock, so tests are exact.
FreeSWITCH's 0xFF comfort-noise filler (``InboundFrame.is_filler``) is silence and is
not shown to the VAD.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog
import webrtcvad

log = structlog.get_logger(__name__)

VAD_RATES = frozenset({8000, 16000, 32000, 48000})
"""Rates webrtcvad accepts."""

_SUB_FRAME_MS = (30, 20, 10)
"""Frame lengths webrtcvad accepts; longer or odd frames are cut into these."""

Classifier = Callable[[bytes, int], bool]
"""``(pcm, sample_rate) -> voiced``: webrtcvad's ``is_speech``, or a test double."""


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    aggressiveness: int = 2
    """webrtcvad mode 0–3: higher rejects more non-speech (noise, music) as silence."""
    min_speech_ms: int = 200
    """Voiced audio this long counts as the caller speaking: speech start and barge-in."""
    end_silence_ms: int = 700
    """Trailing silence that ends an utterance."""
    max_utterance_ms: int = 15000
    """An utterance is cut here, whatever the caller still says."""
    onset_gap_ms: int = 60
    """Unvoiced gaps up to this long inside a speech onset do not restart it (webrtcvad
    drops single frames inside words); longer ones do."""

    def __post_init__(self) -> None:
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError(f"aggressiveness must be 0–3, not {self.aggressiveness}")
        if min(self.min_speech_ms, self.end_silence_ms, self.max_utterance_ms) <= 0:
            raise ValueError("min_speech_ms, end_silence_ms and max_utterance_ms must be > 0")
        if self.onset_gap_ms < 0:
            raise ValueError("onset_gap_ms must be >= 0")


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_ms: float
    """Stream time the onset was confirmed (``min_speech_ms`` of speech seen): act here."""
    speech_start_ms: float
    """Stream time the first voiced frame of that speech began."""


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    at_ms: float
    """Stream time the end was decided (after the trailing silence, or at the limit)."""
    duration_ms: float
    """From the speech start to the end of its last voiced frame (to ``at_ms`` at the limit)."""
    reason: Literal["silence", "max_length"]


VadEvent = SpeechStarted | SpeechEnded


class Endpointer:
    """Speech start/end for one stream. Feed every frame, in order, filler included
    (so stream time stays true); act on the events returned."""

    def __init__(
        self,
        sample_rate: int,
        config: EndpointConfig = EndpointConfig(),
        *,
        classifier: Classifier | None = None,
    ) -> None:
        if sample_rate not in VAD_RATES:
            raise ValueError(f"webrtcvad takes {sorted(VAD_RATES)} Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self.config = config
        self._custom_classifier = classifier
        self._bytes_per_ms = sample_rate * 2 // 1000
        self.reset()

    def reset(self) -> None:
        """Forget everything (stream time restarts at 0), e.g. for a new call leg."""
        if self._custom_classifier is not None:
            self._classify: Classifier = self._custom_classifier
        else:
            # A fresh Vad: its noise estimates belong to the audio before the reset.
            self._classify = webrtcvad.Vad(self.config.aggressiveness).is_speech
        self._carry = b""
        self._t_ms = 0.0
        self.in_speech = False
        self.last_voiced_at_ms: float | None = None
        """Stream time at the end of the last voiced frame (None before any)."""
        self.speech_start_ms: float | None = None
        """Start of the current utterance while ``in_speech``."""
        self._onset_start: float | None = None
        self._onset_voiced = 0.0
        self._onset_gap = 0.0
        self._trailing_silence = 0.0
        self._utterance_voiced_end = 0.0

    @property
    def stream_ms(self) -> float:
        """Milliseconds of audio fed so far (whole 10 ms units; a partial one is carried)."""
        return self._t_ms

    def feed(self, pcm: bytes, *, filler: bool = False) -> list[VadEvent]:
        """One frame (or any run of audio); filler frames are classified as silence."""
        if len(pcm) % 2:
            raise ValueError(f"L16 frames have an even byte count, got {len(pcm)}")
        data = self._carry + pcm if self._carry else pcm
        events: list[VadEvent] = []
        pos = 0
        while True:
            left = len(data) - pos
            size = next(
                (
                    ms * self._bytes_per_ms
                    for ms in _SUB_FRAME_MS
                    if ms * self._bytes_per_ms <= left
                ),
                0,
            )
            if not size:
                break
            piece = data[pos : pos + size]
            pos += size
            voiced = not filler and self._classify(piece, self.sample_rate)
            self._step(size / self._bytes_per_ms, voiced, events)
        self._carry = data[pos:]
        return events

    def _step(self, dur_ms: float, voiced: bool, events: list[VadEvent]) -> None:
        cfg = self.config
        start = self._t_ms
        self._t_ms = now = start + dur_ms
        if voiced:
            self.last_voiced_at_ms = now
        if not self.in_speech:
            if voiced:
                if self._onset_start is None:
                    self._onset_start = start
                self._onset_voiced += dur_ms
                self._onset_gap = 0.0
                if self._onset_voiced >= cfg.min_speech_ms:
                    self.in_speech = True
                    self.speech_start_ms = self._onset_start
                    self._trailing_silence = 0.0
                    self._utterance_voiced_end = now
                    self._clear_onset()
                    assert self.speech_start_ms is not None
                    events.append(SpeechStarted(at_ms=now, speech_start_ms=self.speech_start_ms))
            elif self._onset_start is not None:
                self._onset_gap += dur_ms
                if self._onset_gap > cfg.onset_gap_ms:
                    self._clear_onset()
            return
        assert self.speech_start_ms is not None
        if voiced:
            self._trailing_silence = 0.0
            self._utterance_voiced_end = now
        else:
            self._trailing_silence += dur_ms
        if self._trailing_silence >= cfg.end_silence_ms:
            events.append(
                SpeechEnded(now, self._utterance_voiced_end - self.speech_start_ms, "silence")
            )
            self._end_utterance()
        elif now - self.speech_start_ms >= cfg.max_utterance_ms:
            events.append(SpeechEnded(now, now - self.speech_start_ms, "max_length"))
            self._end_utterance()

    def _clear_onset(self) -> None:
        self._onset_start = None
        self._onset_voiced = 0.0
        self._onset_gap = 0.0

    def _end_utterance(self) -> None:
        self.in_speech = False
        self.speech_start_ms = None
        self._trailing_silence = 0.0
        self._clear_onset()
