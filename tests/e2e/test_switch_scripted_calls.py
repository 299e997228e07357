"""The scripted calls (tests/fixtures/calls/*.yml) again, placed by SIPp through a real
FreeSWITCH running this repository's ``freeswitch/`` tree: the trunk profile (5080 moved
to a free port, the ``sip_trunks`` ACL), the ``public`` dialplan, ``socket … async full``
to the bot's ESL server, unicast media, RFC 2833 keys and G.711 speech as RTP, the
``handoff`` extension. The real dialogue, action server, line-test unit and store answer.

The bot's voice is a short tone per prompt, its text noted (so the test knows where the
call is); what the caller hears is read off the wire. Speech is a voiced signal the real
VAD hears; the recogniser returns the step's ``say`` text (no Mandarin model here)."""

from __future__ import annotations

import asyncio
import io
import time
import urllib.request
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bot.settings import REPO_ROOT, Settings
from bot.world.loader import load_world_file
from tests.e2e.conftest import STAFF_TOKEN, WORLD, Client, SwitchHost
from tests.e2e.test_scripted_calls import assert_stored_as_expected, take_call
from tests.fakes.voice_doubles import until, voiced_pcm
from tests.switch.sipp import Action, AwaitBye, Hangup, Keys, SippCaller, Speech

pytestmark = [pytest.mark.e2e, pytest.mark.stack, pytest.mark.switch]
CALLS = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))
         for p in sorted((REPO_ROOT / "tests" / "fixtures" / "calls").glob("*.yml"))}
# Both G.711 laws and both packet lengths, spread over the scripts.
CODECS = ("PCMA", "PCMU")


def speech(ms: int) -> Speech:
    return Speech(np.frombuffer(voiced_pcm(ms=ms), dtype="<i2").copy())


def caller_actions(steps: list[Any]) -> list[Action]:
    """What SIPp must do, in order, for a script's steps (the waits stay with the test)."""
    out: list[Action] = []
    for step in steps:
        if step == "hangup":
            out.append(Hangup())
        elif step == "ended":
            out.append(AwaitBye())
        elif isinstance(step, dict) and "press" in step:
            out.append(Keys(str(step["press"])))
        elif isinstance(step, dict) and "say" in step:
            out.append(speech(900))
        elif isinstance(step, dict) and "record" in step:
            out += [speech(int(float(step["record"]) * 1000)), Keys("#")]
    return out


@pytest.fixture(autouse=True)
def fresh_world(stack_settings: Settings) -> None:
    """The scripts also run through the double (test_scripted_calls.py) on the same
    store: their tickets and repeat reports would send these calls down other branches."""
    load_world_file(WORLD, reset=True, settings=stack_settings)


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_scripted_call_through_freeswitch(name: str, switch_host: SwitchHost, client: Client,
                                                stack_settings: Settings, tmp_path: Path) -> None:
    script = CALLS[name]
    index = sorted(CALLS).index(name)
    call = SippCaller(tmp_path / "sipp", switch_host.sip_port, caller_actions(script["steps"]),
                      caller=script["caller"], codec=CODECS[index % 2], ptime_ms=int(script.get("ptime_ms", 20)))
    mark = [len(switch_host.speech.spoken)]

    async def hear(fragment: str, timeout: float = 40) -> None:
        await until(lambda: any(fragment in t for t in switch_host.speech.texts[mark[0]:]), timeout,
                    f"{fragment!r}; the bot said {switch_host.speech.texts[-4:]}")
        texts = switch_host.speech.texts
        mark[0] = next(i for i in range(mark[0], len(texts)) if fragment in texts[i]) + 1

    async def bot_quiet(after_s: float) -> None:
        def quiet() -> bool:
            last = call.sniffer.last_loud()
            return last is not None and time.monotonic() - last > after_s
        await until(quiet, 30, "the bot to finish its prompt (on the caller's RTP)")

    async def act(step: dict[str, Any]) -> None:
        if "say" in step:
            switch_host.speech_in.transcripts.append(str(step["say"]))
        await call.act()

    try:
        await call.dial()
        for step in script["steps"]:
            if step == "hangup":
                await call.act()
                assert await call.wait_closed(15) == 0, call.errors()
            elif step == "ended":
                assert await call.wait_closed(60) == 0, call.errors()
            elif "take" in step:
                await asyncio.to_thread(take_call, stack_settings, _uuid(switch_host, call), str(step["take"]))
            elif "hear" in step:
                await hear(str(step["hear"]))
            elif "record" in step:  # A11: after the tone, speak, then '#'
                await bot_quiet(0.3)
                await call.act()
                await call.act()
            elif "during" in step:
                await hear(str(step["during"]))
                await act(step)
            else:
                await bot_quiet(0.15)
                await act(step)
    finally:
        await call.close()

    assert call.sniffer.loud(), "the caller heard nothing"
    uuid = _uuid(switch_host, call)
    expect = script.get("expect", {})
    spoken_s = sum(float(s["record"]) for s in script["steps"] if isinstance(s, dict) and "record" in s)
    for message in assert_stored_as_expected(client, expect):
        assert_is_the_callers_voice(client, message["url"], spoken_s)
    if expect.get("transferred"):
        transfers = switch_host.events.executed(call.call_id or "", "transfer")
        assert transfers and transfers[0].headers.get("Application-Data") == "handoff XML default", transfers
        variables = transfers[0].headers
        assert variables.get("variable_hotline_conversation_id") == uuid
        for var, value in expect.get("variables", {}).items():
            assert variables.get(f"variable_{var}") == value
        # and the switch's handoff extension then ran (the operator queue)
        assert switch_host.events.executed(call.call_id or "", "bridge")
    if "outcomes" in expect:
        await until(lambda: len(client.outcomes(uuid)) >= len(expect["outcomes"]), 10, "outcomes")
        outcomes = client.outcomes(uuid)
        assert [o["outcome"] for o in outcomes] == expect["outcomes"]
        assert all(o["channel"] == "voice" for o in outcomes)
        if "step" in expect:
            assert outcomes[-1]["step"] == expect["step"]


def _uuid(host: SwitchHost, call: SippCaller) -> str:
    uuid = host.events.uuid_of(call.call_id or "")
    assert uuid is not None, "the switch never reported the call"
    return uuid


def assert_is_the_callers_voice(client: Client, url: str, spoken_s: float) -> None:
    """A11's stored message is what the caller said: as long as the speech (plus at most
    the silence that ends a recording), and loud where the caller spoke."""
    req = urllib.request.Request(client.base + url, headers={"Authorization": f"Bearer {STAFF_TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        data = resp.read()
    with wave.open(io.BytesIO(data)) as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    pcm = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    seconds = len(pcm) / rate
    assert spoken_s * 0.8 <= seconds <= spoken_s + 3.5, f"{seconds:.2f} s stored for {spoken_s} s spoken"
    windows = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
    loud_s = float((np.sqrt((windows ** 2).mean(axis=1)) > 1000).sum()) * 160 / rate
    assert loud_s >= spoken_s * 0.7, f"only {loud_s:.2f} s of voice in the stored message"
