"""The ESL wire protocol on its own: parsing (whole, partial, garbage), url-decoding,
typed channel data / DTMF / hang-up, and command serialisation.

Category: unit. Fixtures are wire captures in FreeSWITCH's shapes
(tests/fixtures/esl/*.txt); the round trips encode with the FreeSWITCH double's own
encoder (tests/fakes/freeswitch.py), which does not share code with voice.esl.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.fakes.freeswitch import FIXTURE_UUID, event_envelope, fs_url_encode
from voice.esl import protocol as p
from voice.esl.protocol import (
    ChannelData,
    ContentType,
    DisconnectNotice,
    EslEncodeError,
    EslParser,
    Headers,
    dtmf_from_event,
    hangup_from_event,
    parse_event,
    parse_ptime,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "esl"

EXPECTED_TYPES = {
    "api_response_err.txt": ContentType.API_RESPONSE,
    "api_response_status.txt": ContentType.API_RESPONSE,
    "auth_request.txt": ContentType.AUTH_REQUEST,
    "connect_reply_channel_data.txt": ContentType.COMMAND_REPLY,
    "disconnect_inbound.txt": ContentType.DISCONNECT_NOTICE,
    "disconnect_linger.txt": ContentType.DISCONNECT_NOTICE,
    "disconnect_session.txt": ContentType.DISCONNECT_NOTICE,
    "event_background_job.txt": ContentType.EVENT_PLAIN,
    "event_channel_answer.txt": ContentType.EVENT_PLAIN,
    "event_channel_bridge.txt": ContentType.EVENT_PLAIN,
    "event_channel_execute_complete.txt": ContentType.EVENT_PLAIN,
    "event_channel_hangup.txt": ContentType.EVENT_PLAIN,
    "event_channel_hangup_complete.txt": ContentType.EVENT_PLAIN,
    "event_dtmf.txt": ContentType.EVENT_PLAIN,
    "event_json_dtmf.txt": ContentType.EVENT_JSON,
    "event_record_start.txt": ContentType.EVENT_PLAIN,
    "event_record_stop.txt": ContentType.EVENT_PLAIN,
    "log_data.txt": ContentType.LOG_DATA,
    "reply_auth_accepted.txt": ContentType.COMMAND_REPLY,
    "reply_auth_invalid.txt": ContentType.COMMAND_REPLY,
    "reply_bgapi.txt": ContentType.COMMAND_REPLY,
    "reply_command_not_found.txt": ContentType.COMMAND_REPLY,
    "reply_event_plain.txt": ContentType.COMMAND_REPLY,
    "reply_linger.txt": ContentType.COMMAND_REPLY,
    "reply_myevents.txt": ContentType.COMMAND_REPLY,
    "reply_ok.txt": ContentType.COMMAND_REPLY,
    "rude_rejection.txt": ContentType.RUDE_REJECTION,
}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse_one(data: bytes) -> p.EslMessage:
    messages = EslParser().feed(data)
    assert len(messages) == 1, messages
    return messages[0]


def event_of(name: str) -> p.EslEvent:
    event = parse_event(parse_one(fixture(name)))
    assert event is not None
    return event


# --- framing -------------------------------------------------------------------------


def test_every_fixture_is_one_message_of_its_type() -> None:
    assert sorted(EXPECTED_TYPES) == sorted(f.name for f in FIXTURES.glob("*.txt"))
    for name, content_type in EXPECTED_TYPES.items():
        msg = parse_one(fixture(name))
        assert msg.content_type is content_type, name


def _stream() -> tuple[bytes, list[tuple[ContentType, bytes]]]:
    names = sorted(EXPECTED_TYPES)
    data = b"".join(fixture(n) for n in names)
    whole = [(m.content_type, m.body) for m in EslParser().feed(data)]
    assert len(whole) == len(names)
    return data, whole


def test_byte_at_a_time_gives_the_same_messages() -> None:
    data, whole = _stream()
    parser = EslParser()
    got = [(m.content_type, m.body) for i in range(len(data)) for m in parser.feed(data[i : i + 1])]
    assert got == whole
    assert parser.buffered == 0


@pytest.mark.parametrize("seed", range(5))
def test_random_chunks_give_the_same_messages(seed: int) -> None:
    data, whole = _stream()
    rng = random.Random(seed)
    parser = EslParser()
    got, i = [], 0
    while i < len(data):
        n = rng.randint(1, 700)
        got += [(m.content_type, m.body) for m in parser.feed(data[i : i + n])]
        i += n
    assert got == whole


def test_body_is_cut_by_content_length_not_by_blank_lines() -> None:
    body = b"line one\n\nafter a blank line\n\n"
    data = b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body
    data += fixture("reply_ok.txt")
    first, second = EslParser().feed(data)
    assert first.body == body
    assert second.reply_text == "+OK"


def test_content_length_counts_bytes_of_utf8() -> None:
    body = "故障申告 ok\n".encode()
    msg = parse_one(b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body)
    assert msg.text == "故障申告 ok\n"


def test_crlf_line_ends_and_leading_blank_lines_are_accepted() -> None:
    msg = parse_one(b"\r\n\n\nContent-Type: command/reply\r\nReply-Text: +OK accepted\r\n\r\n")
    assert msg.ok and msg.reply_text == "+OK accepted"


def test_headers_are_case_insensitive_and_keep_order() -> None:
    headers = Headers([("Content-Type", "x"), ("Reply-Text", "+OK"), ("reply-text", "-ERR no")])
    assert headers["REPLY-TEXT"] == "-ERR no"
    assert "content-type" in headers
    assert list(headers) == ["Content-Type", "reply-text"]
    assert "ERR" not in repr(headers)  # values (numbers) stay out of reprs


# --- garbage ------------------------------------------------------------------------


def test_garbage_lines_are_skipped_and_parsing_resumes() -> None:
    parser = EslParser()
    assert parser.feed(b"this is not a header\n\x00\xff\xfe binary\n\n") == []
    assert [m.reply_text for m in parser.feed(fixture("reply_ok.txt"))] == ["+OK"]


def test_unknown_or_missing_content_type_is_dropped() -> None:
    data = (
        b"Content-Type: text/event-xml\nContent-Length: 7\n\n<event>"
        + b"Reply-Text: +OK\n\n"
        + fixture("reply_myevents.txt")
    )
    (msg,) = EslParser().feed(data)
    assert msg.reply_text == "+OK Events Enabled"


@pytest.mark.parametrize("length", [b"abc", b"-5", b"99999999999"])
def test_bad_content_length_drops_the_envelope_and_resyncs(length: bytes) -> None:
    data = b"Content-Type: api/response\nContent-Length: " + length + b"\n\n" + fixture("reply_ok.txt")
    (msg,) = EslParser().feed(data)
    assert msg.reply_text == "+OK"


def test_endless_header_block_is_discarded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(p, "MAX_HEADER_BYTES", 1000)
    parser = EslParser()
    assert parser.feed(b"X-Junk: " + b"a" * 2000) == []
    assert parser.buffered == 0
    assert [m.reply_text for m in parser.feed(fixture("reply_ok.txt"))] == ["+OK"]


def test_event_without_name_or_with_bad_json_is_no_event() -> None:
    body = b"Unique-ID: x\n\n"
    assert parse_event(parse_one(event_envelope(body.decode()))) is None
    bad = b"{not json"
    msg = parse_one(b"Content-Type: text/event-json\nContent-Length: %d\n\n" % len(bad) + bad)
    assert parse_event(msg) is None
    assert parse_event(parse_one(fixture("reply_ok.txt"))) is None


def test_event_body_shorter_than_its_content_length_keeps_what_there_is() -> None:
    serialized = "Event-Name: BACKGROUND_JOB\nContent-Length: 50\n\nshort"
    event = parse_event(parse_one(event_envelope(serialized)))
    assert event is not None and event.body == "short"


# --- url-decoding and events ---------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["+OK", "100%", "a b:c;d", "sofia/external/13800138000@192.0.2.10:5060", "故障 申告", "x\r\ny", "%2B literal", "_"],
)
def test_event_header_values_round_trip_through_url_encoding(value: str) -> None:
    serialized = f"Event-Name: CUSTOM\nX-Value: {fs_url_encode(value)}\n\n"
    event = parse_event(parse_one(event_envelope(serialized)))
    assert event is not None
    assert event.headers["X-Value"] == value


def test_plus_is_never_read_as_space() -> None:
    event = parse_event(parse_one(event_envelope("Event-Name: CUSTOM\nX-A: a+b\n\n")))
    assert event is not None and event.headers["X-A"] == "a+b"


def test_dtmf_event() -> None:
    event = event_of("event_dtmf.txt")
    assert event.name == "DTMF"
    assert event.unique_id == FIXTURE_UUID
    assert event.headers["Channel-Name"] == "sofia/external/13800138000@192.0.2.10:5060"
    assert event.headers["Event-Date-Local"] == "2025-03-14 09:26:53"
    press = dtmf_from_event(event)
    assert press is not None
    assert (press.digit, press.duration_samples, press.duration_ms(), press.source) == ("1", 2000, 250, "RTP")


def test_json_event_matches_the_plain_one() -> None:
    plain, js = event_of("event_dtmf.txt"), event_of("event_json_dtmf.txt")
    assert js.name == "DTMF"
    assert dict(js.headers) == dict(plain.headers)
    assert dtmf_from_event(js) == dtmf_from_event(plain)


def test_bad_dtmf_digit_is_no_press() -> None:
    headers = Headers([("Event-Name", "DTMF"), ("DTMF-Digit", "12")])
    assert dtmf_from_event(p.EslEvent("DTMF", headers)) is None
    assert dtmf_from_event(event_of("event_channel_hangup.txt")) is None


def test_hangup_events() -> None:
    info = hangup_from_event(event_of("event_channel_hangup.txt"))
    assert info == p.HangupInfo("NORMAL_CLEARING", 16)
    complete = event_of("event_channel_hangup_complete.txt")
    assert complete.name == "CHANNEL_HANGUP_COMPLETE"
    assert complete.headers["variable_billsec"] == "42"
    assert hangup_from_event(event_of("event_dtmf.txt")) is None


def test_event_with_its_own_body() -> None:
    event = event_of("event_background_job.txt")
    assert event.name == "BACKGROUND_JOB"
    assert event.headers["Job-UUID"] == "7d6c1f0e-2a9b-4c3d-8e5f-6a7b8c9d0e1f"
    assert event.body.startswith("UP 0 years")
    assert event.body.endswith("Current Stack Size/Max 240K/8192K\n")


def test_empty_value_is_the_undef_marker() -> None:
    event = event_of("event_channel_execute_complete.txt")
    assert event.headers["Application"] == "answer"
    assert event.headers["Application-Data"] == "_undef_"


def test_disconnect_notices() -> None:
    linger = DisconnectNotice.from_message(parse_one(fixture("disconnect_linger.txt")))
    assert linger.lingering and linger.linger_time == 30 and linger.session_uuid == FIXTURE_UUID
    bye = DisconnectNotice.from_message(parse_one(fixture("disconnect_session.txt")))
    assert not bye.lingering and bye.disposition == "disconnect"
    assert bye.text.startswith("Disconnected, goodbye.")


def test_reply_ok_and_errors() -> None:
    assert parse_one(fixture("reply_auth_accepted.txt")).ok
    assert not parse_one(fixture("reply_auth_invalid.txt")).ok
    assert not parse_one(fixture("reply_command_not_found.txt")).ok
    status = parse_one(fixture("api_response_status.txt"))
    assert status.ok and status.text.startswith("UP ")
    assert not parse_one(fixture("api_response_err.txt")).ok
    bgapi = parse_one(fixture("reply_bgapi.txt"))
    assert bgapi.ok and bgapi.headers["Job-UUID"] == "7d6c1f0e-2a9b-4c3d-8e5f-6a7b8c9d0e1f"
    assert parse_one(fixture("rude_rejection.txt")).text == "Access Denied, go away.\n"


# --- channel data --------------------------------------------------------------------


def test_connect_reply_is_channel_data() -> None:
    msg = parse_one(fixture("connect_reply_channel_data.txt"))
    assert msg.ok and msg.reply_text == "+OK"  # %2BOK%0A on the wire
    assert msg.headers["Socket-Mode"] == "async" and msg.headers["Control"] == "full"
    channel = ChannelData.from_headers(msg.headers)
    assert channel is not None
    assert channel.uuid == FIXTURE_UUID
    assert channel.caller_id_number == "13800138000"
    assert channel.destination_number == "1000"
    # Delayed negotiation: no codec yet, so the telephone defaults apply.
    assert (channel.read_codec, channel.read_rate, channel.ptime_ms, channel.frame_bytes) == ("", 8000, 20, 320)
    assert channel.variable("endpoint_disposition") == "DELAYED NEGOTIATION"
    assert "\r\n" in (channel.variable("switch_r_sdp") or "")
    assert "13800138000" not in repr(channel)


def test_answer_event_carries_the_media() -> None:
    channel = ChannelData.from_headers(event_of("event_channel_answer.txt").headers)
    assert channel is not None
    assert (channel.read_codec, channel.read_rate, channel.ptime_ms, channel.frame_bytes) == ("PCMA", 8000, 20, 320)


def test_ptime_30_from_the_codec_string_when_the_ptime_variable_is_missing() -> None:
    headers = Headers(
        [("Unique-ID", "u"), ("Channel-Read-Codec-Rate", "8000"), ("variable_rtp_last_audio_codec_string", "PCMU@8000h@30i@1c")]
    )
    channel = ChannelData.from_headers(headers)
    assert channel is not None and channel.ptime_ms == 30 and channel.frame_bytes == 480


def test_no_uuid_is_no_channel() -> None:
    assert ChannelData.from_headers(Headers([("Reply-Text", "+OK")])) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 20), ("", 20), ("30", 30), (" 20 ", 20), ("PCMA@8000h@30i@1c", 30), ("abc", 20), ("0", 20), ("1000", 20)],
)
def test_parse_ptime(value: str | None, expected: int) -> None:
    assert parse_ptime(value) == expected


# --- serialising ---------------------------------------------------------------------


def test_simple_commands() -> None:
    assert p.connect() == b"connect\n\n"
    assert p.myevents() == b"myevents\n\n"
    assert p.linger() == b"linger\n\n"
    assert p.linger(30) == b"linger 30\n\n"
    assert p.event_plain("CHANNEL_HANGUP", "DTMF") == b"event plain CHANNEL_HANGUP DTMF\n\n"
    assert p.api("status") == b"api status\n\n"
    assert p.bgapi("status", "job-1") == b"bgapi status\nJob-UUID: job-1\n\n"
    assert p.auth("s3cret") == b"auth s3cret\n\n"
    assert p.exit_() == b"exit\n\n"


def test_sendmsg_execute() -> None:
    assert p.sendmsg_execute("u-1", "answer") == (
        b"sendmsg u-1\ncall-command: execute\nexecute-app-name: answer\nevent-lock: true\n\n"
    )
    assert p.sendmsg_execute(None, "set", "a=b c", event_lock=False) == (
        b"sendmsg\ncall-command: execute\nexecute-app-name: set\nexecute-app-arg: a=b c\n\n"
    )


def test_multiline_argument_goes_in_a_text_plain_body() -> None:
    data = p.sendmsg_execute("u-1", "log", "line 1\nline 2")
    head, body = data.split(b"\n\n", 1)
    assert b"content-type: text/plain" in head and b"Content-Length: 13" in head
    assert b"execute-app-arg" not in head
    assert body == b"line 1\nline 2"


def test_sendmsg_unicast_and_hangup() -> None:
    assert p.sendmsg_unicast("u-1", "127.0.0.1", 8025, "127.0.0.1", 40000) == (
        b"sendmsg u-1\ncall-command: unicast\nlocal-ip: 127.0.0.1\nlocal-port: 8025\n"
        b"remote-ip: 127.0.0.1\nremote-port: 40000\ntransport: udp\n\n"
    )
    assert b"flags: native\n" in p.sendmsg_unicast("u", "::1", 1, "::1", 2, native=True)
    assert p.sendmsg_hangup("u-1", "USER_BUSY") == b"sendmsg u-1\ncall-command: hangup\nhangup-cause: USER_BUSY\n\n"


def test_variable_transfer_and_bridge_arguments() -> None:
    assert p.set_variable_arg("hotline_ticket_id", "TT 42") == "hotline_ticket_id=TT 42"
    assert p.transfer_arg("operator", "hotline") == "operator XML hotline"
    assert p.bridge_arg("sofia/gateway/ops/8001") == "sofia/gateway/ops/8001"


@pytest.mark.parametrize(
    "make",
    [
        lambda: p.api("status\n\nexit"),
        lambda: p.auth("pw\nevent plain ALL"),
        lambda: p.auth(""),
        lambda: p.sendmsg_execute("u", "bad app"),
        lambda: p.sendmsg_execute("u 2", "answer"),
        lambda: p.encode_command("x", [("bad: name", "v")]),
        lambda: p.encode_command("x", [("h", "v\nsendmsg")]),
        lambda: p.set_variable_arg("ok", "${system(rm -rf /)}"),
        lambda: p.set_variable_arg("bad name", "v"),
        lambda: p.sendmsg_unicast("u", "localhost", 8025, "127.0.0.1", 1),
        lambda: p.sendmsg_unicast("u", "127.0.0.1", 0, "127.0.0.1", 1),
        lambda: p.sendmsg_unicast("u", "127.0.0.1", 1, "127.0.0.1", 70000),
        lambda: p.sendmsg_hangup("u", "normal clearing"),
        lambda: p.transfer_arg("op erator", "hotline"),
        lambda: p.bridge_arg("user/${x}"),
        lambda: p.event_plain(),
        lambda: p.event_plain("DTMF HANGUP"),
        lambda: p.linger(0),
    ],
)
def test_unsafe_commands_are_refused(make: object) -> None:
    with pytest.raises(EslEncodeError):
        make()  # type: ignore[operator]


def test_the_recording_events_name_the_file_and_its_length() -> None:
    """RECORD_START / RECORD_STOP as switch_ivr_async.c sends them: the caller's channel
    data, Record-File-Path (url-encoded on the wire), and on the stop record_ms."""
    start, stop = event_of("event_record_start.txt"), event_of("event_record_stop.txt")
    assert (start.name, stop.name) == ("RECORD_START", "RECORD_STOP")
    assert start.unique_id == stop.unique_id == "5f1c2c7e-3b2a-4d8e-9a61-0c7d2b9e4a10"
    path = "/var/lib/freeswitch/recordings/hotline/7-5f1c2c7e-3b2a-4d8e-9a61-0c7d2b9e4a10-1.wav"
    assert start.headers["Record-File-Path"] == stop.headers["Record-File-Path"] == path
    assert stop.headers["variable_record_ms"] == "12000" and stop.headers["variable_RECORD_STEREO"] == "true"
