"""A FreeSWITCH double that speaks the Event Socket protocol as mod_event_socket does.

Written from signalwire/freeswitch ``mod_event_socket.c`` (``socket_function``,
``read_packet``, ``parse_command``, ``listener_run``, ``send_disconnect``) and
``switch_event.c`` (``switch_event_serialize``), on purpose without importing
``voice.esl``: a double that shared the bot's parser would agree with its bugs.

Two roles:

* ``FakeCall`` is one call's dialplan ``socket <host>:<port> async full``: it dials
  into the bot's outbound server, waits for ``connect``, answers with the channel data
  from ``tests/fixtures/esl/connect_reply_channel_data.txt``, replies to
  ``myevents``/``linger``/``sendmsg``/``api``/``exit`` with FreeSWITCH's reply texts,
  emits the events ``myevents`` subscribes to (CHANNEL_EXECUTE_COMPLETE, CHANNEL_ANSWER,
  DTMF, CHANNEL_BRIDGE, CHANNEL_UNBRIDGE, CHANNEL_HANGUP, CHANNEL_HANGUP_COMPLETE) only
  once subscribed, sends the ``linger`` disconnect notice when the channel goes down,
  and records every command the bot sent with a monotonic timestamp. A bridge that was
  answered ends as ``switch_ivr_multi_threaded_bridge`` ends it: the operator's leg
  hangs up (``operator_hangs_up``) or is killed (``api uuid_kill <b-uuid>`` → ``+OK``,
  an unknown UUID → ``-ERR No Such Channel!``, as mod_commands' ``kill_function``);
  then CHANNEL_UNBRIDGE (Bridge-A/B-Unique-ID), and either the caller is hung up
  (``hangup_after_bridge=true``) or the app returns (CHANNEL_EXECUTE_COMPLETE,
  Application: bridge) and the channel is parked again. ``record_session <path>``
  records as ``switch_ivr_record_session_event`` does: RECORD_START (Record-File-Path)
  at once; with ``RECORD_BRIDGE_REQ`` only the bridged time is written; on
  ``stop_record_session <path>`` or the hang-up the WAV is written at ``<path>``
  (``RECORD_STEREO``: two channels, the caller's tone left and the operator's right;
  ``record_sample_rate``), a file shorter than ``RECORD_MIN_SEC`` is deleted
  (``RECORD_DISCARDED``), then RECORD_STOP with ``variable_record_ms``.
* ``FakeEslServer`` is the inbound listener on port 8021: ``auth/request``, ``auth``
  (``+OK accepted`` or ``-ERR invalid`` then disconnect), ``api`` → ``api/response``,
  ``bgapi`` → Job-UUID and a BACKGROUND_JOB event, ``event plain …``, ``exit``, and
  ``text/rude-rejection`` for a client the ACL refuses.

Event payloads are the fixture files, with the call's UUID, caller and any header the
test overrides substituted and ``Content-Length`` recomputed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid as uuid_mod
import wave
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "esl"
FIXTURE_UUID = "5f1c2c7e-3b2a-4d8e-9a61-0c7d2b9e4a10"
FIXTURE_CALLER = "13800138000"
FIXTURE_JOB_UUID = "7d6c1f0e-2a9b-4c3d-8e5f-6a7b8c9d0e1f"
FIXTURE_B_LEG_UUID = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"  # the operator's leg in event_channel_bridge.txt

# SWITCH_URL_UNSAFE (src/include/switch_utils.h); control and non-ASCII bytes too.
_URL_UNSAFE = '\r\n #%&+:;<=>?@[\\]^`{|}"'
_GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


def fs_url_encode(value: str) -> str:
    """``switch_url_encode``: what ``switch_event_serialize`` does to every value."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        out.append(f"%{byte:02X}" if byte < 0x20 or byte > 0x7E or char in _URL_UNSAFE else char)
    return "".join(out)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def event_envelope(serialized: str, fmt: str = "plain") -> bytes:
    data = serialized.encode("utf-8")
    return f"Content-Length: {len(data)}\nContent-Type: text/event-{fmt}\n\n".encode() + data


def command_reply(text: str, extra: Iterable[tuple[str, str]] = ()) -> bytes:
    lines = ["Content-Type: command/reply", f"Reply-Text: {text}", *(f"{k}: {v}" for k, v in extra)]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def api_response(text: str) -> bytes:
    data = text.encode("utf-8")
    return f"Content-Type: api/response\nContent-Length: {len(data)}\n\n".encode() + data


def fixture_body(name: str) -> str:
    """The body of a non-event fixture (an api/response's text)."""
    return fixture_bytes(name).decode("utf-8").partition("\n\n")[2]


