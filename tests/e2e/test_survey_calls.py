"""U3 by phone, end to end: the survey's attempt is placed as a due job would
(``SurveyCaller.place_attempt``) on the outbound mechanism against the FreeSWITCH double
(``bgapi originate``, the answered call dialled back into the bot's ESL server); the
call runs the designers' survey dialogue on the real Rasa server and action server,
whose actions store each answer through the stack bot's survey API; the store is read
back. Answered and satisfied; answered and "not fixed" (a second dispatch at once, then
a hang-up that keeps what was said); no answer ×3 → unreachable with the retries two
hours apart; "don't call me again" said (speech, scripted recogniser) → the number is
never called again."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.app import build_chat_service
from bot.settings import Settings
from bot.stack import Stack
from bot.store import service, surveys, workflow
from bot.store.db import Database
from bot.store.models import Ticket
from bot.survey.caller import SurveyCaller
from tests.fakes.freeswitch import CallScript, FakeCall, FakeEslServer
from tests.fakes.fs_media import FakePhoneCall
from tests.fakes.voice_doubles import ScriptedSpeechIn, ToneSpeech, until, voiced_pcm
from voice.control import FreeswitchControl
from voice.outbound import OutboundCalls, OutboundSettings
from voice.service import SpeechEngines, VoiceService

pytestmark = [pytest.mark.e2e, pytest.mark.stack]

PASSWORD = "survey-esl-secret"
SENIOR = workflow.Actor("senior", "senior")
CENTRE = workflow.Actor("centre", "centre", "测试分公司")
# Calls at any hour: the calling hours themselves are tested in tests/unit/test_surveys.py.
RULES = surveys.SurveyRules(attempts=3, retry_hours=2, calling_start=time(0), calling_end=None)


@dataclass
class RecordedJobs:
    """The scheduler's due jobs, as the survey caller asks for them."""

    scheduled: list[tuple[str, str, datetime, dict[str, Any]]] = field(default_factory=list)

    async def schedule_once(self, kind: str, key: str, run_at: datetime, payload: dict[str, Any]) -> None:
        self.scheduled.append((kind, key, run_at, payload))


@dataclass
class Phone:
    fs: FakeEslServer
    db: Database
    speech: ToneSpeech
    speech_in: ScriptedSpeechIn
    caller: SurveyCaller
    jobs: RecordedJobs
    callees: list[FakeCall] = field(default_factory=list)
    mark: int = 0

    async def heard(self, fragment: str, timeout: float = 30) -> None:
        """The bot said ``fragment`` (since the last thing waited for)."""
        await until(lambda: any(fragment in t for t in self.speech.texts[self.mark:]), timeout,
                    f"the bot saying {fragment!r} (said: {self.speech.texts[self.mark:]})")
        self.mark = next(i for i in range(self.mark, len(self.speech.texts)) if fragment in self.speech.texts[i]) + 1

    async def answered(self, n: int = 1) -> FakePhoneCall:
        await until(lambda: len(self.callees) >= n, 15, "the switch dialling the bot back")
        call = self.callees[n - 1]
        assert isinstance(call, FakePhoneCall)
        await asyncio.wait_for(call.media_started.wait(), 10)
        return call

    async def attempt_ended(self, survey_id: int, n: int, timeout: float = 30) -> Any:
        async def ended() -> bool:
            attempts = await self.db.run(surveys.attempts_of, survey_id)
            return len(attempts) >= n and attempts[n - 1].ended_at is not None

        deadline = asyncio.get_running_loop().time() + timeout
        while not await ended():
            assert asyncio.get_running_loop().time() < deadline, f"attempt {n} of survey {survey_id} did not end"
            await asyncio.sleep(0.1)
        return (await self.db.run(surveys.attempts_of, survey_id))[n - 1]


