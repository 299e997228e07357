"""Callers and phones played by SIPp (Debian's ``sip-tester``, SIPp 3.6) against a real
FreeSWITCH.

A test knows its call as a list of caller actions (keys, speech, hang up). The scenario
is written from that list: after the call is answered, each action waits for a go from
the test over SIPp's 3PCC twin socket (``recvCmd``), so the test can first wait for what
the bot says, as a caller does. Keys (RFC 2833) and speech are RTP from pcap files
(``play_pcap_audio``) that continue one RTP stream; what the caller hears is read off the
loopback interface (``RtpSniffer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.switch.rtp import RtpSniffer, RtpStream, audio_packets, keys_packets, write_pcap

SIPP = shutil.which("sipp")
TWIN_END = b"\x1b"  # SIPp ends every twin-socket message with ESC


@dataclass(frozen=True)
class Keys:
    digits: str


@dataclass(frozen=True)
class Speech:
    pcm16: np.ndarray  # 8 kHz mono int16

    @property
    def ms(self) -> int:
        return len(self.pcm16) // 8


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class AwaitBye:
    """The bot (or the switch) ends the call: answer its BYE."""


Action = Keys | Speech | Hangup | AwaitBye


def free_udp_pair() -> int:
    """An even UDP port with the next one free too (RTP and RTCP)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1]) & ~1
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free UDP port pair")


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


INVITE = """\
INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "{caller}" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:{caller}@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {pt} 101
a=rtpmap:{pt} {codec}/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:{ptime}
a=sendrecv
"""

IN_DIALOG = """\
{method} sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "{caller}" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: sip:{caller}@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

"""

OK_TO_REQUEST = """\
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

"""


