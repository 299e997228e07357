"""The call session against the FreeSWITCH double (ESL + unicast media over loopback),
with a scripted dialogue: keys, speech, silence, barge-in, recording, hang-up, handoff,
Rasa down. The real dialogue over the phone is in tests/e2e/test_voice_calls.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bot.chat.prompts import Defaults, PromptCatalogue, PromptFile
from bot.chat.service import ChatService, ConversationState
from bot.settings import REPO_ROOT
from tests.fakes.freeswitch import CallScript
from tests.fakes.fs_media import FakePhoneCall
from tests.fakes.voice_doubles import (
    Reply,
    ScriptedDialogue,
    ScriptedSpeechIn,
    ToneSpeech,
    until,
    voiced_pcm,
)
from tests.ports import random_block
from voice.call import CallDeps, CallSession, CallSettings
from voice.esl import EslCallConnection, EslOutboundServer
from voice.media import PortPool, UnicastConfig
from voice.recording import RecordingStore
from voice.vad import EndpointConfig

MENU: Reply = [("utter_ask_menu_choice", "欢迎致电，障碍申告请按1")]
ASK_NUMBER: Reply = [("utter_ask_fault_number", "请输入故障号码，按井号结束")]
READBACK: Reply = [("utter_ask_fault_number_confirmed", "您输入的号码为零五七幺，确认请按1")]
GOODBYE: Reply = [("utter_goodbye", "再见")]


def catalogue() -> PromptCatalogue:
    """The designers' real prompt file, with short timeouts so tests run fast."""
    data = yaml.safe_load((REPO_ROOT / "nlu" / "prompts.yml").read_text(encoding="utf-8"))
    pf = PromptFile.model_validate(data)
    prompts = {name: p.model_copy(update={"no_input_timeout_ms": None, "inter_digit_timeout_ms": None})
               for name, p in pf.prompts.items()}
    return PromptCatalogue(pf.model_copy(update={
        "defaults": Defaults(no_input_timeout_ms=1200, inter_digit_timeout_ms=700, barge_in=True),
        "prompts": prompts,
    }))


@dataclass
class Harness:
    dialogue: ScriptedDialogue
    speech: ToneSpeech
    server: EslOutboundServer
    deps: CallDeps
    abandoned: list[tuple[str, str | None, str]] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    calls: list[FakePhoneCall] = field(default_factory=list)

    async def dial(self, ptime_ms: int = 20, caller: str = "13800138000") -> FakePhoneCall:
        call = FakePhoneCall("127.0.0.1", self.server.port, CallScript(caller=caller), ptime_ms=ptime_ms)
        self.calls.append(call)
        await call.dial()
        await asyncio.wait_for(call.media_started.wait(), 5)
        return call

    async def heard(self, text: str, timeout: float = 5.0) -> None:
        """Wait until the bot has started saying ``text``."""
        await until(lambda: text in self.speech.texts, timeout)

    async def heard_all_of(self, call: FakePhoneCall, text: str, timeout: float = 8.0) -> None:
        """Wait until the bot said ``text`` and then went quiet (the prompt is over)."""
        await self.heard(text, timeout)
        assert call.media is not None
        media = call.media
        await until(lambda: (last := media.log.last_arrival()) is not None and time.monotonic() - last > 0.15, timeout)


def route(routes: list[tuple[Any, Reply]]) -> list[tuple[Any, Reply]]:
    return routes


