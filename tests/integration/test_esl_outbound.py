"""The ESL outbound server against a FreeSWITCH double that dials in as FreeSWITCH does,
and the inbound control client against a double of FreeSWITCH's port 8021.

Category: integration (local TCP only, no FreeSWITCH). Waits are bounded by timeouts,
never asserted on wall-clock time; reconnect backoff runs on a fake sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from tests.fakes.freeswitch import CallScript, FakeCall, FakeEslServer, Packet, is_sendmsg
from voice.esl import protocol as p
from voice.esl.inbound import EslAuthError, EslInboundClient, EslNotConnected, EslRejected
from voice.esl.outbound import EslCallConnection, EslCommandError, EslOutboundServer, OnCall
from voice.esl.protocol import DisconnectNotice, EslEncodeError, EslEvent, dtmf_from_event

TIMEOUT = 5.0


@dataclass
class Seen:
    """What the application callback observed during one call."""

    channel: p.ChannelData | None = None
    digits: list[str] = field(default_factory=list)
    durations_ms: list[int | None] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    notices: list[DisconnectNotice] = field(default_factory=list)
    hangup_cause: str | None = None
    errors: list[BaseException] = field(default_factory=list)
    cancelled: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


async def collect_until_over(conn: EslCallConnection, seen: Seen) -> None:
    async for item in conn.events():
        if isinstance(item, DisconnectNotice):
            seen.notices.append(item)
            continue
        seen.events.append(item.name)
        press = dtmf_from_event(item)
        if press is not None:
            seen.digits.append(press.digit)
            seen.durations_ms.append(press.duration_ms())
    seen.hangup_cause = conn.hangup_info.cause if conn.hangup_info else None


OnCallFactory = Callable[[Seen], OnCall]


def app(body: Callable[[EslCallConnection, Seen], Awaitable[None]]) -> OnCallFactory:
    def factory(seen: Seen) -> OnCall:
        async def on_call(conn: EslCallConnection) -> None:
            seen.channel = conn.channel
            seen.started.set()
            try:
                await body(conn, seen)
            except asyncio.CancelledError:
                seen.cancelled = True
                raise
            except Exception as exc:  # recorded for the test to assert on
                seen.errors.append(exc)
                raise
            finally:
                seen.finished.set()

        return on_call

    return factory


@contextlib.asynccontextmanager
async def running(factory: OnCallFactory, seen: Seen, **kwargs: object) -> AsyncIterator[EslOutboundServer]:
    options: dict[str, object] = {"hangup_grace_s": 0.2, "answer_timeout_s": 2.0}
    options.update(kwargs)
    server = EslOutboundServer(factory(seen), "127.0.0.1", 0, **options)  # type: ignore[arg-type]
    async with server:
        yield server


async def dial(server: EslOutboundServer, script: CallScript | None = None) -> FakeCall:
    call = FakeCall("127.0.0.1", server.port, script)
    await call.dial()
    return call


async def wait_idle(server: EslOutboundServer) -> None:
    await asyncio.wait_for(server.wait_idle(), TIMEOUT)
    assert server.active_calls == 0


def names(commands: list[Packet]) -> list[str]:
    out = []
    for c in commands:
        if c.name == "sendmsg":
            out.append(f"sendmsg {c.header('call-command')} {c.header('execute-app-name') or ''}".strip())
        else:
            out.append(c.command)
    return out


# --- outbound ------------------------------------------------------------------------


async def test_call_setup_then_unicast_with_the_right_headers() -> None:
    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await conn.unicast("127.0.0.1", 8025, "127.0.0.1", 40000)
        await collect_until_over(conn, seen)

    seen = Seen()
    async with running(app(body), seen) as server:
        call = await dial(server)
        await call.wait_for(is_sendmsg("unicast"), TIMEOUT)
        assert names(call.commands) == [
            "connect",
            "myevents",
            "linger 30",
            "sendmsg execute answer",
            "sendmsg unicast",
        ]
        times = [c.at for c in call.commands]
        assert times == sorted(times)
        answer = call.commands[3]
        assert answer.command == f"sendmsg {call.uuid}" and answer.header("event-lock") == "true"
        assert call.unicast == {
            "local-ip": "127.0.0.1",
            "local-port": "8025",
            "remote-ip": "127.0.0.1",
            "remote-port": "40000",
            "transport": "udp",
            "flags": "",
        }
        await call.caller_hangs_up()
        await asyncio.wait_for(seen.finished.wait(), TIMEOUT)
        await asyncio.wait_for(call.bot_closed.wait(), TIMEOUT)
        await wait_idle(server)
    assert seen.channel is not None
    assert seen.channel.uuid == call.uuid
    assert seen.channel.caller_id_number == "13800138000"
    # The media comes from CHANNEL_ANSWER, not the connect reply (delayed negotiation).
    assert (seen.channel.read_codec, seen.channel.read_rate, seen.channel.ptime_ms) == ("PCMA", 8000, 20)
    assert not seen.cancelled and not seen.errors


async def test_dtmf_and_hangup_are_delivered_in_order() -> None:
    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await collect_until_over(conn, seen)

    seen = Seen()
    async with running(app(body), seen) as server:
        call = await dial(server)
        await asyncio.wait_for(seen.started.wait(), TIMEOUT)
        await call.press("123#", duration=1600)
        await call.caller_hangs_up("NORMAL_CLEARING")
        await asyncio.wait_for(seen.finished.wait(), TIMEOUT)
        await wait_idle(server)
    assert seen.digits == ["1", "2", "3", "#"]
    assert seen.durations_ms == [200] * 4
    assert seen.events[-2:] == ["CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"]
    assert seen.events.index("DTMF") > seen.events.index("CHANNEL_ANSWER")
    assert [n.disposition for n in seen.notices] == ["linger"]
    assert seen.hangup_cause == "NORMAL_CLEARING"
    assert not seen.cancelled


async def test_ptime_30_call_is_reported_from_the_answer_event() -> None:
    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await conn.hangup()

    script = CallScript(
        answer_overrides={
            "Channel-Read-Codec-Name": "PCMU",
            "variable_rtp_use_codec_ptime": "30",
            "variable_rtp_last_audio_codec_string": "PCMU@8000h@30i@1c",
        }
    )
    seen = Seen()
    async with running(app(body), seen) as server:
        call = await dial(server, script)
        await asyncio.wait_for(seen.finished.wait(), TIMEOUT)
        await wait_idle(server)
    assert seen.channel is not None
    assert (seen.channel.read_codec, seen.channel.ptime_ms, seen.channel.frame_bytes) == ("PCMU", 30, 480)
    assert call.hangup_cause == "NORMAL_CLEARING"


async def test_transfer_sets_the_variables_first() -> None:
    variables = {
        "hotline_ticket_id": "TT-20250314-0042",
        "hotline_fault_number": "02150001234",
        "hotline_reason": "caller asked for an operator",
        "hotline_conversation_id": "c-5f1c2c7e",
    }

    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await conn.transfer("operator", "hotline", variables=variables)

    seen = Seen()
    async with running(app(body), seen) as server:
        call = await dial(server)
        await asyncio.wait_for(seen.finished.wait(), TIMEOUT)
        # The application returned: the socket closes and the call goes back to the dialplan.
        await asyncio.wait_for(call.bot_closed.wait(), TIMEOUT)
        await wait_idle(server)
    sent = names(call.commands)
    assert sent[3:] == ["sendmsg execute answer"] + ["sendmsg execute set"] * 4 + ["sendmsg execute transfer"]
    assert call.variables == variables
    assert call.transferred_to == "operator XML hotline"
    assert not seen.errors


async def test_bridge_exports_the_variables() -> None:
    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await conn.bridge("sofia/gateway/ops/8001", variables={"hotline_ticket_id": "TT-1"})

    seen = Seen()
    async with running(app(body), seen) as server:
        call = await dial(server)
        await asyncio.wait_for(seen.finished.wait(), TIMEOUT)
        await wait_idle(server)
    assert call.exported == ["hotline_ticket_id"]
    assert call.bridged_to == "sofia/gateway/ops/8001"


async def test_a_bad_variable_sends_nothing() -> None:
    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await conn.transfer("operator", "hotline", variables={"a": "ok", "b": "${system(id)}"})

    seen = Seen()
    async with running(app(body), seen) as server:
        call = await dial(server)
        await asyncio.wait_for(seen.finished.wait(), TIMEOUT)
        await wait_idle(server)
    assert [type(e) for e in seen.errors] == [EslEncodeError]
    assert names(call.commands)[-1] == "sendmsg execute answer"
    assert call.variables == {} and call.transferred_to is None


async def test_err_replies_raise_and_api_errors_are_returned() -> None:
    async def body(conn: EslCallConnection, seen: Seen) -> None:
        with pytest.raises(EslCommandError, match="aready enabled"):
            await conn.command(p.myevents())
        reply = await conn.api("nosuchcmd")
        assert not reply.ok and "Command not found" in reply.text
        await conn.hangup("USER_BUSY")

    seen = Seen()
    async with running(app(body), seen) as server:
        call = await dial(server)
        await asyncio.wait_for(seen.finished.wait(), TIMEOUT)
        await wait_idle(server)
    assert not seen.errors
    assert call.hangup_cause == "USER_BUSY"


async def test_the_app_is_cancelled_when_the_caller_hangs_up() -> None:
    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await asyncio.Event().wait()  # an application stuck in something long

    seen = Seen()
    async with running(app(body), seen) as server:
        call = await dial(server)
        await asyncio.wait_for(seen.started.wait(), TIMEOUT)
        await call.caller_hangs_up()
        await asyncio.wait_for(seen.finished.wait(), TIMEOUT)
        await asyncio.wait_for(call.bot_closed.wait(), TIMEOUT)
        await wait_idle(server)
    assert seen.cancelled


async def test_a_call_gone_before_it_started_is_reported_once_and_the_app_never_runs() -> None:
    gone: list[p.ChannelData | None] = []

    async def report(channel: p.ChannelData | None) -> None:
        gone.append(channel)

    async def body(conn: EslCallConnection, seen: Seen) -> None:
        raise AssertionError("the application must not run for a call that is gone")

    seen = Seen()
    async with running(app(body), seen, on_gone_before_start=report) as server:
        call = await dial(server, CallScript(hangs_up_early="ORIGINATOR_CANCEL"))
        await asyncio.wait_for(call.bot_closed.wait(), TIMEOUT)
        await wait_idle(server)
    assert not seen.started.is_set()
    assert len(gone) == 1 and gone[0] is not None and gone[0].uuid == call.uuid


async def test_an_answered_call_is_not_reported_as_gone() -> None:
    gone: list[p.ChannelData | None] = []

    async def report(channel: p.ChannelData | None) -> None:
        gone.append(channel)

    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await collect_until_over(conn, seen)

    seen = Seen()
    async with running(app(body), seen, on_gone_before_start=report) as server:
        call = await dial(server)
        await asyncio.wait_for(seen.started.wait(), TIMEOUT)
        await call.caller_hangs_up()
        await wait_idle(server)
    assert gone == []


async def test_eof_mid_call_ends_the_session() -> None:
    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await collect_until_over(conn, seen)
        await asyncio.Event().wait()  # only cancellation ends this

    seen = Seen()
    async with running(app(body), seen) as server:
        call = await dial(server)
        await asyncio.wait_for(seen.started.wait(), TIMEOUT)
        await call.press("5")
        await asyncio.sleep(0.05)
        await call.close()  # FreeSWITCH goes away without a word
        await asyncio.wait_for(seen.finished.wait(), TIMEOUT)
        await wait_idle(server)
    assert seen.digits == ["5"]
    assert seen.cancelled


async def test_garbage_from_freeswitch_is_skipped() -> None:
    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await collect_until_over(conn, seen)

    seen = Seen()
    async with running(app(body), seen) as server:
        call = await dial(server)
        await asyncio.wait_for(seen.started.wait(), TIMEOUT)
        await call.send_raw(b"not a header line\n\x00\xff\n\n")
        await call.send_raw(b"Content-Type: text/event-xml\nContent-Length: 8\n\n<event/>")
        await call.send_raw(b"Content-Length: 14\nContent-Type: text/event-plain\n\nUnique-ID: x\n\n")
        await call.press("7")
        await call.caller_hangs_up()
        await asyncio.wait_for(seen.finished.wait(), TIMEOUT)
        await wait_idle(server)
    assert seen.digits == ["7"]
    assert not seen.errors


async def test_two_calls_at_once_are_kept_apart() -> None:
    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await collect_until_over(conn, seen)

    seen_a, seen_b = Seen(), Seen()
    calls: dict[str, Seen] = {}

    def factory(_: Seen) -> OnCall:
        async def on_call(conn: EslCallConnection) -> None:
            seen = seen_a if not calls else seen_b
            calls[conn.uuid] = seen
            await app(body)(seen)(conn)

        return on_call

    async with running(factory, Seen()) as server:
        a = await dial(server)
        await asyncio.wait_for(seen_a.started.wait(), TIMEOUT)
        b = await dial(server)
        await asyncio.wait_for(seen_b.started.wait(), TIMEOUT)
        await a.press("1")
        await b.press("2")
        await b.caller_hangs_up()
        await a.press("3")
        await a.caller_hangs_up()
        await asyncio.wait_for(asyncio.gather(seen_a.finished.wait(), seen_b.finished.wait()), TIMEOUT)
        await wait_idle(server)
    assert calls[a.uuid].digits == ["1", "3"]
    assert calls[b.uuid].digits == ["2"]


async def test_closing_the_server_ends_live_calls() -> None:
    async def body(conn: EslCallConnection, seen: Seen) -> None:
        await asyncio.Event().wait()

    seen = Seen()
    server = EslOutboundServer(app(body)(seen), "127.0.0.1", 0)
    await server.start()
    call = await dial(server)
    await asyncio.wait_for(seen.started.wait(), TIMEOUT)
    await asyncio.wait_for(server.close(), TIMEOUT)
    await asyncio.wait_for(call.bot_closed.wait(), TIMEOUT)
    assert seen.cancelled and server.active_calls == 0


# --- inbound -------------------------------------------------------------------------

PASSWORD = "not-ClueCon-7f3a"


class FakeSleep:
    """Records backoff delays instead of sleeping; can park forever after ``limit``."""

    def __init__(self, limit: int | None = None) -> None:
        self.delays: list[float] = []
        self.limit = limit
        self.parked = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.limit is not None and len(self.delays) >= self.limit:
            self.parked.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0)


def client_for(server: FakeEslServer, **kwargs: object) -> EslInboundClient:
    options: dict[str, object] = {"jitter": 0.0, "connect_timeout_s": 2.0}
    options.update(kwargs)
    return EslInboundClient(PASSWORD, "127.0.0.1", server.port, **options)  # type: ignore[arg-type]


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_inbound_auth_api_and_health() -> None:
    async with FakeEslServer(PASSWORD) as server:
        async with client_for(server, events=("BACKGROUND_JOB",)) as client:
            status = await client.api("status")
            assert status.ok and status.text.startswith("UP ")
            assert await client.health()
            missing = await client.api("nosuchcmd")
            assert not missing.ok
            job = await client.bgapi("status", "job-42")
            assert job == "job-42"
            item = await asyncio.wait_for(anext(aiter(client.events())), TIMEOUT)
            assert isinstance(item, EslEvent) and item.name == "BACKGROUND_JOB"
            assert item.headers["Job-UUID"] == "job-42" and item.body.startswith("UP ")
        commands = [c.command for c in server.commands]
    assert commands[0] == f"auth {PASSWORD}"
    assert commands[1] == "event plain BACKGROUND_JOB"
    assert commands[-1] == "exit"


async def test_inbound_wrong_password_is_refused() -> None:
    async with FakeEslServer(PASSWORD) as server:
        client = EslInboundClient("wrong", "127.0.0.1", server.port)
        with pytest.raises(EslAuthError):
            await client.connect()
        assert not client.connected.is_set()
        with pytest.raises(EslNotConnected):
            await client.api("status")
        assert not await client.health()


async def test_inbound_rude_rejection() -> None:
    async with FakeEslServer(PASSWORD) as server:
        server.reject_all = True
        with pytest.raises(EslRejected, match="Access Denied"):
            await client_for(server).connect()


def test_a_password_is_required() -> None:
    with pytest.raises(ValueError):
        EslInboundClient("")


async def test_inbound_reconnects_with_backoff_after_rejections() -> None:
    async with FakeEslServer(PASSWORD) as server:
        server.reject_connections = 3
        sleep = FakeSleep()
        client = client_for(server, sleep=sleep)
        task = asyncio.create_task(client.run())
        try:
            await asyncio.wait_for(client.connected.wait(), TIMEOUT)
            assert sleep.delays == [1.0, 5.0, 10.0]
            assert server.connections == 4 and server.authenticated == 1
        finally:
            await client.close()
            await stop(task)


async def test_inbound_reconnects_after_freeswitch_restarts() -> None:
    async with FakeEslServer(PASSWORD) as server:
        sleep = FakeSleep()
        client = client_for(server, sleep=sleep, events=("CHANNEL_HANGUP",))
        task = asyncio.create_task(client.run())
        try:
            await asyncio.wait_for(client.connected.wait(), TIMEOUT)
            await server.drop_all()
            await asyncio.wait_for(server.wait_for(lambda c: c.command == f"auth {PASSWORD}", TIMEOUT, start=1), TIMEOUT)
            await asyncio.wait_for(server.wait_for("event", TIMEOUT, start=2), TIMEOUT)
            await asyncio.wait_for(client.connected.wait(), TIMEOUT)
            assert client.connects == 2
            assert sleep.delays == [1.0]  # the schedule restarts after a good connection
            assert await client.health()
        finally:
            await client.close()
            await stop(task)


async def test_inbound_backoff_schedule_when_nothing_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: connections are refused
    sleep = FakeSleep(limit=7)
    client = EslInboundClient(PASSWORD, "127.0.0.1", port, sleep=sleep, jitter=0.0, connect_timeout_s=2.0)
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(sleep.parked.wait(), TIMEOUT)
        assert sleep.delays == [1.0, 5.0, 10.0, 30.0, 90.0, 90.0, 90.0]
    finally:
        await stop(task)


def test_backoff_jitter_stays_within_bounds() -> None:
    high = EslInboundClient(PASSWORD, rand=lambda: 1.0, jitter=0.2)
    low = EslInboundClient(PASSWORD, rand=lambda: 0.0, jitter=0.2)
    assert high.backoff_delay(0) == pytest.approx(1.2)
    assert low.backoff_delay(1) == pytest.approx(4.0)
    assert high.backoff_delay(99) == pytest.approx(108.0)