def disconnect_notice(session_uuid: str | None, message: str = _GOODBYE) -> bytes:
    data = message.encode("utf-8")
    if session_uuid:
        head = (
            f"Content-Type: text/disconnect-notice\nControlled-Session-UUID: {session_uuid}\n"
            f"Content-Disposition: disconnect\nContent-Length: {len(data)}\n\n"
        )
    else:
        head = f"Content-Type: text/disconnect-notice\nContent-Length: {len(data)}\n\n"
    return head.encode() + data


def linger_notice(session_uuid: str, channel_name: str, linger_time: int) -> bytes:
    return (
        f"Content-Type: text/disconnect-notice\nControlled-Session-UUID: {session_uuid}\n"
        f"Content-Disposition: linger\nChannel-Name: {channel_name}\nLinger-Time: {linger_time}\n"
        "Content-Length: 0\n\n"
    ).encode()


def rude_rejection() -> bytes:
    message = b"Access Denied, go away.\n"
    return f"Content-Type: text/rude-rejection\nContent-Length: {len(message)}\n\n".encode() + message


def render_serialized(
    template: str,
    overrides: Mapping[str, str] | None = None,
    replace: Mapping[str, str] | None = None,
) -> str:
    """Rewrite a serialised event (``Name: encoded\\n`` lines, blank line, optional body):
    plain text replacements first (fixture UUID → the call's), then header overrides,
    url-encoded as FreeSWITCH would; a header not in the template is appended."""
    for old, new in (replace or {}).items():
        template = template.replace(old, fs_url_encode(new))
    head, sep, body = template.partition("\n\n")
    lines = head.split("\n")
    pending = dict(overrides or {})
    for i, line in enumerate(lines):
        name = line.split(":", 1)[0]
        if name in pending:
            lines[i] = f"{name}: {fs_url_encode(pending.pop(name))}"
    lines += [f"{name}: {fs_url_encode(value)}" for name, value in pending.items()]
    return "\n".join(lines) + (sep or "\n\n") + body


def fixture_event(name: str, overrides: Mapping[str, str] | None = None, replace: Mapping[str, str] | None = None) -> bytes:
    """A ``text/event-plain`` fixture, re-rendered, with a correct Content-Length."""
    raw = fixture_bytes(name).decode("utf-8")
    _, _, serialized = raw.partition("\n\n")
    return event_envelope(render_serialized(serialized, overrides, replace))


@dataclass(frozen=True)
class Packet:
    """What ``read_packet`` makes of bytes from the client: a command line, headers
    stored verbatim (FreeSWITCH does not url-decode them) and an optional body."""

    command: str
    headers: dict[str, str]
    body: bytes
    at: float  # loop.time() when it arrived
    raw: bytes

    @property
    def name(self) -> str:
        return self.command.split(" ", 1)[0].lower()

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


async def read_packet(reader: asyncio.StreamReader) -> Packet | None:
    """One command as mod_event_socket reads it; None on EOF."""
    raw = b""
    while True:
        line = await reader.readline()
        if not line:
            return None
        if not raw and line.strip(b"\r\n") == b"":
            continue  # leading blank lines are skipped ("bah" in read_packet)
        raw += line
        if line in (b"\n", b"\r\n"):
            break
    texts = raw.decode("utf-8", errors="replace").replace("\r", "").split("\n")
    command, headers = texts[0], {}
    for text in texts[1:]:
        if ":" in text:
            name, value = text.split(":", 1)
            headers[name] = value.lstrip(" ")
    body = b""
    length = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
    if length and int(length) > 0:
        body = await reader.readexactly(int(length))
    return Packet(command, headers, body, asyncio.get_running_loop().time(), raw + body)