@pytest.fixture
async def phone(stack: Stack, stack_settings: Settings) -> AsyncIterator[Phone]:
    db = Database.from_settings(stack_settings)
    fs = FakeEslServer(PASSWORD)
    await fs.start()
    base = stack_settings.media_port_max + 500 + random.randrange(0, 300, 100)
    s = stack_settings.model_copy(update={
        "esl_password": SecretStr(PASSWORD), "fs_esl_listen_port": fs.port, "esl_port": 0,
        "media_port_min": base, "media_port_max": base + 49, "fs_media_port_min": base + 50,
        "fs_media_port_max": base + 99})
    session = aiohttp.ClientSession()
    speech, speech_in = ToneSpeech(ms=200), ScriptedSpeechIn([])
    control = FreeswitchControl(s)
    calls = OutboundCalls(control, db, OutboundSettings(dial_string="sofia/external/{number}@127.0.0.1:5099",
                                                        caller_id_number="057100000000", ring_timeout_s=1))
    voice = VoiceService(s, build_chat_service(s, session, "voice", db),
                         SpeechEngines(speech_out=speech, recogniser_factory=lambda lang, rate: speech_in),
                         db=db, outbound=calls)
    await voice.start(prewarm=False)
    fs.global_vars = {"hotline_bot_host": "127.0.0.1", "hotline_esl_port": str(voice.server.port)}
    jobs = RecordedJobs()
    phone = Phone(fs, db, speech, speech_in, SurveyCaller(db, RULES, calls, jobs), jobs)

    async def dial_back(host: str, port: int, script: CallScript) -> FakeCall:
        call = FakePhoneCall(host, port, script)
        phone.callees.append(call)
        await call.dial()
        return call

    fs.dial_back = dial_back
    control.start()
    await until(lambda: control.connected, 10, "the control connection")
    await calls.start()
    await phone.caller.start()
    try:
        yield phone
    finally:
        await calls.stop()
        for c in phone.callees:
            await c.close()
        await control.close()
        await voice.stop()
        await fs.stop()
        await session.close()
        db.dispose()


def repaired(db: Database, line: str, contact: str, *, channel: str = "voice",
             conversation: str | None = None) -> tuple[str, int]:
    """A report on ``line`` (by ``channel``), dispatched, and the centre's receipt: its
    survey is opened. The e2e world's branch; lines of its first exchange."""
    data = service.ReportData(conversation_id=conversation or f"survey-e2e-{line}-{random.random()}",
                              channel=channel, language="zh", kind="new", fault_number=line, contact_number=contact,
                              symptom_category="no_dial_tone", symptom_text="没有拨号音")
    tid = db.call(service.create_report, data).ticket_id
    db.call(workflow.perform, tid, "approve_dispatch", SENIOR, reason="ok", params={"fault_class": "其他"})
    db.call(workflow.perform, tid, "receipt", CENTRE, reason="换了入户线")
    survey = db.call(surveys.for_ticket, tid)
    assert survey is not None
    return tid, int(survey.id or 0)


async def test_answered_and_satisfied(phone: Phone) -> None:
    _tid, sid = repaired(phone.db, "057160009701", "13900970001")
    phone.fs.callees["13900970001"] = "answer"
    assert await phone.caller.place_attempt(sid, 1) == "placed"
    call = await phone.answered()
    await phone.heard("障碍申告中心")           # U3: who we are and why we call
    await phone.heard("故障现在修好了吗")
    await call.press("1")
    await phone.heard("服务态度")
    await call.press("5")
    await phone.heard("维修质量")
    await call.press("4")
    await phone.heard("意见或建议")
    await call.press("2")
    await phone.heard("感谢您的配合")
    attempt = await phone.attempt_ended(sid, 1)
    survey = await phone.db.run(surveys.get, sid)
    assert (survey.state, survey.result, survey.fixed, survey.attitude, survey.quality, survey.asked_by) == (
        "completed", "satisfied", True, 5, 4, "bot (phone)")
    assert (attempt.outcome, attempt.hangup_cause, attempt.channel) == ("answered", "NORMAL_CLEARING", "phone")
    origination = phone.fs.originations[0]
    assert origination.variables["hotline_purpose"] == "survey"
    assert origination.variables["hotline_ref_id"] == str(sid)
    assert phone.jobs.scheduled == []  # nothing more to do


