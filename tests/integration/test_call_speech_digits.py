"""Issue 13 item 2 on the phone: a number said over several utterances ("零五七一" … pause
… "八七六五 零零零一") is one number when the prompt expects digits (A2 V1)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.fakes.voice_doubles import ScriptedSpeechIn, until, voiced_pcm
from tests.integration.test_call_session import ASK_NUMBER, READBACK, make_harness  # noqa: F401

WHOLE = "零 五 七 一 八 七 六 五 零 零 零 一"


async def test_a_number_said_in_two_goes_reaches_the_dialogue_as_one(make_harness: Any) -> None:  # noqa: F811
    speech_in = ScriptedSpeechIn(["零 五 七 一", "八 七 六 五 零 零 零 一"])
    h = await make_harness([("/start", ASK_NUMBER), (WHOLE, READBACK)], speech_in=speech_in)
    call = await h.dial()
    await h.heard_all_of(call, ASK_NUMBER[0][1])
    assert call.media is not None
    call.media.say_pcm(voiced_pcm(ms=700))
    await until(lambda: len(speech_in.transcripts) == 1, 8)  # the first part was recognised
    await asyncio.sleep(0.3)
    assert len(h.dialogue.messages) == 1, "a part of a number went to the dialogue alone"
    call.media.say_pcm(voiced_pcm(ms=900))
    await h.heard(READBACK[0][1], timeout=10)
    assert h.dialogue.messages[1] == WHOLE
