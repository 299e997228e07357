"""The FreeSWITCH Event Socket (ESL) text protocol: parsing and serialising, no I/O.

Wire facts, checked against signalwire/freeswitch
``src/mod/event_handlers/mod_event_socket/mod_event_socket.c`` and ``src/switch_event.c``:

* Every message is a header block (``Name: value`` lines, ``\\n`` line ends) closed by a
  blank line, then, when the block has ``Content-Length``, exactly that many body bytes.
  ``Content-Type`` need not be the first header: the ``connect`` reply is a serialised
  CHANNEL_DATA event whose ``Content-Type: command/reply`` comes near the end.
* Serialised events (``switch_event_serialize``) url-encode every header value
  (``SWITCH_URL_UNSAFE`` plus control and non-ASCII bytes; ``+`` becomes ``%2B``, so
  decoding must never turn ``+`` into a space). That is the body of a
  ``text/event-plain`` message and the whole ``connect`` reply. An event with a body
  ends its headers with ``Content-Length: N``, a blank line and the N-byte body.
* Commands we send are read by ``read_packet``: the first line is the command, the next
  lines are headers that FreeSWITCH stores verbatim (no url-decoding), ``Content-Length``
  announces a body. A CR or LF inside a value would start a new header or command, so
  the encoders below refuse them.
* ``sendmsg`` (``switch_ivr_parse_event``): ``call-command`` is ``execute`` (with
  ``execute-app-name``, ``execute-app-arg`` or a ``text/plain`` body, ``loops``,
  ``event-lock``), ``hangup`` (``hangup-cause``) or ``unicast`` (``local-ip``,
  ``local-port``, ``remote-ip``, ``remote-port``, ``transport``, ``flags``).

Bad input never raises out of the parser: it becomes "no message" and one log line
(lengths and reasons only, never the bytes, which may hold phone numbers).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

import structlog

from telnum import mask_number

log = structlog.get_logger(__name__)

MAX_HEADER_BYTES = 4 * 1024 * 1024
"""A header block longer than this without its blank line is garbage (a connect reply
with every channel variable is tens of kilobytes)."""

MAX_BODY_BYTES = 10 * 1024 * 1024
"""FreeSWITCH's own limit for one packet (``max_len`` in ``read_packet``)."""

DEFAULT_PTIME_MS = 20
_PTIME_RANGE = range(10, 121)  # 10..120 ms: every packetisation a SIP phone offers

_DTMF_DIGITS = frozenset("0123456789*#ABCDabcd")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CODEC_STRING_PTIME = re.compile(r"@(\d+)i")


class ContentType(StrEnum):
    AUTH_REQUEST = "auth/request"
    COMMAND_REPLY = "command/reply"
    API_RESPONSE = "api/response"
    EVENT_PLAIN = "text/event-plain"
    EVENT_JSON = "text/event-json"
    DISCONNECT_NOTICE = "text/disconnect-notice"
    RUDE_REJECTION = "text/rude-rejection"
    LOG_DATA = "log/data"


_CONTENT_TYPES = {ct.value: ct for ct in ContentType}


class EslEncodeError(ValueError):
    """A command could not be serialised safely (it would inject headers or commands)."""


class Headers(Mapping[str, str]):
    """ESL headers: insertion-ordered, looked up case-insensitively as FreeSWITCH does
    (``switch_event_get_header`` uses strcasecmp). A repeated name keeps the last value."""

    __slots__ = ("_items", "_names")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, str] = {}
        self._names: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            old = self._names.get(key)
            if old is not None:
                del self._items[old]
            self._names[key] = name
            self._items[name] = value

    def __getitem__(self, name: str) -> str:
        return self._items[self._names[name.lower()]]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        # Values can be phone numbers: show names only.
        return f"Headers({list(self._items)})"