async def test_answered_not_fixed_is_dispatched_again_and_a_hang_up_keeps_what_was_said(phone: Phone) -> None:
    tid, sid = repaired(phone.db, "057160009702", "13900970002")
    phone.fs.callees["13900970002"] = "answer"
    await phone.caller.place_attempt(sid, 1)
    call = await phone.answered()
    await phone.heard("故障现在修好了吗")
    await call.press("2")
    await phone.heard("重新派单")  # said only once the second dispatch is stored
    survey = await phone.db.run(surveys.get, sid)
    assert survey.result == "not_fixed" and survey.second_ticket_id
    second = await phone.db.run(lambda s: s.get(Ticket, survey.second_ticket_id))
    assert second is not None and second.sub_step == "awaiting_review" and tid in second.description
    await phone.heard("服务态度")
    await call.press("3")
    await phone.heard("维修质量")
    await call.caller_hangs_up()
    attempt = await phone.attempt_ended(sid, 1)
    survey = await phone.db.run(surveys.get, sid)
    assert (survey.state, survey.stopped_at, survey.fixed, survey.attitude, survey.quality) == (
        "stopped", "quality", False, 3, None)
    assert attempt.outcome == "answered" and phone.jobs.scheduled == []


async def test_no_answer_three_times_is_unreachable(phone: Phone) -> None:
    _tid, sid = repaired(phone.db, "057160009703", "13900970003")
    ends = []
    for n, behaviour in enumerate(("ring", "USER_BUSY", "ring"), start=1):
        phone.fs.callees["13900970003"] = behaviour
        assert await phone.caller.place_attempt(sid, n) == "placed"
        ends.append(await phone.attempt_ended(sid, n))
    assert [(a.outcome, a.hangup_cause) for a in ends] == [
        ("no_answer", "NO_ANSWER"), ("busy", "USER_BUSY"), ("no_answer", "NO_ANSWER")]
    survey = await phone.db.run(surveys.get, sid)
    assert survey.state == "unreachable" and survey.attempts_made == 3
    # The retries are due jobs two hours after each failed attempt.
    assert [(kind, key, at, payload) for kind, key, at, payload in phone.jobs.scheduled] == [
        ("survey_call", f"survey-{sid}-2", ends[0].ended_at + timedelta(hours=2), {"survey_id": sid, "attempt": 2}),
        ("survey_call", f"survey-{sid}-3", ends[1].ended_at + timedelta(hours=2), {"survey_id": sid, "attempt": 3}),
    ]
    assert phone.callees == [] and phone.speech.texts == []
    assert await phone.caller.place_attempt(sid, 4) == "taken"  # nothing more


async def test_dont_call_me_again_said_is_never_called_again(phone: Phone) -> None:
    contact = "13900970004"
    _tid, sid = repaired(phone.db, "057160009704", contact)
    _tid2, other = repaired(phone.db, "057160009705", contact)  # due already, same reporter
    phone.fs.callees[contact] = "answer"
    await phone.caller.place_attempt(sid, 1)
    call = await phone.answered()
    await phone.heard("故障现在修好了吗")
    assert call.media is not None
    phone.speech_in.transcripts.append("以后不要再打电话给我")
    await asyncio.sleep(0.3)
    call.media.say_pcm(voiced_pcm(ms=900))
    await phone.heard("不会再为回访给您打电话")
    await phone.attempt_ended(sid, 1)
    survey = await phone.db.run(surveys.get, sid)
    assert (survey.state, survey.stopped_at) == ("opted_out", "fixed")
    pref = await phone.db.run(surveys.preference, contact)
    assert pref is not None and pref.do_not_call
    assert await phone.caller.place_attempt(other, 1) == "do_not_call"
    assert (await phone.db.run(surveys.get, other)).state == "do_not_call"
    _tid3, later = repaired(phone.db, "057160009706", contact)
    assert (await phone.db.run(surveys.get, later)).state == "do_not_call"
    assert len(phone.fs.originations) == 1  # only the first call was ever placed
