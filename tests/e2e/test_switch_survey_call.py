"""U3 through a real FreeSWITCH (this repository's tree): the survey's attempt is placed
as the due job would place it; the bot's control connection sends ``bgapi originate`` to
a SIPp UAS through the external profile; the UAS answers and presses its answers as RFC
2833 keys (1 fixed, 4 and 5, 2 no comment) after hearing each question; the answered
call comes back to the phone channel hosted here, on the real Rasa dialogue and action
server, and the store says how the survey went."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import time as clock
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.settings import Settings
from bot.stack import Stack
from bot.store import surveys
from bot.survey.caller import SurveyCaller
from tests.e2e.conftest import voice_host
from tests.e2e.test_survey_calls import RecordedJobs, repaired
from tests.fakes.voice_doubles import ScriptedSpeechIn, ToneSpeech, until
from tests.switch.fixtures import StartSwitch
from tests.switch.sipp import AwaitBye, Keys, SippCallee
from voice.control import FreeswitchControl
from voice.outbound import OutboundCalls, OutboundSettings

pytestmark = [pytest.mark.e2e, pytest.mark.stack, pytest.mark.switch]

CONTACT = "13900990001"
RULES = surveys.SurveyRules(calling_start=clock(0), calling_end=None)


@pytest.fixture
async def switched(stack: Stack, stack_settings: Settings, start_switch: StartSwitch) -> AsyncIterator[Any]:
    speech = ToneSpeech(ms=300)
    async with voice_host(stack_settings, speech, ScriptedSpeechIn([]), stack_settings.media_port_max + 900) as voice:
        fs = start_switch(voice.server.port)
        control = FreeswitchControl(voice.settings.model_copy(update={
            "esl_password": SecretStr(fs.ESL_PASSWORD), "fs_esl_listen_port": fs.ports.esl}))
        calls = OutboundCalls(control, voice.db, OutboundSettings(ring_timeout_s=10))
        voice.outbound = calls
        control.start()
        try:
            await until(lambda: control.connected, 15, "the control connection to FreeSWITCH")
            caller = SurveyCaller(voice.db, RULES, calls, RecordedJobs())
            await caller.start()
            yield voice, speech, calls, caller, fs
        finally:
            await calls.stop()
            await control.close()


async def test_a_survey_call_answered_by_a_sipp_callee_who_presses_keys(switched: Any, tmp_path: Path) -> None:
    voice, speech, calls, caller, fs = switched
    _tid, sid = repaired(voice.db, "057160009901", CONTACT)
    callee = SippCallee(tmp_path / "callee", [Keys("1"), Keys("5"), Keys("4"), Keys("2"), AwaitBye()])
    mark = [0]

    async def heard(fragment: str) -> None:
        await until(lambda: any(fragment in t for t in speech.texts[mark[0]:]), 30,
                    f"the bot saying {fragment!r} (said: {speech.texts[mark[0]:]})\n{fs.log_text()[-2000:]}")
        mark[0] = len(speech.texts)
        await asyncio.sleep(0.2)  # its tone (and speech hint) are on their way: a key now answers it

    try:
        await callee.listen()
        calls.settings = OutboundSettings(dial_string=f"sofia/external/{{number}}@127.0.0.1:{callee.sip_port}",
                                          caller_id_number="057100000000", ring_timeout_s=10)
        assert await caller.place_attempt(sid, 1) == "placed"
        await callee.answered()
        for question in ("修好了吗", "服务态度", "维修质量", "意见或建议"):
            await heard(question)
            await callee.act()
        await heard("感谢您的配合")
        assert await callee.wait_closed(30) == 0, callee.errors()  # it got the bot's BYE
    finally:
        await callee.close()
    deadline = time.monotonic() + 20
    while (attempts := await voice.db.run(surveys.attempts_of, sid))[0].ended_at is None:
        assert time.monotonic() < deadline, "the attempt was not settled"
        await asyncio.sleep(0.1)
    survey = await voice.db.run(surveys.get, sid)
    assert (survey.state, survey.result, survey.fixed, survey.attitude, survey.quality) == (
        "completed", "satisfied", True, 5, 4)
    assert (attempts[0].outcome, attempts[0].hangup_cause) == ("answered", "NORMAL_CLEARING")

