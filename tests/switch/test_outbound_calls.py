"""Calls the bot places, on the real FreeSWITCH (``freeswitch/`` as shipped): the bot's
control connection sends ``bgapi originate`` and the callee is a SIPp UAS that answers
and presses 1 (RFC 2833), is busy (486), rings until the ring timeout (180 only),
answers and hangs up at once, or sends a key in early media before it answers.

The dial string points at the UAS through the external profile
(``sofia/external/{number}@127.0.0.1:<uas port>``) instead of the carrier gateway."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.chat.service import ChatService
from bot.settings import Settings
from bot.store import outbound_calls as outbound_store
from bot.store import service as store
from bot.store.db import Database
from tests.fakes.voice_doubles import ScriptedDialogue, ToneSpeech, until
from tests.integration.test_call_session import catalogue
from tests.switch.fixtures import StartSwitch, freeswitch_build, start_switch  # noqa: F401 - fixtures
from tests.switch.sipp import SDP_ANSWER, SIPP, free_udp_pair
from voice.call.outbound import TEST_CALL_MESSAGE, TEST_CALL_THANKS
from voice.control import FreeswitchControl
from voice.outbound import OutboundCalls, OutboundSettings
from voice.service import SpeechEngines, VoiceService

pytestmark = pytest.mark.switch

NUMBER = "057188001234"  # a line a caller reported
DTMF_1 = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")  # sip-tester's RFC 2833 key 1
RING_TIMEOUT_S = 2

_REPLY_HEAD = """[last_Via:]
[last_From:]
[last_To:];tag=[pid]uas[call_number]
[last_Call-ID:]
[last_CSeq:]"""
def _send(text: str) -> str:
    return f"  <send><![CDATA[\n{text}\n\n]]></send>\n"


def _reply(status: str, sdp: bool = False) -> str:
    body = SDP_ANSWER if sdp else "Content-Length: 0\n"
    contact = "Contact: <sip:[local_ip]:[local_port];transport=[transport]>\n"
    return _send(f"SIP/2.0 {status}\n{_REPLY_HEAD}\n{contact}{body}")


_AWAIT_BYE = ('  <recv request="BYE" timeout="30000"/>\n'
              + _send(f"SIP/2.0 200 OK\n{_REPLY_HEAD}\nContent-Length: 0\n") + '  <pause milliseconds="200"/>\n')
_KEY_1 = f'  <nop><action><exec play_pcap_audio="{DTMF_1}"/></action></nop>\n'
_BYE = _send("""BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$callee]
To: [$caller]
[last_Call-ID:]
CSeq: 1 BYE
Max-Forwards: 70
Content-Length: 0""")

SCENARIOS: dict[str, str] = {
    # Picks up, presses 1 while the bot talks, waits for the bot's BYE.
    "answers": _reply("180 Ringing") + '  <pause milliseconds="300"/>\n' + _reply("200 OK", sdp=True)
    + '  <recv request="ACK"/>\n  <pause milliseconds="1500"/>\n' + _KEY_1 + _AWAIT_BYE,
    "busy": _reply("486 Busy Here") + '  <recv request="ACK"/>\n',
    # Rings until FreeSWITCH gives up at originate_timeout (CANCEL), as a phone nobody answers.
    "rings": _reply("180 Ringing") + '  <recv request="CANCEL" timeout="60000"/>\n'
    + _send(f"SIP/2.0 200 OK\n{_REPLY_HEAD}\nContent-Length: 0")
    + _send(f"SIP/2.0 487 Request Terminated\n{_REPLY_HEAD.replace('[last_CSeq:]', 'CSeq: [$cseq] INVITE')}\n"
            "Content-Length: 0") + '  <recv request="ACK"/>\n',
    # Picks up and hangs up at once: gone while the bot sets the call up.
    "hangs_up": _reply("200 OK", sdp=True).replace("<send>", '<send retrans="500">')
    + '  <recv request="ACK"/>\n' + _BYE + '  <recv response="200"/>\n',
    # A key in early media (183 with SDP) while it rings, then picks up.
    "key_while_ringing": _reply("183 Session Progress", sdp=True) + '  <pause milliseconds="300"/>\n' + _KEY_1
    + '  <pause milliseconds="800"/>\n' + _reply("200 OK", sdp=True) + '  <recv request="ACK"/>\n' + _AWAIT_BYE,
}


def scenario_xml(name: str) -> str:
    # The INVITE's From/To and CSeq, for the BYE and the 487 this side sends.
    recv_invite = ('  <recv request="INVITE" rrs="true"><action>\n'
                   '    <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>\n'
                   '    <ereg regexp=".*" search_in="hdr" header="To:" assign_to="callee_uri"/>\n'
                   '    <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="cseq"/>\n'
                   '  </action></recv>\n')
    body = SCENARIOS[name].replace("[$callee]", "[$callee_uri];tag=[pid]uas[call_number]")
    used = {v for v in ("caller", "callee_uri", "cseq") if f"[${v}]" in body}
    # SIPp refuses a variable that is set but never used.
    recv_invite = "".join(line + "\n" for line in recv_invite.splitlines()
                          if "assign_to" not in line or any(f'assign_to="{v}"' in line for v in used))
    return ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
            f'<scenario name="callee {name}">\n{recv_invite}{body}</scenario>\n')


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@dataclass
class Callee:
    """One SIPp UAS waiting for the switch's INVITE."""

    port: int
    proc: asyncio.subprocess.Process
    workdir: Path

    async def finished(self, timeout: float = 30.0) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    def errors(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in self.workdir.glob("*errors.log"))


