"""One phone call: FreeSWITCH's ESL socket and unicast media on one side, the same
dialogue as web chat (``ChatService``) on the other.

Per turn the session plays the bot's prompts (TTS streamed over unicast) and collects
the input the last prompt expects (design.md §3.3): keys (``voice.dtmf``), speech
(VAD endpointing + a recogniser), a recording (A11), or silence past the no-input
timeout (``/no_input``). The first of keys or speech wins; either stops a prompt that
allows barge-in. Conversation id = call UUID; the caller's number (ANI) goes to the
dialogue as metadata. A hang-up at any step ends the conversation (the chat service
records "abandoned at step X" unless an outcome came later); confirmed data was stored
by the actions before the prompt that says so was played.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import math
import re
import time
import uuid as uuidlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import structlog

from bot.chat.dialogue import DialogueUnavailable
from bot.chat.prompts import Language
from bot.chat.service import ChatInput, ChatReply, ChatService
from voice import metrics
from voice.asr.grammar import normalise_digits
from voice.dtmf import DigitCollector, KeyInput, KeyRules
from voice.esl import EslCallConnection, EslError, EslEvent, dtmf_from_event
from voice.media import AudioFormat, PortPool, UnicastConfig, UnicastEndpoint
from voice.recording import RecordingStore
from voice.vad import EndpointConfig, Endpointer, SpeechEnded, SpeechStarted

log = structlog.get_logger(__name__)

LISTENING_KINDS = frozenset({"digits", "choice", "text"})
# Said when the dialogue itself cannot go on (Rasa or the action server down): the
# designers' prompts are out of reach then, so this one lives with the channel.
APOLOGY: dict[Language, str] = {
    "zh": "对不起，系统暂时无法处理您的申告，正在为您转接人工服务，请稍候。",
    "en": "Sorry, the system cannot take your report right now. Transferring you to an operator, please hold.",
}
VOICE_MESSAGE_DECISION_PROMPT = "utter_ask_voice_message_decision"
# J1: said every ``handoff_offer_s`` while the caller waits for a free seat.
HOLD_OFFER: dict[Language, str] = {
    "zh": "返回自动服务请按1，继续等待请不要挂机。",
    "en": "To go back to the automated service, press 1. To keep waiting, please stay on the line.",
}
RETURN_KEY = "1"
OPERATOR_EXTENSION = re.compile(r"[0-9]{2,8}")  # a directory account, e.g. 2001 → user/2001
BRIDGE_GRACE_S = 5.0  # past call_timeout, how long we still wait for FreeSWITCH's NO_ANSWER


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


@dataclass(frozen=True)
class HoldStatus:
    """A waiting call's handoff as the store has it."""

    state: str  # queued | taken | abandoned | returned | done
    extension: str | None = None  # the taker's SIP phone, once taken
    operator: str | None = None  # the taker's username


class HandoffLine(Protocol):
    """J1 for a call on hold: the operator queue in the store (voice.service.StoreHandoffLine).
    Any exception means the store is out of reach: the call falls back to a transfer."""

    async def status(self, handoff_id: int) -> HoldStatus: ...
    async def offered(self, handoff_id: int) -> None: ...
    async def return_to_bot(self, handoff_id: int) -> bool: ...  # False: an operator took it first
    async def abandon(self, handoff_id: int, reason: str) -> float | None: ...  # seconds waited


@runtime_checkable
class HandoffEnding(Protocol):
    """J2 on the phone, optional on a :class:`HandoffLine`: how a bridged call's handoff
    ends in the store, so the desk does not show it taken after the call is over.
    Failures are logged and the call goes on."""

    async def operator_finished(self, handoff_id: int, operator: str | None) -> None: ...  # taken → done
    async def caller_left(self, handoff_id: int, reason: str) -> None: ...  # taken → done (queued → abandoned)


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


# ---- what reaches a turn -----------------------------------------------------------


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
_Requeued = Literal["requeued"]  # J3: the desk sent the caller back to a queue while bridged