def dtmf(digits: str) -> str:
    return "/dtmf" + json.dumps({"digits": digits})


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[Harness] = []
    session = aiohttp.ClientSession()
    base = random_block(42000, 47000, 1000)

    async def make(routes: list[tuple[Any, Reply]], *, speech_in: ScriptedSpeechIn | None = None,
                   tone_ms: int = 300, lengths: dict[str, int] | None = None) -> Harness:
        dialogue = ScriptedDialogue(routes)
        speech = ToneSpeech(ms=tone_ms, lengths=lengths or {})
        harness_ref: list[Harness] = []

        async def record_abandoned(cid: str, state: ConversationState, channel: str, reason: str) -> None:
            harness_ref[0].abandoned.append((channel, state.last_step, reason))

        chat = ChatService(dialogue, catalogue(), channel="voice",  # type: ignore[arg-type]
                           action_health_url="http://127.0.0.1:9/health", session=session,
                           record_abandoned=record_abandoned)
        deps = CallDeps(
            chat=chat, speech_out=speech,
            media_ports=PortPool(b := base + 100 * len(made), b + 49), fs_ports=PortPool(b + 50, b + 99),
            recordings=RecordingStore(tmp_path / "recordings"),
            recognisers=(lambda lang, rate: speech_in) if speech_in is not None else None,
            settings=CallSettings(recording_silence_ms=600, endpoint=EndpointConfig(end_silence_ms=400),
                                  unicast=UnicastConfig(dead_after_s=2.0)),
        )

        async def on_call(conn: EslCallConnection) -> None:
            h.outcomes.append(await CallSession(conn, deps).run())

        server = EslOutboundServer(on_call, "127.0.0.1", 0)
        await server.start()
        h = Harness(dialogue, speech, server, deps)
        harness_ref.append(h)
        made.append(h)
        return h

    yield make
    for h in made:
        for c in h.calls:
            await c.close()
        await h.server.close()
    await session.close()


async def test_keypad_turns_reach_the_dialogue_as_dtmf_messages(make_harness: Any) -> None:
    h = await make_harness([("/start", MENU), (dtmf("1"), ASK_NUMBER), (dtmf("057188880001#"), READBACK)])
    call = await h.dial()
    await h.heard_all_of(call, MENU[0][1])
    await call.press("1")
    await h.heard_all_of(call, ASK_NUMBER[0][1])
    await call.press("057188880001#")
    await h.heard(READBACK[0][1])
    assert h.dialogue.messages[:3] == ["/start", dtmf("1"), dtmf("057188880001#")]
    start_meta = h.dialogue.received[0][1]
    assert start_meta["channel"] == "voice" and start_meta["caller_number"] == "13800138000"
    assert start_meta["call_id"] == call.uuid
    assert call.unicast is not None and call.unicast["remote-port"]


async def test_a_key_stops_a_prompt_that_allows_barge_in(make_harness: Any) -> None:
    h = await make_harness([("/start", MENU), (dtmf("1"), ASK_NUMBER)], lengths={MENU[0][1]: 4000})
    call = await h.dial()
    await h.heard(MENU[0][1])
    await asyncio.sleep(0.5)
    pressed = time.monotonic()
    await call.press("1")
    await h.heard(ASK_NUMBER[0][1])
    assert call.media is not None
    menu_burst = call.media.log.bursts(gap_s=0.1)[0]
    assert menu_burst[1] - pressed < 0.15, "the menu kept playing after the key"
    assert menu_burst[2] < 4000 / 20 * 0.5


async def test_keys_during_a_readback_wait_for_its_end(make_harness: Any) -> None:
    # V2 readback has barge_in: false in nlu/prompts.yml: the caller hears the number whole.
    h = await make_harness([("/start", READBACK), (dtmf("1"), GOODBYE)], lengths={READBACK[0][1]: 1500})
    call = await h.dial()
    await h.heard(READBACK[0][1])
    await asyncio.sleep(0.2)
    await call.press("1")
    await h.heard(GOODBYE[0][1])
    assert call.media is not None
    log = call.media.log
    # Every frame of the whole readback (1500 ms) and of the goodbye (300 ms) reaches the
    # caller; a readback cut at the key would leave ~20 frames fewer than that for ever.
    # Counted, not timed: a loaded machine may pause the frames, never drop them.
    whole = (1500 + 300) // 20 - 2
    await until(lambda: sum(a.loud for a in log.arrivals) >= whole, 8, "the whole readback (was it cut short?)")
    assert h.dialogue.messages[1] == dtmf("1")


