"""Scripted phone calls (tests/fixtures/calls/*.yml, see the README there) against the
real dialogue, action server, line-test unit and store, through the FreeSWITCH double.

The bot's voice here is a short tone per prompt (its text noted), so a call takes
seconds; the real voices are tested in test_voice_calls.py and tests/integration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from sqlmodel import select

from bot.settings import REPO_ROOT, Settings
from bot.stack import Stack
from bot.store import handoffs, service
from bot.store.db import Database
from bot.store.models import DeskUser
from tests.e2e.conftest import Client, voice_host
from tests.fakes.freeswitch import CallScript
from tests.fakes.fs_media import FakePhoneCall
from tests.fakes.voice_doubles import ScriptedSpeechIn, ToneSpeech, until, voiced_pcm
from voice.esl import EslOutboundServer

pytestmark = [pytest.mark.e2e, pytest.mark.stack]
CALLS = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))
         for p in sorted((REPO_ROOT / "tests" / "fixtures" / "calls").glob("*.yml"))}


class Host:
    def __init__(self, server: EslOutboundServer, speech: ToneSpeech, speech_in: ScriptedSpeechIn) -> None:
        self.server, self.speech, self.speech_in = server, speech, speech_in


@pytest.fixture
async def host(stack: Stack, stack_settings: Settings) -> AsyncIterator[Host]:
    speech, speech_in = ToneSpeech(ms=250), ScriptedSpeechIn([])
    async with voice_host(stack_settings, speech, speech_in, stack_settings.media_port_max + 200) as service:
        yield Host(service.server, speech, speech_in)


def take_call(settings: Settings, conversation_id: str, username: str) -> None:
    """J1: an operator takes the waiting call on the desk (an account without a phone
    extension, so the bot hands the call to the queue extension)."""
    db = Database.from_settings(settings)
    try:
        def account(s: Any) -> None:
            if s.exec(select(DeskUser).where(DeskUser.username == username)).first() is None:
                s.add(DeskUser(username=username, display_name=username, role="junior", password_hash="!"))

        db.call(account)
        row = db.call(handoffs.latest_for_conversation, conversation_id)
        assert row is not None and row.id is not None, "no handoff queued for the call"
        db.call(service.take_handoff, row.id, username)
    finally:
        db.dispose()


def assert_stored_as_expected(client: Client, expect: dict[str, Any]) -> list[dict[str, Any]]:
    """A script's ``expect`` about the store: tickets per number, their contact numbers,
    their recorded messages (returned, for a caller that can check what they hold)."""
    for number, count in expect.get("tickets", {}).items():
        assert len(client.tickets(relatedEntity_id=number)) == count, number
    for number, contact in expect.get("contact", {}).items():
        (ticket,) = client.tickets(relatedEntity_id=number)
        chars = {c["name"]: c["value"] for c in ticket["troubleTicketCharacteristic"]}
        assert chars["contactNumber"] == contact
    messages: list[dict[str, Any]] = []
    for number, count in expect.get("audio_attachments", {}).items():
        (ticket,) = client.tickets(relatedEntity_id=number)
        full = client.request("GET", f"/tmf-api/troubleTicket/v5/troubleTicket/{ticket['id']}").body
        audio = [a for a in full["attachment"] if a["mimeType"] == "audio/wav"]
        assert len(audio) == count
        messages += audio
    return messages


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_scripted_call(name: str, host: Host, client: Client, stack_settings: Settings) -> None:
    script = CALLS[name]
    call = FakePhoneCall("127.0.0.1", host.server.port, CallScript(caller=script["caller"]),
                         ptime_ms=int(script.get("ptime_ms", 20)))
    speech = host.speech
    mark = [0]

    def said_since(fragment: str) -> bool:
        return any(fragment in text for text in speech.texts[mark[0]:])

    async def hear(fragment: str, timeout: float = 40) -> None:
        await until(lambda: said_since(fragment), timeout, f"{fragment!r}; the bot said {speech.texts[-4:]}")
        mark[0] = next(i for i in range(mark[0], len(speech.texts)) if fragment in speech.texts[i]) + 1

    async def act(step: dict[str, Any]) -> None:
        assert call.media is not None
        if "press" in step:
            await call.press(str(step["press"]))
        elif "say" in step:
            host.speech_in.transcripts.append(str(step["say"]))
            call.media.say_pcm(voiced_pcm(ms=900))
            await call.media.finished_talking()

    mark[0] = len(speech.texts)
    try:
        await call.dial()
        await asyncio.wait_for(call.media_started.wait(), 10)
        for step in script["steps"]:
            if step == "hangup":
                await call.caller_hangs_up()
                await call.wait_closed(10)
            elif step == "ended":
                await asyncio.wait_for(call.bot_closed.wait(), 60)
            elif "take" in step:
                await asyncio.to_thread(take_call, stack_settings, call.uuid, str(step["take"]))
            elif "hear" in step:
                await hear(str(step["hear"]))
            elif "record" in step:  # A11: speak for this many seconds after the tone, then '#'
                assert call.media is not None
                await until(lambda: (t := call.media.log.last_arrival()) is not None  # type: ignore[union-attr]
                            and time.monotonic() - t > 0.3, 20, "the tone before the recording")
                call.media.say_pcm(voiced_pcm(ms=int(float(step["record"]) * 1000)))
                await call.media.finished_talking()
                await call.press("#")
            elif "during" in step:
                await hear(str(step["during"]))
                await act(step)
            else:
                await until(lambda: call.media is not None and (t := call.media.log.last_arrival()) is not None
                            and time.monotonic() - t > 0.1, 20, "the bot to finish its prompt")
                await act(step)
    finally:
        await call.close()
    expect = script.get("expect", {})
    assert_stored_as_expected(client, expect)
    if expect.get("transferred"):
        assert call.transferred_to == "handoff XML default"
        assert call.variables["hotline_conversation_id"] == call.uuid
        for name, value in expect.get("variables", {}).items():
            assert call.variables[name] == value
    if "outcomes" in expect:
        await until(lambda: len(client.outcomes(call.uuid)) >= len(expect["outcomes"]), 10, "outcomes")
        outcomes = client.outcomes(call.uuid)
        assert [o["outcome"] for o in outcomes] == expect["outcomes"]
        assert all(o["channel"] == "voice" for o in outcomes)
        if "step" in expect:
            assert outcomes[-1]["step"] == expect["step"]
