"""Operators' calls recorded (Q2), on the real FreeSWITCH (``freeswitch/`` as shipped):
a caller handed over by the bot is bridged to operator 2001's phone, and the WAV the
switch writes (``record_session`` as the bot runs it) is 8 kHz, two channels, as long
as the bridge, with the caller on the left and the operator on the right.

The caller is SIPp on the trunk side (G.711 A-law) saying a 440 Hz tone from the answer
on; the operator is a SIPp phone registered as 2001 (``SippPhone``) that answers the
bridge, says a 300 Hz tone and hangs up after a while. The store, the
handoff and the bot's phone channel (``VoiceService``) are the product's; the dialogue is
scripted (it hands over at once)."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from bot.chat.service import ChatService
from bot.settings import Settings
from bot.store import recordings, service
from bot.store.db import Database
from bot.store.models import DeskUser
from tests.fakes.voice_doubles import ScriptedDialogue, ToneSpeech, until
from tests.integration.test_call_session import catalogue
from tests.switch.fixtures import StartSwitch, SwitchEvents, freeswitch_build, start_switch  # noqa: F401 - fixtures
from tests.switch.freeswitch_process import FreeswitchProcess
from tests.switch.sipp import AwaitBye, SippCaller, SippPhone, Speech
from voice.service import SpeechEngines, VoiceService

pytestmark = pytest.mark.switch

HANDOFF_SAID = "正在为您转接人工服务，请稍候。"
CALLER_HZ = 440.0
OPERATOR_HZ = 300.0  # SippPhone's operator speaks a 300 Hz tone
TALK_S = 4  # how long the operator stays on the bridged call


def tone(hz: float, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (amplitude * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16)


@pytest.fixture
async def switch_call(tmp_path: Path, settings: Settings,
                      start_switch: StartSwitch) -> AsyncIterator[tuple[Database, VoiceService, FreeswitchProcess, int]]:  # noqa: F811
    db = Database(f"sqlite:///{tmp_path / 'hotline.db'}")
    db.upgrade()
    db.call(lambda s: s.add(DeskUser(username="jun", display_name="王小明", role="junior", password_hash="x",
                                     extension="2001")))
    folder = tmp_path / "call-recordings"  # one host: FreeSWITCH writes where the bot reads
    session = aiohttp.ClientSession()
    handoff_id = db.call(service.queue_handoff, service.HandoffData(
        conversation_id="switch-call", channel="voice", language="zh", reason="caller_asked")).handoff_id
    dialogue = ScriptedDialogue([("/start", [("utter_handoff", HANDOFF_SAID), ("", "", {"handoff": {
        "handoff_id": handoff_id, "reason": "caller_asked", "conversation_id": "switch-call"}})])])
    chat = ChatService(dialogue, catalogue(), channel="voice",  # type: ignore[arg-type]
                       action_health_url="http://127.0.0.1:9/health", session=session)
    voice_settings = settings.model_copy(update={
        "esl_port": 0, "media_port_min": 48200, "media_port_max": 48299, "fs_media_port_min": 48300,
        "fs_media_port_max": 48399, "handoff_poll_seconds": 0.2, "call_recordings_dir": folder,
        "fs_recordings_dir": str(folder)})
    voice = VoiceService(voice_settings, chat, SpeechEngines(speech_out=ToneSpeech(ms=600)), db=db)
    await voice.start(prewarm=False)
    fs = start_switch(voice.server.port)
    try:
        yield db, voice, fs, handoff_id
    finally:
        await voice.stop()
        await session.close()
        db.dispose()


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / 8000)[spectrum.argmax()])


async def test_the_bridged_call_is_recorded_in_stereo_as_long_as_the_bridge(
    switch_call: tuple[Database, VoiceService, FreeswitchProcess, int], tmp_path: Path
) -> None:
    db, voice, fs, handoff_id = switch_call
    db.call(service.take_handoff, handoff_id, "jun")  # on the desk: the bot bridges as soon as it asks
    watch = SwitchEvents(fs)
    await watch.start()
    operator = SippPhone(tmp_path / "operator", fs.ports.internal_sip, account="2001", password=fs.OPERATOR_PASSWORD,
                         hangup_after_ms=TALK_S * 1000, talk_ms=TALK_S * 1000 + 1000)
    await operator.start()  # registered as 2001, waiting for the bridge
    # The caller talks from the answer on, through the notice, the ringing and the bridge.
    caller = SippCaller(tmp_path / "caller", fs.ports.external_sip, [Speech(tone(CALLER_HZ, TALK_S + 6)), AwaitBye()])
    try:
        await caller.dial()
        talking = asyncio.create_task(caller.act())
        assert await operator.wait_closed(TALK_S + 30) == 0, operator.errors("phone")  # it hung up after talking
        await until(lambda: bool(db.call(recordings.list_recordings, handoff_id=handoff_id)), 10, "the recording stored")
        assert await caller.wait_closed(15) == 0, caller.errors()  # the bot hung up the caller after the operator
        talking.cancel()
    finally:
        await caller.close()
        await operator.close()
        await watch.close()

    [row] = db.call(recordings.list_recordings, handoff_id=handoff_id)
    path = voice.settings.call_recordings_dir / row.file_name
    starts = [e for e in watch.events if e.name == "RECORD_START"]
    assert [e.headers.get("Record-File-Path") for e in starts] == [str(path)]
    bot_leg = starts[0].headers["Unique-ID"]  # the caller's channel, as the bot has it
    bridged = [float(e.headers["Event-Date-Timestamp"]) / 1e6 for e in watch.events
               if e.name in ("CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE") and e.headers.get("Unique-ID") == bot_leg]
    assert len(bridged) == 2, [e.name for e in watch.events]
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 2, 2)
        frames = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2).astype(np.float64)
    seconds = len(frames) / 8000
    assert seconds == pytest.approx(bridged[1] - bridged[0], abs=0.3)  # the bridge, not the notice or ringing
    assert seconds >= TALK_S - 0.5, seconds
    assert row.duration_s == pytest.approx(seconds, abs=0.01) and (row.sample_rate, row.channels) == (8000, 2)
    middle = frames[len(frames) // 4: 3 * len(frames) // 4]  # what both said, away from the edges
    caller, operator_side = middle[:, 0], middle[:, 1]
    assert np.sqrt((caller ** 2).mean()) > 1000 and np.sqrt((operator_side ** 2).mean()) > 1000
    assert dominant_hz(caller) == pytest.approx(CALLER_HZ, abs=15)  # the caller left
    assert dominant_hz(operator_side) == pytest.approx(OPERATOR_HZ, abs=15)  # the operator right