@dataclass(frozen=True, slots=True)
class EslMessage:
    """One message from FreeSWITCH: its type, decoded envelope headers and raw body."""

    content_type: ContentType
    headers: Headers
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def reply_text(self) -> str:
        """``Reply-Text`` of a command/reply (the connect reply's is ``+OK\\n``)."""
        return self.headers.get("Reply-Text", "").strip()

    @property
    def ok(self) -> bool:
        """Whether FreeSWITCH accepted the command: ``+OK …`` in a command/reply; an
        api/response is a failure only when its body says ``-ERR`` or ``-USAGE``."""
        if self.content_type is ContentType.COMMAND_REPLY:
            return self.reply_text.startswith("+OK")
        if self.content_type is ContentType.API_RESPONSE:
            head = self.text.lstrip()
            return not (head.startswith("-ERR") or head.startswith("-USAGE"))
        return False


@dataclass(frozen=True, slots=True)
class EslEvent:
    """A FreeSWITCH event (from a text/event-plain or text/event-json message)."""

    name: str
    headers: Headers
    body: str = ""

    @property
    def subclass(self) -> str | None:
        """``Event-Subclass`` of a CUSTOM event (e.g. ``sofia::register``)."""
        return self.headers.get("Event-Subclass")

    @property
    def unique_id(self) -> str | None:
        return self.headers.get("Unique-ID")


@dataclass(frozen=True, slots=True)
class DisconnectNotice:
    """``text/disconnect-notice``: ``linger`` when the channel hung up and FreeSWITCH
    keeps the socket open ``linger_time`` seconds (-1: until we close) so the last
    events arrive; ``disconnect`` (or none) when it is closing the socket now."""

    disposition: str | None
    linger_time: int | None
    session_uuid: str | None
    text: str

    @property
    def lingering(self) -> bool:
        return self.disposition == "linger"

    @classmethod
    def from_message(cls, msg: EslMessage) -> DisconnectNotice:
        linger = _int_or_none(msg.headers.get("Linger-Time"))
        return cls(
            disposition=msg.headers.get("Content-Disposition"),
            linger_time=linger,
            session_uuid=msg.headers.get("Controlled-Session-UUID"),
            text=msg.text,
        )


@dataclass(frozen=True, slots=True)
class DtmfPress:
    """One key from a ``DTMF`` event. ``duration_samples`` is in RTP clock ticks, as
    FreeSWITCH reports it (``switch_dtmf_t.duration``): 2000 at 8 kHz is 250 ms."""

    digit: str
    duration_samples: int | None
    source: str | None = None

    def duration_ms(self, clock_rate: int = 8000) -> int | None:
        if self.duration_samples is None:
            return None
        return self.duration_samples * 1000 // clock_rate


@dataclass(frozen=True, slots=True)
class HangupInfo:
    """Why the channel went down, from CHANNEL_HANGUP / CHANNEL_HANGUP_COMPLETE."""

    cause: str
    q850: int | None


