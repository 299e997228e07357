"""J1 on the phone: a caller handed off waits on hold (voice/call/handoff.py) against the
FreeSWITCH double (ESL + unicast over loopback), a scripted dialogue and the real
store: hold music, the offer to go back to the bot every ``handoff_offer_s`` (key 1 →
the dialogue at A2), an operator taking the call (bridged to their phone with the
context as channel variables), a hang-up while waiting (abandoned with the wait), and
the fallbacks to the queue extension. J2/J3 while bridged: the bot stays with the call
(``hangup_after_bridge=false``); the desk's transfer to a senior kills the junior's leg
and puts the caller back on hold until a senior takes them; the operator or the caller
hanging up ends the handoff."""

from __future__ import annotations

import asyncio
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
from bot.store.models import ConversationOutcome, DeskUser, Handoff, HandoffQueue, HandoffState
from tests.fakes.freeswitch import FIXTURES, CallScript, is_sendmsg
from tests.fakes.fs_media import FakePhoneCall
from tests.fakes.voice_doubles import Reply, ScriptedDialogue, ToneSpeech, until
from tests.integration.test_call_session import catalogue, dtmf
from tests.ports import random_block
from voice.call import HOLD_OFFER, CallDeps, CallSession, CallSettings, HandoffEnding, HoldStatus
from voice.esl import EslCallConnection, EslOutboundServer
from voice.esl.protocol import ContentType, EslParser, parse_event
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
        s.add(DeskUser(username="sen", display_name="赵高级", role="senior", password_hash="x", extension="3001"))

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


class EndingStoreLine(StoreHandoffLine):
    """The product's store line, observable: ``down`` makes the store unreachable;
    ``gate`` holds status questions until opened."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.db = db
        self.down = False
        self.failed_polls = 0
        self.polls = 0
        self.gate: asyncio.Event | None = None

    async def status(self, handoff_id: int) -> HoldStatus:
        self.polls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            self.failed_polls += 1
            raise ConnectionError("database unreachable")
        return await super().status(handoff_id)


def to_senior(s: Session, handoff_id: int, junior: str) -> None:
    """What the desk's POST /desk/handoffs/{id}/to-senior does to the row (bot/desk/junior.py)."""
    row = s.get(Handoff, handoff_id)
    assert row is not None and row.state == HandoffState.taken.value and row.taken_by == junior
    row.queue = HandoffQueue.senior.value
    row.state = HandoffState.queued.value
    row.transferred_from = row.taken_by
    row.taken_by, row.taken_at = None, None
    s.add(row)


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
    base = random_block(42000, 47000, 1000)

    async def make(*, offer_s: float = 30.0, line: Any = None, extra: list[tuple[Any, Reply]] | None = None,
                   dead_after_s: float = 2.0, ring_s: float = 5) -> Hold:
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
            settings=CallSettings(handoff_offer_s=offer_s, handoff_poll_s=0.1, bridge_answer_timeout_s=ring_s,
                                  unicast=UnicastConfig(dead_after_s=dead_after_s)),
            handoffs=line if line is not None else EndingStoreLine(store),
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
    await until(lambda: call.b_leg is not None, 5, "the call handed over")
    assert call.bridged_to == "user/2001" and call.transferred_to is None
    # The bot keeps the call after the bridge (J3): the operator's leg ending returns it.
    assert call.variables["hangup_after_bridge"] == "false"
    assert call.b_leg is not None and not h.outcomes
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
    await until(lambda: call.b_leg is not None, 5)
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


# ---- J2/J3: while the caller is bridged to an operator --------------------------------


async def _bridged(h: Hold, operator: str = "jun", offer_s: float | None = None) -> FakePhoneCall:
    call = await h.dial()
    await until(lambda: HANDOFF_SAID in h.speech.texts, 5, "the handoff prompt")
    h.db.call(service.take_handoff, h.handoff_id, operator)
    await until(lambda: call.b_leg is not None, 5, "the operator's phone answering")
    return call


def _unicasts(call: FakePhoneCall) -> int:
    return sum(1 for p in call.commands if is_sendmsg("unicast")(p))


