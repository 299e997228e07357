"""Phone calls end to end: the FreeSWITCH double dials in over ESL and streams unicast
audio; the real Rasa server, action server, line-test unit and store answer.

* The bot process's own voice server (as ``make run`` starts it): keypad only here
  (no Mandarin Vosk model on this machine), espeak-ng speaking.
* A call session hosted by the test, on the same real dialogue and store, with the
  real espeak-ng voice and real VAD, whose recogniser is scripted (the Korean Vosk
  model can't recognise Mandarin; the real Vosk path is tested in test_vosk_*):
  a whole A1–A11 report by voice and keypad mixed, with a recorded message.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.settings import Settings
from bot.stack import Stack
from tests.e2e.conftest import Client, voice_host
from tests.fakes.freeswitch import CallScript
from tests.fakes.fs_media import FakePhoneCall
from tests.fakes.voice_doubles import ScriptedSpeechIn, until, voiced_pcm
from voice.tts import build_speaker, espeak_path

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.stack,
    pytest.mark.skipif(espeak_path() is None, reason="espeak-ng is not installed (apt-get install espeak-ng)"),
]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


async def test_the_bots_own_voice_server_takes_a_keypad_call(stack: Stack, client: Client) -> None:
    health = get_json(stack.settings.bot_url + "/healthz")
    assert health["voice"]["running"] is True, health
    assert health["voice"]["esl_port"] == stack.settings.esl_port
    call = FakePhoneCall("127.0.0.1", stack.settings.esl_port, CallScript(caller="13700001111"))
    try:
        await call.dial()
        await asyncio.wait_for(call.media_started.wait(), 10)
        assert call.media is not None
        media = call.media
        await until(lambda: media.log.first_loud_after(0) is not None, 20, "the main menu")
        pressed = time.monotonic()
        await call.press("1")  # barges into the menu (A1)
        await until(lambda: media.log.first_loud_after(pressed + 0.3) is not None, 20, "V1")
        await call.caller_hangs_up()
        await call.wait_closed(10)
    finally:
        await call.close()
    await until(lambda: bool(client.outcomes(call.uuid)), 10, "the outcome")
    outcome = client.outcomes(call.uuid)[-1]
    assert outcome["outcome"] == "abandoned" and outcome["channel"] == "voice" and outcome["step"] == "A2"


class SpySpeech:
    """The real speaker, noting what was said (so the test knows where the call is)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.said: list[str] = []

    def speak(self, text: str, language: Any, rate: int) -> AsyncIterator[bytes]:
        self.said.append(text)
        return self.inner.speak(text, language, rate)  # type: ignore[no-any-return]

    def heard(self, fragment: str, since: int = 0) -> bool:
        return any(fragment in t for t in self.said[since:])


@pytest.fixture
async def voice_host_espeak(stack: Stack, stack_settings: Settings) -> AsyncIterator[tuple[Any, SpySpeech, ScriptedSpeechIn]]:
    tts = build_speaker({"zh": None, "en": None}, stack_settings.tts_cache_dir)
    await tts.start()
    speech, speech_in = SpySpeech(tts.speaker), ScriptedSpeechIn([])
    async with voice_host(stack_settings, speech, speech_in, stack_settings.media_port_max + 100) as service:
        yield service.server, speech, speech_in
    await tts.stop()


async def test_a_whole_report_by_voice_and_keypad_mixed(voice_host_espeak: Any, client: Client) -> None:
    server, speech, speech_in = voice_host_espeak
    call = FakePhoneCall("127.0.0.1", server.port, CallScript(caller="13700002222"))

    async def wait_for(fragment: str, timeout: float = 40) -> None:
        await until(lambda: speech.heard(fragment, mark[0]), timeout, f"{fragment!r} after {speech.said[mark[0] - 2:]}")
        mark[0] = len(speech.said)

    async def say(text: str, ms: int = 900) -> None:
        assert call.media is not None
        speech_in.transcripts.append(text)
        await asyncio.sleep(0.3)
        call.media.say_pcm(voiced_pcm(ms=ms))

    async def bot_quiet() -> None:
        """The prompt (and the tone before a recording) has been played out."""
        assert call.media is not None
        log = call.media.log
        await until(lambda: (t := log.last_arrival()) is not None and time.monotonic() - t > 0.3, 30, "quiet")

    mark = [0]
    try:
        await call.dial()
        await asyncio.wait_for(call.media_started.wait(), 10)
        await wait_for("障碍申告请按1")                  # A1 main menu
        await say("我要报障")                             # speech at a key menu: the NLU takes it
        await wait_for("故障电话号码")                     # V1
        await call.press("057160000021#")                # keypad
        await wait_for("确认请按1")                        # V2 readback (whole, no barge-in)
        await say("对")                                   # yes by voice
        await wait_for("联系电话", timeout=60)             # A8 test ran, V5 contact number
        await say("幺三九幺二三四五六七八")                    # spoken digits (幺 = 1)
        await wait_for("故障现象")                          # symptom menu
        await call.press("3")                             # keypad: cannot call out? (menu key)
        await wait_for("确认请按1")                         # V6 readback
        await call.press("1")                             # A10: stored before V9 is said
        await wait_for("留言")                              # V7 offer
        tickets = client.tickets(relatedEntity_id="057160000021")
        assert len(tickets) == 1
        chars = {c["name"]: c["value"] for c in tickets[0]["troubleTicketCharacteristic"]}
        assert chars["contactNumber"] == "13912345678"
        await call.press("1")                             # leave a message
        await wait_for("留言")                              # V8 (then the tone)
        assert call.media is not None
        await bot_quiet()
        call.media.say_pcm(voiced_pcm(ms=1500))
        await call.media.finished_talking()
        await call.press("#")
        await wait_for("确认")                              # V10 after hearing it back
        await call.press("1")
        await wait_for("其它服务", timeout=30)               # V9 saved, V11
        await call.press("2")
        await call.wait_closed(30)
    finally:
        await call.close()
    ticket = client.request("GET", f"/tmf-api/troubleTicket/v5/troubleTicket/{tickets[0]['id']}").body
    audio = [a for a in ticket["attachment"] if a["mimeType"] == "audio/wav"]
    assert len(audio) == 1
    outcome = client.outcomes(call.uuid)[-1]
    assert outcome["outcome"] == "accepted" and outcome["channel"] == "voice"
    assert call.hangup_cause == "NORMAL_CLEARING"
