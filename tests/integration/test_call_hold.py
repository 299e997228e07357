"""J1 on the phone: a caller handed off waits on hold (voice/call.py) against the
FreeSWITCH double (ESL + unicast over loopback), a scripted dialogue and the real
store: hold music, the offer to go back to the bot every ``handoff_offer_s`` (key 1 →
the dialogue at A2), an operator taking the call (bridged to their phone with the
context as channel variables), a hang-up while waiting (abandoned with the wait), and
the fallbacks to the queue extension."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import Session, select

from bot.chat.service import ChatService, ConversationState
from bot.store import handoffs, service
from bot.store.db import Database
from bot.store.models import ConversationOutcome, DeskUser
from tests.fakes.freeswitch import CallScript
from tests.fakes.fs_media import FakePhoneCall
from tests.fakes.voice_doubles import Reply, ScriptedDialogue, ToneSpeech, until
from tests.integration.test_call_session import catalogue, dtmf
from voice.call import HOLD_OFFER, CallDeps, CallSession, CallSettings, HoldStatus
from voice.esl import EslCallConnection, EslOutboundServer
from voice.media import PortPool, UnicastConfig
from voice.recording import RecordingStore
from voice.service import StoreHandoffLine, static_prompt_texts

OFFER = HOLD_OFFER["zh"]
HANDOFF_SAID = "正在为您转接人工服务，请稍候。"
BACK: Reply = [("utter_back_to_bot", "好的，已为您返回自动服务。"), ("utter_ask_fault_number", "请输入故障号码，按井号结束")]
READBACK: Reply = [("utter_ask_fault_number_confirmed", "您输入的号码为零五七幺，确认请按1")]


@pytest.fixture
def store(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'hold.db'}")
    db.upgrade()

    def add(s: Session) -> None:
        s.add(DeskUser(username="jun", display_name="王小明", role="junior", password_hash="x", extension="2001"))
        s.add(DeskUser(username="jun2", display_name="李四", role="junior", password_hash="x"))  # no phone

    db.call(add)
    yield db  # type: ignore[misc]
    db.dispose()


class UnreachableStore:
    """The store is down: every question fails."""

    async def status(self, handoff_id: int) -> HoldStatus:
        raise ConnectionError("database unreachable")

    async def offered(self, handoff_id: int) -> None:
        raise ConnectionError("database unreachable")

    async def return_to_bot(self, handoff_id: int) -> bool:
        raise ConnectionError("database unreachable")

    async def abandon(self, handoff_id: int, reason: str) -> float | None:
        raise ConnectionError("database unreachable")


@dataclass
class Hold:
    db: Database
    dialogue: ScriptedDialogue
    speech: ToneSpeech
    server: EslOutboundServer
    handoff_id: int
    call_id: str
    outcomes: list[str] = field(default_factory=list)
    sessions: list[CallSession] = field(default_factory=list)
    calls: list[FakePhoneCall] = field(default_factory=list)

    async def dial(self, script: CallScript | None = None) -> FakePhoneCall:
        script = script or CallScript()
        script.uuid = self.call_id
        call = FakePhoneCall("127.0.0.1", self.server.port, script)
        self.calls.append(call)
        await call.dial()
        await asyncio.wait_for(call.media_started.wait(), 5)
        return call

    def offers_heard(self) -> int:
        return self.speech.texts.count(OFFER)

    def state(self) -> str:
        return self.db.call(handoffs.status, self.handoff_id).state


@pytest.fixture
async def make_hold(store: Database, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[Hold] = []
    session = aiohttp.ClientSession()
    base = random.randrange(42000, 47000, 1000)

    async def make(*, offer_s: float = 30.0, line: Any = None, extra: list[tuple[Any, Reply]] | None = None) -> Hold:
        call_id = str(uuid.uuid4())
        hid = store.call(service.queue_handoff, service.HandoffData(
            conversation_id=call_id, channel="voice", language="zh", reason="caller_request",
            fault_number="057187650001", ticket_id="TT-00000042")).handoff_id
        handoff = {"handoff": {"handoff_id": hid, "reason": "caller_request", "ticket_id": "TT-00000042",
                               "fault_number": "057187650001", "conversation_id": call_id}}
        dialogue = ScriptedDialogue([
            ("/start", [("utter_handoff", HANDOFF_SAID), ("", "", handoff)]),
            ("/return_to_bot", BACK),
            (dtmf("057187650001#"), READBACK),
            *(extra or []),
        ])
        speech = ToneSpeech(ms=300)

        async def record_abandoned(cid: str, state: ConversationState, channel: str, reason: str) -> None:
            raise AssertionError("a call on hold is recorded by the handoff, not as a dialogue abandonment")

        chat = ChatService(dialogue, catalogue(), channel="voice",  # type: ignore[arg-type]
                           action_health_url="http://127.0.0.1:9/health", session=session,
                           record_abandoned=record_abandoned)
        b = base + 100 * len(made)
        deps = CallDeps(
            chat=chat, speech_out=speech, media_ports=PortPool(b, b + 49), fs_ports=PortPool(b + 50, b + 99),
            recordings=RecordingStore(tmp_path / "recordings"),
            settings=CallSettings(handoff_offer_s=offer_s, handoff_poll_s=0.1, bridge_answer_timeout_s=5,
                                  unicast=UnicastConfig(dead_after_s=2.0)),
            handoffs=line if line is not None else StoreHandoffLine(store),
        )

        async def on_call(conn: EslCallConnection) -> None:
            session_ = CallSession(conn, deps)
            h.sessions.append(session_)
            h.outcomes.append(await session_.run())

        server = EslOutboundServer(on_call, "127.0.0.1", 0)
        await server.start()
        h = Hold(store, dialogue, speech, server, hid, call_id)
        made.append(h)
        return h

    yield make
    for h in made:
        for c in h.calls:
            await c.close()
        await h.server.close()
    await session.close()


async def test_hold_music_then_the_offer_after_the_interval_and_again(make_hold: Any) -> None:
    h = await make_hold(offer_s=0.8)
    call = await h.dial()
    await until(lambda: HANDOFF_SAID in h.speech.texts, 5, "the handoff prompt")
    assert call.media is not None
    media = call.media
    await until(lambda: h.offers_heard() >= 1, 5, "the first offer")
    offered_at = next(t for t, text in h.speech.spoken if text == OFFER)
    said_at = next(t for t, text in h.speech.spoken if text == HANDOFF_SAID)
    assert offered_at - said_at >= 0.8  # not before the interval
    # Between the handoff prompt and the offer the caller heard something: the hold music.
    assert media.log.first_loud_after(said_at + 0.5) is not None
    await until(lambda: h.offers_heard() >= 2, 6, "the second offer")
    assert h.db.call(handoffs.status, h.handoff_id).return_offers >= 2
    assert h.state() == "queued" and not h.outcomes  # still waiting: nobody pressed 1
    assert call.transferred_to is None and call.bridged_to is None


async def test_pressing_1_goes_back_to_the_bot_at_a2(make_hold: Any) -> None:
    h = await make_hold(offer_s=0.5)
    call = await h.dial()
    await until(lambda: h.offers_heard() >= 1, 5, "the offer")
    await call.press("1")
    await until(lambda: "/return_to_bot" in h.dialogue.messages, 5, "the return to the dialogue")
    await until(lambda: "请输入故障号码，按井号结束" in h.speech.texts, 5, "V1 again")
    assert h.state() == "returned"
    row = h.db.call(handoffs.status, h.handoff_id)
    assert row.end_reason and "automated" in row.end_reason
    # The dialogue goes on as before: the number is collected at A2.
    await asyncio.sleep(0.4)
    await call.press("057187650001#")
    await until(lambda: dtmf("057187650001#") in h.dialogue.messages, 8, "the fault number")
    assert call.transferred_to is None and call.bridged_to is None


async def test_an_operator_takes_the_call_and_it_is_bridged_with_the_context(make_hold: Any) -> None:
    h = await make_hold()
    call = await h.dial()
    await until(lambda: HANDOFF_SAID in h.speech.texts, 5)
    await asyncio.sleep(0.3)
    h.db.call(service.take_handoff, h.handoff_id, "jun")
    await until(lambda: bool(h.outcomes), 5, "the call handed over")
    assert h.outcomes == ["handoff"]
    assert call.bridged_to == "user/2001" and call.transferred_to is None
    assert call.variables["hangup_after_bridge"] == "true"
    assert call.variables["hotline_handoff_id"] == str(h.handoff_id)
    assert call.variables["hotline_conversation_id"] == call.uuid
    assert call.variables["hotline_ticket_id"] == "TT-00000042"
    assert call.variables["hotline_operator"] == "jun"
    assert {"hotline_handoff_id", "hotline_conversation_id", "hotline_handoff_reason"} <= set(call.exported)
    assert "hangup_after_bridge" not in call.exported  # the A-leg's, not the operator's
    assert h.sessions[0].hold["ended"] == "taken"


async def test_an_operator_without_a_phone_gets_the_call_through_the_queue(make_hold: Any) -> None:
    h = await make_hold()
    call = await h.dial()
    await until(lambda: HANDOFF_SAID in h.speech.texts, 5)
    h.db.call(service.take_handoff, h.handoff_id, "jun2")
    await until(lambda: bool(h.outcomes), 5)
    assert call.bridged_to is None and call.transferred_to == "handoff XML default"
    assert call.variables["hotline_handoff_id"] == str(h.handoff_id)


async def test_a_phone_that_does_not_answer_falls_back_to_the_queue(make_hold: Any) -> None:
    h = await make_hold()
    call = await h.dial(CallScript(bridge="USER_NOT_REGISTERED"))
    await until(lambda: HANDOFF_SAID in h.speech.texts, 5)
    h.db.call(service.take_handoff, h.handoff_id, "jun")
    await until(lambda: bool(h.outcomes), 5)
    assert call.bridged_to == "user/2001"
    assert call.transferred_to == "handoff XML default" and h.outcomes == ["handoff"]


def _outcomes(db: Database, conversation_id: str) -> list[ConversationOutcome]:
    def q(s: Session) -> list[ConversationOutcome]:
        return list(s.exec(select(ConversationOutcome).where(ConversationOutcome.conversation_id == conversation_id)))

    return db.call(q)


async def test_hanging_up_while_waiting_is_abandoned_with_the_wait(make_hold: Any) -> None:
    h = await make_hold()
    call = await h.dial()
    await until(lambda: HANDOFF_SAID in h.speech.texts, 5)
    held = time.monotonic()
    await asyncio.sleep(1.2)
    await call.caller_hangs_up()
    await until(lambda: bool(h.outcomes), 5)
    assert h.outcomes == ["hangup"] and h.state() == "abandoned"
    waited = h.sessions[0].hold["waited_s"]  # from joining the queue, as stored
    assert 1.2 <= waited <= time.monotonic() - held + 2
    [outcome] = _outcomes(h.db, h.call_id)
    assert (outcome.outcome, outcome.step, outcome.channel) == ("abandoned", "J1", "voice")
    assert "hangup" in (outcome.reason or "") and "waited" in (outcome.reason or "")
    assert call.transferred_to is None and call.bridged_to is None


async def test_pressing_1_after_the_operator_took_it_bridges(make_hold: Any) -> None:
    h = await make_hold(offer_s=0.5)
    call = await h.dial()
    await until(lambda: h.offers_heard() >= 1, 5)
    h.db.call(service.take_handoff, h.handoff_id, "jun")
    await call.press("1")
    await until(lambda: bool(h.outcomes), 5)
    assert call.bridged_to == "user/2001" and "/return_to_bot" not in h.dialogue.messages
    assert h.state() == "taken"


async def test_an_unreachable_store_means_todays_transfer(make_hold: Any) -> None:
    h = await make_hold(line=UnreachableStore())
    call = await h.dial()
    await until(lambda: bool(h.outcomes), 5)
    assert h.outcomes == ["handoff"] and call.transferred_to == "handoff XML default"
    assert call.variables["hotline_handoff_reason"] == "caller_request"


def test_the_offer_is_among_the_cached_prompts() -> None:
    from bot.settings import REPO_ROOT

    texts = static_prompt_texts(REPO_ROOT / "nlu")
    assert ("zh", HOLD_OFFER["zh"]) in texts and ("en", HOLD_OFFER["en"]) in texts