class CallSession:
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
        self._recording: list[bytes] | None = None
        self._last_recording: Path | None = None
        self._recordings_made = 0
        self._barge = asyncio.Event()
        self._barge_allowed = False
        self._interim: list[asyncio.Task[None]] = []
        self._input_done: tuple[float, str] | None = None  # when the caller's input ended, and its kind
        self._dialogue_s = 0.0
        self.turns: list[dict[str, Any]] = []  # per turn: input kind, dialogue time, input end → first audio
        self._ep: UnicastEndpoint | None = None
        self._fs_port: int | None = None
        self.outcome: Outcome = "hangup"
        self.media_stats: dict[str, int | float] = {}
        self._bridge_result: asyncio.Future[str] | None = None  # "bridged" or "failed: <disposition>"
        self._operator_leg: str | None = None  # the bridged operator's channel (Other-Leg-Unique-ID)
        self._bridge_over = asyncio.Event()  # the answered bridge's app completed: the caller is parked again
        self._bridge_end_hangup = False  # … and the caller's channel was hung up by then
        self._handoff_counted = False
        self.hold: dict[str, Any] = {}  # J1: what happened on hold (offers, waited_s, ended)

    def _now_ms(self) -> float:
        return time.monotonic() * 1000.0

    # ---- the call from answer to the end --------------------------------------------

    async def run(self) -> Outcome:
        metrics.CALLS_ACTIVE.inc()
        started = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._start_media()
            tasks = [
                asyncio.create_task(self._pump_events(), name=f"esl-events-{self.call_id}"),
                asyncio.create_task(self._pump_audio(), name=f"audio-{self.call_id}"),
            ]
            self._log.info("call.started", rate=self.fmt.sample_rate, ptime_ms=self.fmt.ptime_ms,
                           speech=self._speech_in is not None)
            self.outcome = await self._converse()
        except asyncio.CancelledError:
            self.outcome = "hangup"
            raise
        finally:
            if self.outcome in ("hangup", "failed"):
                # Shielded: FreeSWITCH may be cancelling us; the outcome must still be stored.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.deps.chat.end(self.call_id, reason="hangup"))
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await self._stop_media()
            metrics.CALLS_ACTIVE.dec()
            metrics.CALLS.labels(self.outcome).inc()
            self._log.info("call.ended", outcome=self.outcome, seconds=round(time.monotonic() - started, 1))
        return self.outcome

    async def _start_media(self) -> None:
        s = self.deps.settings
        self._ep = UnicastEndpoint(
            self.fmt,
            config=s.unicast,
            ports=self.deps.media_ports,
            on_dead=lambda reason: self._inputs.put_nowait(_Gone(f"media {reason}")),
            call_id=self.call_id,
        )
        ip, port = await self._ep.start()
        self._fs_port = self.deps.fs_ports.acquire()
        await self.conn.unicast(s.fs_media_ip, self._fs_port, ip, port)
        if self.deps.recognisers is not None:
            self._speech_in = self.deps.recognisers(self.language, self.fmt.sample_rate)

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

    async def _converse(self) -> Outcome:
        chat = self.deps.chat
        metadata = {"caller_number": self.channel.caller_id_number, "call_id": self.call_id}
        chat_input = ChatInput(event="start", metadata=metadata)
        while True:
            try:
                # Shielded: a hang-up during a turn must not cut off the store writes of it.
                asked = time.monotonic()
                reply = await asyncio.shield(chat.turn(self.call_id, chat_input, on_progress=self._say_now))
                self._dialogue_s = time.monotonic() - asked
                metrics.DIALOGUE_SECONDS.observe(self._dialogue_s)
            except DialogueUnavailable as exc:
                self._log.error("call.dialogue_unavailable", error=str(exc))
                metrics.DIALOGUE_FAILURES.inc()
                await self._apologise_and_transfer(str(exc))
                return "failed"
            self._switch_language(reply.language)
            if reply.ended:
                await self._present(reply, collect=False)
                if self._gone.is_set():
                    return "hangup"
                if reply.handoff is not None:
                    after = await self._wait_for_operator(reply.handoff)
                    if isinstance(after, ChatInput):  # J1: back to the bot
                        chat_input = after
                        continue
                    return after
                with contextlib.suppress(EslError):
                    await self.conn.hangup()
                return "ended"
            next_input = await self._present(reply, collect=True)
            if next_input is None:
                return "hangup"
            chat_input = next_input
            self._input_done = (time.monotonic(), _input_kind(chat_input))

    async def _say_now(self, messages: list[dict[str, Any]]) -> None:
        """A8: "please wait" is heard while the line test runs, not after it."""
        self._interim.append(asyncio.create_task(self._play_messages(messages, recording=False, interim=True)))

    def _switch_language(self, language: Language) -> None:
        if language == self.language:
            return
        self.language = language
        if self.deps.recognisers is not None:
            old = self._speech_in
            self._speech_in = self.deps.recognisers(language, self.fmt.sample_rate)
            if old is not None:
                asyncio.get_running_loop().create_task(old.close())

    # ---- one turn: prompts out, input in ------------------------------------------

    async def _present(self, reply: ChatReply, *, collect: bool) -> ChatInput | None:
        """Play the reply's prompts; when ``collect``, return the caller's answer to the
        last one (None if the caller went away)."""
        expect = reply.expect
        kind = str(expect.get("kind") or "none")
        if collect and kind == "none":
            # The dialogue waits for the caller after an announcement: any answer will do.
            expect = {**expect, "kind": "text"}
            kind = "text"
        self._expect = expect
        cfg = self.deps.settings
        self._endpointer.config = dataclasses.replace(
            cfg.endpoint, end_silence_ms=cfg.end_silence_ms_by_kind.get(kind, cfg.endpoint.end_silence_ms)
        )
        self._drain_stale_inputs()
        self._barge = asyncio.Event()  # this turn's: the last turn's prompt may still be stopping
        recording = collect and kind == "recording"
        self._listening = collect and kind in LISTENING_KINDS and self._speech_in is not None
        collector = DigitCollector(KeyRules.from_expect(expect) if collect else KeyRules("none"))
        playback = asyncio.create_task(self._play_messages(reply.messages[reply.reported:], recording=recording))
        if not collect:
            await self._await_playback_or_gone(playback)
            return None
        if recording:
            return await self._collect_recording(playback, collector, expect)
        return await self._collect(playback, collector, expect)

    async def _collect(
        self, playback: asyncio.Task[None], collector: DigitCollector, expect: Mapping[str, Any]
    ) -> ChatInput | None:
        no_input_ms = float(expect.get("no_input_timeout_ms") or 10000)
        mode: Literal["keys", "speech"] | None = None
        played_at: float | None = None
        result: ChatInput | None = None
        keys_done: KeyInput | None = None
        try:
            while result is None:
                now = self._now_ms()
                if played_at is None and playback.done():
                    played_at = now
                    if keys_done is not None:  # typed ahead during a prompt that could not be interrupted
                        result = ChatInput(dtmf=keys_done.digits)
                        break
                deadlines = []
                if played_at is not None and mode is None:
                    deadlines.append(played_at + no_input_ms)
                if (d := collector.deadline_ms()) is not None and played_at is not None:
                    deadlines.append(d)
                timeout = None if not deadlines else max(0.0, (min(deadlines) - now) / 1000)
                item = await self._next_input(timeout, playback)
                if item is None:  # a deadline passed, or the prompt ended
                    now = self._now_ms()
                    if played_at is None:
                        continue
                    if mode is None and now >= played_at + no_input_ms:
                        metrics.NO_INPUTS.inc()
                        result = ChatInput(event="no_input")
                    elif mode == "keys" and (k := collector.expire(now)) is not None:
                        result = ChatInput(event="no_input") if k.reason == "no_input" else ChatInput(dtmf=k.digits)
                    continue
                if isinstance(item, _Gone):
                    self._log.info("call.gone", reason=item.reason)
                    self._gone.set()
                    return None
                if isinstance(item, _Key) and mode in (None, "keys"):
                    mode = "keys"
                    self._barge_in("key")
                    k = collector.press(item.digit, item.at_ms)
                    if k is not None:
                        if playback.done() or self._barge.is_set():  # done, or being stopped
                            result = ChatInput(dtmf=k.digits)
                        else:
                            keys_done = k
                elif isinstance(item, _SpeechBegan) and mode is None and self._listening:
                    mode = "speech"
                    self._barge_in("speech")
                elif isinstance(item, _SpeechDone) and mode == "speech":
                    if item.text.strip():
                        result = ChatInput(text=item.text.strip())
                    else:
                        metrics.NO_MATCHES.inc()
                        result = ChatInput(event="no_input")
        finally:
            self._listening = False
            if not playback.done():
                # Stop it, but don't wait for its last frame slot: the dialogue turn starts
                # now, and the next prompt waits for this one (_play_messages).
                self._barge.set()
                self._interim.append(playback)
        return result

    async def _next_input(self, timeout: float | None, playback: asyncio.Task[None]) -> _Input | None:
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

    async def _collect_recording(
        self, playback: asyncio.Task[None], collector: DigitCollector, expect: Mapping[str, Any]
    ) -> ChatInput | None:
        """A11 V8: record from the end of the prompt (and its tone) until ``#``, silence
        after speech, or the maximum length. Nothing said → ``/no_input``."""
        s = self.deps.settings
        if not await self._await_playback_or_gone(playback):
            return None
        no_input_ms = float(expect.get("no_input_timeout_ms") or 10000)
        max_ms = float(expect.get("max_seconds") or 60) * 1000
        start = self._now_ms()
        self._recording = []
        spoke = False
        last_voice_end: float | None = None
        in_speech = False
        ended_by = "max_length"
        try:
            while True:
                now = self._now_ms()
                deadlines = [start + max_ms]
                if not spoke:
                    deadlines.append(start + no_input_ms)
                elif not in_speech and last_voice_end is not None:
                    deadlines.append(last_voice_end + s.recording_silence_ms)
                try:
                    item = await asyncio.wait_for(self._inputs.get(), max(0.0, (min(deadlines) - now) / 1000))
                except TimeoutError:
                    now = self._now_ms()
                    if now >= start + max_ms:
                        ended_by = "max_length"
                    elif not spoke:
                        metrics.NO_INPUTS.inc()
                        return ChatInput(event="no_input")
                    else:
                        ended_by = "silence"
                    break
                if isinstance(item, _Gone):
                    self._gone.set()
                    return None
                if isinstance(item, _Key) and collector.press(item.digit, item.at_ms) is not None:
                    ended_by = "key"
                    break
                if isinstance(item, _SpeechBegan):
                    spoke, in_speech = True, True
                elif isinstance(item, (_SpeechPaused, _SpeechDone)):
                    in_speech, last_voice_end = False, item.at_ms
            frames = self._recording
        finally:
            self._recording = None
        if not spoke and ended_by == "key":
            return ChatInput(event="no_input")
        recording = await self.deps.recordings.save(
            self._next_recording_id(), b"".join(frames), self.fmt.sample_rate
        )
        self._last_recording = recording.path
        self._log.info("call.recorded", recording_id=recording.id, seconds=round(recording.seconds, 1), ended_by=ended_by)
        return ChatInput(event="recorded", recording_id=recording.id)

    def _next_recording_id(self) -> str:
        self._recordings_made += 1
        return f"{self.call_id}-{self._recordings_made}-{uuidlib.uuid4().hex[:6]}"

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

    async def _play_messages(self, messages: list[dict[str, Any]], *, recording: bool, interim: bool = False) -> None:
        ep = self._ep
        assert ep is not None
        barge = self._barge
        if not interim:
            # What was said during an A8 wait comes first, whole; a prompt stopped by
            # barge-in has ended by now.
            while self._interim:
                with contextlib.suppress(Exception):
                    await self._interim.pop(0)
        turn_started = time.monotonic()
        first = True
        for message in messages:
            if (barge.is_set() and not interim) or self._gone.is_set():
                return
            self._barge_allowed = not interim and bool((message.get("expect") or {}).get("barge_in", True))
            if message.get("prompt") == VOICE_MESSAGE_DECISION_PROMPT and self._last_recording is not None:
                # A11/V10: the caller hears the message before deciding on it.
                await self._play_recording(self._last_recording, barge)
            text = str(message.get("text") or "")
            if not text:
                continue
            texts = [text]
            hint = (message.get("expect") or {}).get("speech_hint")
            if hint and self._speech_in is not None:
                # Only a call that understands speech invites it (prompts.yml speech_hints),
                # said after the prompt; keypad-only calls hear "press" and nothing else.
                texts.append(str(hint))
            for said in texts:
                chunks = self.deps.speech_out.speak(said, self.language, self.fmt.sample_rate)
                if first:
                    chunks = _observe_first(chunks, lambda: self._first_audio(turn_started))
                    first = False
                result = await ep.play_stream(chunks, cancel=barge if self._barge_allowed else None)
                if result.error:
                    # After a hang-up the endpoint is closed under the prompt: expected, not a fault.
                    quiet = self._gone.is_set() or result.error in ("endpoint closed", "stream dead")
                    (self._log.debug if quiet else self._log.warning)("call.play_failed", error=result.error)
                if result.cancelled or self._gone.is_set():
                    return
        self._barge_allowed = False
        if recording:
            await ep.play(_tone(self.fmt.sample_rate))

    def _first_audio(self, turn_started: float) -> None:
        now = time.monotonic()
        metrics.TTS_FIRST_AUDIO.observe(now - turn_started)
        if self._input_done is not None:
            at, kind = self._input_done
            metrics.TURN_SECONDS.labels(kind).observe(now - at)
            self.turns.append({"input": kind, "dialogue_ms": round(self._dialogue_s * 1000, 1),
                               "first_audio_ms": round((now - at) * 1000, 1)})
            self._log.info("call.turn", **self.turns[-1])
            self._input_done = None

    async def _play_recording(self, path: Path, cancel: asyncio.Event) -> None:
        assert self._ep is not None
        pcm = await self.deps.recordings.load_pcm(path, self.fmt.sample_rate)
        await self._ep.play(pcm, cancel=cancel)

    async def _apologise_and_transfer(self, reason: str) -> None:
        assert self._ep is not None
        self._barge_allowed = False
        await self._ep.play_stream(self.deps.speech_out.speak(APOLOGY[self.language], self.language, self.fmt.sample_rate))
        await self._transfer({"reason": "system_unavailable", "conversation_id": self.call_id, "detail": reason})

    def _handoff_variables(self, handoff: Mapping[str, Any]) -> dict[str, str]:
        """The context the operator's side gets as channel variables."""
        variables = {
            "hotline_conversation_id": self.call_id,
            "hotline_handoff_reason": str(handoff.get("reason") or "caller_asked"),
        }
        for key, var in (("handoff_id", "hotline_handoff_id"), ("ticket_id", "hotline_ticket_id"),
                         ("fault_number", "hotline_fault_number")):
            if handoff.get(key):
                variables[var] = str(handoff[key])
        return variables

    async def _transfer(self, handoff: Mapping[str, Any]) -> None:
        """Operator queue with the context as channel variables (freeswitch/dialplan/default.xml)."""
        s = self.deps.settings
        variables = self._handoff_variables(handoff)
        try:
            await self.conn.transfer(s.handoff_extension, s.handoff_context, variables=variables)
            metrics.HANDOFFS.labels(variables["hotline_handoff_reason"]).inc()
        except EslError as exc:
            self._log.error("call.transfer_failed", error=str(exc))

    # ---- J1: waiting for a free seat ---------------------------------------------------

    async def _wait_for_operator(self, handoff: Mapping[str, Any]) -> Outcome | ChatInput:
        """Hold music while the caller waits; every ``handoff_offer_s`` the offer to go
        back to the bot (key 1 → ``/return_to_bot``, the dialogue goes on at A2). An
        operator takes the call → bridged to their phone; a hang-up → abandoned with the
        wait. Without the store (none configured, or out of reach) → today's transfer."""
        line = self.deps.handoffs
        handoff_id = handoff.get("handoff_id")
        if line is None or not isinstance(handoff_id, int) or isinstance(handoff_id, bool):
            await self._transfer(handoff)
            return "handoff"
        s = self.deps.settings
        started = time.monotonic()
        next_offer = started + s.handoff_offer_s
        next_poll = started
        offers = 0
        self.hold = {"handoff_id": handoff_id, "offers": 0, "bridges": 0}
        self._drain_stale_inputs()
        hold = _Hold(self)
        self._log.info("call.on_hold", handoff_id=handoff_id)
        try:
            while True:
                now = time.monotonic()
                if now >= next_poll:
                    try:
                        status = await line.status(handoff_id)
                    except Exception as exc:  # noqa: BLE001 - no store: the queue extension still works
                        self._log.error("call.hold_store_unreachable", error=str(exc))
                        await hold.stop()
                        await self._transfer(handoff)
                        return "handoff"
                    next_poll = time.monotonic() + s.handoff_poll_s
                    if status.state == "taken":
                        await hold.stop()
                        self.hold.update(waited_s=round(time.monotonic() - started, 1), ended="taken",
                                         operator=status.operator)
                        after = await self._bridge(handoff, status)
                        if after != "requeued":
                            return after
                        # J3: the desk sent the caller to another queue (a senior): on hold
                        # again for the same handoff, until someone there takes it.
                        self.hold.update(ended=None, requeued=self.hold.get("requeued", 0) + 1)
                        self._drain_stale_inputs()  # keys pressed to the operator were for them
                        if self._gone.is_set():
                            return "hangup"
                        hold = _Hold(self)
                        next_offer = time.monotonic() + s.handoff_offer_s
                        next_poll = time.monotonic() + s.handoff_poll_s
                        continue
                    if status.state != "queued":  # ended elsewhere: the queue extension decides
                        await hold.stop()
                        await self._transfer(handoff)
                        return "handoff"
                item: _Input | None = None
                if now >= next_offer:
                    await hold.stop()
                    offers += 1
                    self.hold["offers"] = offers
                    with contextlib.suppress(Exception):
                        await line.offered(handoff_id)
                    item = await self._offer_return()
                    next_offer = time.monotonic() + s.handoff_offer_s
                    hold = _Hold(self)
                if item is None:
                    timeout = max(0.0, min(next_poll, next_offer) - time.monotonic())
                    try:
                        item = await asyncio.wait_for(self._inputs.get(), timeout)
                    except TimeoutError:
                        continue
                if isinstance(item, _Gone):
                    self._gone.set()
                    await hold.stop()
                    waited = time.monotonic() - started
                    self.hold.update(waited_s=round(waited, 1), ended="abandoned")
                    self._log.info("call.hold_abandoned", handoff_id=handoff_id, waited_s=round(waited, 1))
                    with contextlib.suppress(Exception):
                        # Shielded: the hang-up may be cancelling us; the wait must still be stored.
                        stored = await asyncio.shield(line.abandon(handoff_id, "hangup"))
                        if stored is not None:  # the whole wait, from joining the queue
                            self.hold["waited_s"] = round(stored, 1)
                    return "hangup"
                if isinstance(item, _Key) and item.digit == RETURN_KEY:
                    try:
                        back = await line.return_to_bot(handoff_id)
                    except Exception as exc:  # noqa: BLE001
                        self._log.error("call.hold_store_unreachable", error=str(exc))
                        await hold.stop()
                        await self._transfer(handoff)
                        return "handoff"
                    if back:
                        await hold.stop()
                        self.hold.update(waited_s=round(time.monotonic() - started, 1), ended="returned")
                        self._log.info("call.hold_returned", handoff_id=handoff_id, offers=offers)
                        return ChatInput(event="return_to_bot")
                    next_poll = time.monotonic()  # an operator took it a moment earlier: bridge
        finally:
            await hold.stop()

    async def _offer_return(self) -> _Input | None:
        """Say the offer; a key (or a hang-up) stops it and is returned."""
        ep = self._ep
        assert ep is not None
        cancel = asyncio.Event()
        chunks = self.deps.speech_out.speak(HOLD_OFFER[self.language], self.language, self.fmt.sample_rate)

        async def say() -> None:
            await ep.play_stream(chunks, cancel=cancel)

        playback = asyncio.create_task(say())
        item = await self._next_input(None, playback)
        if item is not None:
            cancel.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await playback
        return item

    async def _bridge(self, handoff: Mapping[str, Any], status: HoldStatus) -> Outcome | _Requeued:
        """J1 → J2 on the phone: bridge the caller to the operator's phone with the context
        as (exported) channel variables, and stay with the call while it is bridged
        (``_while_bridged``). No extension, or the phone does not answer → the queue
        extension, as before."""
        extension = (status.extension or "").strip().removeprefix("user/")
        if not OPERATOR_EXTENSION.fullmatch(extension):
            # Only a directory account (freeswitch/directory/default/operators.xml): a
            # desk record must never make the switch dial anywhere else.
            if extension:
                self._log.warning("call.bad_operator_extension", operator=status.operator)
            await self._transfer(handoff)
            return "handoff"
        dial = f"user/{extension}"
        variables = self._handoff_variables(handoff)
        if status.operator:
            variables["hotline_operator"] = status.operator
        loop = asyncio.get_running_loop()
        self._bridge_result = loop.create_future()
        self._operator_leg = None
        self._bridge_over = asyncio.Event()
        self._bridge_end_hangup = False
        assert self._ep is not None
        # The park loop (and with it unicast) stops while the bridge app runs: no
        # audio is no dead stream then. It resumes, same connection, when the app returns.
        self._ep.pause_watchdog()
        try:
            # When the operator's leg ends, the bridge app returns and the caller stays
            # parked with us (not hung up): a transfer to a senior goes on from here.
            # FreeSWITCH stops the ringing itself after call_timeout (NO_ANSWER); our own
            # deadline is only the backstop (_await_bridge), so the two cannot race.
            await self.conn.set_variables({
                "hangup_after_bridge": "false",
                "call_timeout": str(max(1, round(self.deps.settings.bridge_answer_timeout_s))),
                "transfer_ringback": self.deps.settings.operator_ringback,
            })
            await self.conn.bridge(dial, variables=variables)
        except EslError as exc:
            self._log.error("call.bridge_failed", error=str(exc))
            await self._transfer(handoff)
            return "handoff"
        result = await self._await_bridge()
        if result == "bridged":
            if not self._handoff_counted:
                metrics.HANDOFFS.labels(variables["hotline_handoff_reason"]).inc()
                self._handoff_counted = True
            self.hold["bridges"] = self.hold.get("bridges", 0) + 1
            self._log.info("call.bridged", extension=extension, operator=status.operator,
                           operator_leg=self._operator_leg)
            return await self._while_bridged(handoff, status)
        if result == "hangup":
            self._gone.set()
            return "hangup"
        self._log.warning("call.bridge_not_answered", extension=extension, result=result)
        await self._transfer(handoff)
        return "handoff"

    async def _while_bridged(self, handoff: Mapping[str, Any], status: HoldStatus) -> Outcome | _Requeued:
        """J2 → J3: the caller talks to the operator; every ``handoff_poll_s`` the store
        says whether the desk sent the caller to another queue (then the operator's leg
        is killed and the caller goes back on hold). The caller hanging up ends the
        handoff; the operator hanging up without a requeue finishes it and the call.
        A store out of reach leaves the bridge alone."""
        line = self.deps.handoffs
        assert line is not None
        handoff_id = int(handoff["handoff_id"])
        s = self.deps.settings
        operator = status.operator
        next_poll = time.monotonic() + s.handoff_poll_s
        unreachable = False
        while True:
            if self._bridge_over.is_set():
                return await self._after_bridge(handoff, handoff_id, operator)
            get = asyncio.ensure_future(self._inputs.get())
            over = asyncio.ensure_future(self._bridge_over.wait())
            try:
                await asyncio.wait({get, over}, timeout=max(0.0, next_poll - time.monotonic()),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                over.cancel()
                if not get.done():
                    get.cancel()  # Queue.get leaves the item queued when cancelled before taking it
            if get.done() and not get.cancelled():
                item = get.result()
                if isinstance(item, _Gone) and item.reason == "hangup":
                    return await self._caller_left_bridge(handoff_id)
                continue  # keys the caller pressed go to the operator, not to us
            if self._bridge_over.is_set() or time.monotonic() < next_poll:
                continue
            next_poll = time.monotonic() + s.handoff_poll_s
            try:
                now = await line.status(handoff_id)
            except Exception as exc:  # noqa: BLE001 - the bridge does not need the store
                if not unreachable:
                    self._log.error("call.bridged_store_unreachable", error=str(exc))
                unreachable = True
                continue
            unreachable = False
            if _requeued(now, operator):
                return await self._take_back(handoff_id, operator)

    async def _take_back(self, handoff_id: int, operator: str | None) -> Outcome | _Requeued:
        """J3 on the desk: end the operator's leg (``uuid_kill``), wait for the bridge app
        to return, and put the caller back on hold."""
        self._log.info("call.requeued_while_bridged", handoff_id=handoff_id, operator=operator,
                       operator_leg=self._operator_leg)
        leg = self._operator_leg
        if leg is None:
            self._log.error("call.no_operator_leg")  # CHANNEL_BRIDGE named none: cannot end it
        else:
            try:
                reply = await self.conn.api(f"uuid_kill {leg}")
                if not reply.ok:  # gone already (-ERR No Such Channel!): the bridge ends anyway
                    self._log.warning("call.uuid_kill_refused", reply=reply.text.strip())
            except EslError as exc:
                self._log.error("call.uuid_kill_failed", error=str(exc))
        get = asyncio.ensure_future(self._gone_or_hangup())
        over = asyncio.ensure_future(self._bridge_over.wait())
        try:
            await asyncio.wait({get, over}, timeout=self.deps.settings.bridge_answer_timeout_s,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            get.cancel()
            over.cancel()
        if self._gone.is_set() or self._bridge_end_hangup:
            return await self._caller_left_bridge(handoff_id)
        if not self._bridge_over.is_set():
            # The bridge did not end: the caller is still with the operator, who can
            # transfer on their phone; we stop watching.
            self._log.error("call.bridge_did_not_end", operator_leg=leg)
            return "handoff"
        assert self._ep is not None
        self._ep.resume_watchdog()
        return "requeued"

    async def _gone_or_hangup(self) -> None:
        """Until the caller's hang-up reaches the input queue (other inputs are dropped)."""
        while True:
            item = await self._inputs.get()
            if isinstance(item, _Gone) and item.reason == "hangup":
                self._gone.set()
                return

    async def _after_bridge(self, handoff: Mapping[str, Any], handoff_id: int,
                            operator: str | None) -> Outcome | _Requeued:
        """The bridge ended without our kill: the caller hung up, or the operator did —
        after a transfer on the desk (back on hold) or at the end of the conversation
        (the handoff is done and the caller is hung up)."""
        if self._bridge_end_hangup or self.conn.hung_up.is_set():
            return await self._caller_left_bridge(handoff_id)
        line = self.deps.handoffs
        assert line is not None and self._ep is not None
        try:
            now = await line.status(handoff_id)
        except Exception as exc:  # noqa: BLE001 - who knows what the desk did: the queue extension decides
            self._log.error("call.hold_store_unreachable", error=str(exc))
            await self._transfer(handoff)
            return "handoff"
        if _requeued(now, operator):
            self._log.info("call.requeued_while_bridged", handoff_id=handoff_id, operator=operator)
            self._ep.resume_watchdog()
            return "requeued"
        self._log.info("call.operator_hung_up", handoff_id=handoff_id, operator=operator)
        self.hold["ended"] = "finished"
        if isinstance(line, HandoffEnding) and now.state == "taken":
            try:
                await line.operator_finished(handoff_id, operator)
            except Exception as exc:  # noqa: BLE001
                self._log.error("call.handoff_finish_failed", error=str(exc))
        with contextlib.suppress(EslError):
            await self.conn.hangup()
        return "handoff"

    async def _caller_left_bridge(self, handoff_id: int) -> Outcome:
        self._gone.set()
        self.hold["ended"] = "caller_hung_up"
        self._log.info("call.caller_hung_up_bridged", handoff_id=handoff_id)
        line = self.deps.handoffs
        if isinstance(line, HandoffEnding):
            try:
                # Shielded: the hang-up may be cancelling us; the end must still be stored.
                await asyncio.shield(line.caller_left(handoff_id, "hangup"))
            except Exception as exc:  # noqa: BLE001
                self._log.error("call.handoff_finish_failed", error=str(exc))
        return "hangup"

    async def _await_bridge(self) -> str:
        """CHANNEL_BRIDGE (answered), the bridge app completing without one (failed), or a
        hang-up. Unicast audio stops while the bridge app runs (the watchdog is paused)."""
        assert self._bridge_result is not None
        # FreeSWITCH gives up at call_timeout; this is for a switch that never answers.
        deadline = time.monotonic() + self.deps.settings.bridge_answer_timeout_s + BRIDGE_GRACE_S
        while not self._bridge_result.done():
            get = asyncio.ensure_future(self._inputs.get())
            waiters: set[asyncio.Future[Any]] = {get, self._bridge_result}
            await asyncio.wait(waiters, timeout=max(0.0, deadline - time.monotonic()),
                               return_when=asyncio.FIRST_COMPLETED)
            if not get.done():
                get.cancel()
            elif isinstance(item := get.result(), _Gone) and item.reason == "hangup":
                return "hangup"
            if time.monotonic() >= deadline and not self._bridge_result.done():
                return "failed: no answer in time"
        return self._bridge_result.result()

    # ---- listening -----------------------------------------------------------------

    async def _pump_events(self) -> None:
        try:
            async for item in self.conn.events():
                if not isinstance(item, EslEvent):
                    continue
                if (press := dtmf_from_event(item)) is not None:
                    self._inputs.put_nowait(_Key(press.digit, self._now_ms()))
                elif self._bridge_result is not None and item.unique_id in (None, self.call_id):
                    self._on_bridge_event(item, self._bridge_result)
        finally:
            self._inputs.put_nowait(_Gone("hangup"))

    def _on_bridge_event(self, item: EslEvent, result: asyncio.Future[str]) -> None:
        """switch_ivr_multi_threaded_bridge on the caller's channel: CHANNEL_BRIDGE once
        the operator answered (the operator's leg in Other-Leg-Unique-ID /
        Bridge-B-Unique-ID); CHANNEL_UNBRIDGE and then the bridge app's
        CHANNEL_EXECUTE_COMPLETE when it ends (the app's completion is the end: nothing
        of this bridge comes after it to be mistaken for the next one's); the app
        completing without a bridge is a failed call to the operator's phone. The
        caller's channel data on those events says whether it was the caller who left."""
        headers = item.headers
        if item.name == "CHANNEL_BRIDGE" and not result.done():
            self._operator_leg = headers.get("Other-Leg-Unique-ID") or headers.get("Bridge-B-Unique-ID")
            result.set_result("bridged")
            return
        completed = item.name == "CHANNEL_EXECUTE_COMPLETE" and headers.get("Application") == "bridge"
        if completed and not result.done():
            why = headers.get("variable_originate_disposition") or "no bridge"
            result.set_result(f"failed: {why}")
        elif (completed or item.name == "CHANNEL_UNBRIDGE") and result.done():
            if headers.get("Channel-Call-State") == "HANGUP" or headers.get("Answer-State") == "hangup":
                self._bridge_end_hangup = True
            if completed:
                self._bridge_over.set()

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


def _requeued(status: HoldStatus, operator: str | None) -> bool:
    """The desk took the caller from the bridged operator: waiting in a queue again, or
    already taken by someone else (a requeue and a take between two polls)."""
    return status.state == "queued" or (status.state == "taken" and status.operator != operator)


async def _observe_first(chunks: AsyncIterator[bytes], on_first: Callable[[], None]) -> AsyncIterator[bytes]:
    first = True
    async for chunk in chunks:
        if first:
            on_first()
            first = False
        yield chunk


def _input_kind(chat_input: ChatInput) -> str:
    if chat_input.dtmf is not None:
        return "keys"
    if chat_input.text is not None:
        return "speech"
    return chat_input.event or "other"


def _tone(rate: int, hz: float = 1000.0, ms: int = 300) -> bytes:
    """The short tone before a recording starts (A11)."""
    n = rate * ms // 1000
    t = np.arange(n) / rate
    wave = 0.3 * np.sin(2 * math.pi * hz * t)
    return (wave * 32767).astype("<i2").tobytes()


class _Hold:
    """Hold music on the call until stopped (J1)."""

    def __init__(self, session: CallSession) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._loop(session), name=f"hold-{session.call_id}")

    async def _loop(self, session: CallSession) -> None:
        ep = session._ep
        assert ep is not None
        pcm = hold_music(session.fmt.sample_rate)
        while not self._stop.is_set() and not session._gone.is_set():
            result = await ep.play(pcm, cancel=self._stop)
            if result.error or result.cancelled:
                return

    async def stop(self) -> None:
        self._stop.set()  # the frame being paced is the last one
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 1.0)
        except asyncio.CancelledError:
            self._task.cancel()
            raise
        except Exception:  # noqa: BLE001 - a stuck or failed hold loop is simply ended
            self._task.cancel()


@functools.lru_cache(maxsize=4)
def hold_music(rate: int) -> bytes:
    """A soft two-note chime and 2.4 s of quiet (3 s): gentle, cheap, made once per rate."""
    def note(hz: float, ms: int) -> np.ndarray:
        n = rate * ms // 1000
        t = np.arange(n) / rate
        envelope = np.sin(np.pi * np.arange(n) / n)  # fades in and out: no clicks
        return 0.08 * envelope * (np.sin(2 * math.pi * hz * t) + 0.3 * np.sin(4 * math.pi * hz * t))

    quiet = np.zeros(rate * 2400 // 1000)
    wave = np.concatenate([note(523.25, 300), note(659.25, 300), quiet])
    return (wave * 32767).astype("<i2").tobytes()
