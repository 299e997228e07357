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
import time
import uuid as uuidlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from bot.chat.dialogue import DialogueUnavailable
from bot.chat.prompts import Language
from bot.chat.service import ChatInput, ChatReply
from voice import metrics
from voice.asr.grammar import needs_more_digits
from voice.call.handoff import HandoffSession
from voice.call.media_session import (
    CallDeps,
    Outcome,
    _Gone,
    _Key,
    _observe_first,
    _SpeechBegan,
    _SpeechDone,
    _SpeechPaused,
    _tone,
)
from voice.dtmf import DigitCollector, KeyInput, KeyRules
from voice.esl import EslCallConnection, EslError

LISTENING_KINDS = frozenset({"digits", "choice", "text"})
# Said when the dialogue itself cannot go on (Rasa or the action server down): the
# designers' prompts are out of reach then, so this one lives with the channel.
APOLOGY: dict[Language, str] = {
    "zh": "对不起，系统暂时无法处理您的申告，正在为您转接人工服务，请稍候。",
    "en": "Sorry, the system cannot take your report right now. Transferring you to an operator, please hold.",
}
VOICE_MESSAGE_DECISION_PROMPT = "utter_ask_voice_message_decision"


class CallSession(HandoffSession):
    """An inbound call: the caller's conversation with the dialogue, turn by turn."""

    def __init__(self, conn: EslCallConnection, deps: CallDeps) -> None:
        super().__init__(conn, deps)
        self._last_recording: Path | None = None
        self._recordings_made = 0
        self._interim: list[asyncio.Task[None]] = []
        self._input_done: tuple[float, str] | None = None  # when the caller's input ended, and its kind
        self._dialogue_s = 0.0
        self.turns: list[dict[str, Any]] = []  # per turn: input kind, dialogue time, input end → first audio
        self.outcome: Outcome = "hangup"

    # ---- the call from answer to the end --------------------------------------------

    async def run(self) -> Outcome:
        metrics.CALLS_ACTIVE.inc()
        started = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._start_media()
            tasks = self._start_pumps()
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
                    # Lost media (no datagram from the switch) is not the caller hanging up.
                    reason = "media_lost" if self.media_lost_reason else "hangup"
                    await asyncio.shield(self.deps.chat.end(self.call_id, reason=reason))
            await self._stop_pumps(tasks)
            await self._stop_media()
            metrics.CALLS_ACTIVE.dec()
            metrics.CALLS.labels(self.outcome).inc()
            self._log.info("call.ended", outcome=self.outcome, seconds=round(time.monotonic() - started, 1))
        return self.outcome

    def first_input(self) -> ChatInput:
        """What opens the conversation: the main menu (A1) for a caller who dialled in."""
        metadata = {"caller_number": self.channel.caller_id_number, "call_id": self.call_id}
        return ChatInput(event="start", metadata=metadata)

    async def _converse(self) -> Outcome:
        chat = self.deps.chat
        chat_input = self.first_input()
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
        # Issue 13 item 2: part of a number said, then a pause ("0571" … "8765 0001"): keep
        # it and listen on for the rest, as long as the keypad's inter-digit timeout.
        heard = ""
        heard_until: float | None = None
        inter_digit_ms = float(expect.get("inter_digit_timeout_ms") or 5000)
        try:
            while result is None:
                now = self._now_ms()
                if played_at is None and playback.done():
                    played_at = now
                    if keys_done is not None:  # typed ahead during a prompt that could not be interrupted
                        result = ChatInput(dtmf=keys_done.digits)
                        break
                deadlines = []
                if played_at is not None and mode is None and not heard:
                    deadlines.append(played_at + no_input_ms)
                if heard_until is not None and mode is None:
                    deadlines.append(heard_until)
                if (d := collector.deadline_ms()) is not None and played_at is not None:
                    deadlines.append(d)
                timeout = None if not deadlines else max(0.0, (min(deadlines) - now) / 1000)
                item = await self._next_input(timeout, playback)
                if item is None:  # a deadline passed, or the prompt ended
                    now = self._now_ms()
                    if played_at is None:
                        continue
                    if heard and mode is None and heard_until is not None and now >= heard_until:
                        result = ChatInput(text=heard)  # no more came: what was heard
                    elif mode is None and not heard and now >= played_at + no_input_ms:
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
                    text = " ".join(part for part in (heard, item.text.strip()) if part)
                    if text and needs_more_digits(text, expect, self.language):
                        heard, heard_until, mode = text, self._now_ms() + inter_digit_ms, None
                    elif text:
                        result = ChatInput(text=text)
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


def _input_kind(chat_input: ChatInput) -> str:
    if chat_input.dtmf is not None:
        return "keys"
    if chat_input.text is not None:
        return "speech"
    return chat_input.event or "other"

