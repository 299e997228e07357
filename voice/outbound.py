"""Calls the bot places itself, through FreeSWITCH.

``place`` checks the number (only numbers the service's callers gave or used:
bot/store/outbound_calls.py) and the limit on concurrent outbound calls (one more is
refused, not queued: a caller of the API learns at once and may retry), stores the call
and follows it in a task:

1. ``bgapi originate {vars}<dial string> '&socket(<bot> async full)'`` over the control
   connection (voice/control.py). The variables carry the caller id, the ring timeout
   (``originate_timeout``), our own channel UUID (``origination_uuid``: we know the
   channel before FreeSWITCH answers) and the purpose (``hotline_purpose``,
   ``hotline_outbound_id``), which the ESL server reads to pick the call's session.
2. The BACKGROUND_JOB result: ``+OK <uuid>`` (answered) or ``-ERR <CAUSE>`` →
   answered, no_answer, busy, rejected or failed (:func:`classify`), the raw cause kept.
3. An answered call runs its session (voice/call/outbound.py) on the bot's ESL server;
   it ends with the channel's CHANNEL_HANGUP_COMPLETE (seen on the control connection,
   even if the call never reached the session) or the session's end, whichever is
   first; ``max_call_s`` is the backstop (the channel is killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from bot.chat.prompts import Language
from bot.settings import Settings
from bot.store import outbound_calls as store
from bot.store.db import Database
from bot.store.models import OutboundCallResult
from telnum import mask_number
from voice import metrics
from voice.esl import EslError

log = structlog.get_logger(__name__)

Result = Literal["answered", "no_answer", "busy", "rejected", "failed"]
PURPOSES = frozenset({"test_call", "survey"})  # survey: U3, voice/call/survey.py
NO_ANSWER_CAUSES = frozenset({"NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL", "ALLOTTED_TIMEOUT"})
BUSY_CAUSES = frozenset({"USER_BUSY"})
REJECTED_CAUSES = frozenset({"CALL_REJECTED"})
HANGUP_CAUSE_WAIT_S = 2.0  # after the session ended, how long the channel's own hangup cause may take
RESULT_MARGIN_S = 15.0  # past the ring timeout, how long we wait for the originate's result
# A value inside originate's {…} ends at a comma or brace, and the command at a space.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_.:@+\-]+")
_CAUSE = re.compile(r"[A-Z][A-Z0-9_]*")


class SwitchControl(Protocol):
    """FreeSWITCH's side (voice.control.FreeswitchControl; a double in tests)."""

    @property
    def connected(self) -> bool: ...
    async def background(self, command: str, timeout_s: float) -> str: ...
    async def api(self, command: str) -> str: ...
    def watch_hangup(self, channel_uuid: str) -> asyncio.Future[str]: ...
    def unwatch_hangup(self, channel_uuid: str) -> None: ...


class OutboundRefused(Exception):
    """A call not placed, with the HTTP status and a reason a person can read."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


@dataclass(frozen=True)
class OutboundSettings:
    dial_string: str = "sofia/gateway/carrier/{number}"
    caller_id_number: str = "0000000000"
    caller_id_name: str = "Hotline"
    max_concurrent: int = 4
    ring_timeout_s: int = 45
    socket_address: str = "${hotline_bot_host}:${hotline_esl_port}"  # the bot, as FreeSWITCH reaches it
    max_call_s: float = 300.0  # an answered call is killed after this long (a backstop)

    @classmethod
    def from_settings(cls, s: Settings) -> OutboundSettings:
        return cls(dial_string=s.outbound_dial_string, caller_id_number=s.outbound_caller_id_number,
                   caller_id_name=s.outbound_caller_id_name, max_concurrent=s.outbound_max_concurrent,
                   ring_timeout_s=s.outbound_ring_timeout_s)


def classify(job_result: str) -> tuple[Result, str | None, str | None]:
    """originate's BACKGROUND_JOB body → (result, hangup cause, channel UUID)."""
    text = job_result.strip()
    if text.startswith("+OK"):
        return "answered", None, text[3:].strip() or None
    words = text.removeprefix("-ERR").split()
    cause = words[0] if words and _CAUSE.fullmatch(words[0]) else "UNKNOWN"
    if cause == "NORMAL_CLEARING":  # picked up and hung up before the socket app ran
        return "answered", cause, None
    if cause in NO_ANSWER_CAUSES:
        return "no_answer", cause, None
    if cause in BUSY_CAUSES:
        return "busy", cause, None
    if cause in REJECTED_CAUSES:
        return "rejected", cause, None
    return "failed", cause, None