@dataclass(frozen=True, slots=True, repr=False)
class ChannelData:
    """The call as the ``connect`` reply (or any channel event) describes it.

    ``read_rate`` and ``ptime_ms`` give the unicast frame: L16 mono at the read codec's
    rate, one datagram per ptime (design §3.4), so ``frame_bytes`` is what each UDP
    packet carries both ways.
    """

    uuid: str
    caller_id_number: str
    caller_id_name: str
    destination_number: str
    read_codec: str
    read_rate: int
    ptime_ms: int
    headers: Headers = field(compare=False)

    @property
    def frame_bytes(self) -> int:
        return self.read_rate * self.ptime_ms // 1000 * 2

    def variable(self, name: str) -> str | None:
        """A channel variable (``variable_<name>`` header)."""
        return self.headers.get(f"variable_{name}")

    def __repr__(self) -> str:
        return (
            f"ChannelData(uuid={self.uuid!r}, caller={mask_number(self.caller_id_number)!r}, "
            f"destination={mask_number(self.destination_number)!r}, codec={self.read_codec!r}, "
            f"rate={self.read_rate}, ptime_ms={self.ptime_ms})"
        )

    @classmethod
    def from_headers(cls, headers: Headers) -> ChannelData | None:
        """None when the headers name no channel (a connect reply outside a call)."""
        uuid = _first(headers, "Unique-ID", "Channel-Unique-ID", "Caller-Unique-ID")
        if not uuid:
            log.warning("esl.channel_data.no_uuid", headers=len(headers))
            return None
        rate = _int_or_none(
            _first(
                headers,
                "Channel-Read-Codec-Rate",
                "variable_read_rate",
                "variable_rtp_use_codec_rate",
            )
        )
        if rate is None or rate <= 0:
            rate = 8000  # PCMU/PCMA, the only codecs a phone line offers us
        ptime_source = _first(headers, "variable_rtp_use_codec_ptime")
        if ptime_source is None:
            ptime_source = _first(headers, "variable_rtp_last_audio_codec_string")
        return cls(
            uuid=uuid,
            caller_id_number=_first(
                headers, "Caller-Caller-ID-Number", "Caller-ANI", "Channel-Caller-ID-Number"
            )
            or "",
            caller_id_name=_first(headers, "Caller-Caller-ID-Name", "Channel-Caller-ID-Name") or "",
            destination_number=_first(
                headers, "Caller-Destination-Number", "Channel-Destination-Number"
            )
            or "",
            read_codec=_first(
                headers,
                "Channel-Read-Codec-Name",
                "variable_read_codec",
                "variable_rtp_use_codec_name",
            )
            or "",
            read_rate=rate,
            ptime_ms=parse_ptime(ptime_source),
            headers=headers,
        )


def parse_ptime(value: str | None, default: int = DEFAULT_PTIME_MS) -> int:
    """Packet time in ms from ``rtp_use_codec_ptime`` ("30") or a codec string
    (``rtp_last_audio_codec_string``: "PCMU@8000h@20i@1c"); ``default`` (20 ms) when
    absent or not believable, because a wrong frame length degrades audio and DTMF."""
    if value is None or not value.strip():
        return default
    text = value.strip()
    match = _CODEC_STRING_PTIME.search(text)
    digits = match.group(1) if match else text
    try:
        ptime = int(digits)
    except ValueError:
        log.warning("esl.ptime.unreadable", length=len(text))
        return default
    if ptime not in _PTIME_RANGE:
        log.warning("esl.ptime.out_of_range", ptime=ptime)
        return default
    return ptime


def dtmf_from_event(event: EslEvent) -> DtmfPress | None:
    """The key of a ``DTMF`` event; None (and a log line) for anything else."""
    if event.name != "DTMF":
        return None
    digit = event.headers.get("DTMF-Digit", "")
    if len(digit) != 1 or digit not in _DTMF_DIGITS:
        log.warning("esl.dtmf.bad_digit", length=len(digit))
        return None
    return DtmfPress(
        digit=digit.upper(),
        duration_samples=_int_or_none(event.headers.get("DTMF-Duration")),
        source=event.headers.get("DTMF-Source"),
    )


def hangup_from_event(event: EslEvent) -> HangupInfo | None:
    if event.name not in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
        return None
    cause = (
        event.headers.get("Hangup-Cause") or event.headers.get("variable_hangup_cause") or "UNKNOWN"
    )
    return HangupInfo(
        cause=cause, q850=_int_or_none(event.headers.get("variable_hangup_cause_q850"))
    )


# --- parsing -------------------------------------------------------------------------


def url_decode(value: str) -> str:
    """Percent-decoding only: FreeSWITCH encodes ``+`` as ``%2B`` and never writes ``+``
    for a space, so ``unquote_plus`` would corrupt replies such as ``+OK``."""
    return unquote(value, errors="replace") if "%" in value else value


def parse_header_block(block: bytes) -> tuple[list[tuple[str, str]], int]:
    """``Name: value`` lines into (name, url-decoded value) pairs, and the number of
    lines that were not headers (skipped)."""
    pairs: list[tuple[str, str]] = []
    bad = 0
    for raw_line in block.decode("utf-8", errors="replace").split("\n"):
        line = raw_line.rstrip("\r")
        if not line:
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not name or " " in name:
            bad += 1
            continue
        pairs.append((name, url_decode(value.lstrip(" ").rstrip())))
    return pairs, bad