async def test_a_transfer_to_a_senior_puts_the_caller_back_on_hold_until_a_senior_takes(
        make_hold: Any, store: Database) -> None:
    line = EndingStoreLine(store)
    # A bridge outlasting the dead-stream watchdog: no unicast while bridged is expected.
    h = await make_hold(offer_s=0.8, line=line, dead_after_s=0.3)
    call = await _bridged(h)
    polls = line.polls
    await until(lambda: line.polls >= polls + 8, 5, "the bot watching the bridge for a while")
    assert call.bridges == ["user/2001"] and call.variables["hangup_after_bridge"] == "false"
    junior_leg = call.b_leg
    assert junior_leg is not None and h.sessions[0]._operator_leg == junior_leg  # Other-Leg-Unique-ID
    assert call.media is not None
    media = call.media
    offers_before = h.offers_heard()
    h.db.call(to_senior, h.handoff_id, "jun")
    # The bot ends the junior's leg itself: the caller is not hung up with it.
    await until(lambda: call.killed == [junior_leg], 5, "uuid_kill of the junior's leg")
    kill = await call.wait_for(lambda p: p.command.startswith("api uuid_kill"))
    assert kill.command == f"api uuid_kill {junior_leg}"
    await until(lambda: call.unbridged_at is not None, 5, "the bridge ending")
    assert call.channel_up and not h.outcomes
    unbridged_at = call.unbridged_at
    assert unbridged_at is not None
    # Back on hold: hold music, then the offer, over the same unicast stream.
    await until(lambda: media.log.first_loud_after(unbridged_at) is not None, 5, "hold music again")
    await until(lambda: h.offers_heard() > offers_before, 5, "the offer again")
    row = h.db.call(handoffs.status, h.handoff_id)
    assert (row.state, row.queue) == ("queued", "senior")
    # A senior takes: bridged to the senior's phone with the context again.
    h.db.call(service.take_handoff, h.handoff_id, "sen")
    await until(lambda: call.b_leg is not None and len(call.bridges) == 2, 5, "the senior's phone answering")
    # The double's answer and the bot's handling of it are two steps: wait for the second.
    await until(lambda: h.sessions[0].hold.get("bridges") == 2, 5, "the bot seeing the senior's answer")
    assert call.bridges == ["user/2001", "user/3001"] and call.b_leg != junior_leg
    assert call.variables["hotline_operator"] == "sen"
    assert call.variables["hotline_handoff_id"] == str(h.handoff_id)
    assert call.variables["hotline_conversation_id"] == call.uuid
    assert call.variables["hotline_ticket_id"] == "TT-00000042"
    assert call.variables["hangup_after_bridge"] == "false"
    assert {"hotline_handoff_id", "hotline_operator"} <= set(call.exported)
    # Media came back by itself (the park loop resumed): one unicast, never re-bound,
    # and nothing was sent into either bridged conversation.
    assert _unicasts(call) == 1 and call.unicast_failures == 0
    assert media.received_while_bridged == 0
    assert h.sessions[0].hold["requeued"] == 1
    # The senior finishes the call.
    await call.operator_hangs_up()
    await until(lambda: bool(h.outcomes), 5, "the call's end")
    assert h.outcomes == ["handoff"] and not call.channel_up
    assert h.state() == "done"


async def test_the_operator_hanging_up_finishes_the_handoff_and_the_call(make_hold: Any) -> None:
    h = await make_hold()
    call = await _bridged(h)
    await asyncio.sleep(0.3)  # a few polls while bridged: nothing changes
    assert call.killed == [] and h.state() == "taken" and not h.outcomes
    await call.operator_hangs_up()
    await until(lambda: bool(h.outcomes), 5, "the call's end")
    assert h.outcomes == ["handoff"]
    # The caller was hung up cleanly by the bot (not left parked, not transferred).
    hangup = await call.wait_for(is_sendmsg("hangup"))
    assert hangup.header("hangup-cause") == "NORMAL_CLEARING" and not call.channel_up
    assert call.transferred_to is None and call.killed == []
    row = h.db.call(handoffs.status, h.handoff_id)
    assert row.state == "done" and row.end_reason == "finished by jun"
    assert h.sessions[0].hold["ended"] == "finished"