async def test_silence_after_the_prompt_is_no_input(make_harness: Any) -> None:
    h = await make_harness([("/start", MENU), ("/no_input", GOODBYE)])
    call = await h.dial()
    await h.heard_all_of(call, MENU[0][1])
    t = time.monotonic()
    await h.heard(GOODBYE[0][1], timeout=5)
    assert 0.9 < time.monotonic() - t < 2.5  # no_input_timeout_ms 1200 from the catalogue
    assert h.dialogue.messages[1] == "/no_input"


async def test_number_without_hash_goes_after_the_inter_digit_timeout(make_harness: Any) -> None:
    h = await make_harness([("/start", ASK_NUMBER), (dtmf("05718888"), READBACK)])
    call = await h.dial()
    await h.heard_all_of(call, ASK_NUMBER[0][1])
    await call.press("0571888")
    await call.press("9")
    await call.press("*")
    await call.press("8")
    await h.heard(READBACK[0][1], timeout=4)
    assert h.dialogue.messages[1] == dtmf("05718888")


async def test_speech_answers_and_barges_in(make_harness: Any) -> None:
    speech_in = ScriptedSpeechIn(["幺三八零零幺三八零零零"])
    h = await make_harness([("/start", ASK_NUMBER), ("幺三八零零幺三八零零零", READBACK)],
                           speech_in=speech_in, lengths={ASK_NUMBER[0][1]: 4000})
    call = await h.dial()
    await h.heard(ASK_NUMBER[0][1])
    await asyncio.sleep(0.3)
    assert call.media is not None
    said_at = time.monotonic()
    call.media.say_pcm(voiced_pcm(ms=900))
    await h.heard(READBACK[0][1], timeout=6)
    assert h.dialogue.messages[1] == "幺三八零零幺三八零零零"
    burst = call.media.log.bursts(gap_s=0.1)[0]
    assert burst[1] - said_at < 0.6, "speech did not stop the prompt"
    assert speech_in.began and speech_in.began[0]["kind"] == "digits"
    assert speech_in.fed_bytes > 0


async def test_only_calls_that_understand_speech_are_invited_to_speak(make_harness: Any) -> None:
    """prompts.yml speech_hints: said after the prompt when a recogniser listens; a
    keypad-only call hears the prompt alone (it never asks to "say" anything)."""
    hint = "您也可以直接说：障碍申告、其他服务、English、普通话。"
    listening = await make_harness([("/start", MENU), ("/no_input", GOODBYE)], speech_in=ScriptedSpeechIn([]))
    await listening.dial()
    await listening.heard(GOODBYE[0][1], timeout=8)
    assert listening.speech.texts[:2] == [MENU[0][1], hint]
    keypad = await make_harness([("/start", MENU), ("/no_input", GOODBYE)])
    await keypad.dial()
    await keypad.heard(GOODBYE[0][1], timeout=8)
    assert keypad.speech.texts[:2] == [MENU[0][1], GOODBYE[0][1]]


async def test_filler_frames_are_silence_not_speech(make_harness: Any) -> None:
    speech_in = ScriptedSpeechIn(["不该出现"])
    h = await make_harness([("/start", MENU), ("/no_input", GOODBYE)], speech_in=speech_in)
    await h.dial()  # the double sends 0xFF filler whenever the caller is quiet
    await h.heard(GOODBYE[0][1], timeout=6)
    assert h.dialogue.messages[1] == "/no_input" and not speech_in.began


async def test_thirty_ms_calls_get_thirty_ms_frames(make_harness: Any) -> None:
    h = await make_harness([("/start", MENU)])
    call = await h.dial(ptime_ms=30)
    await h.heard_all_of(call, MENU[0][1])
    assert call.media is not None
    sizes = {a.size for a in call.media.log.arrivals}
    assert sizes == {480}


