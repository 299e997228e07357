"""A call the bot placed, once the callee answered and FreeSWITCH connected it to the
bot's ESL server (``originate … &socket(…)``): the purpose's short dialogue over the
shared media and input parts.

The one purpose today is ``test_call``: say that this is a test call, ask for key 1,
record the key (any key, or none), thank and hang up. The satisfaction survey (U3)
will be another purpose on the same parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal, Protocol

from bot.chat.prompts import Language
from voice import metrics
from voice.call.media_session import CallDeps, MediaSession, _Gone, _Key, _observe_first
from voice.esl import EslCallConnection, EslError

TEST_CALL_MESSAGE: dict[Language, str] = {
    "zh": "这里是障碍申告中心的测试呼叫，听到请按1。",
    "en": "This is a test call from the fault reporting centre. If you can hear this, please press 1.",
}
TEST_CALL_THANKS: dict[Language, str] = {
    "zh": "收到，谢谢，再见。",
    "en": "Thank you, goodbye.",
}
KEY_WAIT_S = 6.0  # after the message, how long the callee has to press a key
ASKS = 2  # the message is said at most this often
# A key this soon after the message began cannot answer it: it was pressed before (while
# the phone rang; FreeSWITCH hands such keys over at the answer, just as we start talking).
EARLY_KEY_GRACE_MS = 500.0

TestCallOutcome = Literal["key", "no_key", "hangup"]


class OutboundLine(Protocol):
    """What the session tells the call's record (voice.outbound.OutboundCalls)."""

    async def started(self, channel_uuid: str) -> None: ...
    async def key(self, digit: str) -> None: ...
    def ended(self, hangup_cause: str | None) -> None: ...


class OutboundCallSession(MediaSession):
    def __init__(self, conn: EslCallConnection, deps: CallDeps, line: OutboundLine,
                 language: Language = "zh") -> None:
        super().__init__(conn, deps)
        self.line = line
        self.language = language
        self.key: str | None = None
        self.outcome: TestCallOutcome = "hangup"

    async def run(self) -> TestCallOutcome:
        metrics.CALLS_ACTIVE.inc()
        started = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.line.started(self.call_id)
            await self._start_media()
            tasks = self._start_pumps()
            self._log.info("outbound.session_started", rate=self.fmt.sample_rate)
            self.outcome = await self._test_call()
        finally:
            await self._stop_pumps(tasks)
            await self._stop_media()
            metrics.CALLS_ACTIVE.dec()
            info = self.conn.hangup_info
            self.line.ended(info.cause if info else None)
            self._log.info("outbound.session_ended", outcome=self.outcome, key=self.key,
                           seconds=round(time.monotonic() - started, 1))
        return self.outcome

    async def _test_call(self) -> TestCallOutcome:
        for _ in range(ASKS):
            answer = await self._ask_for_key(TEST_CALL_MESSAGE[self.language])
            if answer is _GONE:
                return "hangup"
            if isinstance(answer, str):
                self.key = answer
                # Shielded: a hang-up right after the key must not lose it.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.line.key(answer))
                await self._say(TEST_CALL_THANKS[self.language])
                break
        with contextlib.suppress(EslError):
            await self.conn.hangup()
        return "key" if self.key is not None else "no_key"

    async def _ask_for_key(self, text: str) -> str | None | object:
        """Say ``text`` (a key stops it); the first key pressed once the callee could
        hear it, None after ``KEY_WAIT_S`` of silence, or ``_GONE`` when the callee hung up.

        A key that reached us before the message's first audio, or within
        ``EARLY_KEY_GRACE_MS`` of it, was not an answer to it (see there)."""
        self._drain_stale_inputs()
        cancel = asyncio.Event()
        heard_from: list[float] = []
        assert self._ep is not None
        chunks = _observe_first(self.deps.speech_out.speak(text, self.language, self.fmt.sample_rate),
                                lambda: heard_from.append(self._now_ms()))
        playback = asyncio.create_task(self._ep.play_stream(chunks, cancel=cancel))
        deadline: float | None = None
        try:
            while True:
                if deadline is None and playback.done():
                    deadline = time.monotonic() + KEY_WAIT_S
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                item = await self._next_input(timeout, playback)
                if isinstance(item, _Gone):
                    self._gone.set()
                    return _GONE
                if isinstance(item, _Key) and heard_from and item.at_ms >= heard_from[0] + EARLY_KEY_GRACE_MS:
                    return item.digit
                if isinstance(item, _Key):
                    self._log.info("outbound.early_key_ignored", key=item.digit)
                if deadline is not None and time.monotonic() >= deadline:
                    return None
        finally:
            cancel.set()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await playback


_GONE = object()