@dataclass
class Bot:
    calls: OutboundCalls
    db: Database
    speech: ToneSpeech
    fs_log: Callable[[], str]

    async def call(self, callee: Callee, timeout: float = 30.0) -> dict[str, Any]:
        self.calls.settings = OutboundSettings(dial_string=f"sofia/external/{{number}}@127.0.0.1:{callee.port}",
                                               caller_id_number="057100000000", ring_timeout_s=RING_TIMEOUT_S)
        row = await self.calls.place(NUMBER, "test_call")
        deadline = time.monotonic() + timeout
        while (row := await self.db.run(outbound_store.get, row["id"]))["state"] != "ended":
            assert time.monotonic() < deadline, f"the call did not end: {row}\n{self.fs_log()[-3000:]}"
            await asyncio.sleep(0.1)
        await until(lambda: self.calls.active == 0, what="the outbound slot freed")
        return row


@pytest.fixture
async def bot(tmp_path: Path, settings: Settings, start_switch: StartSwitch) -> AsyncIterator[Bot]:  # noqa: F811
    db = Database(f"sqlite:///{tmp_path / 'hotline.db'}")
    db.upgrade()
    db.call(store.record_outcome, store.OutcomeData("conv-1", "voice", "zh", "accepted", "A10", None, None, NUMBER))
    session = aiohttp.ClientSession()
    chat = ChatService(ScriptedDialogue([]), catalogue(), channel="voice",  # type: ignore[arg-type]
                       action_health_url="http://127.0.0.1:9/health", session=session)
    speech = ToneSpeech(ms=800)
    voice_settings = settings.model_copy(update={"esl_port": 0, "media_port_min": 48000, "media_port_max": 48099,
                                                 "fs_media_port_min": 48100, "fs_media_port_max": 48199})
    voice = VoiceService(voice_settings, chat, SpeechEngines(speech_out=speech), db=db)
    await voice.start(prewarm=False)
    fs = start_switch(voice.server.port)
    control = FreeswitchControl(voice_settings.model_copy(update={
        "esl_password": SecretStr(fs.ESL_PASSWORD), "fs_esl_listen_port": fs.ports.esl}))
    calls = OutboundCalls(control, db, OutboundSettings())
    voice.outbound = calls
    control.start()
    await until(lambda: control.connected, 10, what="the control connection to FreeSWITCH")
    try:
        yield Bot(calls, db, speech, fs.log_text)
    finally:
        await calls.stop()
        await control.close()
        await voice.stop()
        await session.close()
        db.dispose()