async def test_hang_up_mid_flow_records_abandonment(make_harness: Any) -> None:
    h = await make_harness([("/start", ASK_NUMBER)])
    call = await h.dial()
    await h.heard_all_of(call, ASK_NUMBER[0][1])
    await call.caller_hangs_up()
    await until(lambda: bool(h.outcomes), 5)
    assert h.outcomes == ["hangup"]
    assert h.abandoned == [("voice", "A2", "hangup")]


async def test_the_end_of_the_flow_hangs_up(make_harness: Any) -> None:
    h = await make_harness([("/start", [("utter_goodbye", "再见")])])
    call = await h.dial()
    await until(lambda: bool(h.outcomes), 5)
    assert h.outcomes == ["ended"] and call.hangup_cause == "NORMAL_CLEARING"
    assert h.abandoned == []


async def test_handoff_transfers_with_the_context_in_channel_variables(make_harness: Any) -> None:
    handoff = {"handoff": {"handoff_id": 7, "reason": "repeat_report", "ticket_id": "TT-1",
                           "fault_number": "057188880001", "conversation_id": "x"}}
    h = await make_harness([("/start", [("utter_handoff", "正在为您转接人工"), ("", "", handoff)])])
    call = await h.dial()
    await until(lambda: bool(h.outcomes), 5)
    assert h.outcomes == ["handoff"]
    assert call.transferred_to == "handoff XML default"
    assert call.variables["hotline_handoff_reason"] == "repeat_report"
    assert call.variables["hotline_ticket_id"] == "TT-1"
    assert call.variables["hotline_handoff_id"] == "7"
    assert call.variables["hotline_conversation_id"] == call.uuid
    assert "正在为您转接人工" in h.speech.texts


async def test_rasa_down_apologises_and_transfers(make_harness: Any) -> None:
    h = await make_harness([])
    h.dialogue.down = True
    call = await h.dial()
    await until(lambda: bool(h.outcomes), 8)
    assert h.outcomes == ["failed"]
    assert any("系统暂时无法处理" in t for t in h.speech.texts)
    assert call.transferred_to == "handoff XML default"
    assert call.variables["hotline_handoff_reason"] == "system_unavailable"


async def test_a11_voice_message_is_recorded_played_back_and_sent(make_harness: Any) -> None:
    decision: Reply = [("utter_ask_voice_message_decision", "确认请按1，重录请按2，放弃请按3")]
    h = await make_harness([
        ("/start", [("utter_ask_voice_message", "请在提示音后留言，按井号结束")]),
        (lambda m: m.startswith("/recorded"), decision),
        (dtmf("1"), [("utter_message_saved", "留言已保存")]),
    ])
    call = await h.dial()
    await h.heard_all_of(call, "请在提示音后留言，按井号结束")
    assert call.media is not None
    call.media.say_pcm(voiced_pcm(ms=1200))
    await call.media.finished_talking()
    await asyncio.sleep(0.1)
    await call.press("#")
    await h.heard_all_of(call, decision[0][1])
    recorded = h.dialogue.messages[1]
    assert recorded.startswith("/recorded")
    rid = json.loads(recorded[len("/recorded"):])["recording_id"]
    path = h.deps.recordings.path_of(rid)
    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000 and 1.2 <= w.getnframes() / 8000 <= 3.0
    # The caller heard the message back before V10: after the prompt and its tone, one
    # stretch of audio as long as the recording (≥ 1.2 s) plus the V10 prompt (0.3 s).
    bursts = call.media.log.bursts(gap_s=0.1)
    assert len(bursts) == 2 and bursts[1][2] >= (1200 + 300) // 20
    await call.press("1")
    await h.heard("留言已保存")


async def test_a11_nothing_said_is_no_input(make_harness: Any) -> None:
    h = await make_harness([("/start", [("utter_ask_voice_message", "请留言")]), ("/no_input", GOODBYE)])
    call = await h.dial()
    await h.heard(GOODBYE[0][1], timeout=6)
    assert h.dialogue.messages[1] == "/no_input"
    folder = h.deps.recordings.folder
    assert not (folder.exists() and any(folder.glob("*.wav"))), "a silent message was stored"
    assert call.media is not None and call.media.log.arrivals  # the caller heard the prompt


