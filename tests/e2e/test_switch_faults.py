"""What the switch can do to the bot, provoked on a real FreeSWITCH: a caller who gives
up before the call is answered, and the switch itself dying mid-call (the event socket
closes under a command). Each call ends cleanly: an outcome in the store, no call left
in progress in the bot."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.e2e.conftest import Client, SwitchHost
from tests.fakes.voice_doubles import until
from tests.switch.sipp import SIPP, AwaitBye, Keys, SippCaller, cancelling_caller_scenario
from voice import metrics

pytestmark = [pytest.mark.e2e, pytest.mark.stack, pytest.mark.switch]


async def test_callers_who_hang_up_before_the_answer_leave_nothing_running(
        switch_host: SwitchHost, client: Client, tmp_path: Path) -> None:
    """INVITE then CANCEL at once, four times. The CANCEL races the bot's answer: it
    lands while the bot sets the call up (its channel known: an outcome), before
    FreeSWITCH's connect reply (nothing to record but the count), or before the call
    reached the bot at all."""
    scenario = tmp_path / "cancel.xml"
    scenario.write_text(cancelling_caller_scenario(caller="13700009999", number="1000"))
    server = switch_host.service.server
    gone = metrics.CALLS.labels("gone_before_answer")
    counted_before = gone._value.get()  # noqa: SLF001 - prometheus_client has no public getter
    attempts = 4
    for i in range(attempts):
        proc = await asyncio.create_subprocess_exec(
            str(SIPP), f"127.0.0.1:{switch_host.sip_port}", "-sf", str(scenario), "-m", "1", "-i", "127.0.0.1",
            "-p", "0", "-nostdin", "-trace_err", "-error_file", str(tmp_path / f"errors{i}.log"),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        assert await asyncio.wait_for(proc.wait(), 20) == 0, (tmp_path / f"errors{i}.log").read_text(errors="replace")
    await until(lambda: len([e for e in switch_host.events.events if e.name == "CHANNEL_HANGUP_COMPLETE"]) == attempts,
                10, "the switch to end every channel")
    await until(lambda: server.active_calls == 0, 15, "the bot to let go of every call")
    # A CANCEL that FreeSWITCH takes before the dialplan reaches ``socket`` never gets
    # to the bot at all; every other attempt is counted once.
    await until(lambda: gone._value.get() - counted_before >= 1, 10, "an attempt counted")  # noqa: SLF001
    assert gone._value.get() - counted_before <= attempts  # noqa: SLF001
    ended = [e for e in switch_host.events.events if e.name == "CHANNEL_HANGUP_COMPLETE"]
    assert {e.headers.get("Hangup-Cause") for e in ended} == {"ORIGINATOR_CANCEL"}
    recorded = [o for e in ended for o in client.outcomes(e.headers.get("Unique-ID") or "")]
    assert recorded, "no attempt reached the bot with its channel (rerun: the race went the other way each time)"
    assert {(o["outcome"], o["step"], o["reason"]) for o in recorded} == {("abandoned", "A1", "hung_up_before_answer")}


async def test_the_switch_dying_mid_call_ends_the_call_in_the_bot(
        switch_host: SwitchHost, client: Client, stack_settings: Settings, tmp_path: Path) -> None:
    call = SippCaller(tmp_path / "caller", switch_host.sip_port, [Keys("1"), AwaitBye()], caller="13700009998")
    server = switch_host.service.server
    try:
        await call.dial()
        await until(lambda: any("障碍申告请按1" in t for t in switch_host.speech.texts), 20, "the main menu")
        await call.act()
        await until(lambda: any("故障电话号码" in t for t in switch_host.speech.texts), 20, "V1")
        uuid = switch_host.events.uuid_of(call.call_id or "")
        assert uuid is not None and server.active_calls == 1
        pid = switch_host.fs._proc.pid  # noqa: SLF001 - the test owns the process
        os.killpg(pid, signal.SIGKILL)  # no BYE, no hang-up event: the sockets just close
        await until(lambda: server.active_calls == 0, 20, "the bot to end the call")
    finally:
        await call.close()
    await until(lambda: bool(client.outcomes(uuid)), 10, "the outcome")
    outcome = client.outcomes(uuid)[-1]
    assert outcome["outcome"] == "abandoned" and outcome["step"] == "A2"