def parse_event(msg: EslMessage) -> EslEvent | None:
    """The event inside a text/event-plain or text/event-json message; None when the
    message is not an event or the event has no ``Event-Name``."""
    if msg.content_type is ContentType.EVENT_PLAIN:
        return _parse_plain_event(msg.body)
    if msg.content_type is ContentType.EVENT_JSON:
        return _parse_json_event(msg.body)
    return None


def _parse_plain_event(body: bytes) -> EslEvent | None:
    match = _HEADER_END.search(body)
    head, rest = (body[: match.start()], body[match.end() :]) if match else (body, b"")
    pairs, bad = parse_header_block(head)
    if bad:
        log.warning("esl.event.bad_lines", lines=bad)
    headers = Headers(pairs)
    name = headers.get("Event-Name")
    if not name:
        log.warning("esl.event.no_name", headers=len(headers), bytes=len(body))
        return None
    event_body = b""
    if "Content-Length" in headers:
        length = _int_or_none(headers["Content-Length"])
        if length is None or length < 0 or length > len(rest):
            log.warning("esl.event.bad_body_length", event_name=name, available=len(rest))
            event_body = rest
        else:
            event_body = rest[:length]
    return EslEvent(name=name, headers=headers, body=event_body.decode("utf-8", errors="replace"))


def _parse_json_event(body: bytes) -> EslEvent | None:
    try:
        data: Any = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        log.warning("esl.event.bad_json", bytes=len(body))
        return None
    if not isinstance(data, dict):
        log.warning("esl.event.bad_json", bytes=len(body))
        return None
    pairs: list[tuple[str, str]] = []
    event_body = ""
    for key, value in data.items():
        if key == "_body":
            event_body = str(value)
        elif isinstance(value, list):
            # The plain format writes arrays as ARRAY::a|:b; keep one shape for both.
            pairs.append((str(key), "ARRAY::" + "|:".join(str(v) for v in value)))
        else:
            pairs.append((str(key), str(value)))
    headers = Headers(pairs)
    name = headers.get("Event-Name")
    if not name:
        log.warning("esl.event.no_name", headers=len(headers), bytes=len(body))
        return None
    return EslEvent(name=name, headers=headers, body=event_body)