async def test_a8_please_wait_is_heard_while_the_line_test_runs(make_harness: Any) -> None:
    polls: list[float] = []

    def first_poll(message: str) -> bool:
        if message != "/line_test_poll":
            return False
        polls.append(time.monotonic())
        return len(polls) == 1

    h = await make_harness([
        ("/start", [("utter_ask_fault_number_confirmed", "确认请按1")]),
        (dtmf("1"), [("utter_line_test_wait", "正在为您测试线路，请稍候")]),
        (first_poll, [("utter_line_test_still_waiting", "")]),  # the unit is still testing
        ("/line_test_poll", [("utter_ask_contact_number", "请输入联系电话")]),
    ])
    call = await h.dial()
    await h.heard_all_of(call, "确认请按1")
    pressed = time.monotonic()
    await call.press("1")
    await h.heard("正在为您测试线路，请稍候")
    spoken_at = next(t for t, text in h.speech.spoken if text == "正在为您测试线路，请稍候")
    assert spoken_at - pressed < 0.5, "the wait prompt came only after the test"
    await h.heard("请输入联系电话", timeout=8)
    assert len(polls) == 2 and spoken_at < polls[0]
    assert h.speech.texts.count("正在为您测试线路，请稍候") == 1


async def test_a_whole_number_ends_the_utterance_without_the_long_pause(make_harness: Any) -> None:
    # Digit prompts wait a long silence (callers pause between groups), unless the
    # recogniser already heard at least the prompt's minimum of digits (V1: 7).
    async def reply_gap(partials: list[str]) -> float:
        speech_in = ScriptedSpeechIn(["幺三八零零幺三八零零零"], partials=list(partials))
        h = await make_harness([("/start", ASK_NUMBER), ("幺三八零零幺三八零零零", READBACK)], speech_in=speech_in)
        h.deps.settings.end_silence_ms_by_kind = {"choice": 300, "digits": 3000}
        call = await h.dial()
        await h.heard_all_of(call, ASK_NUMBER[0][1])
        assert call.media is not None
        call.media.say_pcm(voiced_pcm(ms=900))
        await call.media.finished_talking()
        spoke_until = time.monotonic()
        await h.heard(READBACK[0][1], timeout=8)
        return time.monotonic() - spoke_until

    assert await reply_gap(["幺三八", "幺三八零零幺三八"]) < 2.0  # 8 digits heard: the short silence
    assert await reply_gap(["幺三八"]) >= 3.0  # 3 digits: the caller may go on


class SilentSwitchCall(FakePhoneCall):
    """Takes ``unicast`` and never sends a datagram (FreeSWITCH always sends at least
    filler, so only a broken switch or network does this)."""

    async def _sendmsg(self, p: Any) -> None:
        await super()._sendmsg(p)
        if self.media is not None:
            self.media.paused = True


async def test_a_call_whose_media_never_starts_is_ended_with_its_outcome(make_harness: Any) -> None:
    """FreeSWITCH took unicast but no datagram ever comes (no filler either): the bot
    gives up on the call after the start timeout instead of talking to nobody."""
    h = await make_harness([("/start", ASK_NUMBER)])
    h.deps.settings = dataclasses.replace(
        h.deps.settings, unicast=dataclasses.replace(h.deps.settings.unicast, start_timeout_s=0.5))
    call = SilentSwitchCall("127.0.0.1", h.server.port, CallScript(caller="13800138000"))
    h.calls.append(call)
    await call.dial()
    await until(lambda: bool(h.outcomes), 10)
    await asyncio.wait_for(call.bot_closed.wait(), 5)
    assert len(h.abandoned) == 1 and h.abandoned[0][0] == "voice"
    assert h.abandoned[0][2] == "media_lost"
    assert h.server.active_calls == 0
