"""The parts every call session shares, whatever the call is for: unicast media
started and stopped with the call, the ESL event pump (keys, and channel events a
session may watch), the audio pump (VAD endpointing, a recogniser, recording), one
input queue for all of it, and playback that the caller can interrupt.

A session for one purpose (the inbound conversation in ``conversation``, with its J1
hold and bridge in ``handoff``; an outbound call in ``outbound``) subclasses
:class:`MediaSession` and reads its inputs from ``_inputs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import structlog

from bot.chat.prompts import Language
from bot.chat.service import ChatService
from voice import metrics
from voice.asr.grammar import normalise_digits
from voice.call.call_recording import CallRecordingSettings
from voice.esl import EslCallConnection, EslError, EslEvent, dtmf_from_event
from voice.media import AudioFormat, PlayResult, PortPool, UnicastConfig, UnicastEndpoint
from voice.recording import RecordingStore
from voice.vad import EndpointConfig, Endpointer, SpeechEnded, SpeechStarted

if TYPE_CHECKING:
    from voice.call.handoff import HandoffLine

log = structlog.get_logger("voice.call")


class SpeechOut(Protocol):
    """Text to L16le audio at ``rate`` (voice.tts.Speaker)."""

    def speak(self, text: str, language: Language, rate: int) -> AsyncIterator[bytes]: ...


class SpeechIn(Protocol):
    """One call's recogniser: an utterance starts with ``begin`` (the prompt's
    expectation picks a grammar) and ``end`` returns the words heard."""

    async def begin(self, expect: Mapping[str, Any]) -> None: ...
    async def feed(self, pcm: bytes) -> str | None: ...  # the partial text when it changed
    async def end(self) -> str: ...
    async def close(self) -> None: ...


RecogniserFactory = Callable[[Language, int], SpeechIn | None]


@dataclass
class CallSettings:
    fs_media_ip: str = "127.0.0.1"  # FreeSWITCH binds its end of unicast here
    handoff_extension: str = "handoff"
    handoff_context: str = "default"
    handoff_offer_s: float = 15.0  # J1: offer a return to the bot this often while on hold
    handoff_poll_s: float = 1.0  # … and ask the store this often whether an operator took the call
    bridge_answer_timeout_s: float = 60.0  # the operator's phone rings at most this long (then: the queue)
    # What the caller hears while it rings (transfer_ringback: the caller's channel is
    # answered already). China's ringback: 450 Hz, 1 s on, 4 s off.
    operator_ringback: str = "%(1000,4000,450)"
    recording_silence_ms: int = 3000  # A11: this much silence after speech ends a message
    preroll_ms: int = 300  # audio kept from before speech was confirmed, for the recogniser
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    # A short answer (a menu word, yes/no) is over sooner than a sentence: the silence
    # that ends an utterance depends on what the prompt expects (others: endpoint's).
    end_silence_ms_by_kind: dict[str, int] = field(default_factory=lambda: {"choice": 300, "digits": 600})
    unicast: UnicastConfig = field(default_factory=UnicastConfig)
    # Q2: bridges to operators' phones recorded by FreeSWITCH (voice/call/call_recording.py).
    call_recording: CallRecordingSettings = field(default_factory=CallRecordingSettings)


@dataclass
class CallDeps:
    chat: ChatService
    speech_out: SpeechOut
    media_ports: PortPool
    fs_ports: PortPool  # each call's FreeSWITCH-side unicast port must differ
    recordings: RecordingStore
    recognisers: RecogniserFactory | None = None  # None: keypad only
    settings: CallSettings = field(default_factory=CallSettings)
    handoffs: HandoffLine | None = None  # None: a handoff transfers to the queue extension at once


# ---- what reaches a session ----------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    digit: str
    at_ms: float


@dataclass(frozen=True)
class _SpeechBegan:
    at_ms: float


@dataclass(frozen=True)
class _SpeechDone:
    text: str
    at_ms: float


@dataclass(frozen=True)
class _SpeechPaused:  # VAD end without recognition (used while recording)
    at_ms: float


@dataclass(frozen=True)
class _Gone:
    reason: str


_Input = _Key | _SpeechBegan | _SpeechDone | _SpeechPaused | _Gone
Outcome = Literal["ended", "handoff", "hangup", "failed"]


class MediaSession:
    """One answered channel's media and input; subclasses say what the call is for."""

    def __init__(self, conn: EslCallConnection, deps: CallDeps) -> None:
        if conn.channel is None:
            raise EslError("call without channel data")
        self.conn = conn
        self.deps = deps
        self.channel = conn.channel
        self.call_id = self.channel.uuid
        self.fmt = AudioFormat(self.channel.read_rate, self.channel.ptime_ms)
        self.language: Language = "zh"
        self._log = log.bind(call_id=self.call_id)
        self._inputs: asyncio.Queue[_Input] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._endpointer = Endpointer(self.fmt.sample_rate, deps.settings.endpoint)
        self._preroll: deque[bytes] = deque(maxlen=max(1, deps.settings.preroll_ms // self.fmt.ptime_ms))
        self._speech_in: SpeechIn | None = None
        self._expect: Mapping[str, Any] = {}
        self._listening = False  # speech counts as input now
        self._recognising = False
        self._recording: list[bytes] | None = None  # frames kept while a message is recorded
        self._barge = asyncio.Event()
        self._barge_allowed = False
        self._ep: UnicastEndpoint | None = None
        self._fs_port: int | None = None
        self.media_stats: dict[str, int | float] = {}
        self.media_lost_reason: str | None = None  # the switch's audio stopped (or never came)

    def _now_ms(self) -> float:
        return time.monotonic() * 1000.0

    # ---- media up and down ---------------------------------------------------------------

    async def _start_media(self) -> None:
        s = self.deps.settings
        self._ep = UnicastEndpoint(
            self.fmt,
            config=s.unicast,
            ports=self.deps.media_ports,
            on_dead=self._media_lost,
            call_id=self.call_id,
        )
        ip, port = await self._ep.start()
        self._fs_port = self.deps.fs_ports.acquire()
        await self.conn.unicast(s.fs_media_ip, self._fs_port, ip, port)
        if self.deps.recognisers is not None:
            self._speech_in = self.deps.recognisers(self.language, self.fmt.sample_rate)

    def _media_lost(self, reason: str) -> None:
        self.media_lost_reason = reason
        self._inputs.put_nowait(_Gone(f"media {reason}"))

    async def _stop_media(self) -> None:
        if self._speech_in is not None:
            with contextlib.suppress(Exception):
                await self._speech_in.close()
        if self._ep is not None:
            self.media_stats = self._ep.stats()
            await self._ep.close()
        if self._fs_port is not None:
            self.deps.fs_ports.release(self._fs_port)
            self._fs_port = None

    def _start_pumps(self) -> list[asyncio.Task[None]]:
        return [
            asyncio.create_task(self._pump_events(), name=f"esl-events-{self.call_id}"),
            asyncio.create_task(self._pump_audio(), name=f"audio-{self.call_id}"),
        ]

    @staticmethod
    async def _stop_pumps(tasks: list[asyncio.Task[None]]) -> None:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    # ---- inputs ----------------------------------------------------------------------

    async def _next_input(self, timeout: float | None, playback: asyncio.Task[Any]) -> _Input | None:
        """The next input; None once ``timeout`` passed or the prompt finished first."""
        if not self._inputs.empty():
            return self._inputs.get_nowait()
        get = asyncio.ensure_future(self._inputs.get())
        waiters: set[asyncio.Future[Any]] = {get}
        if not playback.done():
            waiters.add(playback)
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not get.done():
                get.cancel()  # Queue.get leaves the item queued when cancelled before taking it
        return get.result() if get.done() and not get.cancelled() else None

    def _barge_in(self, by: str) -> None:
        if self._barge_allowed and not self._barge.is_set():
            self._barge.set()
            metrics.BARGE_INS.labels(by).inc()

    def _drain_stale_inputs(self) -> None:
        """Keys and speech left from the previous turn were answers to it, not to this one."""
        while not self._inputs.empty():
            item = self._inputs.get_nowait()
            if isinstance(item, _Gone):
                self._gone.set()
                self._inputs.put_nowait(item)
                return

    async def _await_playback_or_gone(self, playback: asyncio.Task[None]) -> bool:
        gone = asyncio.create_task(self._gone.wait())
        try:
            await asyncio.wait({playback, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not playback.done():
            await self._finish_playback(playback)
            return False
        return not self._gone.is_set()

    async def _finish_playback(self, playback: asyncio.Task[None]) -> None:
        if not playback.done():
            self._barge.set()  # the turn is over: stop talking
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await playback

    # ---- talking -------------------------------------------------------------------

    async def _say(self, text: str, *, cancel: asyncio.Event | None = None) -> PlayResult:
        """Speak ``text`` in the call's language; setting ``cancel`` (barge-in) stops it."""
        assert self._ep is not None
        return await self._ep.play_stream(
            self.deps.speech_out.speak(text, self.language, self.fmt.sample_rate), cancel=cancel)

    # ---- listening -----------------------------------------------------------------

    async def _pump_events(self) -> None:
        try:
            async for item in self.conn.events():
                if not isinstance(item, EslEvent):
                    continue
                if (press := dtmf_from_event(item)) is not None:
                    self._inputs.put_nowait(_Key(press.digit, self._now_ms()))
                else:
                    self._on_channel_event(item)
        finally:
            self._inputs.put_nowait(_Gone("hangup"))

    def _on_channel_event(self, item: EslEvent) -> None:
        """An event on the call other than a key: a session that watches some (the bridge) says so."""

    async def _feed(self, pcm: bytes) -> None:
        if self._speech_in is not None and (partial := await self._speech_in.feed(pcm)) is not None:
            self._on_partial(partial)

    def _on_partial(self, partial: str) -> None:
        """A number heard whole (at least the prompt's minimum of digits) needs no long
        pause after it: end the utterance after the short (menu) silence instead."""
        expect = self._expect
        if expect.get("kind") != "digits":
            return
        digits = sum(ch.isdigit() for ch in normalise_digits(partial, self.language))
        wanted = int(expect.get("min_digits") or 0)
        cfg = self.deps.settings
        short = cfg.end_silence_ms_by_kind.get("choice", cfg.endpoint.end_silence_ms)
        if wanted and digits >= wanted and self._endpointer.config.end_silence_ms > short:
            self._endpointer.config = dataclasses.replace(self._endpointer.config, end_silence_ms=short)

    async def _pump_audio(self) -> None:
        ep = self._ep
        assert ep is not None
        async for frame in ep.frames():
            pcm = frame.pcm
            if self._recording is not None:
                self._recording.append(pcm)
            frame_fed = False
            for event in self._endpointer.feed(pcm, filler=frame.is_filler):
                now = self._now_ms()
                if isinstance(event, SpeechStarted):
                    if self._recording is not None:
                        self._inputs.put_nowait(_SpeechBegan(now))
                    elif self._listening and self._speech_in is not None and not self._recognising:
                        await self._speech_in.begin(self._expect)
                        for earlier in self._preroll:
                            await self._feed(earlier)
                        self._recognising, frame_fed = True, True
                        self._inputs.put_nowait(_SpeechBegan(now))
                elif isinstance(event, SpeechEnded):
                    if self._recognising and self._speech_in is not None:
                        if not frame_fed:
                            await self._feed(pcm)
                        frame_fed = True
                        self._recognising = False
                        started = time.monotonic()
                        text = await self._speech_in.end()
                        metrics.ASR_FINAL_SECONDS.observe(time.monotonic() - started)
                        self._inputs.put_nowait(_SpeechDone(text, self._now_ms()))
                    elif self._recording is not None:
                        self._inputs.put_nowait(_SpeechPaused(now))
            if self._recognising and not frame_fed:
                await self._feed(pcm)
            self._preroll.append(pcm)


async def _observe_first(chunks: AsyncIterator[bytes], on_first: Callable[[], None]) -> AsyncIterator[bytes]:
    first = True
    async for chunk in chunks:
        if first:
            on_first()
            first = False
        yield chunk


def _tone(rate: int, hz: float = 1000.0, ms: int = 300) -> bytes:
    """The short tone before a recording starts (A11)."""
    n = rate * ms // 1000
    t = np.arange(n) / rate
    wave = 0.3 * np.sin(2 * math.pi * hz * t)
    return (wave * 32767).astype("<i2").tobytes()