class EslParser:
    """Incremental parser: feed it whatever the socket returned, get whole messages.

    Partial reads wait for more bytes; garbage (lines that are not headers, a bad
    ``Content-Length``, an unknown ``Content-Type``, an endless header block) is dropped
    with a log line and parsing carries on with the next block.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already searched for the blank line
        self._pending: tuple[Headers, int] | None = None  # headers waiting for their body

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[EslMessage]:
        self._buf += data
        out: list[EslMessage] = []
        while True:
            if self._pending is None and not self._read_headers():
                break
            assert self._pending is not None
            headers, length = self._pending
            if len(self._buf) < length:
                break
            body = bytes(self._buf[:length])
            del self._buf[:length]
            self._pending = None
            msg = _build_message(headers, body)
            if msg is not None:
                out.append(msg)
        return out

    def _read_headers(self) -> bool:
        """Take one header block off the buffer into ``_pending``; False when the
        buffer holds no complete block yet."""
        while True:
            # FreeSWITCH itself skips stray newlines between packets ("bah" in read_packet).
            skip = 0
            while skip < len(self._buf) and self._buf[skip] in (0x0A, 0x0D):
                skip += 1
            if skip:
                del self._buf[:skip]
                self._scanned = max(0, self._scanned - skip)
            match = _HEADER_END.search(self._buf, max(0, self._scanned - 3))
            if match is None:
                self._scanned = len(self._buf)
                if len(self._buf) > MAX_HEADER_BYTES:
                    log.warning("esl.garbage.endless_headers", bytes=len(self._buf))
                    self._buf.clear()
                    self._scanned = 0
                return False
            block = bytes(self._buf[: match.start()])
            del self._buf[: match.end()]
            self._scanned = 0
            pairs, bad = parse_header_block(block)
            if bad:
                log.warning("esl.garbage.lines", lines=bad, headers=len(pairs))
            if not pairs:
                continue
            headers = Headers(pairs)
            length = 0
            if "Content-Length" in headers:
                parsed = _int_or_none(headers["Content-Length"])
                if parsed is None or parsed < 0 or parsed > MAX_BODY_BYTES:
                    # The body's end is unknown: drop the envelope; whatever body bytes
                    # follow fail as header lines and are skipped above.
                    log.warning("esl.garbage.content_length", bytes=len(block))
                    continue
                length = parsed
            self._pending = (headers, length)
            return True


def _build_message(headers: Headers, body: bytes) -> EslMessage | None:
    raw_type = headers.get("Content-Type")
    if raw_type is None:
        log.warning("esl.garbage.no_content_type", headers=len(headers), bytes=len(body))
        return None
    content_type = _CONTENT_TYPES.get(raw_type.strip().lower())
    if content_type is None:
        log.warning("esl.unknown_content_type", content_type=raw_type[:40], bytes=len(body))
        return None
    return EslMessage(content_type=content_type, headers=headers, body=body)


# --- serialising ---------------------------------------------------------------------

_APP_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_EVENT_NAME = re.compile(r"^[A-Za-z0-9_:.-]+$")
_HANGUP_CAUSE = re.compile(r"^[A-Z0-9_]+$")
_DIALPLAN_TOKEN = re.compile(r"^[A-Za-z0-9_+*#.@-]+$")


def _check_line(text: str, what: str) -> str:
    if "\n" in text or "\r" in text:
        raise EslEncodeError(f"{what} must not contain CR or LF")
    return text


def encode_command(
    command: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | str | None = None,
) -> bytes:
    """``command\\nName: value\\n…\\n\\n[body]``, refusing anything that would let a
    value start a new header or command."""
    lines = [_check_line(command, "command")]
    if not command.strip():
        raise EslEncodeError("empty command")
    for name, value in headers:
        if not name or ":" in name or " " in name:
            raise EslEncodeError(f"bad header name {name!r}")
        lines.append(f"{_check_line(name, 'header name')}: {_check_line(value, 'header value')}")
    payload = b""
    if body is not None:
        payload = body.encode("utf-8") if isinstance(body, str) else body
        lines.append(f"Content-Length: {len(payload)}")
    return ("\n".join(lines) + "\n\n").encode("utf-8") + payload


def connect() -> bytes:
    return encode_command("connect")


def myevents() -> bytes:
    """Subscribe to this channel's events (outbound), in plain format."""
    return encode_command("myevents")


def linger(seconds: int | None = None) -> bytes:
    """Keep the socket open after hang-up so CHANNEL_HANGUP_COMPLETE still arrives;
    ``None`` lingers until we close."""
    if seconds is None:
        return encode_command("linger")
    if seconds <= 0:
        raise EslEncodeError("linger seconds must be positive")
    return encode_command(f"linger {int(seconds)}")


def auth(password: str) -> bytes:
    """``auth <password>``; FreeSWITCH compares everything after ``auth `` verbatim."""
    if not password:
        raise EslEncodeError("empty password")
    return encode_command(f"auth {_check_line(password, 'password')}")


def event_plain(*names: str) -> bytes:
    """``event plain NAME …`` (inbound subscription)."""
    if not names:
        raise EslEncodeError("no event names")
    for name in names:
        if not _EVENT_NAME.match(name):
            raise EslEncodeError(f"bad event name {name!r}")
    return encode_command("event plain " + " ".join(names))


def api(command: str) -> bytes:
    return encode_command(f"api {_check_line(command, 'api command').strip()}")


def bgapi(command: str, job_uuid: str | None = None) -> bytes:
    headers = [("Job-UUID", job_uuid)] if job_uuid else []
    return encode_command(f"bgapi {_check_line(command, 'api command').strip()}", headers)


def exit_() -> bytes:
    return encode_command("exit")


def _sendmsg_line(uuid: str | None) -> str:
    if uuid is None:
        return "sendmsg"
    if not uuid or " " in uuid:
        raise EslEncodeError("bad channel uuid")
    return f"sendmsg {uuid}"


