"""Inbound ESL: our control connection to FreeSWITCH's event socket (port 8021).

``auth`` with the configured password (never a built-in default: ``ClueCon`` is
CVE-2019-19492), ``api`` commands with their ``api/response``, ``event plain``
subscriptions, a health check (``api status``), and ``run()``: stay connected,
reconnecting with backoff (1/5/10/30/90 s as OpenSIPS does, with jitter so a fleet
does not reconnect in step). ``sleep`` and ``rand`` are injectable for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import structlog

from voice.esl import protocol as p
from voice.esl.outbound import EslConnection, EslConnectionClosed, EslError, StreamItem
from voice.esl.protocol import ContentType, EslMessage

log = structlog.get_logger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8021
DEFAULT_BACKOFF_S: tuple[float, ...] = (1.0, 5.0, 10.0, 30.0, 90.0)


class EslAuthError(EslError):
    """FreeSWITCH answered ``-ERR invalid`` to our password."""


class EslRejected(EslError):
    """``text/rude-rejection``: the inbound ACL refused our address."""


class EslNotConnected(EslError):
    pass


class EslInboundClient:
    def __init__(
        self,
        password: str,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        events: Sequence[str] = (),
        backoff_s: Sequence[float] = DEFAULT_BACKOFF_S,
        jitter: float = 0.2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        connect_timeout_s: float = 5.0,
        command_timeout_s: float = 10.0,
    ) -> None:
        if not password:
            raise ValueError("an ESL password is required (set it in configuration)")
        if not backoff_s:
            raise ValueError("backoff_s must not be empty")
        self._password = password
        self.host = host
        self.port = port
        self.subscriptions = tuple(events)
        self.backoff_s = tuple(backoff_s)
        self.jitter = jitter
        self._sleep = sleep
        self._rand = rand
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self.connected = asyncio.Event()
        self.connects = 0  # successful connections so far
        self._conn: EslConnection | None = None
        self._pump: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[StreamItem] = asyncio.Queue(maxsize=10_000)
        self._stopping = False

    def __repr__(self) -> str:
        return f"EslInboundClient({self.host}:{self.port}, connected={self.connected.is_set()})"

    # --- one connection ----------------------------------------------------------

    async def connect(self) -> None:
        """One attempt: open, authenticate, subscribe. Raises on failure."""
        await self._drop()
        async with asyncio.timeout(self.connect_timeout_s):
            reader, writer = await asyncio.open_connection(self.host, self.port)
        conn = EslConnection(reader, writer, command_timeout_s=self.command_timeout_s)
        conn.start()
        try:
            first = await conn.next_control(self.connect_timeout_s)
            if first.content_type is ContentType.RUDE_REJECTION:
                raise EslRejected(first.text.strip() or "rejected")
            reply = await conn.send(p.auth(self._password))
            if not reply.ok:
                raise EslAuthError(reply.reply_text or "auth refused")
            if self.subscriptions:
                await conn.command(p.event_plain(*self.subscriptions))
            if self._stopping:
                raise EslConnectionClosed("client closed while connecting")
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._pump = asyncio.create_task(self._pump_events(conn), name="esl-inbound-events")
        self.connects += 1
        self.connected.set()
        log.info("esl.inbound.connected", host=self.host, port=self.port)

    async def api(self, command: str) -> EslMessage:
        """``api <command>``; the api/response (check ``.ok``, read ``.text``)."""
        return await self._require().send(p.api(command))

    async def bgapi(self, command: str, job_uuid: str | None = None) -> str:
        """``bgapi``; returns the Job-UUID (the result comes as a BACKGROUND_JOB event)."""
        reply = await self._require().command(p.bgapi(command, job_uuid))
        return reply.headers.get("Job-UUID", "")

    async def subscribe(self, *names: str) -> None:
        await self._require().command(p.event_plain(*names))
        self.subscriptions = tuple(dict.fromkeys((*self.subscriptions, *names)))

    async def health(self) -> bool:
        """FreeSWITCH answers ``api status`` with ``UP …`` when it is ready."""
        try:
            reply = await self.api("status")
        except EslError:
            return False
        return reply.ok and reply.text.lstrip().startswith("UP")

    async def events(self) -> AsyncIterator[StreamItem]:
        """Subscribed events, across reconnects. One consumer."""
        while True:
            yield await self._events.get()

    # --- staying connected -------------------------------------------------------

    def backoff_delay(self, attempt: int) -> float:
        """Seconds before reconnect ``attempt`` (0-based), the last step repeating."""
        base = self.backoff_s[min(attempt, len(self.backoff_s) - 1)]
        return max(0.0, base * (1.0 + self.jitter * (2.0 * self._rand() - 1.0)))

    async def run(self) -> None:
        """Connect and stay connected until ``close()``."""
        attempt = 0
        while not self._stopping:
            try:
                await self.connect()
                attempt = 0
                if self._stopping:
                    break
                assert self._conn is not None
                await self._conn.closed.wait()
                self.connected.clear()
                if self._stopping:
                    break
                log.warning("esl.inbound.lost", host=self.host, port=self.port)
            except EslAuthError:
                # Wrong password will not fix itself, but FreeSWITCH may be reconfigured:
                # keep trying at the slow end of the schedule, loudly.
                log.error("esl.inbound.auth_failed", host=self.host, port=self.port)
            except EslRejected:
                log.error("esl.inbound.rejected_by_acl", host=self.host, port=self.port)
            except (OSError, TimeoutError, EslError) as exc:
                log.warning("esl.inbound.connect_failed", host=self.host, port=self.port, error=type(exc).__name__)
            if self._stopping:
                break
            delay = self.backoff_delay(attempt)
            attempt += 1
            log.info("esl.inbound.retry", delay_s=round(delay, 2), attempt=attempt)
            await self._sleep(delay)

    async def close(self) -> None:
        self._stopping = True
        conn = self._conn
        if conn is not None and not conn.is_closed:
            with contextlib.suppress(EslError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await conn.send(p.exit_())
        await self._drop()

    async def __aenter__(self) -> EslInboundClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- internals ---------------------------------------------------------------

    def _require(self) -> EslConnection:
        if self._conn is None or self._conn.is_closed:
            raise EslNotConnected(f"{self.host}:{self.port}")
        return self._conn

    async def _pump_events(self, conn: EslConnection) -> None:
        async for item in conn.events():
            if self._events.full():
                self._events.get_nowait()  # keep the newest; the consumer fell behind
                log.warning("esl.inbound.events_dropped")
            self._events.put_nowait(item)

    async def _drop(self) -> None:
        self.connected.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump


__all__ = [
    "DEFAULT_BACKOFF_S",
    "EslAuthError",
    "EslConnectionClosed",
    "EslInboundClient",
    "EslNotConnected",
    "EslRejected",
]
