"""J1 to J3 on the phone: a caller handed off waits on hold for a free seat (with the
offer to go back to the bot), is bridged to the taker's phone, and goes back on hold
when the desk sends them to another queue; without the store, the queue extension.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from bot.chat.prompts import Language
from bot.chat.service import ChatInput
from voice import metrics
from voice.call.call_recording import RecordingInProgress, RecordingSink, recording_path, utcnow
from voice.call.media_session import CallDeps, MediaSession, Outcome, _Gone, _Input, _Key
from voice.esl import EslCallConnection, EslError, EslEvent

# J1: said every ``handoff_offer_s`` while the caller waits for a free seat.
HOLD_OFFER: dict[Language, str] = {
    "zh": "返回自动服务请按1，继续等待请不要挂机。",
    "en": "To go back to the automated service, press 1. To keep waiting, please stay on the line.",
}
RETURN_KEY = "1"
OPERATOR_EXTENSION = re.compile(r"[0-9]{2,8}")  # a directory account, e.g. 2001 → user/2001
BRIDGE_GRACE_S = 5.0  # past call_timeout, how long we still wait for FreeSWITCH's NO_ANSWER


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


_Requeued = Literal["requeued"]  # J3: the desk sent the caller back to a queue while bridged


class HandoffSession(MediaSession):
    """A call that can wait for an operator and be bridged to their phone."""

    def __init__(self, conn: EslCallConnection, deps: CallDeps) -> None:
        super().__init__(conn, deps)
        self._bridge_result: asyncio.Future[str] | None = None  # "bridged" or "failed: <disposition>"
        self._operator_leg: str | None = None  # the bridged operator's channel (Other-Leg-Unique-ID)
        self._bridge_over = asyncio.Event()  # the answered bridge's app completed: the caller is parked again
        self._bridge_end_hangup = False  # … and the caller's channel was hung up by then
        self._handoff_counted = False
        self.hold: dict[str, Any] = {}  # J1: what happened on hold (offers, waited_s, ended)
        self._call_recording: RecordingInProgress | None = None  # Q2: the bridge FreeSWITCH records now
        self._recordings_started = 0
        self._recording_notice_said = False

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
        if self._call_recording is not None:
            # Before the dialplan takes the call: what the queue extension does is not ours to record.
            await self._stop_recording(self._call_recording)
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
        recording = await self._start_recording(handoff, status, extension)
        try:
            return await self._bridge_to(dial, handoff, status, variables)
        finally:
            if recording is not None:
                # Shielded: a hang-up may be cancelling us; the recording must still be stored.
                await asyncio.shield(self._finish_recording(recording))

    async def _bridge_to(self, dial: str, handoff: Mapping[str, Any], status: HoldStatus,
                         variables: dict[str, str]) -> Outcome | _Requeued:
        extension = dial.removeprefix("user/")
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
        if self._call_recording is not None:  # the bridge is over: so is its recording
            await self._stop_recording(self._call_recording)
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
        if self._call_recording is not None:  # the bridge is over: so is its recording
            await self._stop_recording(self._call_recording)
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

    # ---- Q2: the bridge recorded by FreeSWITCH (voice/call/call_recording.py) ------------

    async def _start_recording(self, handoff: Mapping[str, Any], status: HoldStatus,
                               extension: str) -> RecordingInProgress | None:
        """Tell the caller (once per call), then ``record_session`` on their channel.
        Not recording is never a reason not to bridge: a failure here is logged."""
        rec = self.deps.settings.call_recording
        line = self.deps.handoffs
        if not rec.enabled or not isinstance(line, RecordingSink):
            return None
        notice = rec.notice.get(self.language)
        if not notice:
            # Recording unannounced is not allowed: without the designers' text, no recording.
            self._log.error("call.recording_notice_missing", language=self.language)
            return None
        if not self._recording_notice_said:
            self._recording_notice_said = True
            assert self._ep is not None
            played = await self._ep.play_stream(self.deps.speech_out.speak(notice, self.language, self.fmt.sample_rate))
            if played.error or self._gone.is_set():
                return None
        self._recordings_started += 1
        handoff_id = int(handoff["handoff_id"])
        name, fs_path = recording_path(rec, handoff_id, self.call_id, self._recordings_started)
        recording = RecordingInProgress(handoff_id, self.call_id, name, fs_path, status.operator, extension)
        self._call_recording = recording
        try:
            await self.conn.set_variables(rec.variables())
            await self.conn.execute("record_session", fs_path)
        except EslError as exc:
            self._log.error("call.recording_failed", error=str(exc))
            self._call_recording = None
            return None
        self._log.info("call.recording", handoff_id=handoff_id, file=name)
        return recording

    async def _stop_recording(self, recording: RecordingInProgress) -> None:
        if recording.stop_sent or recording.stopped.is_set() or self.conn.hung_up.is_set():
            return  # a hang-up closes FreeSWITCH's recording by itself
        recording.stop_sent = True
        try:
            await self.conn.execute("stop_record_session", recording.fs_path)
        except EslError as exc:
            self._log.warning("call.recording_stop_failed", error=str(exc))

    async def _finish_recording(self, recording: RecordingInProgress) -> None:
        """``stop_record_session`` once the bridge is over (a hang-up stops it by itself),
        wait for RECORD_STOP, and hand an answered bridge's file to the store."""
        line = self.deps.handoffs
        assert isinstance(line, RecordingSink)
        bridged = recording.bridged_at is not None
        still_bridged = bridged and not self._bridge_over.is_set() and not self._bridge_end_hangup \
            and not self.conn.hung_up.is_set()
        if still_bridged:
            # We stopped watching a bridge that did not end (_take_back): the file is
            # FreeSWITCH's until the call ends; it is not stored.
            self._log.error("call.recording_left_running", file=recording.file_name)
            self._call_recording = None
            return
        await self._stop_recording(recording)
        stopped = asyncio.ensure_future(recording.stopped.wait())
        ended = asyncio.ensure_future(self.conn.call_ended.wait())
        try:
            await asyncio.wait({stopped, ended}, timeout=self.deps.settings.call_recording.stop_wait_s,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            ended.cancel()
        if self._call_recording is recording:
            self._call_recording = None
        done = recording.bridged()
        try:
            if done is None or recording.discarded:
                await line.discard(recording.file_name)
                return
            self._log.info("call.recorded_bridge", handoff_id=done.handoff_id, file=done.file_name,
                           record_ms=done.record_ms, stopped=recording.stopped.is_set())
            await line.recorded(done)
        except Exception as exc:  # noqa: BLE001 - the call goes on without its recording stored
            self._log.error("call.recording_store_failed", error=str(exc), file=recording.file_name)

    # ---- listening -----------------------------------------------------------------

    def _on_channel_event(self, item: EslEvent) -> None:
        if item.unique_id not in (None, self.call_id):
            return
        if self._call_recording is not None and self._call_recording.on_event(item):
            return
        if self._bridge_result is not None:
            self._on_bridge_event(item, self._bridge_result)

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
            if self._call_recording is not None:
                self._call_recording.bridged_at = utcnow()
            result.set_result("bridged")
            return
        if item.name == "CHANNEL_UNBRIDGE" and self._call_recording is not None and self._call_recording.unbridged_at is None:
            self._call_recording.unbridged_at = utcnow()
        completed = item.name == "CHANNEL_EXECUTE_COMPLETE" and headers.get("Application") == "bridge"
        if completed and not result.done():
            why = headers.get("variable_originate_disposition") or "no bridge"
            result.set_result(f"failed: {why}")
        elif (completed or item.name == "CHANNEL_UNBRIDGE") and result.done():
            if headers.get("Channel-Call-State") == "HANGUP" or headers.get("Answer-State") == "hangup":
                self._bridge_end_hangup = True
            if completed:
                self._bridge_over.set()


def _requeued(status: HoldStatus, operator: str | None) -> bool:
    """The desk took the caller from the bridged operator: waiting in a queue again, or
    already taken by someone else (a requeue and a take between two polls)."""
    return status.state == "queued" or (status.state == "taken" and status.operator != operator)


class _Hold:
    """Hold music on the call until stopped (J1)."""

    def __init__(self, session: MediaSession) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._loop(session), name=f"hold-{session.call_id}")

    async def _loop(self, session: MediaSession) -> None:
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
