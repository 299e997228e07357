"""Calls the bot places (voice/outbound.py), against the FreeSWITCH double: the
control connection sends ``bgapi originate``; the double answers with BACKGROUND_JOB
events as mod_commands does and, for a callee who picks up, runs the ``&socket(…)``
app: a call into the bot's own ESL server with the originate's channel variables,
which the voice service routes to the test-call session (voice/call/outbound.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from bot.chat.service import ChatService
from bot.settings import Settings
from bot.store import outbound_calls as outbound_store
from bot.store import service as store
from bot.store.db import Database
from tests.fakes.freeswitch import CallScript, FakeCall, FakeEslServer
from tests.fakes.fs_media import FakePhoneCall
from tests.fakes.voice_doubles import ScriptedDialogue, ToneSpeech, until
from tests.integration.test_call_session import catalogue
from tests.ports import random_block
from voice.call.outbound import TEST_CALL_MESSAGE, TEST_CALL_THANKS
from voice.control import FreeswitchControl
from voice.outbound import OutboundCalls, OutboundRefused, OutboundSettings
from voice.service import SpeechEngines, VoiceService

PASSWORD = "esl-test-secret"
KNOWN = "057188001234"  # a line a caller reported (an outcome names it)
KNOWN_MOBILE = "13900139000"


@dataclass
class World:
    fs: FakeEslServer
    control: FreeswitchControl
    calls: OutboundCalls
    voice: VoiceService
    speech: ToneSpeech
    db: Database
    callees: list[FakeCall] = field(default_factory=list)

    async def place(self, number: str = KNOWN, **kw: Any) -> int:
        row = await self.calls.place(number, "test_call", **kw)
        return int(row["id"])

    async def ended(self, call_id: int, timeout: float = 8.0) -> dict[str, Any]:
        async def done() -> bool:
            return bool((await self.db.run(outbound_store.get, call_id))["state"] == "ended")

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await done():
            if loop.time() > deadline:
                raise AssertionError(f"outbound call {call_id} did not end")
            await asyncio.sleep(0.05)
        await until(lambda: self.calls.active == 0, what="the call's slot freed")
        return await self.db.run(outbound_store.get, call_id)

    async def heard(self, text: str, timeout: float = 5.0) -> None:
        await until(lambda: text in self.speech.texts, timeout, what=f"the bot saying {text!r}")

    async def heard_all_of(self, callee: FakePhoneCall, text: str) -> None:
        """The bot said ``text`` and went quiet: the callee heard the whole message."""
        await self.heard(text)
        media = callee.media
        assert media is not None
        await until(lambda: (last := media.log.last_arrival()) is not None and time.monotonic() - last > 0.15,
                    5.0, what="the message's end")


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("hotline_outbound_calls_total", {"result": result}) or 0.0


@pytest.fixture
async def world(tmp_path: Path, settings: Settings) -> AsyncIterator[World]:
    db = Database(f"sqlite:///{tmp_path / 'hotline.db'}")
    db.upgrade()
    for number in (KNOWN, KNOWN_MOBILE):
        db.call(store.record_outcome, store.OutcomeData(f"conv-{number}", "voice", "zh", "accepted", "A10",
                                                        None, None, number))
    fs = FakeEslServer(PASSWORD)
    await fs.start()
    base = random_block(42000, 47000, 100)
    settings = settings.model_copy(update={
        "esl_password": SecretStr(PASSWORD), "fs_esl_listen_port": fs.port, "esl_port": 0,
        "media_port_min": base, "media_port_max": base + 49, "fs_media_port_min": base + 50,
        "fs_media_port_max": base + 99, "media_dead_after_s": 3.0,
    })
    session = aiohttp.ClientSession()
    chat = ChatService(ScriptedDialogue([]), catalogue(), channel="voice",  # type: ignore[arg-type]
                       action_health_url="http://127.0.0.1:9/health", session=session)
    speech = ToneSpeech(ms=800)  # longer than the early-key grace: a key after the message counts
    control = FreeswitchControl(settings)
    calls = OutboundCalls(control, db, OutboundSettings(
        dial_string="sofia/external/{number}@127.0.0.1:5099", caller_id_number="057100000000",
        caller_id_name="Hotline", max_concurrent=2, ring_timeout_s=1))
    voice = VoiceService(settings, chat, SpeechEngines(speech_out=speech), db=db, outbound=calls)
    await voice.start(prewarm=False)
    w = World(fs, control, calls, voice, speech, db)
    # The default &socket address: FreeSWITCH's own idea of where the bot is (vars.xml).
    fs.global_vars = {"hotline_bot_host": "127.0.0.1", "hotline_esl_port": str(voice.server.port)}

    async def dial_back(host: str, port: int, script: CallScript) -> FakeCall:
        call = FakePhoneCall(host, port, script)
        w.callees.append(call)
        await call.dial()
        return call

    fs.dial_back = dial_back
    control.start()
    await until(lambda: control.connected, what="the control connection")
    await calls.start()
    try:
        yield w
    finally:
        await calls.stop()
        for c in w.callees:
            await c.close()
        await control.close()
        await voice.stop()
        await fs.stop()
        await session.close()


async def test_an_answered_test_call_asks_for_a_key_and_records_it(world: World) -> None:
    world.fs.callees[KNOWN] = "answer"
    before = counted("answered")
    call_id = await world.place()
    await until(lambda: bool(world.callees), what="the switch dialling the bot back")
    callee = world.callees[0]
    assert isinstance(callee, FakePhoneCall)
    await world.heard_all_of(callee, TEST_CALL_MESSAGE["zh"])
    await callee.press("1")
    row = await world.ended(call_id)
    assert row["result"] == "answered" and row["key_pressed"] == "1"
    assert row["hangup_cause"] == "NORMAL_CLEARING"  # the bot hung up after thanking
    assert TEST_CALL_THANKS["zh"] in world.speech.texts
    assert callee.hangup_cause == "NORMAL_CLEARING" and callee.unicast is not None

    origination = world.fs.originations[0]
    assert origination.dial_string == f"sofia/external/{KNOWN}@127.0.0.1:5099"
    assert origination.socket == f"127.0.0.1:{world.voice.server.port}"
    v = origination.variables
    assert v["hotline_purpose"] == "test_call" and v["hotline_outbound_id"] == str(call_id)
    assert v["origination_uuid"] == row["channel_uuid"] == callee.uuid
    assert v["originate_timeout"] == "1" and v["ignore_early_media"] == "true"
    assert v["origination_caller_id_number"] == "057100000000"
    assert counted("answered") == before + 1


async def test_a_callee_who_presses_nothing_is_asked_twice_then_the_call_ends(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from voice.call import outbound as session_mod
    monkeypatch.setattr(session_mod, "KEY_WAIT_S", 0.3)
    world.fs.callees[KNOWN] = "answer"
    call_id = await world.place()
    row = await world.ended(call_id)
    assert row["result"] == "answered" and row["key_pressed"] is None
    assert world.speech.texts.count(TEST_CALL_MESSAGE["zh"]) == 2
    assert TEST_CALL_THANKS["zh"] not in world.speech.texts


@pytest.mark.parametrize(("callee", "result"), [
    ("USER_BUSY", "busy"), ("CALL_REJECTED", "rejected"), ("UNALLOCATED_NUMBER", "failed"),
    ("NORMAL_TEMPORARY_FAILURE", "failed"),
])
async def test_a_call_that_is_not_answered_keeps_freeswitchs_cause(world: World, callee: str, result: str) -> None:
    world.fs.callees[KNOWN] = callee
    before = counted(result)
    call_id = await world.place()
    row = await world.ended(call_id)
    assert (row["result"], row["hangup_cause"], row["answered_at"]) == (result, callee, None)
    assert world.callees == [] and world.speech.texts == []
    assert counted(result) == before + 1


async def test_a_phone_that_rings_out_is_no_answer_after_the_ring_timeout(world: World) -> None:
    world.fs.callees[KNOWN] = "ring"
    call_id = await world.place()
    assert (await world.db.run(outbound_store.get, call_id))["state"] == "dialing"
    row = await world.ended(call_id)
    assert (row["result"], row["hangup_cause"]) == ("no_answer", "NO_ANSWER")


async def test_a_callee_gone_before_the_answer_completes_ends_the_record(world: World) -> None:
    """The socket app connected, then the channel went down before the bot's answer:
    the ESL server never starts a session; the control connection's
    CHANNEL_HANGUP_COMPLETE ends the call, and no task is left waiting."""
    world.fs.callees[KNOWN] = "hangs_up_early"
    call_id = await world.place()
    row = await world.ended(call_id)
    assert (row["result"], row["hangup_cause"]) == ("answered", "NORMAL_CLEARING")
    assert world.speech.texts == []
    assert len(world.calls._tasks) == 0


async def test_a_key_pressed_before_the_message_is_not_the_answer(world: World,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """DTMF that reaches the bot before the message started (pressed while the phone
    rang: FreeSWITCH hands such keys over at the answer) is not the callee's answer;
    the call goes on and ends cleanly with its outcome."""
    from voice.call import outbound as session_mod
    monkeypatch.setattr(session_mod, "KEY_WAIT_S", 0.3)
    world.fs.callees[KNOWN] = "answer"

    async def dial_back(host: str, port: int, script: CallScript) -> FakeCall:
        call = FakePhoneCall(host, port, script)
        world.callees.append(call)
        await call.dial()
        await until(lambda: call.events_enabled, what="myevents")
        await call.press("1")
        return call

    world.fs.dial_back = dial_back
    call_id = await world.place()
    row = await world.ended(call_id)
    assert row["key_pressed"] is None and row["result"] == "answered"
    assert world.speech.texts.count(TEST_CALL_MESSAGE["zh"]) == 2


async def test_only_numbers_callers_gave_or_used_are_called(world: World) -> None:
    before = REGISTRY.get_sample_value("hotline_outbound_calls_refused_total", {"reason": "number"}) or 0.0
    with pytest.raises(outbound_store.NumberNotKnown):
        await world.calls.place("057199999999", "test_call")
    assert world.fs.originations == [] and world.calls.active == 0
    assert REGISTRY.get_sample_value("hotline_outbound_calls_refused_total", {"reason": "number"}) == before + 1


async def test_one_call_over_the_limit_is_refused_and_the_limit_frees_up(world: World) -> None:
    world.fs.callees.update({KNOWN: "ring", KNOWN_MOBILE: "ring"})
    first = await world.place(KNOWN)
    await world.place(KNOWN_MOBILE)
    with pytest.raises(OutboundRefused) as refused:
        await world.place(KNOWN)
    assert refused.value.status == 429 and "limit is 2" in refused.value.reason
    await world.ended(first)
    world.fs.callees[KNOWN] = "USER_BUSY"
    third = await world.place(KNOWN)
    assert (await world.ended(third))["result"] == "busy"


async def test_a_channel_claiming_an_outbound_call_the_bot_did_not_place_is_hung_up(world: World) -> None:
    stray = FakePhoneCall("127.0.0.1", world.voice.server.port, CallScript(
        variables={"hotline_purpose": "test_call", "hotline_outbound_id": "999"}))
    world.callees.append(stray)
    await stray.dial()
    await until(lambda: stray.hangup_cause is not None, what="the stray call hung up")
    assert world.speech.texts == []


async def test_the_control_connection_down_refuses_with_a_reason(world: World) -> None:
    await world.fs.stop()
    await until(lambda: not world.control.connected, what="the control connection lost")
    with pytest.raises(OutboundRefused) as refused:
        await world.place()
    assert refused.value.status == 503


async def test_stopping_the_bot_ends_a_ringing_call_and_records_why(world: World) -> None:
    world.fs.callees[KNOWN] = "ring"
    call_id = await world.place()
    await until(lambda: bool(world.fs.originations), what="the originate")
    await world.calls.stop()
    row = await world.db.run(outbound_store.get, call_id)
    assert (row["state"], row["result"], row["hangup_cause"]) == ("ended", "failed", "BOT_STOPPED")
    uuid = world.fs.originations[0].variables["origination_uuid"]
    assert any(c.command == f"api uuid_kill {uuid}" for c in world.fs.commands)
    assert world.calls.active == 0