def originate_command(settings: OutboundSettings, number: str, channel_uuid: str,
                      variables: dict[str, str]) -> str:
    """The ``originate`` API command; ValueError for a value that would break it."""
    if not (number.isascii() and number.isdigit()):
        raise ValueError("the number must be digits")
    all_vars = {
        "origination_uuid": channel_uuid,
        "origination_caller_id_number": settings.caller_id_number,
        "origination_caller_id_name": settings.caller_id_name,
        "originate_timeout": str(settings.ring_timeout_s),
        "ignore_early_media": "true",  # "answered" means the callee picked up, not a 183
        **variables,
    }
    for name, value in all_vars.items():
        if not _SAFE_VALUE.fullmatch(value):
            raise ValueError(f"{name}: {value!r} cannot go into an originate command")
    dial = settings.dial_string.format(number=number)
    if " " in dial or "," in dial:
        raise ValueError("the dial string must not contain spaces or commas")
    pairs = ",".join(f"{k}={v}" for k, v in all_vars.items())
    # Quoted: originate splits its arguments at spaces, and unquoted the socket app would
    # get "host:port" alone, neither async (no DTMF) nor full (no linger, no api).
    return f"originate {{{pairs}}}{dial} '&socket({settings.socket_address} async full)'"


@dataclass
class LiveCall:
    """One outbound call while it lasts; its session reports here (OutboundLine)."""

    id: int
    channel_uuid: str
    purpose: str
    language: Language
    calls: OutboundCalls
    ref_id: str | None = None  # what the purpose is about (a survey's id)
    ended: asyncio.Future[str | None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    key_pressed: str | None = None

    async def started(self, channel_uuid: str) -> None:
        await self.calls.db.run(store.answered, self.id, channel_uuid)

    async def key(self, digit: str) -> None:
        self.key_pressed = digit
        await self.calls.db.run(store.key_pressed, self.id, digit)

    def ended_with(self, hangup_cause: str | None) -> None:
        if not self.ended.done():
            self.ended.set_result(hangup_cause)


class _SessionLine:
    """The OutboundLine a session sees: a live call's record."""

    def __init__(self, live: LiveCall) -> None:
        self._live = live

    async def started(self, channel_uuid: str) -> None:
        await self._live.started(channel_uuid)

    async def key(self, digit: str) -> None:
        await self._live.key(digit)

    def ended(self, hangup_cause: str | None) -> None:
        self._live.ended_with(hangup_cause)


class OutboundCalls:
    def __init__(self, control: SwitchControl, db: Database, settings: OutboundSettings) -> None:
        self.control = control
        self.db = db
        self.settings = settings
        self._live: dict[int, LiveCall] = {}
        self._reserved = 0  # slots taken by calls being stored right now
        self._tasks: set[asyncio.Task[None]] = set()
        # Per purpose, told of each of its calls once it ended and its outcome is stored
        # (the survey settles its attempt there: bot/survey/caller.py).
        self.on_ended: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {}

    @property
    def active(self) -> int:
        return len(self._live) + self._reserved

    async def start(self) -> None:
        ended = await self.db.run(store.end_unfinished, "BOT_RESTARTED")
        if ended:
            log.warning("outbound.unfinished_calls_ended", calls=ended)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def place(self, number: str, purpose: str, *, ref_id: str | None = None,
                    requested_by: str | None = None, language: Language = "zh") -> dict[str, Any]:
        """Store the call and start dialling; returns the stored call (state dialing).
        Raises OutboundRefused, or the store's NumberNotKnown."""
        if purpose not in PURPOSES:
            raise OutboundRefused(422, "unknown_purpose", f"purpose must be one of {', '.join(sorted(PURPOSES))}")
        if not self.control.connected:
            metrics.OUTBOUND_REFUSED.labels("freeswitch").inc()
            raise OutboundRefused(503, "freeswitch_unreachable",
                                  "the bot has no control connection to FreeSWITCH (HOTLINE_ESL_PASSWORD, /healthz)")
        if self.active >= self.settings.max_concurrent:
            metrics.OUTBOUND_REFUSED.labels("limit").inc()
            raise OutboundRefused(429, "too_many_outbound_calls",
                                  f"{self.active} outbound calls in progress, the limit is "
                                  f"{self.settings.max_concurrent} (HOTLINE_OUTBOUND_MAX_CONCURRENT): try again later")
        self._reserved += 1
        try:
            row = await self.db.run(store.create, store.NewOutboundCall(
                purpose=purpose, number=number, ref_id=ref_id, requested_by=requested_by))
        except store.NumberNotKnown:
            metrics.OUTBOUND_REFUSED.labels("number").inc()
            log.warning("outbound.number_refused", number=mask_number(number))
            raise
        finally:
            self._reserved -= 1
        live = LiveCall(int(row["id"]), str(uuidlib.uuid4()), purpose, language, self, ref_id)
        self._live[live.id] = live
        metrics.OUTBOUND_ACTIVE.inc()
        task = asyncio.create_task(self._follow(live, number, ref_id), name=f"outbound-{live.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("outbound.placing", outbound_id=live.id, purpose=purpose, number=mask_number(number))
        # The channel's UUID is ours from the start (origination_uuid): the purpose may
        # expect the call's conversation under it before FreeSWITCH answers.
        return {**row, "channel_uuid": live.channel_uuid}

    def line_for(self, outbound_id: str | None, channel_uuid: str) -> tuple[LiveCall, _SessionLine] | None:
        """The live call a connecting channel belongs to: its id and our UUID must match,
        so a channel cannot claim another call's record."""
        if not outbound_id or not (outbound_id.isascii() and outbound_id.isdigit()) or len(outbound_id) > 18:
            return None
        live = self._live.get(int(outbound_id))
        if live is None or live.channel_uuid != channel_uuid:
            return None
        return live, _SessionLine(live)

    async def _follow(self, live: LiveCall, number: str, ref_id: str | None) -> None:
        hangup = self.control.watch_hangup(live.channel_uuid)
        result: Result = "failed"
        cause: str | None = None
        try:
            variables = {"hotline_purpose": live.purpose, "hotline_outbound_id": str(live.id),
                         "hotline_language": live.language}
            if ref_id:
                variables["hotline_ref_id"] = ref_id
            try:
                command = originate_command(self.settings, number, live.channel_uuid, variables)
            except ValueError as exc:
                log.error("outbound.bad_command", outbound_id=live.id, error=str(exc))
                result, cause = "failed", "BAD_DIAL_STRING"
                return
            try:
                job = await self.control.background(command, self.settings.ring_timeout_s + RESULT_MARGIN_S)
            except TimeoutError:
                result, cause = "failed", "NO_ORIGINATE_RESULT"
                await self._kill(live)
                return
            except EslError as exc:
                log.error("outbound.originate_failed", outbound_id=live.id, error=str(exc))
                result, cause = "failed", "FREESWITCH_UNREACHABLE"
                return
            result, cause, _ = classify(job)
            if result != "answered" or cause is not None:
                return
            await self.db.run(store.answered, live.id, live.channel_uuid)
            log.info("outbound.answered", outbound_id=live.id)
            ends: set[asyncio.Future[Any]] = {hangup, live.ended}
            done, _pending = await asyncio.wait(ends, timeout=self.settings.max_call_s,
                                                return_when=asyncio.FIRST_COMPLETED)
            if not done:
                log.warning("outbound.call_too_long", outbound_id=live.id, max_call_s=self.settings.max_call_s)
                await self._kill(live)
                cause = "BOT_BACKSTOP"
                return
            if not hangup.done():
                # The session ended first (it hung up): FreeSWITCH's own cause follows.
                await asyncio.wait({hangup}, timeout=HANGUP_CAUSE_WAIT_S)
            cause = hangup.result() if hangup.done() else live.ended.result()
        except asyncio.CancelledError:
            cause = cause or "BOT_STOPPED"
            # The bot is stopping: a call still ringing or talking would reach nobody.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._kill(live)), 2.0)
            raise
        finally:
            self.control.unwatch_hangup(live.channel_uuid)
            self._live.pop(live.id, None)
            metrics.OUTBOUND_ACTIVE.dec()
            metrics.OUTBOUND_CALLS.labels(result).inc()
            log.info("outbound.ended", outbound_id=live.id, result=result, hangup_cause=cause,
                     key=live.key_pressed)
            with contextlib.suppress(Exception):
                # Shielded: the bot may be stopping; the outcome must still be stored.
                await asyncio.shield(self.db.run(store.finish, live.id, result, cause))
            if (told := self.on_ended.get(live.purpose)) is not None:
                await asyncio.shield(self._tell(told, live.id))

    async def _tell(self, told: Callable[[dict[str, Any]], Awaitable[None]], call_id: int) -> None:
        try:
            await told(await self.db.run(store.get, call_id))
        except Exception:  # noqa: BLE001 - a purpose's own failure must not break the calls
            log.exception("outbound.on_ended_failed", outbound_id=call_id)

    async def _kill(self, live: LiveCall) -> None:
        with contextlib.suppress(EslError, TimeoutError):
            await self.control.api(f"uuid_kill {live.channel_uuid}")


__all__ = ["OutboundCallResult", "OutboundCalls", "OutboundRefused", "OutboundSettings", "classify",
           "originate_command"]