@pytest.fixture
async def callee(tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    started: list[Callee] = []

    async def start(name: str) -> Callee:
        workdir = tmp_path / f"uas-{name}"
        workdir.mkdir()
        (workdir / "uas.xml").write_text(scenario_xml(name))
        sip, rtp = free_udp_pair(), free_udp_pair()
        assert SIPP is not None
        proc = await asyncio.create_subprocess_exec(
            SIPP, "-sf", "uas.xml", "-i", "127.0.0.1", "-p", str(sip), "-mp", str(rtp), "-m", "1",
            "-timeout", "60s", "-trace_err", "-nostdin", cwd=workdir,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        one = Callee(sip, proc, workdir)
        started.append(one)
        await until(lambda: _udp_port_taken(sip) or proc.returncode is not None, 5, what="SIPp listening")
        assert proc.returncode is None, one.errors()
        return one

    yield start
    for one in started:
        if one.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                one.proc.terminate()
            await one.proc.wait()


async def test_a_callee_who_answers_hears_the_message_and_presses_1(bot: Bot, callee: Any) -> None:
    uas = await callee("answers")
    row = await bot.call(uas)
    assert (row["result"], row["key_pressed"], row["hangup_cause"]) == ("answered", "1", "NORMAL_CLEARING")
    assert bot.speech.texts == [TEST_CALL_MESSAGE["zh"], TEST_CALL_THANKS["zh"]]
    assert row["answered_at"] is not None and row["channel_uuid"]
    assert await uas.finished() == 0, uas.errors()  # it got the bot's BYE


async def test_a_busy_callee(bot: Bot, callee: Any) -> None:
    uas = await callee("busy")
    row = await bot.call(uas)
    assert (row["result"], row["hangup_cause"], row["answered_at"]) == ("busy", "USER_BUSY", None)
    assert bot.speech.texts == []
    assert await uas.finished() == 0, uas.errors()


async def test_a_phone_nobody_answers_is_no_answer_at_the_ring_timeout(bot: Bot, callee: Any) -> None:
    uas = await callee("rings")
    row = await bot.call(uas)
    assert (row["result"], row["hangup_cause"]) == ("no_answer", "NO_ANSWER")
    assert bot.speech.texts == []
    assert await uas.finished() == 0, uas.errors()  # FreeSWITCH cancelled the INVITE


async def test_a_callee_who_hangs_up_at_once_ends_with_an_outcome(bot: Bot, callee: Any) -> None:
    uas = await callee("hangs_up")
    row = await bot.call(uas)
    assert row["result"] == "answered" and row["hangup_cause"] == "NORMAL_CLEARING"
    assert row["key_pressed"] is None
    assert len(bot.calls._tasks) == 0  # nothing left following the call
    assert await uas.finished() == 0, uas.errors()


async def test_a_key_in_early_media_does_not_disturb_the_call(bot: Bot, callee: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The key pressed while it rang reaches the bot only after the answer (FreeSWITCH
    keeps it): it is not the answer to the message; the call goes on as any answered
    one and ends with its outcome."""
    from voice.call import outbound as session_mod
    monkeypatch.setattr(session_mod, "KEY_WAIT_S", 1.0)
    uas = await callee("key_while_ringing")
    row = await bot.call(uas)
    assert (row["result"], row["hangup_cause"]) == ("answered", "NORMAL_CLEARING")
    assert row["key_pressed"] is None
    assert bot.speech.texts.count(TEST_CALL_MESSAGE["zh"]) == 2  # asked twice, no key came
    assert await uas.finished() == 0, uas.errors()