async def test_the_caller_hanging_up_while_bridged_ends_the_handoff(make_hold: Any) -> None:
    h = await make_hold()
    call = await _bridged(h)
    await call.caller_hangs_up()
    await until(lambda: bool(h.outcomes), 5, "the call's end")
    assert h.outcomes == ["hangup"] and call.killed == []
    assert not any(is_sendmsg("hangup")(p) for p in call.commands)
    row = h.db.call(handoffs.status, h.handoff_id)
    assert row.state == "done" and "caller hung up" in (row.end_reason or "")
    assert h.sessions[0].hold["ended"] == "caller_hung_up"


async def test_a_store_out_of_reach_while_bridged_leaves_the_bridge_alone(make_hold: Any, store: Database) -> None:
    line = EndingStoreLine(store)
    assert isinstance(line, HandoffEnding)
    h = await make_hold(line=line)
    call = await _bridged(h)
    line.down = True
    h.db.call(to_senior, h.handoff_id, "jun")
    await until(lambda: line.failed_polls >= 3, 5, "polls failing")
    assert call.killed == [] and call.b_leg is not None and call.channel_up and not h.outcomes
    line.down = False  # back: the requeue is seen now
    await until(lambda: len(call.killed) == 1, 5, "uuid_kill after the store came back")
    await until(lambda: call.unbridged_at is not None, 5)
    assert call.channel_up and h.state() == "queued"


async def test_a_requeue_and_the_operator_hanging_up_at_once_still_goes_back_on_hold(
        make_hold: Any, store: Database) -> None:
    line = EndingStoreLine(store)
    h = await make_hold(line=line, offer_s=0.8)
    call = await _bridged(h)
    line.gate = asyncio.Event()  # the bot's next look at the store waits
    h.db.call(to_senior, h.handoff_id, "jun")
    await call.operator_hangs_up()  # the junior hangs up before the bot saw the transfer
    line.gate.set()
    await until(lambda: h.offers_heard() >= 1, 5, "the offer on hold again")
    assert call.channel_up and not h.outcomes and h.state() == "queued"
    assert not any(is_sendmsg("hangup")(p) for p in call.commands)
    h.db.call(service.take_handoff, h.handoff_id, "sen")
    await until(lambda: call.bridges == ["user/2001", "user/3001"] and call.b_leg is not None, 5)


def test_the_bridge_fixtures_are_one_message_of_their_type() -> None:
    expected = {
        "api_response_uuid_kill_ok.txt": ContentType.API_RESPONSE,
        "api_response_uuid_kill_err.txt": ContentType.API_RESPONSE,
        "event_channel_unbridge.txt": ContentType.EVENT_PLAIN,
        "event_channel_execute_complete_bridge.txt": ContentType.EVENT_PLAIN,
    }
    assert sorted(expected) == sorted(f.name for f in (FIXTURES / "bridge").glob("*.txt"))
    for name, content_type in expected.items():
        [msg] = EslParser().feed((FIXTURES / "bridge" / name).read_bytes())
        assert msg.content_type is content_type, name
    [unbridge] = EslParser().feed((FIXTURES / "bridge" / "event_channel_unbridge.txt").read_bytes())
    event = parse_event(unbridge)
    assert event is not None and event.name == "CHANNEL_UNBRIDGE"
    assert event.headers["Bridge-B-Unique-ID"] == event.headers["Other-Leg-Unique-ID"]
    [ok] = EslParser().feed((FIXTURES / "bridge" / "api_response_uuid_kill_ok.txt").read_bytes())
    [err] = EslParser().feed((FIXTURES / "bridge" / "api_response_uuid_kill_err.txt").read_bytes())
    assert ok.ok and ok.text == "+OK\n" and not err.ok


async def test_a_phone_that_rings_unanswered_is_given_up_by_freeswitch_then_the_queue(make_hold: Any) -> None:
    h = await make_hold(ring_s=1)
    call = await h.dial(CallScript(bridge="ring"))
    await until(lambda: HANDOFF_SAID in h.speech.texts, 5)
    h.db.call(service.take_handoff, h.handoff_id, "jun")
    await until(lambda: call.ringing_since is not None, 5, "the operator's phone ringing")
    # The switch itself stops ringing at call_timeout, and the caller hears ringback meanwhile.
    assert call.variables["call_timeout"] == "1"
    assert call.variables["transfer_ringback"] == "%(1000,4000,450)"
    assert call.transferred_to is None  # nothing else is sent while it rings
    await until(lambda: bool(h.outcomes), 5)
    assert call.transferred_to == "handoff XML default" and h.outcomes == ["handoff"]
