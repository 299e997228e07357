"""Calls through a real FreeSWITCH (this repository's tree) that the scripted calls do not
cover: the bot process's own voice server with its real voice, barge-in timed on the
caller's RTP, the fallback when the bot is down, and the hand-over to an operator's real
SIP phone (J1–J2): hold music and the offer heard by the caller, the bridge, either side
hanging up, an operator who does not answer."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlmodel import select

from bot.settings import Settings
from bot.stack import Stack
from bot.store import handoffs, service
from bot.store.db import Database
from bot.store.models import DeskUser, Handoff
from tests.e2e.conftest import Client, SwitchHost
from tests.fakes.voice_doubles import until, voiced_pcm
from tests.switch.fixtures import StartSwitch, switch_events
from tests.switch.freeswitch_process import FreeswitchProcess, free_port
from tests.switch.sipp import AwaitBye, Hangup, Keys, SippCaller, SippPhone, Speech

pytestmark = [pytest.mark.e2e, pytest.mark.stack, pytest.mark.switch]


async def quiet_for(call: SippCaller, seconds: float, timeout: float = 60, *, after: float | None = None) -> None:
    """Until the caller has heard something (after ``after``, when given), then nothing
    for ``seconds``. ``after`` keeps a slow turn (a loaded machine) from passing for the
    end of the prompt the test waits for: the quiet counts only once the next prompt began."""
    def quiet() -> bool:
        if after is not None and call.sniffer.first_loud_after(after) is None:
            return False
        last = call.sniffer.last_loud()
        return last is not None and time.monotonic() - last > seconds
    await until(quiet, timeout, f"{seconds} s of quiet after the bot spoke")


async def act_then_quiet(call: SippCaller, seconds: float) -> None:
    """The caller's next action, then the bot's answer to it heard out. The answer's first
    sound is looked for from 0.4 s after the keys left: a barged prompt stops within 0.2 s."""
    await call.act()
    await quiet_for(call, seconds, after=time.monotonic() + 0.4)


async def test_a_keypad_report_through_the_bots_own_voice_server(stack: Stack, client: Client,
                                                                 start_switch: StartSwitch, tmp_path: Path) -> None:
    """A1 → A10 by keypad, as `make run` serves calls: the bot process's ESL server, its
    real voice (espeak-ng here), the real dialogue; the ticket read back from the API."""
    fs = start_switch(stack.settings.esl_port)
    call = SippCaller(tmp_path / "caller", fs.ports.external_sip, [
        Keys("1"), Keys("057160000031#"), Keys("1"), Keys("1"), Keys("1"), Keys("1"), Hangup(),
    ], caller="13700005555", codec="PCMA", ptime_ms=30)
    try:
        await call.dial()
        await until(lambda: call.sniffer.last_loud() is not None, 20, "the main menu (A1)")
        await asyncio.sleep(1.0)
        await act_then_quiet(call, 1.2)   # A1: 1 barges into the menu; V1 said
        await act_then_quiet(call, 1.5)   # the fault number; V2 readback (no barge-in)
        await act_then_quiet(call, 3.0)   # confirmed → A8 line test (its wait), then V5 offers the ANI
        await act_then_quiet(call, 1.5)   # 1: the number calling is the contact number; symptom menu
        await act_then_quiet(call, 1.5)   # symptom 1; V6 readback
        await call.act()                  # A10: confirmed
        await until(lambda: bool(client.tickets(relatedEntity_id="057160000031")), 30, "the ticket (A10)")
        await call.act()                  # hang up at the message offer
        assert await call.wait_closed(15) == 0, call.errors()
    finally:
        await call.close()
    (ticket,) = client.tickets(relatedEntity_id="057160000031")
    chars = {c["name"]: c["value"] for c in ticket["troubleTicketCharacteristic"]}
    assert chars["contactNumber"] == "13700005555"  # A8: the caller's own number (ANI), taken with one key
    assert call.sniffer.loud_seconds(0, time.monotonic(), ptime_ms=30) > 5, "the caller heard the prompts"


@dataclasses.dataclass
class LevelSpeech:
    """Prompts as tones: the main menu long and loud, everything else short and soft, so
    the caller's RTP shows when the menu stops."""

    spoken: list[str] = dataclasses.field(default_factory=list)

    async def speak(self, text: str, language: str, rate: int) -> AsyncIterator[bytes]:
        self.spoken.append(text)
        menu = "障碍申告请按1" in text
        n = rate * (6000 if menu else 300) // 1000
        t = np.arange(n) / rate
        pcm = ((0.3 if menu else 0.02) * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes()
        for i in range(0, len(pcm), rate // 5):
            yield pcm[i:i + rate // 5]
            await asyncio.sleep(0)


async def test_a_key_stops_the_prompt_within_200_ms_at_the_caller(switch_host: SwitchHost, tmp_path: Path) -> None:
    speech = LevelSpeech()
    switch_host.service.deps.speech_out = speech
    call = SippCaller(tmp_path / "caller", switch_host.sip_port, [Keys("1"), Hangup()], codec="PCMU")
    loud = 3000.0  # the menu's level; the prompts after it stay far below
    try:
        await call.dial()
        await until(lambda: call.sniffer.first_loud_after(0, loud) is not None, 20, "the main menu")
        await asyncio.sleep(1.5)
        await call.act()
        await until(lambda: any("故障电话号码" in t for t in speech.spoken), 20, "V1 after the key")
        await asyncio.sleep(0.5)
        await call.act()
        await call.wait_closed(10)
    finally:
        await call.close()
    assert call.sniffer.sent_keys, "no RFC 2833 packet left the caller"
    pressed = call.sniffer.sent_keys[0]
    last_menu_packet = max(p.at for p in call.sniffer.loud(0, loud))
    stopped_ms = (last_menu_packet - pressed) * 1000
    assert stopped_ms < 200, f"the menu went on {stopped_ms:.0f} ms after the key"
    assert call.sniffer.loud(0, loud)[0].at < pressed - 1.0, "the key came during the menu"


async def test_with_the_bot_down_the_caller_hears_the_apology_and_goes_to_the_queue(
        start_switch: StartSwitch, tmp_path: Path) -> None:
    fs = start_switch(free_port())  # nothing listens there
    call = SippCaller(tmp_path / "caller", fs.ports.external_sip, [AwaitBye()])
    async with switch_events(fs) as events:
        try:
            await call.dial()
            assert await call.wait_closed(60) == 0, call.errors()
        finally:
            await call.close()
        await until(lambda: events.hangup_cause(call.call_id or "") is not None, 10, "the hang-up event")
        applications = [e.headers.get("Application") for e in events.executed(call.call_id or "", "playback")]
        assert applications, "the apology was not played"
        transfers = events.executed(call.call_id or "", "transfer")
        assert [t.headers.get("Application-Data") for t in transfers] == ["operators XML default"]
        assert transfers[0].headers.get("variable_hotline_bot_failed") == "true"
        assert events.executed(call.call_id or "", "bridge"), "the queue rang the operators"
        assert events.hangup_cause(call.call_id or "") == "NORMAL_TEMPORARY_FAILURE"  # nobody registered
    assert call.sniffer.loud(), "the caller heard nothing (the apology tones)"
    assert "did not take call" in fs.log_text()


# ---- J1–J2 with an operator's real SIP phone ----

def take_with_phone(settings: Settings, conversation_id: str, username: str, extension: str) -> int:
    """The operator (whose desk account has a phone extension) takes the waiting call."""
    db = Database.from_settings(settings)
    try:
        def account(s: Any) -> None:
            user = s.exec(select(DeskUser).where(DeskUser.username == username)).first()
            if user is None:
                s.add(DeskUser(username=username, display_name=username, role="junior", password_hash="!",
                               extension=extension))
            else:
                user.extension = extension
                s.add(user)

        db.call(account)
        row = db.call(handoffs.latest_for_conversation, conversation_id)
        assert row is not None and row.id is not None, "no handoff queued for the call"
        db.call(service.take_handoff, row.id, username)
        return row.id
    finally:
        db.dispose()


def handoff_row(settings: Settings, handoff_id: int) -> Handoff:
    db = Database.from_settings(settings)
    try:
        return db.call(lambda s: s.get(Handoff, handoff_id))  # type: ignore[no-any-return]
    finally:
        db.dispose()


async def ask_for_a_human(host: SwitchHost, call: SippCaller) -> str:
    await call.dial()
    await until(lambda: any("障碍申告请按1" in t for t in host.speech.texts), 20, "the main menu")
    await call.act()  # 2: a human (A1)
    await until(lambda: any("转接人工" in t for t in host.speech.texts), 20, "the hand-over prompt")
    uuid = host.events.uuid_of(call.call_id or "")
    assert uuid is not None
    return uuid


async def wait_for_offer(host: SwitchHost, call: SippCaller) -> None:
    """J1: hold music reaches the caller, then the offer to go back to the bot."""
    await until(lambda: any("返回自动服务" in t for t in host.speech.texts), 30, "the J1 offer")
    heard_from = time.monotonic()
    await asyncio.sleep(1.0)
    assert call.sniffer.loud(heard_from), "the caller hears nothing on hold"


@pytest.mark.parametrize("who_hangs_up", ["operator", "caller"])
async def test_the_desk_takes_a_call_and_it_rings_the_operators_phone(
        who_hangs_up: str, switch_host: SwitchHost, stack_settings: Settings, tmp_path: Path) -> None:
    fs: FreeswitchProcess = switch_host.fs
    phone = SippPhone(tmp_path / "phone", fs.ports.internal_sip, account="2001", password=fs.OPERATOR_PASSWORD,
                      hangup_after_ms=4000 if who_hangs_up == "operator" else None, talk_ms=2000)
    talk = Speech(np.frombuffer(voiced_pcm(ms=1500), dtype="<i2").copy())
    actions = [Keys("2"), talk, AwaitBye()] if who_hangs_up == "operator" else [Keys("2"), talk, Hangup()]
    call = SippCaller(tmp_path / "caller", switch_host.sip_port, actions, caller="13700006666")
    try:
        await phone.start()
        uuid = await ask_for_a_human(switch_host, call)
        await wait_for_offer(switch_host, call)
        handoff_id = await asyncio.to_thread(take_with_phone, stack_settings, uuid, "op_phone", "2001")
        await until(lambda: any(e.name == "CHANNEL_BRIDGE" for e in switch_host.events.of_call(call.call_id or "")),
                    30, "the bridge to the operator's phone")
        bridged = time.monotonic()
        await call.act()  # the caller speaks
        await until(lambda: bool(phone.sniffer.loud(bridged)), 10, "the caller's voice at the operator's phone")
        await until(lambda: bool(call.sniffer.loud(bridged + 0.5)), 10, "the operator's voice at the caller")
        if who_hangs_up == "caller":
            await asyncio.sleep(1.5)
            await call.act()
            assert await call.wait_closed(15) == 0, call.errors()
        else:
            assert await call.wait_closed(30) == 0, call.errors()  # the bot ends the caller's call
        assert await phone.wait_closed(15) == 0, phone.errors("phone")
    finally:
        await call.close()
        await phone.close()
    # the operator's leg carried the context
    legs = [e for e in switch_host.events.events if e.name == "CHANNEL_ANSWER"
            and e.headers.get("Caller-Destination-Number") == "2001"]
    assert legs, "the operator's leg was never answered"
    assert legs[0].headers.get("variable_hotline_handoff_id") == str(handoff_id)
    assert legs[0].headers.get("variable_hotline_conversation_id") == uuid
    assert legs[0].headers.get("variable_hotline_operator") == "op_phone"

    def ended() -> bool:
        return handoff_row(stack_settings, handoff_id).state != "taken"
    await until(ended, 15, "the handoff to end in the store")
    row = handoff_row(stack_settings, handoff_id)
    assert row.state == "done", row


async def test_an_operator_who_does_not_answer_sends_the_call_to_the_queue(
        switch_host: SwitchHost, stack_settings: Settings, tmp_path: Path) -> None:
    fs: FreeswitchProcess = switch_host.fs
    deps = switch_host.service.deps
    deps.settings = dataclasses.replace(deps.settings, bridge_answer_timeout_s=4.0)
    phone = SippPhone(tmp_path / "phone", fs.ports.internal_sip, account="2001", password=fs.OPERATOR_PASSWORD,
                      answer=False)
    call = SippCaller(tmp_path / "caller", switch_host.sip_port, [Keys("2"), AwaitBye()], caller="13700007777")
    try:
        await phone.start()
        uuid = await ask_for_a_human(switch_host, call)
        await asyncio.to_thread(take_with_phone, stack_settings, uuid, "op_away", "2001")
        await until(lambda: bool(switch_host.events.executed(call.call_id or "", "transfer")), 30,
                    "the transfer to the queue extension after call_timeout")
        assert await phone.wait_closed(15) == 0, phone.errors("phone")  # cancelled by the switch
        assert await call.wait_closed(90) == 0, call.errors()
    finally:
        await call.close()
        await phone.close()
    bridges = switch_host.events.executed(call.call_id or "", "bridge")
    assert bridges[0].headers.get("Application-Data", "").startswith("user/2001")
    transfers = switch_host.events.executed(call.call_id or "", "transfer")
    assert transfers[0].headers.get("Application-Data") == "handoff XML default"
    completes = [e for e in switch_host.events.of_call(call.call_id or "")
                 if e.name == "CHANNEL_EXECUTE_COMPLETE" and e.headers.get("Application") == "bridge"]
    assert completes and completes[0].headers.get("variable_originate_disposition") in ("NO_ANSWER", "ORIGINATOR_CANCEL")