class _Recorder:
    def __init__(self) -> None:
        self.commands: list[Packet] = []
        self._changed = asyncio.Condition()

    async def record(self, packet: Packet) -> None:
        async with self._changed:
            self.commands.append(packet)
            self._changed.notify_all()

    async def wait_for(self, match: str | Callable[[Packet], bool], timeout: float = 5.0, start: int = 0) -> Packet:
        """The first recorded command (from index ``start``) whose name is ``match``
        (``connect``, ``sendmsg`` …) or for which ``match(packet)`` is true."""
        test = match if callable(match) else (lambda p: p.name == match)

        def found() -> Packet | None:
            return next((p for p in self.commands[start:] if test(p)), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
        packet = found()
        assert packet is not None
        return packet


def is_sendmsg(call_command: str, app: str | None = None) -> Callable[[Packet], bool]:
    def test(p: Packet) -> bool:
        if p.name != "sendmsg" or p.header("call-command") != call_command:
            return False
        return app is None or p.header("execute-app-name") == app

    return test


@dataclass
class FakeRecording:
    """One ``record_session`` on the channel: where, how, and the seconds it has written."""

    path: str
    stereo: bool
    rate: int
    bridge_req: bool
    min_sec: int
    seconds: float = 0.0
    since: float | None = None  # time.monotonic() since when it is writing

    def pause(self) -> None:
        if self.since is not None:
            self.seconds += time.monotonic() - self.since
            self.since = None


def write_call_wav(path: str, seconds: float, rate: int, stereo: bool) -> int:
    """What the media bug wrote: the caller (a 440 Hz tone, the read stream) left and
    the operator (660 Hz, the write stream) right; mixed into one channel otherwise.
    Returns the frames written."""
    import numpy as np

    n = int(seconds * rate)
    t = np.arange(n) / rate
    caller, operator = 0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)
    frames = np.stack([caller, operator], axis=1) if stereo else ((caller + operator) / 2)[:, None]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with wave.open(path, "wb") as w:
        w.setnchannels(2 if stereo else 1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((frames * 32767).astype("<i2").tobytes())
    return n


def _create_file(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"")


@dataclass
class CallScript:
    """Per-call knobs: who calls, what the answer event says about the media."""

    uuid: str = field(default_factory=lambda: str(uuid_mod.uuid4()))
    caller: str = FIXTURE_CALLER
    answer_overrides: dict[str, str] = field(default_factory=dict)
    # What a ``bridge`` does: "answer" (the far end picks up: CHANNEL_BRIDGE, and the
    # app keeps running, so no CHANNEL_EXECUTE_COMPLETE yet) or an originate
    # disposition it fails with (USER_NOT_REGISTERED, NO_ANSWER …: CHANNEL_EXECUTE_COMPLETE
    # at once, as mod_dptools' bridge returns), or "ring" (the phone rings and nobody
    # answers: after the channel's ``call_timeout`` seconds, 60 when unset, the app
    # completes with NO_ANSWER, as switch_ivr_originate gives up).
    bridge: str = "answer"
    # Channel variables the connect reply carries (``variable_<name>``): an originated
    # call's ``{…}`` variables, e.g. hotline_purpose.
    variables: dict[str, str] = field(default_factory=dict)
    # An originated call (originate … &socket): answered before it reaches the bot, so the
    # connect reply says Answer-State: answered and no CHANNEL_ANSWER follows.
    answered_before_connect: bool = False
    # The channel goes down (with this cause) as soon as the bot subscribed to its
    # events: a callee who hangs up while the call is being set up.
    hangs_up_early: str | None = None


class FakeCall(_Recorder):
    """One call, dialling into the bot exactly as ``socket … async full`` does."""

    def __init__(self, host: str, port: int, script: CallScript | None = None) -> None:
        super().__init__()
        self.host, self.port = host, port
        self.script = script or CallScript()
        self.uuid = self.script.uuid
        self.channel_name = f"sofia/external/{self.script.caller}@192.0.2.10:5060"
        self.events_enabled = False
        self.linger: int | None = None  # None: no linger; -1: until the bot closes
        self.answered = self.script.answered_before_connect
        self.channel_up = True
        self.variables: dict[str, str] = {}
        self.exported: list[str] = []
        self.unicast: dict[str, str] | None = None
        self.transferred_to: str | None = None
        self.bridged_to: str | None = None
        self.bridges: list[str] = []  # every bridge's dial string, in order
        self.b_leg: str | None = None  # the answered bridge's far end (Bridge-B-Unique-ID), while bridged
        self.b_leg_answered_at: float | None = None  # time.monotonic() of the last CHANNEL_BRIDGE
        self.unbridged_at: float | None = None  # time.monotonic() of the last CHANNEL_UNBRIDGE
        self.killed: list[str] = []  # UUIDs ``api uuid_kill`` hung up
        self.ringing_since: float | None = None  # a "ring" bridge: when the phone began ringing
        self._ring_task: asyncio.Task[None] | None = None
        self.unicast_failures = 0  # ``unicast`` again while the first one is bound (see _sendmsg)
        self.recordings: dict[str, FakeRecording] = {}  # record_session running, by path
        self.recorded: list[str] = []  # files written (stopped), in order
        self.hangup_cause: str | None = None
        self.bot_closed = asyncio.Event()
        self.connected = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._closing = False
        self.on_hangup: Callable[[str, str], Awaitable[None]] | None = None  # (uuid, cause): the inbound side hears it

    # --- driving the call --------------------------------------------------------

    async def dial(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._task = asyncio.create_task(self._serve(), name=f"fake-call-{self.uuid[:8]}")

    async def press(self, digits: str, duration: int = 2000) -> None:
        """The caller presses keys (RFC 2833): one DTMF event each, if subscribed."""
        for digit in digits:
            await self._event("event_dtmf.txt", {"DTMF-Digit": digit, "DTMF-Duration": str(duration)})

    async def send_event(self, fixture: str, overrides: Mapping[str, str] | None = None) -> None:
        await self._event(fixture, overrides)

    async def send_raw(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()

    async def caller_hangs_up(self, cause: str = "NORMAL_CLEARING") -> None:
        await self._hangup(cause)

    async def operator_hangs_up(self, cause: str = "NORMAL_CLEARING") -> None:
        """The bridged operator's phone hangs up (the B leg goes down)."""
        assert self.b_leg is not None, "not bridged"
        await self._end_bridge(cause)

    async def wait_closed(self, timeout: float = 5.0) -> None:
        if self._task is not None:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None and not self._writer.is_closing():
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        for task in (self._task, self._ring_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    # --- the listener ------------------------------------------------------------

    async def _serve(self) -> None:
        assert self._reader is not None
        try:
            while True:
                packet = await read_packet(self._reader)
                if packet is None:
                    self.bot_closed.set()
                    return
                await self.record(packet)
                if not await self._command(packet):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            self.bot_closed.set()
        finally:
            if self._linger_timer is not None:
                self._linger_timer.cancel()
            if self._writer is not None and not self._writer.is_closing():
                self._writer.close()

    async def _command(self, p: Packet) -> bool:
        """Reply as ``parse_command`` would; False when FreeSWITCH closes the socket."""
        cmd = p.command.strip()
        low = cmd.lower()
        if low.startswith("exit") or low.startswith("..."):
            await self.send_raw(command_reply("+OK bye"))
            await self.send_raw(disconnect_notice(self.uuid))
            return False
        if low.startswith("connect"):
            await self.send_raw(self._connect_reply())
            self.connected.set()
        elif low.startswith("myevents"):
            if self.events_enabled:
                await self.send_raw(command_reply("-ERR aready enabled."))  # sic, FreeSWITCH's text
            else:
                self.events_enabled = True
                await self.send_raw(command_reply("+OK Events Enabled"))
                if self.script.hangs_up_early:
                    await self._hangup(self.script.hangs_up_early)
        elif low.startswith("nolinger"):
            self.linger = None
            await self.send_raw(command_reply("+OK will not linger"))
        elif low.startswith("linger"):
            arg = cmd[6:].strip()
            self.linger = int(arg) if arg.isdigit() else -1
            text = f"+OK will linger {self.linger} seconds" if self.linger != -1 else "+OK will linger"
            await self.send_raw(command_reply(text))
        elif low.startswith("sendmsg"):
            await self.send_raw(command_reply("+OK"))
            await self._sendmsg(p)
        elif low.startswith("api "):
            await self._api(cmd[4:].strip())
        elif low.startswith("getvar"):
            await self.send_raw(command_reply(self.variables.get(cmd[6:].strip(), "")))
        else:
            await self.send_raw(command_reply("-ERR command not found"))
        return True

    async def _ring_unanswered(self, app: str, arg: str) -> None:
        self.ringing_since = time.monotonic()
        await asyncio.sleep(float(self.variables.get("call_timeout") or 60))
        self.ringing_since = None
        if self.channel_up:
            await self._event("event_channel_execute_complete.txt", {
                "Application": app, "Application-Data": arg, "Application-Response": "_none_",
                "variable_originate_disposition": "NO_ANSWER", "variable_DIALSTATUS": "NO_ANSWER",
            })

    async def _api(self, command: str) -> None:
        name, _, arg = command.partition(" ")
        if name != "uuid_kill":
            await self.send_raw(api_response(f"-ERR {name} Command not found!\n"))
            return
        target, _, cause = arg.strip().partition(" ")
        cause = cause.strip() or "NORMAL_CLEARING"
        if target and target == self.b_leg:
            # kill_function answers once switch_ivr_kill_uuid hung the channel up; the
            # bridge then unwinds on the A leg.
            self.killed.append(target)
            await self.send_raw(api_response(fixture_body("bridge/api_response_uuid_kill_ok.txt")))
            await self._end_bridge(cause)
        elif target and target == self.uuid and self.channel_up:
            self.killed.append(target)
            await self.send_raw(api_response(fixture_body("bridge/api_response_uuid_kill_ok.txt")))
            await self._hangup(cause)
        else:
            await self.send_raw(api_response(fixture_body("bridge/api_response_uuid_kill_err.txt")))

    async def _sendmsg(self, p: Packet) -> None:
        command = (p.header("call-command") or "").lower()
        if command == "unicast":
            if self.unicast is not None:
                # switch_ivr_activate_unicast binds local-ip:local-port again while the
                # first connection (still serviced by the park loop) holds it: the bind
                # fails ("Failure creating unicast connection") and the first one stays.
                self.unicast_failures += 1
                return
            self.unicast = {k: p.header(k) or "" for k in ("local-ip", "local-port", "remote-ip", "remote-port", "transport", "flags")}
        elif command == "hangup":
            await self._hangup(p.header("hangup-cause") or "NORMAL_CLEARING")
        elif command == "execute":
            app = p.header("execute-app-name") or ""
            arg = p.header("execute-app-arg")
            if arg is None and (p.header("content-type") or "").lower() == "text/plain":
                arg = p.body.decode("utf-8")
            await self._execute(app, arg or "")

    async def _execute(self, app: str, arg: str) -> None:
        if not self.channel_up:
            return
        if app == "answer" and not self.answered:
            self.answered = True
            # CHANNEL_ANSWER carries the channel's variables (switch_channel_event_set_data).
            variables = {f"variable_{k}": v for k, v in self.script.variables.items()}
            await self._event("event_channel_answer.txt", {**variables, **self.script.answer_overrides})
        elif app in ("set", "export"):
            name, _, value = arg.partition("=")
            self.variables[name] = value
            if app == "export":
                self.exported.append(name)
        elif app == "transfer":
            self.transferred_to = arg
        elif app == "bridge":
            self.bridged_to = arg
            self.bridges.append(arg)
            if self.script.bridge == "answer":
                # switch_ivr_multi_threaded_bridge: CHANNEL_BRIDGE on the A-leg; the
                # application completes only when the bridge ends.
                self.b_leg = str(uuid_mod.uuid4())
                self.b_leg_answered_at = time.monotonic()
                for rec in self.recordings.values():
                    if rec.since is None:
                        rec.since = self.b_leg_answered_at
                await self._event("event_channel_bridge.txt", self._bridge_headers())
                return
            cause = self.script.bridge
            if cause == "ring":
                # The channel's thread rings; the socket goes on reading commands.
                self._ring_task = asyncio.create_task(self._ring_unanswered(app, arg))
                return
            await self._event("event_channel_execute_complete.txt", {
                "Application": app, "Application-Data": arg, "Application-Response": "_none_",
                "variable_originate_disposition": cause, "variable_DIALSTATUS": cause,
            })
            return
        elif app == "hangup":
            await self._hangup(arg or "NORMAL_CLEARING")
            return
        elif app == "record_session":
            await self._record_start(arg.split(" +", 1)[0].strip())
        elif app == "stop_record_session":
            await self._record_stop(arg.strip())
        await self._event("event_channel_execute_complete.txt", {"Application": app, "Application-Data": arg})

    def _true(self, name: str) -> bool:
        return self.variables.get(name, "").lower() in ("true", "yes", "on", "1")

    async def _record_start(self, path: str) -> None:
        if path in self.recordings:  # "Already recording"
            return
        rate = int(self.variables.get("record_sample_rate") or 8000)
        min_sec = self.variables.get("RECORD_MIN_SEC", "0")
        rec = FakeRecording(path, self._true("RECORD_STEREO") or self._true("RECORD_STEREO_SWAP"), rate,
                            self._true("RECORD_BRIDGE_REQ"), int(min_sec) if min_sec.isdigit() else 0)
        if not rec.bridge_req or self.b_leg is not None:
            rec.since = time.monotonic()
        self.recordings[path] = rec
        await asyncio.to_thread(_create_file, path)  # switch_core_file_open creates it at once
        await self._event("event_record_start.txt", {"Record-File-Path": path})

    async def _record_stop(self, path: str) -> None:
        rec = self.recordings.pop(path, None)
        if rec is None:
            return
        rec.pause()
        frames = await asyncio.to_thread(write_call_wav, path, rec.seconds, rec.rate, rec.stereo)
        overrides = {"Record-File-Path": path, "variable_record_samples": str(frames),
                     "variable_record_seconds": str(frames // rec.rate),
                     "variable_record_ms": str(frames * 1000 // rec.rate)}
        if frames < rec.rate * rec.min_sec:
            await asyncio.to_thread(Path(path).unlink, missing_ok=True)  # "Discarding short file"
            cause = "empty-file" if frames == 0 else "input-too-short"  # as 1.10.11 says it
            overrides.update({"variable_RECORD_DISCARDED": "true", "Record-Completion-Cause": cause,
                              "variable_record_completion_cause": cause})
        else:
            self.recorded.append(path)
        await self._event("event_record_stop.txt", overrides)

    def _bridge_headers(self) -> dict[str, str]:
        """The far end as switch_channel_event_set_data puts it on the A leg's events
        (the originatee's caller profile) and Bridge-B-Unique-ID."""
        assert self.b_leg is not None and self.bridged_to is not None
        number = self.bridged_to.rsplit("/", 1)[-1]
        return {
            "Bridge-B-Unique-ID": self.b_leg, "Other-Leg-Unique-ID": self.b_leg,
            "Other-Leg-Destination-Number": number, "Other-Leg-Username": number,
            "Other-Leg-Channel-Name": f"sofia/internal/{number}@192.0.2.20:5062",
        }

    async def _end_bridge(self, cause: str) -> None:
        """The B leg is gone: the end of switch_ivr_multi_threaded_bridge on the A leg.
        CHANNEL_UNBRIDGE; with hangup_after_bridge=true the caller is hung up (the app's
        completion follows the hang-up); otherwise the bridge app returns
        (CHANNEL_EXECUTE_COMPLETE) and the socket app's park loop runs again."""
        if self.b_leg is None:
            return
        headers = self._bridge_headers()
        self.b_leg = None
        self.unbridged_at = time.monotonic()
        self._recordings_unbridged()
        if not self.channel_up:
            return
        await self._event("bridge/event_channel_unbridge.txt", headers)
        done = {**headers, "Application-Data": self.bridged_to or "", "variable_bridge_hangup_cause": cause,
                "variable_last_bridge_hangup_cause": cause,
                "variable_hangup_after_bridge": self.variables.get("hangup_after_bridge", "")}
        if self.variables.get("hangup_after_bridge", "").lower() in ("true", "yes", "on", "1"):
            await self._hangup(cause, before_complete=[("bridge/event_channel_execute_complete_bridge.txt", done)])
            return
        self._bridge_ended()
        await self._event("bridge/event_channel_execute_complete_bridge.txt", done)

    def _recordings_unbridged(self) -> None:
        for rec in self.recordings.values():
            if rec.bridge_req:
                rec.pause()

    def _bridge_ended(self) -> None:
        """Hook: the A leg is parked again (media resumes in FakePhoneCall)."""

    async def _hangup(self, cause: str, before_complete: list[tuple[str, dict[str, str]]] | None = None) -> None:
        """The channel goes down: CHANNEL_HANGUP; with linger, the linger notice and
        CHANNEL_HANGUP_COMPLETE, then FreeSWITCH waits for the bot to close (or the
        linger time); without linger it says goodbye and closes at once. A bridged
        caller's hang-up also ends the bridge: CHANNEL_UNBRIDGE and the bridge app's
        completion, with the A leg's channel data saying it is hung up."""
        if not self.channel_up:
            return
        self.channel_up = False
        self.hangup_cause = cause
        if self.on_hangup is not None:
            await self.on_hangup(self.uuid, cause)
        hangup_vars = {"Hangup-Cause": cause, "variable_hangup_cause": cause}
        await self._event("event_channel_hangup.txt", hangup_vars)
        gone = {"Channel-Call-State": "HANGUP", "Answer-State": "hangup", **hangup_vars}
        if self.b_leg is not None:
            headers = self._bridge_headers()
            self.b_leg = None
            self.unbridged_at = time.monotonic()
            self._recordings_unbridged()
            await self._event("bridge/event_channel_unbridge.txt", {**headers, **gone})
            before_complete = [("bridge/event_channel_execute_complete_bridge.txt", {
                **headers, "Application-Data": self.bridged_to or "", "variable_bridge_hangup_cause": cause,
                "variable_hangup_after_bridge": self.variables.get("hangup_after_bridge", "")})]
        for fixture, overrides in before_complete or []:
            await self._event(fixture, {**overrides, **gone})
        for path in list(self.recordings):  # the hang-up state removes the media bugs: RECORD_STOP
            await self._record_stop(path)
        if self.linger is None:
            await self.send_raw(disconnect_notice(self.uuid))
            await self._close_socket()
            return
        await self.send_raw(linger_notice(self.uuid, self.channel_name, self.linger))
        await self._event("event_channel_hangup_complete.txt", hangup_vars)
        self._linger_timer = asyncio.get_running_loop().call_later(
            self.linger if self.linger > 0 else 3600, lambda: asyncio.ensure_future(self._linger_expired())
        )

    async def _linger_expired(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            with contextlib.suppress(ConnectionError):
                await self.send_raw(disconnect_notice(self.uuid))
            await self._close_socket()

    async def _close_socket(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.close()

    # --- payloads ----------------------------------------------------------------

    def _replacements(self) -> dict[str, str]:
        return {FIXTURE_UUID: self.uuid, FIXTURE_CALLER: self.script.caller}

    def _connect_reply(self) -> bytes:
        # Not an envelope with a body: the connect reply *is* the serialised event.
        text = fixture_bytes("connect_reply_channel_data.txt").decode("utf-8")
        headers = {f"variable_{k}": v for k, v in self.script.variables.items()}
        if self.script.answered_before_connect:
            # The media as negotiated at the answer, too.
            headers.update({"Answer-State": "answered", "Channel-Call-State": "ACTIVE",
                            **self.script.answer_overrides})
        return render_serialized(text, headers, self._replacements()).encode("utf-8")

    async def _event(self, fixture: str, overrides: Mapping[str, str] | None = None) -> None:
        # mod_event_socket sends a listener nothing until it subscribed (LFLAG_EVENTS).
        if not self.events_enabled or self._writer is None or self._writer.is_closing():
            return
        await self.send_raw(fixture_event(fixture, overrides, self._replacements()))


# --- inbound ------------------------------------------------------------------------


class FakeEslServer(_Recorder):
    """FreeSWITCH's inbound listener (port 8021) for the bot's control connection."""

    def __init__(self, password: str, host: str = "127.0.0.1") -> None:
        super().__init__()
        self.password = password
        self.host = host
        self.port = 0
        self.reject_connections = 0  # the next N connections get text/rude-rejection
        self.reject_all = False
        self.connections = 0
        self.authenticated = 0
        self.api_responses: dict[str, str] = {"status": _status_text()}
        self._server: asyncio.Server | None = None
        self._writers: dict[asyncio.StreamWriter, set[str]] = {}  # writer -> subscribed events
        self._tasks: set[asyncio.Task[None]] = set()
        # ``originate`` (mod_commands' originate_function over switch_ivr_originate): what
        # each callee number does — "answer" (the socket app dials the bot, then
        # ``+OK <uuid>``), "ring" (no answer within originate_timeout → ``-ERR NO_ANSWER``),
        # "hangs_up_early" (answered, then gone while the bot sets the call up), or any
        # other text is the cause it fails with at once (USER_BUSY, CALL_REJECTED …).
        self.callees: dict[str, str] = {}
        self.originations: list[Origination] = []
        self.dial_back: Callable[[str, int, CallScript], Awaitable[FakeCall]] | None = None
        self.global_vars: dict[str, str] = {}  # ${…} in &socket(…) falls back to these

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.drop_all()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeEslServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def drop_all(self, message: str = "The system is being shut down.\n") -> None:
        """As ``kill_all_listeners`` on shutdown: a disconnect notice, then close."""
        for writer in list(self._writers):
            with contextlib.suppress(ConnectionError, RuntimeError):
                writer.write(disconnect_notice(None, message))
                writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def broadcast(self, fixture: str, overrides: Mapping[str, str] | None = None) -> None:
        """Fire an event to every listener subscribed to its name (or ALL)."""
        data = fixture_event(fixture, overrides)
        name = re.search(rb"Event-Name: ([A-Z_]+)", data)
        event_name = name.group(1).decode() if name else ""
        for writer, subscribed in list(self._writers.items()):
            if "ALL" in subscribed or event_name in subscribed:
                writer.write(data)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self._listener(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # drop_all() ends connections on purpose; a cancelled client task would make
            # asyncio's stream callback log a spurious error.
            pass
        finally:
            self._tasks.discard(task)
            self._writers.pop(writer, None)
            if not writer.is_closing():
                writer.close()

    async def _listener(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.reject_all or self.reject_connections > 0:
            self.reject_connections = max(0, self.reject_connections - 1)
            writer.write(rude_rejection())
            writer.write(disconnect_notice(None))  # listener_run's "done:" path says goodbye too
            await writer.drain()
            return
        writer.write(b"Content-Type: auth/request\n\n")
        await writer.drain()
        authed = False
        while not authed:
            packet = await read_packet(reader)
            if packet is None:
                return
            await self.record(packet)
            if packet.command.startswith("auth "):
                if packet.command[5:] == self.password:
                    authed = True
                    self.authenticated += 1
                    writer.write(command_reply("+OK accepted"))
                else:
                    writer.write(command_reply("-ERR invalid"))
                    writer.write(disconnect_notice(None))
                    await writer.drain()
                    return
            else:
                writer.write(command_reply("-ERR command not found"))
            await writer.drain()
        self._writers[writer] = set()
        while True:
            packet = await read_packet(reader)
            if packet is None:
                return
            await self.record(packet)
            if not await self._command(packet, writer):
                return

    async def _command(self, p: Packet, writer: asyncio.StreamWriter) -> bool:
        cmd = p.command.strip()
        if cmd.startswith("exit"):
            writer.write(command_reply("+OK bye"))
            writer.write(disconnect_notice(None))
            await writer.drain()
            return False
        if cmd.startswith("api "):
            name, _, arg = cmd[4:].partition(" ")
            text = self.api_responses.get(cmd[4:]) or self.api_responses.get(name)
            writer.write(api_response(text if text is not None else f"-ERR {name} Command not found!\n"))
        elif cmd.startswith("bgapi originate "):
            job = p.header("Job-UUID") or str(uuid_mod.uuid4())
            writer.write(command_reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)]))
            task = asyncio.create_task(self._originate(cmd[len("bgapi originate "):], job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif cmd.startswith("bgapi "):
            job = p.header("Job-UUID") or str(uuid_mod.uuid4())
            writer.write(command_reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)]))
            name = cmd[6:].split(" ", 1)[0]
            result = self.api_responses.get(name, f"-ERR {name} Command not found!\n")
            subscribed = self._writers.get(writer, set())
            if "ALL" in subscribed or "BACKGROUND_JOB" in subscribed:
                raw = fixture_bytes("event_background_job.txt").decode("utf-8")
                serialized = raw.partition("\n\n")[2]
                head = serialized.partition("\n\n")[0]
                head = re.sub(r"\nContent-Length: \d+$", "", head)
                head = head.replace(FIXTURE_JOB_UUID, job)
                head = re.sub(r"Job-Command: [^\n]*", f"Job-Command: {fs_url_encode(name)}", head)
                body = result.encode("utf-8")
                writer.write(event_envelope(f"{head}\nContent-Length: {len(body)}\n\n{result}"))
        elif cmd.startswith("event "):
            parts = cmd.split()[1:]
            names = [n for n in parts if n.lower() not in ("plain", "json", "xml")]
            if not names:
                writer.write(command_reply("-ERR no keywords supplied"))
            else:
                self._writers.setdefault(writer, set()).update(names)
                writer.write(command_reply("+OK event listener enabled plain"))
        elif cmd.startswith("noevents"):
            self._writers[writer] = set()
            writer.write(command_reply("+OK no longer listening for events"))
        else:
            writer.write(command_reply("-ERR command not found"))
        await writer.drain()
        return True

    # --- originate ----------------------------------------------------------------

    async def _originate(self, args: str, job: str) -> None:
        m = _ORIGINATE.match(args.strip())
        if m is None:
            await self._job_result(job, "originate", "-USAGE: <call url> <exten>|&<application_name>(<app_args>)\n")
            return
        variables = dict(pair.split("=", 1) for pair in m["vars"].split(",") if "=" in pair)
        dial = m["dial"]
        number = dial.rsplit("/", 1)[-1].split("@", 1)[0]
        socket = re.sub(r"\$\{([a-z_]+)\}", lambda v: self.global_vars.get(v[1], ""), m["socket"])
        origination = Origination(variables, dial, socket, number)
        self.originations.append(origination)
        behaviour = self.callees.get(number, "UNALLOCATED_NUMBER")
        uuid = variables.get("origination_uuid") or str(uuid_mod.uuid4())
        if behaviour == "ring":
            await asyncio.sleep(float(variables.get("originate_timeout") or 60))
            origination.result = "-ERR NO_ANSWER\n"
        elif behaviour in ("answer", "hangs_up_early"):
            assert self.dial_back is not None, "set dial_back to let answered calls reach the bot"
            host, _, port = socket.rpartition(":")
            script = CallScript(uuid=uuid, caller=variables.get("origination_caller_id_number", "0000000000"),
                                variables=variables, answered_before_connect=True,
                                hangs_up_early="NORMAL_CLEARING" if behaviour == "hangs_up_early" else None)
            call = await self.dial_back(host, int(port), script)
            origination.call = call
            call.on_hangup = self._channel_gone
            origination.result = f"+OK {uuid}\n"
        else:
            origination.result = f"-ERR {behaviour}\n"
        await self._job_result(job, "originate", origination.result)

    async def _job_result(self, job: str, name: str, result: str) -> None:
        raw = fixture_bytes("event_background_job.txt").decode("utf-8")
        head = raw.partition("\n\n")[2].partition("\n\n")[0]
        head = re.sub(r"\nContent-Length: \d+$", "", head).replace(FIXTURE_JOB_UUID, job)
        head = re.sub(r"Job-Command: [^\n]*", f"Job-Command: {fs_url_encode(name)}", head)
        body = result.encode("utf-8")
        data = event_envelope(f"{head}\nContent-Length: {len(body)}\n\n{result}")
        for writer, subscribed in list(self._writers.items()):
            if "ALL" in subscribed or "BACKGROUND_JOB" in subscribed:
                writer.write(data)

    async def _channel_gone(self, uuid: str, cause: str) -> None:
        """CHANNEL_HANGUP_COMPLETE of an originated channel, to every subscribed listener."""
        await self.broadcast("event_channel_hangup_complete.txt",
                             {"Unique-ID": uuid, "Hangup-Cause": cause, "variable_hangup_cause": cause})


@dataclass
class Origination:
    """One ``originate`` as the double parsed it."""

    variables: dict[str, str]
    dial_string: str
    socket: str  # host:port of &socket(…)
    number: str
    result: str | None = None
    call: FakeCall | None = None


_ORIGINATE = re.compile(r"^\{(?P<vars>[^}]*)\}(?P<dial>\S+) '&socket\((?P<socket>\S+) async full\)'$")


def _status_text() -> str:
    raw = fixture_bytes("api_response_status.txt").decode("utf-8")
    return raw.partition("\n\n")[2]
