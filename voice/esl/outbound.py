"""Outbound ESL: the asyncio server FreeSWITCH dials into, one connection per call.

The dialplan runs ``socket 127.0.0.1:8084 async full``; FreeSWITCH parks the call and
opens a TCP connection here. Per connection we send ``connect`` (the reply carries the
channel data), ``myevents`` (this channel's events, DTMF included: ``async`` mode is
needed for DTMF), ``linger`` (so CHANNEL_HANGUP_COMPLETE still arrives after hang-up)
and ``sendmsg`` execute ``answer``, wait for CHANNEL_ANSWER (codec and ptime are often
only negotiated then: the connect reply says ``DELAYED NEGOTIATION``), then hand an
``EslCallConnection`` to the application callback.

When the socket closes while the call is up, FreeSWITCH clears CF_CONTROLLED, the park
ends and the dialplan carries on after ``socket`` (the fallback route): so an
application that returns, or crashes, hands the call back to the dialplan.

``EslConnection`` (the read loop, in-order replies, the event queue) is shared with the
inbound client in ``inbound.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any

import structlog

from telnum import mask_number
from voice.esl import protocol as p
from voice.esl.protocol import (
    ChannelData,
    ContentType,
    DisconnectNotice,
    EslEvent,
    EslMessage,
    EslParser,
    HangupInfo,
    hangup_from_event,
    parse_event,
)

log = structlog.get_logger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8084

StreamItem = EslEvent | DisconnectNotice


class EslError(Exception):
    pass


class EslConnectionClosed(EslError):
    """The socket closed before the reply came (or before the command was sent)."""


class EslTimeout(EslError):
    pass


class EslCommandError(EslError):
    """FreeSWITCH answered ``-ERR …``."""

    def __init__(self, what: str, reply: EslMessage) -> None:
        self.reply = reply
        super().__init__(f"{what}: {reply.reply_text or reply.text.strip()}")


def _what(payload: bytes) -> str:
    """A log-safe name for a command: its first word, never its arguments (passwords,
    numbers)."""
    first = payload.split(b"\n", 1)[0].split(b" ", 1)[0]
    return first.decode("ascii", errors="replace")


def _consume(fut: asyncio.Future[EslMessage]) -> None:
    # A reply future whose caller gave up (timeout) may fail later: mark it retrieved.
    if not fut.cancelled():
        fut.exception()


class EslConnection:
    """One ESL TCP stream.

    A read task drains the socket as fast as it arrives (mod_event_socket kills a
    listener that misses ``MAX_MISSED`` events), parses it, resolves command replies in
    the order the commands were sent (FreeSWITCH handles one command at a time per
    socket) and queues events for ``events()``.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        command_timeout_s: float = 10.0,
        max_queued_events: int = 10_000,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = EslParser()
        self._waiters: deque[asyncio.Future[EslMessage]] = deque()
        self._events: asyncio.Queue[StreamItem | None] = asyncio.Queue()
        self._events_ended = False
        self._dropped_events = 0
        self._control: deque[EslMessage] = deque()  # auth/request, rude-rejection
        self._wake = asyncio.Event()
        self._read_task: asyncio.Task[None] | None = None
        self.command_timeout_s = command_timeout_s
        self.max_queued_events = max_queued_events
        self.closed = asyncio.Event()

    def start(self) -> None:
        self._read_task = asyncio.create_task(self._read_loop(), name="esl-read")

    @property
    def is_closed(self) -> bool:
        return self.closed.is_set()

    async def send(self, payload: bytes) -> EslMessage:
        """Send one command and return its reply (command/reply or api/response)."""
        what = _what(payload)
        if self.closed.is_set():
            raise EslConnectionClosed(what)
        fut: asyncio.Future[EslMessage] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_consume)
        self._waiters.append(fut)
        try:
            self._writer.write(payload)
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise EslConnectionClosed(what) from exc
        try:
            # shield: on timeout the future stays queued so the late reply still pairs
            # with it, not with the next command's waiter. asyncio.timeout, not wait_for:
            # 3.11's wait_for can swallow a cancellation that races with the reply.
            async with asyncio.timeout(self.command_timeout_s):
                return await asyncio.shield(fut)
        except TimeoutError:
            log.warning("esl.command.timeout", command=what, timeout_s=self.command_timeout_s)
            raise EslTimeout(what) from None

    async def command(self, payload: bytes) -> EslMessage:
        """``send``, raising ``EslCommandError`` on ``-ERR``."""
        reply = await self.send(payload)
        if not reply.ok:
            raise EslCommandError(_what(payload), reply)
        return reply

    async def events(self) -> AsyncIterator[StreamItem]:
        """Events and disconnect notices, in arrival order, until the stream ends.
        One consumer per connection."""
        while True:
            if self._events_ended and self._events.empty():
                return
            item = await self._events.get()
            if item is None:
                return
            yield item

    async def next_control(self, timeout_s: float) -> EslMessage:
        """The next unsolicited auth/request or rude-rejection."""
        async with asyncio.timeout(timeout_s):
            while True:
                if self._control:
                    return self._control.popleft()
                if self.closed.is_set():
                    raise EslConnectionClosed("waiting for auth/request")
                self._wake.clear()
                await self._wake.wait()

    async def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()
        if self._read_task is not None and not self._read_task.done():
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._read_task
        self._mark_closed()

    # --- reading -----------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                for msg in self._parser.feed(data):
                    self._dispatch(msg)
        except (ConnectionError, OSError) as exc:
            log.info("esl.read.error", error=type(exc).__name__)
        finally:
            self._mark_closed()

    def _dispatch(self, msg: EslMessage) -> None:
        ct = msg.content_type
        if ct is ContentType.COMMAND_REPLY or ct is ContentType.API_RESPONSE:
            if not self._waiters:
                log.warning("esl.reply.unexpected", content_type=ct.value)
                return
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(msg)
        elif ct is ContentType.EVENT_PLAIN or ct is ContentType.EVENT_JSON:
            event = parse_event(msg)
            if event is not None:
                self._enqueue(event)
                self._on_event(event)
        elif ct is ContentType.DISCONNECT_NOTICE:
            notice = DisconnectNotice.from_message(msg)
            self._enqueue(notice)
            self._on_disconnect_notice(notice)
        elif ct is ContentType.AUTH_REQUEST or ct is ContentType.RUDE_REJECTION:
            self._control.append(msg)
            self._wake.set()
        # log/data: we never ask for logs; ignore.

    def _enqueue(self, item: StreamItem) -> None:
        if self._events_ended:
            return
        if self._events.qsize() >= self.max_queued_events:
            # Nobody is consuming: drop rather than grow without bound (we keep reading
            # the socket either way, so FreeSWITCH never sees a slow consumer).
            self._dropped_events += 1
            if self._dropped_events in (1, 100) or self._dropped_events % 1000 == 0:
                log.warning("esl.events.dropped", dropped=self._dropped_events)
            return
        self._events.put_nowait(item)

    def _end_events(self) -> None:
        if not self._events_ended:
            self._events_ended = True
            self._events.put_nowait(None)

    def _mark_closed(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self._wake.set()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(EslConnectionClosed("connection closed"))
        self._end_events()
        self._on_closed()

    # Hooks for subclasses; called in the read task, so they must not block.
    def _on_event(self, event: EslEvent) -> None:
        pass

    def _on_disconnect_notice(self, notice: DisconnectNotice) -> None:
        pass

    def _on_closed(self) -> None:
        pass


class EslCallConnection(EslConnection):
    """The ESL side of one call, as the application callback sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, **kwargs: Any) -> None:
        super().__init__(reader, writer, **kwargs)
        self.channel: ChannelData | None = None
        self.answered = asyncio.Event()
        self.app_started = False  # the application (a call session) took the call
        self.hung_up = asyncio.Event()  # CHANNEL_HANGUP or the linger notice
        self.call_ended = asyncio.Event()  # CHANNEL_HANGUP_COMPLETE, goodbye, or EOF
        self.hangup_info: HangupInfo | None = None

    @property
    def uuid(self) -> str:
        if self.channel is None:
            raise EslError("no channel data yet (connect not done)")
        return self.channel.uuid

    async def execute(self, app: str, arg: str | None = None, *, event_lock: bool = True) -> EslMessage:
        """Run a dialplan application; returns when FreeSWITCH queued it (``+OK``)."""
        return await self.command(p.sendmsg_execute(self.uuid, app, arg, event_lock=event_lock))

    async def unicast(
        self, local_ip: str, local_port: int, remote_ip: str, remote_port: int, *, native: bool = False
    ) -> EslMessage:
        """Stream the call's audio over UDP: FreeSWITCH binds ``local_ip:local_port`` and
        sends to ``remote_ip:remote_port`` (ours). Audio flows while the call is parked."""
        payload = p.sendmsg_unicast(self.uuid, local_ip, local_port, remote_ip, remote_port, native=native)
        return await self.command(payload)

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> EslMessage:
        return await self.command(p.sendmsg_hangup(self.uuid, cause))

    async def set_variables(self, variables: Mapping[str, str], *, export: bool = False) -> None:
        """Set channel variables (``export`` also copies them to a bridged B-leg)."""
        app = "export" if export else "set"
        payloads = [p.sendmsg_execute(self.uuid, app, p.set_variable_arg(k, v)) for k, v in variables.items()]
        for payload in payloads:
            await self.command(payload)

    async def transfer(
        self,
        destination: str,
        context: str = "default",
        *,
        dialplan: str = "XML",
        variables: Mapping[str, str] | None = None,
    ) -> None:
        """Hand the call to another extension (the operator queue), context first in
        channel variables (ticket id, fault number, reason, conversation id). Every
        command is encoded before the first is sent, so a bad value sends nothing."""
        payloads = [p.sendmsg_execute(self.uuid, "set", p.set_variable_arg(k, v)) for k, v in (variables or {}).items()]
        payloads.append(p.sendmsg_execute(self.uuid, "transfer", p.transfer_arg(destination, context, dialplan)))
        for payload in payloads:
            await self.command(payload)
        log.info("esl.call.transferred", destination=mask_number(destination), context=context)

    async def bridge(self, dial_string: str, *, variables: Mapping[str, str] | None = None) -> None:
        """Bridge to ``dial_string``, exporting ``variables`` so the B-leg carries them."""
        payloads = [p.sendmsg_execute(self.uuid, "export", p.set_variable_arg(k, v)) for k, v in (variables or {}).items()]
        payloads.append(p.sendmsg_execute(self.uuid, "bridge", p.bridge_arg(dial_string)))
        for payload in payloads:
            await self.command(payload)

    async def api(self, command: str) -> EslMessage:
        """An API command over this socket (``full`` mode allows it); the raw response."""
        return await self.send(p.api(command))

    def _on_event(self, event: EslEvent) -> None:
        if self.channel is not None and event.unique_id not in (None, self.channel.uuid):
            return
        if event.name == "CHANNEL_ANSWER":
            refreshed = ChannelData.from_headers(event.headers)
            if refreshed is not None:
                self.channel = refreshed
            self.answered.set()
        elif event.name == "CHANNEL_HANGUP":
            self.hangup_info = hangup_from_event(event)
            self.hung_up.set()
        elif event.name == "CHANNEL_HANGUP_COMPLETE":
            self.hangup_info = hangup_from_event(event) or self.hangup_info
            self.hung_up.set()
            self.call_ended.set()
            self._end_events()

    def _on_disconnect_notice(self, notice: DisconnectNotice) -> None:
        self.hung_up.set()
        if not notice.lingering:
            self.call_ended.set()
            self._end_events()

    def _on_closed(self) -> None:
        self.call_ended.set()


OnCall = Callable[[EslCallConnection], Coroutine[Any, Any, None]]
GoneBeforeStart = Callable[[ChannelData | None], Coroutine[Any, Any, None]]  # None: gone before connect


class EslOutboundServer:
    """Accepts FreeSWITCH's outbound connections and runs ``on_call`` once per call.

    ``on_call`` starts after the call is answered; it is cancelled ``hangup_grace_s``
    after the call goes away (time to read the last events), and when it returns the
    socket is closed, which gives a live call back to the dialplan.
    """

    def __init__(
        self,
        on_call: OnCall,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        linger_s: int | None = 30,
        answer: bool = True,
        answer_timeout_s: float = 5.0,
        command_timeout_s: float = 10.0,
        hangup_grace_s: float = 2.0,
        on_gone_before_start: GoneBeforeStart | None = None,
    ) -> None:
        self._on_call = on_call
        # A call whose channel went away before the application started (the caller gave
        # up while it was being answered): still an outcome for someone to count.
        self._on_gone_before_start = on_gone_before_start
        self.host = host
        self._port = port
        # A bounded linger: a bug that never closes the socket cannot pin a FreeSWITCH
        # session (the listener holds its read lock) for longer than this.
        self.linger_s = linger_s
        self.answer = answer
        self.answer_timeout_s = answer_timeout_s
        self.command_timeout_s = command_timeout_s
        self.hangup_grace_s = hangup_grace_s
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0`` in tests)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def active_calls(self) -> int:
        return len(self._handlers)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self.host, self._port)
        log.info("esl.outbound.listening", host=self.host, port=self.port)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def wait_idle(self) -> None:
        """Until no call is in progress (a graceful shutdown stops accepting, then waits)."""
        while self._handlers:
            await asyncio.gather(*list(self._handlers), return_exceptions=True)

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> EslOutboundServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        conn = EslCallConnection(reader, writer, command_timeout_s=self.command_timeout_s)
        conn.start()
        try:
            await self._run_call(conn)
        except EslConnectionClosed:
            log.info("esl.call.socket_closed_during_setup")
        except (EslCommandError, EslTimeout) as exc:
            log.warning("esl.call.setup_failed", error=str(exc))
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # Server shutdown: end quietly (asyncio's stream callback logs a re-raised cancel).
        except Exception:
            log.exception("esl.call.failed")
        finally:
            await conn.close()
            if not conn.app_started and self._on_gone_before_start is not None:
                try:
                    await self._on_gone_before_start(conn.channel)
                except Exception:  # noqa: BLE001 - reporting must never keep the handler alive
                    log.exception("esl.call.gone_report_failed")
            self._handlers.discard(task)

    async def _run_call(self, conn: EslCallConnection) -> None:
        reply = await conn.send(p.connect())
        channel = ChannelData.from_headers(reply.headers) if reply.content_type is ContentType.COMMAND_REPLY else None
        if channel is None or not reply.ok:
            log.warning("esl.call.no_channel_data", reply_ok=reply.ok)
            return
        conn.channel = channel
        with structlog.contextvars.bound_contextvars(call_id=channel.uuid):
            log.info(
                "esl.call.connected",
                caller=mask_number(channel.caller_id_number),
                destination=mask_number(channel.destination_number),
            )
            await conn.command(p.myevents())
            await conn.command(p.linger(self.linger_s))
            if channel.headers.get("Answer-State") == "answered":
                # A call the bot placed (originate … &socket): answered before it came
                # here; no CHANNEL_ANSWER will follow.
                conn.answered.set()
            elif self.answer:
                await conn.execute("answer")
                try:
                    async with asyncio.timeout(self.answer_timeout_s):
                        await conn.answered.wait()
                except TimeoutError:
                    log.warning("esl.call.no_answer_event", timeout_s=self.answer_timeout_s)
            if conn.call_ended.is_set():
                log.info("esl.call.gone_before_start")
                return
            media = conn.channel
            assert media is not None
            log.info("esl.call.answered", codec=media.read_codec, rate=media.read_rate, ptime_ms=media.ptime_ms)
            await self._supervise(conn)

    async def _supervise(self, conn: EslCallConnection) -> None:
        conn.app_started = True
        app: asyncio.Task[None] = asyncio.create_task(self._on_call(conn), name=f"call-{conn.uuid[:8]}")
        ended = asyncio.create_task(conn.call_ended.wait())
        try:
            await asyncio.wait({app, ended}, return_when=asyncio.FIRST_COMPLETED)
            if not app.done():
                # The call went away: let the application see the last events, then stop it.
                await asyncio.wait({app}, timeout=self.hangup_grace_s)
            if not app.done():
                log.info("esl.call.app_cancelled", reason="call ended")
                app.cancel()
            elif not conn.call_ended.is_set():
                log.info("esl.call.app_returned", detail="closing the socket hands the call back to the dialplan")
        finally:
            ended.cancel()
            if not app.done():
                app.cancel()
            results = await asyncio.gather(app, ended, return_exceptions=True)
            error = results[0]
            if isinstance(error, Exception):
                log.error("esl.call.app_failed", error=type(error).__name__, exc_info=error)
            info = conn.hangup_info
            log.info("esl.call.finished", hangup_cause=info.cause if info else None)