def sendmsg_execute(
    uuid: str | None,
    app: str,
    arg: str | None = None,
    *,
    event_lock: bool = True,
    loops: int | None = None,
) -> bytes:
    """Run a dialplan application on the channel. ``event-lock`` makes FreeSWITCH run
    queued applications one after another instead of interleaving them."""
    if not _APP_NAME.match(app):
        raise EslEncodeError(f"bad application name {app!r}")
    headers = [("call-command", "execute"), ("execute-app-name", app)]
    body: str | None = None
    if arg is not None and ("\n" in arg or "\r" in arg):
        # A multi-line argument cannot be a header; switch_ivr_parse_event takes it from
        # a text/plain body instead.
        headers.append(("content-type", "text/plain"))
        body = arg
    elif arg is not None:
        headers.append(("execute-app-arg", arg))
    if loops is not None:
        headers.append(("loops", str(int(loops))))
    if event_lock:
        headers.append(("event-lock", "true"))
    return encode_command(_sendmsg_line(uuid), headers, body)


def sendmsg_hangup(uuid: str | None, cause: str = "NORMAL_CLEARING") -> bytes:
    if not _HANGUP_CAUSE.match(cause):
        raise EslEncodeError(f"bad hangup cause {cause!r}")
    return encode_command(
        _sendmsg_line(uuid), [("call-command", "hangup"), ("hangup-cause", cause)]
    )


def sendmsg_unicast(
    uuid: str | None,
    local_ip: str,
    local_port: int,
    remote_ip: str,
    remote_port: int,
    *,
    native: bool = False,
) -> bytes:
    """Start streaming the call's audio over UDP. ``local-*`` is the address FreeSWITCH
    binds, ``remote-*`` the address it sends to (ours). Only UDP: FreeSWITCH accepts
    ``transport: tcp`` but still opens a datagram socket (``switch_ivr_activate_unicast``).
    Without ``native`` frames are L16 mono at the read codec's rate and ptime."""
    for ip in (local_ip, remote_ip):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise EslEncodeError(f"not an IP address: {ip!r}") from None
    for port in (local_port, remote_port):
        if not 0 < int(port) < 65536:
            raise EslEncodeError(f"bad port {port!r}")
    headers = [
        ("call-command", "unicast"),
        ("local-ip", local_ip),
        ("local-port", str(int(local_port))),
        ("remote-ip", remote_ip),
        ("remote-port", str(int(remote_port))),
        ("transport", "udp"),
    ]
    if native:
        headers.append(("flags", "native"))
    return encode_command(_sendmsg_line(uuid), headers)


def set_variable_arg(name: str, value: str) -> str:
    """``name=value`` for the ``set``/``export`` applications.

    FreeSWITCH expands ``${…}`` in application arguments, and ``${system(…)}`` or
    ``${api(…)}`` would run commands, so a value carrying ``${`` is refused rather than
    passed on: the values we hand over (ticket id, fault number, reason, conversation id)
    never need it.
    """
    if not _VARIABLE_NAME.match(name):
        raise EslEncodeError(f"bad channel variable name {name!r}")
    _check_line(value, "variable value")
    if "${" in value or "$${" in value:
        raise EslEncodeError("variable value must not contain ${")
    return f"{name}={value}"


def transfer_arg(destination: str, context: str = "default", dialplan: str = "XML") -> str:
    for token, what in ((destination, "destination"), (context, "context"), (dialplan, "dialplan")):
        if not _DIALPLAN_TOKEN.match(token):
            raise EslEncodeError(f"bad transfer {what}")
    return f"{destination} {dialplan} {context}"


def bridge_arg(dial_string: str) -> str:
    _check_line(dial_string, "dial string")
    if not dial_string.strip() or "${" in dial_string:
        raise EslEncodeError("bad dial string")
    return dial_string


# --- helpers -------------------------------------------------------------------------


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _first(headers: Headers, *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value and value != "_undef_":
            return value
    return None