def caller_scenario(actions: list[Action], pcaps: list[Path | None], *, caller: str, number: str,
                    codec: str, ptime_ms: int) -> str:
    fill = {"caller": caller, "number": number, "codec": codec, "pt": 8 if codec == "PCMA" else 0, "ptime": ptime_ms}
    parts = [
        '<?xml version="1.0" encoding="UTF-8" ?>',
        '<scenario name="hotline caller">',
        f'<send retrans="500"><![CDATA[\n{INVITE.format(**fill)}]]></send>',
        '<recv response="100" optional="true"/>',
        '<recv response="180" optional="true"/>',
        '<recv response="183" optional="true"/>',
        '<recv response="200" rtd="true"/>',
        f'<send><![CDATA[\n{IN_DIALOG.format(method="ACK", cseq=1, **fill)}]]></send>',
        '<sendCmd><![CDATA[\nCall-ID: [call_id]\nX-Hotline: answered\n\n]]></sendCmd>',
    ]
    for action, pcap in zip(actions, pcaps, strict=True):
        if isinstance(action, AwaitBye):
            parts += ['<recv request="BYE"/>', f"<send><![CDATA[\n{OK_TO_REQUEST}]]></send>"]
            break
        parts.append("<recvCmd/>")
        if isinstance(action, Hangup):
            parts += [f'<send retrans="500"><![CDATA[\n{IN_DIALOG.format(method="BYE", cseq=2, **fill)}]]></send>',
                      '<recv response="200" crlf="true"/>']
            break
        parts.append(f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
    parts.append("</scenario>")
    return "\n".join(parts)


class SippCaller:
    """One call into the switch's external profile (the trunk side), as SIPp places it."""

    def __init__(self, workdir: Path, switch_sip_port: int, actions: list[Action], *, caller: str = "13700001111",
                 number: str = "1000", codec: str = "PCMA", ptime_ms: int = 20) -> None:
        assert SIPP is not None, "sipp is not installed (apt-get install sip-tester)"
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.switch_sip_port = switch_sip_port
        self.actions = list(actions)
        self.caller, self.number, self.codec, self.ptime_ms = caller, number, codec, ptime_ms
        self.media_port = free_udp_pair()
        self.sip_port = _free_port(socket.SOCK_DGRAM)
        self.sniffer = RtpSniffer(self.media_port)
        self.call_id: str | None = None
        self._next = 0
        self._pcap_ms: list[float] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._twin: asyncio.StreamWriter | None = None
        self._answered = asyncio.Event()
        self._server: asyncio.base_events.Server | None = None
        self.error_file = workdir / "sipp-errors.log"
        self.message_file = workdir / "sipp-messages.log"

    def _write(self) -> Path:
        stream = RtpStream(codec=self.codec, ptime_ms=self.ptime_ms)
        pcaps: list[Path | None] = []
        for i, action in enumerate(self.actions):
            if isinstance(action, Keys):
                path = self.workdir / f"step{i:02d}-keys.pcap"
                self._pcap_ms.append(write_pcap(path, keys_packets(stream, action.digits)) + 60)
            elif isinstance(action, Speech):
                path = self.workdir / f"step{i:02d}-speech.pcap"
                self._pcap_ms.append(write_pcap(path, audio_packets(stream, action.pcm16)) + self.ptime_ms)
            else:
                pcaps.append(None)
                self._pcap_ms.append(0)
                continue
            stream.ts += 8000  # a second's gap in the caller's timestamps between plays
            pcaps.append(path)
        scenario = self.workdir / "scenario.xml"
        scenario.write_text(self._scenario(pcaps))
        return scenario

    def _scenario(self, pcaps: list[Path | None]) -> str:
        return caller_scenario(self.actions, pcaps, caller=self.caller, number=self.number, codec=self.codec,
                               ptime_ms=self.ptime_ms)

    async def dial(self, answered_within_s: float = 15) -> None:
        await self._run_sipp(f"127.0.0.1:{self.switch_sip_port}", "-aa")
        try:
            await asyncio.wait_for(self._answered.wait(), answered_within_s)
        except TimeoutError:
            raise AssertionError(f"the call was not answered: {self.errors()}") from None

    async def _run_sipp(self, *args: str) -> None:
        """SIPp on our scenario, its twin socket connected back to us (3PCC)."""
        scenario = self._write()
        self._server = await asyncio.start_server(self._on_twin, "127.0.0.1", 0)
        twin_port = self._server.sockets[0].getsockname()[1]
        if RtpSniffer.available():
            self.sniffer.start()
        self._proc = await asyncio.create_subprocess_exec(
            str(SIPP), *args, "-sf", str(scenario), "-m", "1",
            "-i", "127.0.0.1", "-p", str(self.sip_port), "-mi", "127.0.0.1", "-mp", str(self.media_port),
            "-3pcc", f"127.0.0.1:{twin_port}", "-nostdin", "-trace_err", "-error_file", str(self.error_file),
            "-trace_msg", "-message_file", str(self.message_file),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            cwd=self.workdir)

    async def _on_twin(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._twin = writer
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                msg = (await reader.readuntil(TWIN_END)).decode(errors="replace")
                for line in msg.splitlines():
                    if line.lower().startswith("call-id:"):
                        self.call_id = line.split(":", 1)[1].strip()
                if "answered" in msg:
                    self._answered.set()

    async def act(self) -> Action:
        """Do the caller's next action; keys and speech return when their RTP has left."""
        action = self.actions[self._next]
        assert not isinstance(action, AwaitBye), "the next thing is the bot's hang-up: use wait_closed"
        assert self._twin is not None and self.call_id is not None
        self._twin.write(f"Call-ID: {self.call_id}\r\nX-Hotline: go {self._next}\r\n\r\n".encode() + TWIN_END)
        await self._twin.drain()
        await asyncio.sleep(self._pcap_ms[self._next] / 1000)
        self._next += 1
        return action

    async def wait_closed(self, timeout: float) -> int:
        """SIPp's exit code once the call is over (0: the scenario ran to its end)."""
        assert self._proc is not None
        try:
            await asyncio.wait_for(self._proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"the call did not end within {timeout} s: {self.errors()}") from None
        return self._proc.returncode or 0

    def errors(self) -> str:
        return self.error_file.read_text(errors="replace")[-2000:] if self.error_file.exists() else ""

    async def close(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()
        if self._twin is not None:
            self._twin.close()
        if self._server is not None:
            self._server.close()
        self.sniffer.stop()


# ---- an operator's phone: REGISTER with digest auth, then answer (or not) one call ----

REGISTER = """\
REGISTER sip:{domain}:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{account}@{domain}>;tag=[pid]SIPpReg[call_number]
To: <sip:{account}@{domain}>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:{account}@[local_ip]:{contact_port}>
Expires: {expires}
Max-Forwards: 70
{auth}Content-Length: 0

"""


def register_scenario(*, account: str, password: str, domain: str, contact_port: int, expires: int = 600) -> str:
    fill = {"account": account, "domain": domain, "contact_port": contact_port, "expires": expires}
    auth = f"[authentication username={account} password={password}]\n"
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8" ?>',
        '<scenario name="operator phone registers">',
        f'<send retrans="500"><![CDATA[\n{REGISTER.format(cseq=1, auth="", **fill)}]]></send>',
        '<recv response="401" auth="true"/>',
        f'<send retrans="500"><![CDATA[\n{REGISTER.format(cseq=2, auth=auth, **fill)}]]></send>',
        '<recv response="200"/>',
        "</scenario>",
    ])


UAS_RESPONSE = """\
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:]{tag}
[last_Call-ID:]
CSeq: [$invite_cseq] INVITE
Contact: <sip:{account}@[local_ip]:[local_port];transport=[transport]>
{body}"""

SDP_ANSWER = """\
Content-Type: application/sdp
Content-Length: [len]

v=0
o=phone 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
"""

UAS_BYE = """\
BYE [$switch_contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$to_header]
To: [$from_header]
Call-ID: [call_id]
CSeq: 1 BYE
Max-Forwards: 70
Content-Length: 0

"""


def phone_scenario(*, account: str, answer: bool, hangup_after_ms: int | None, talk_audio: Path | None = None) -> str:
    tag = ";tag=[pid]SIPpTag01[call_number]"
    fill = {"account": account, "tag": tag}
    no_body = "Content-Length: 0\n"
    ringing = UAS_RESPONSE.format(status="180 Ringing", body=no_body, **fill)
    terminated = UAS_RESPONSE.format(status="487 Request Terminated", body=no_body, **fill)
    parts = [
        '<?xml version="1.0" encoding="UTF-8" ?>',
        '<scenario name="operator phone">',
        '<recv request="INVITE" crlf="true"><action>'
        '<ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>'
        + ('<ereg regexp="sip:[^>;]+" search_in="hdr" header="Contact:" assign_to="switch_contact"/>'
           if answer and hangup_after_ms is not None else "")
        + "</action></recv>",
        f"<send><![CDATA[\n{ringing}]]></send>",
    ]
    if not answer:  # rings until the switch gives up (call_timeout) and cancels
        parts += [
            '<recv request="CANCEL"/>',
            f"<send><![CDATA[\n{OK_TO_REQUEST}]]></send>",
            f"<send><![CDATA[\n{terminated}]]></send>",
            '<recv request="ACK"/>',
            "</scenario>",
        ]
        return "\n".join(parts)
    parts += [
        '<pause milliseconds="300"/>',
        f'<send retrans="500"><![CDATA[\n{UAS_RESPONSE.format(status="200 OK", body=SDP_ANSWER, **fill)}]]></send>',
        # the dialog's two ends, for a BYE of our own (SIPp refuses variables it never uses)
        '<recv request="ACK" rtd="true" crlf="true"><action>'
        '<ereg regexp="[^ ].*" search_in="hdr" header="From:" assign_to="from_header"/>'
        '<ereg regexp="[^ ].*" search_in="hdr" header="To:" assign_to="to_header"/>'
        "</action></recv>" if hangup_after_ms is not None else '<recv request="ACK" rtd="true" crlf="true"/>',
    ]
    if talk_audio is not None:
        parts.append(f'<nop><action><exec play_pcap_audio="{talk_audio}"/></action></nop>')
    if hangup_after_ms is None:  # the caller's side ends it
        parts += ['<recv request="BYE"/>', f"<send><![CDATA[\n{OK_TO_REQUEST}]]></send>"]
    else:
        parts += [f'<pause milliseconds="{hangup_after_ms}"/>',
                  f'<send retrans="500"><![CDATA[\n{UAS_BYE}]]></send>',
                  '<recv response="200"/>']
    parts.append("</scenario>")
    return "\n".join(parts)


class SippPhone:
    """An operator's SIP phone (a directory account) that registers on the internal
    profile and answers one call, or lets it ring."""

    def __init__(self, workdir: Path, switch_internal_port: int, *, account: str, password: str,
                 domain: str = "127.0.0.1", answer: bool = True, hangup_after_ms: int | None = None,
                 talk_ms: int = 0) -> None:
        assert SIPP is not None, "sipp is not installed (apt-get install sip-tester)"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = switch_internal_port
        self.account, self.password, self.domain = account, password, domain
        self.answer, self.hangup_after_ms, self.talk_ms = answer, hangup_after_ms, talk_ms
        self.sip_port = _free_port(socket.SOCK_DGRAM)
        self.media_port = free_udp_pair()
        self.sniffer = RtpSniffer(self.media_port)
        self._uas: asyncio.subprocess.Process | None = None

    async def _sipp(self, scenario: str, name: str, *args: str) -> asyncio.subprocess.Process:
        path = self.workdir / f"{name}.xml"
        path.write_text(scenario)
        return await asyncio.create_subprocess_exec(
            str(SIPP), f"127.0.0.1:{self.port}", "-sf", str(path), "-m", "1", "-i", "127.0.0.1", "-nostdin",
            "-trace_err", "-error_file", str(self.workdir / f"{name}-errors.log"),
            "-trace_msg", "-message_file", str(self.workdir / f"{name}-messages.log"), *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            cwd=self.workdir)

    async def start(self) -> None:
        """Listen for the call first, then register with that address as the contact."""
        talk = None
        if self.talk_ms:
            talk = self.workdir / "operator-talks.pcap"
            write_pcap(talk, audio_packets(RtpStream(codec="PCMA"), _voice_like(self.talk_ms)))
        self._uas = await self._sipp(phone_scenario(account=self.account, answer=self.answer,
                                                    hangup_after_ms=self.hangup_after_ms, talk_audio=talk),
                                     "phone", "-p", str(self.sip_port), "-mi", "127.0.0.1", "-mp", str(self.media_port))
        if RtpSniffer.available():
            self.sniffer.start()
        assert await self.register() == 0, f"the phone could not register: {self.errors('register')}"

    async def register(self, password: str | None = None) -> int:
        """SIPp's exit code: 0 when the switch challenged and then took the password."""
        scenario = register_scenario(account=self.account, password=self.password if password is None else password,
                                     domain=self.domain, contact_port=self.sip_port)
        reg = await self._sipp(scenario, "register", "-p", str(_free_port(socket.SOCK_DGRAM)))
        return await asyncio.wait_for(reg.wait(), 15)

    async def wait_closed(self, timeout: float) -> int:
        assert self._uas is not None
        try:
            await asyncio.wait_for(self._uas.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"the phone's call did not end within {timeout} s: {self.errors('phone')}") from None
        return self._uas.returncode or 0

    def errors(self, name: str) -> str:
        path = self.workdir / f"{name}-errors.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    async def close(self) -> None:
        if self._uas is not None and self._uas.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._uas.kill()
            await self._uas.wait()
        self.sniffer.stop()


def callee_scenario(actions: list[Action], pcaps: list[Path | None]) -> str:
    """A callee the bot calls (U3's survey): answers, tells the test over the twin socket,
    then each key or speech waits for the test's go; the bot's BYE ends it."""
    fill = {"account": "callee", "tag": ";tag=[pid]SIPpTag01[call_number]"}
    parts = [
        '<?xml version="1.0" encoding="UTF-8" ?>',
        '<scenario name="hotline callee">',
        '<recv request="INVITE" crlf="true"><action>'
        '<ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/></action></recv>',
        f"<send><![CDATA[\n{UAS_RESPONSE.format(status='180 Ringing', body='Content-Length: 0' + chr(10), **fill)}]]></send>",
        '<pause milliseconds="300"/>',
        f'<send retrans="500"><![CDATA[\n{UAS_RESPONSE.format(status="200 OK", body=SDP_ANSWER, **fill)}]]></send>',
        '<recv request="ACK" rtd="true" crlf="true"/>',
        '<sendCmd><![CDATA[\nCall-ID: [call_id]\nX-Hotline: answered\n\n]]></sendCmd>',
    ]
    for action, pcap in zip(actions, pcaps, strict=True):
        assert not isinstance(action, Hangup), "a callee here waits for the bot's BYE"
        if isinstance(action, AwaitBye):
            parts += ['<recv request="BYE"/>', f"<send><![CDATA[\n{OK_TO_REQUEST}]]></send>"]
            break
        parts += ["<recvCmd/>", f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>']
    parts.append("</scenario>")
    return "\n".join(parts)


class SippCallee(SippCaller):
    """A phone the bot calls (an outbound call through the switch's external profile):
    SIPp listens on ``sip_port`` and answers; :meth:`act` presses its keys on the test's
    go, as :class:`SippCaller` does for a caller."""

    def __init__(self, workdir: Path, actions: list[Action]) -> None:
        super().__init__(workdir, 0, actions)

    def _scenario(self, pcaps: list[Path | None]) -> str:
        return callee_scenario(self.actions, pcaps)

    async def listen(self) -> None:
        await self._run_sipp()

    async def answered(self, within_s: float = 20) -> None:
        try:
            await asyncio.wait_for(self._answered.wait(), within_s)
        except TimeoutError:
            raise AssertionError(f"the callee did not answer: {self.errors()}") from None


def _voice_like(ms: int) -> np.ndarray:
    """The operator speaking: a 300 Hz tone with a syllable-rate envelope."""
    t = np.arange(8 * ms) / 8000
    return (8000 * np.sin(2 * np.pi * 300 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.int16)


def cancelling_caller_scenario(*, caller: str, number: str) -> str:
    """A caller who gives up while the call is being set up: INVITE, then CANCEL at
    once (the switch answers 487, or 200 when its answer won the race: then BYE)."""
    invite = INVITE.format(caller=caller, number=number, codec="PCMA", pt=8, ptime=20)
    cancel = f"""\
CANCEL sip:{number}@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: "{caller}" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0

"""
    ack = IN_DIALOG.format(method="ACK", cseq=1, caller=caller, number=number)
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8" ?>',
        '<scenario name="caller gives up before the answer">',
        f'<send retrans="500"><![CDATA[\n{invite}]]></send>',
        '<recv response="100"/>',
        f"<send><![CDATA[\n{cancel}]]></send>",
        '<recv response="200" optional="true"/>',
        '<recv response="180" optional="true"/>',
        '<recv response="183" optional="true"/>',
        '<recv response="487"/>',
        f"<send><![CDATA[\n{ack}]]></send>",
        "</scenario>",
    ])
