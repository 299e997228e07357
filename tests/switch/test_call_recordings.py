"""Operators' calls recorded (Q2), on the real FreeSWITCH (``freeswitch/`` as shipped):
a caller handed over by the bot is bridged to operator 2001's phone, and the WAV the
switch writes (``record_session`` as the bot runs it) is 8 kHz, two channels, as long
as the bridge, with the caller on the left and the operator on the right.

The caller is SIPp on the trunk side (G.711 A-law) saying a 440 Hz tone from the answer
on; the operator is a SIPp phone registered as 2001 that answers the bridge, says a
660 Hz tone and hangs up after a while. The store, the
handoff and the bot's phone channel (``VoiceService``) are the product's; the dialogue is
scripted (it hands over at once)."""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
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
from tests.switch.rtp import RtpStream, audio_packets, write_pcap
from tests.switch.sipp import SIPP, AwaitBye, SippCaller, Speech, free_udp_pair
from voice.service import SpeechEngines, VoiceService

pytestmark = pytest.mark.switch

HANDOFF_SAID = "正在为您转接人工服务，请稍候。"
CALLER_HZ, OPERATOR_HZ = 440.0, 660.0
TALK_S = 4  # how long the operator stays on the bridged call


def tone(hz: float, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (amplitude * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16)


_HEAD = """[last_Via:]
[last_From:]
[last_To:];tag=[pid]op[call_number]
[last_Call-ID:]
[last_CSeq:]"""

_SDP = """Content-Type: application/sdp
Content-Length: [len]

v=0
o=op 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
"""


def _send(text: str, **attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f"  <send{extra}><![CDATA[\n{text}\n\n]]></send>\n"


def _scenario(name: str, body: str) -> str:
    return ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
            f'<scenario name="{name}">\n{body}</scenario>\n')


def register_scenario(user: str, password: str, domain: str, contact_port: int) -> str:
    """REGISTER ``user`` (digest auth) with the phone's own port as its contact: the
    phone (another SIPp) gets the switch's INVITEs there."""
    register = f"""REGISTER sip:{domain} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@{domain}>;tag=[pid]reg
To: <sip:{user}@{domain}>
Call-ID: [call_id]
CSeq: [cseq] REGISTER
Contact: <sip:{user}@127.0.0.1:{contact_port};transport=[transport]>
Max-Forwards: 70
Expires: 300
Content-Length: 0"""
    authed = register.replace("Content-Length: 0", f"[authentication username={user} password={password}]\n"
                                                   "Content-Length: 0")
    # Challenged (401) or not: this test is about the recording, not about the registrar.
    return _scenario(f"register {user}", _send(register, retrans="500")
                     + '  <recv response="401" auth="true" optional="true" next="challenged"/>\n'
                     + '  <recv response="200" next="registered"/>\n  <label id="challenged"/>\n'
                     + _send(authed, retrans="500") + '  <recv response="200"/>\n  <label id="registered"/>\n')


def phone_scenario(user: str, pcap: Path, talk_ms: int) -> str:
    """Answer the switch's INVITE, send ``pcap`` as the operator's voice, hang up after ``talk_ms``."""
    bye = """BYE [$contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From:[$to];tag=[pid]op[call_number]
To:[$from]
[last_Call-ID:]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0"""
    return _scenario(f"phone {user}", (
        '  <recv request="INVITE" timeout="60000"><action>\n'
        '    <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>\n'
        '    <ereg regexp=".*" search_in="hdr" header="To:" assign_to="to"/>\n'
        '    <ereg regexp="sip:[^>]*" search_in="hdr" header="Contact:" assign_to="contact"/>\n'
        '  </action></recv>\n'
        + _send(f"SIP/2.0 180 Ringing\n{_HEAD}\nContent-Length: 0")
        + '  <pause milliseconds="300"/>\n'
        + _send(f"SIP/2.0 200 OK\n{_HEAD}\nContact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>\n"
                f"{_SDP}", retrans="500")
        + '  <recv request="ACK"/>\n'
        + f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
        + f'  <pause milliseconds="{talk_ms}"/>\n'
        + _send(bye)
        + '  <recv response="200"/>\n'))


@dataclass
class Operator:
    proc: asyncio.subprocess.Process
    workdir: Path

    def errors(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in self.workdir.glob("*errors.log"))


async def _sipp(workdir: Path, scenario: str, target: str | None, port: int, rtp: int | None = None
                ) -> asyncio.subprocess.Process:
    assert SIPP is not None
    args = [*([target] if target else []), "-sf", scenario, "-i", "127.0.0.1", "-p", str(port),
            *(["-mp", str(rtp)] if rtp else []), "-m", "1", "-timeout", "90s", "-trace_err", "-trace_msg", "-nostdin"]
    return await asyncio.create_subprocess_exec(SIPP, *args, cwd=workdir, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)


def _operator_files(workdir: Path, fs: FreeswitchProcess, talk_s: float, sip: int) -> None:
    workdir.mkdir(parents=True)
    pcap = workdir / "operator.pcap"
    write_pcap(pcap, audio_packets(RtpStream(codec="PCMA"), tone(OPERATOR_HZ, talk_s + 1)))
    (workdir / "phone.xml").write_text(phone_scenario("2001", pcap, int(talk_s * 1000)))
    (workdir / "register.xml").write_text(register_scenario("2001", fs.OPERATOR_PASSWORD, "127.0.0.1", sip))


async def start_operator(workdir: Path, fs: FreeswitchProcess, talk_s: float) -> Operator:
    """Operator 2001's phone: registered, then waiting for the bridge."""
    sip = free_udp_pair()
    await asyncio.to_thread(_operator_files, workdir, fs, talk_s, sip)
    phone = await _sipp(workdir, "phone.xml", None, sip, free_udp_pair())
    registrar = await _sipp(workdir, "register.xml", f"127.0.0.1:{fs.ports.internal_sip}", free_udp_pair())
    assert await asyncio.wait_for(registrar.wait(), 15) == 0, Operator(registrar, workdir).errors()
    return Operator(phone, workdir)


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
    operator = await start_operator(tmp_path / "operator", fs, TALK_S)
    # The caller talks from the answer on, through the notice, the ringing and the bridge.
    caller = SippCaller(tmp_path / "caller", fs.ports.external_sip, [Speech(tone(CALLER_HZ, TALK_S + 6)), AwaitBye()])
    try:
        contact = await watch.api("sofia_contact internal/2001@127.0.0.1")
        assert "error" not in contact and operator.proc.returncode is None, (contact, operator.errors())
        await caller.dial()
        talking = asyncio.create_task(caller.act())
        await until(lambda: bool(db.call(recordings.list_recordings, handoff_id=handoff_id))
                    or operator.proc.returncode not in (None, 0), TALK_S + 30, "the recording stored")
        assert await asyncio.wait_for(operator.proc.wait(), 15) == 0, operator.errors()
        assert await caller.wait_closed(15) == 0, caller.errors()  # the bot hung up the caller after the operator
        talking.cancel()
    finally:
        await caller.close()
        if operator.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                operator.proc.terminate()
            await operator.proc.wait()
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
