"""The per-call UDP endpoint for FreeSWITCH's ``unicast`` media.

FreeSWITCH side (``src/switch_ivr.c``): ``sendmsg`` with ``call-command: unicast`` binds
a UDP socket on its ``local-ip:local-port`` and, from the park loop, sends one datagram
of L16 per frame read from the channel to ``remote-ip:remote-port`` (us); a thread
receives on that same socket and writes each datagram to the channel as one frame. So:

* we bind first and tell FreeSWITCH our address as ``remote-ip``/``remote-port``;
* FreeSWITCH's address is the source of its datagrams: learned from the first one, or
  configured (``remote``; a port of 0/None means "learn the port from that host");
* datagrams from any other source are dropped (counted);
* audio flows only while the channel is parked: pause the watchdog while an app runs.

One endpoint per call; one reader of ``frames()``; one playback at a time (``play`` and
``play_stream`` queue behind a lock, barge-in cancels with an ``asyncio.Event``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from voice.media.frames import AudioFormat, FrameAssembler, InboundFrame, is_filler, silence
from voice.media.pacing import Clock, Pacer, Sleep

log = structlog.get_logger(__name__)

Address = tuple[str, int]
_END: None = None


class NoFreePort(RuntimeError):
    """Every port of the configured range is in use."""


@dataclass(frozen=True, slots=True)
class UnicastConfig:
    """Settings of the media endpoint (the lead maps ``HOTLINE_*`` settings onto these).

    ``port_min``/``port_max`` of ``None`` bind an ephemeral port (``0``).
    """

    local_ip: str = "127.0.0.1"
    port_min: int | None = None
    port_max: int | None = None
    dead_after_s: float = 5.0
    """No datagram for this long once audio flowed → the stream is dead."""
    start_timeout_s: float = 10.0
    """No first datagram this long after ``start`` → the stream is dead."""
    late_threshold_s: float = 0.040
    resync_after_s: float = 0.100
    inbound_queue_frames: int = 250
    """Frames kept for a slow reader (250 × 20 ms = 5 s); the oldest are dropped beyond."""
    remote_wait_s: float = 2.0
    """How long ``play`` waits for FreeSWITCH's address before giving up."""


class PortPool:
    """Hands out UDP ports from ``[port_min, port_max]``, one per call, released on close.

    Allocation rotates through the range so a just-released port is not reused at once
    (late datagrams of the old call must not reach the new one); ports taken by other
    processes are skipped (``EADDRINUSE``)."""

    def __init__(self, port_min: int, port_max: int) -> None:
        if not 0 < port_min <= port_max <= 65535:
            raise ValueError(f"bad port range {port_min}-{port_max}")
        self.port_min = port_min
        self.port_max = port_max
        self._in_use: set[int] = set()
        self._next = port_min

    @property
    def in_use(self) -> frozenset[int]:
        return frozenset(self._in_use)

    def bind(self, local_ip: str) -> socket.socket:
        """A non-blocking UDP socket bound to a free port of the range."""
        size = self.port_max - self.port_min + 1
        for _ in range(size):
            port = self._next
            self._next = self.port_min + (port - self.port_min + 1) % size
            if port in self._in_use:
                continue
            sock = socket.socket(_family(local_ip), socket.SOCK_DGRAM)
            try:
                sock.bind((local_ip, port))
            except OSError as e:
                sock.close()
                if e.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            sock.setblocking(False)
            self._in_use.add(port)
            return sock
        raise NoFreePort(f"no free UDP port in {self.port_min}-{self.port_max} on {local_ip}")

    def acquire(self) -> int:
        """Reserve a port number without binding it: for FreeSWITCH's end of unicast,
        which FreeSWITCH binds (on its own host) once per call."""
        size = self.port_max - self.port_min + 1
        for _ in range(size):
            port = self._next
            self._next = self.port_min + (port - self.port_min + 1) % size
            if port not in self._in_use:
                self._in_use.add(port)
                return port
        raise NoFreePort(f"all {size} ports of {self.port_min}-{self.port_max} are reserved")

    def release(self, port: int) -> None:
        self._in_use.discard(port)


async def _reap(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it, without swallowing a cancel of our own task."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


@dataclass(slots=True)
class MediaCounters:
    frames_in: int = 0
    filler_frames: int = 0
    bad_length: int = 0
    foreign_datagrams: int = 0
    inbound_dropped: int = 0
    frames_out: int = 0
    underrun_frames: int = 0
    """Silence frames sent because the TTS stream had nothing ready in time."""
    late_frames: int = 0
    """Frames sent more than ``late_threshold_s`` after their scheduled time."""
    max_lateness_s: float = 0.0
    resyncs: int = 0
    send_errors: int = 0


@dataclass(slots=True)
class PlayResult:
    frames_sent: int = 0
    underrun_frames: int = 0
    completed: bool = False
    cancelled: bool = False
    error: str | None = None
    max_lateness_s: float = 0.0
    fmt: AudioFormat | None = field(default=None, repr=False)

    @property
    def played_s(self) -> float:
        """Seconds of audio sent (including underrun silence)."""
        return 0.0 if self.fmt is None else self.frames_sent * self.fmt.ptime_s


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: UnicastEndpoint) -> None:
        self._ep = endpoint
        self.lost = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._ep._on_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self._ep._on_socket_error(exc)


class UnicastEndpoint:
    """One call's unicast media: inbound frames, paced playback, dead-stream watchdog.

    >>> ep = UnicastEndpoint(AudioFormat(8000, 20), config=cfg, ports=pool)
    >>> await ep.start()   # then sendmsg unicast with remote-ip/port = ep.local_address
    >>> async for frame in ep.frames(): ...
    >>> await ep.play(pcm_8k, cancel=barge_in)
    >>> await ep.close()
    """

    def __init__(
        self,
        fmt: AudioFormat,
        *,
        config: UnicastConfig | None = None,
        ports: PortPool | None = None,
        remote: tuple[str, int | None] | None = None,
        on_dead: Callable[[str], None] | None = None,
        call_id: str | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.fmt = fmt
        self.config = config or UnicastConfig()
        if ports is None and self.config.port_min is not None and self.config.port_max is not None:
            ports = PortPool(self.config.port_min, self.config.port_max)
        self._ports = ports
        self._expected_host = remote[0] if remote else None
        self._remote: Address | None = (remote[0], remote[1]) if remote and remote[1] else None
        self._remote_known = asyncio.Event()
        if self._remote is not None:
            self._remote_known.set()
        self._on_dead = on_dead
        self._clock = clock
        self._sleep = sleep
        self._log = log.bind(call_id=call_id, fmt=str(fmt)) if call_id else log.bind(fmt=str(fmt))
        self.counters = MediaCounters()
        self.dead = asyncio.Event()
        self.dead_reason: str | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None
        self._sock: socket.socket | None = None
        self._port: int | None = None
        self._queue: asyncio.Queue[InboundFrame | None] = asyncio.Queue()
        self._closed = False
        self._started_at = 0.0
        self._last_rx: float | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._watchdog_paused = False
        self._play_lock = asyncio.Lock()
        self._seq = 0

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> Address:
        """Bind the socket and start the watchdog; returns our (ip, port)."""
        if self._transport is not None:
            return self.local_address
        cfg = self.config
        if self._ports is not None:
            sock = self._ports.bind(cfg.local_ip)
        else:
            sock = socket.socket(_family(cfg.local_ip), socket.SOCK_DGRAM)
            try:
                sock.bind((cfg.local_ip, 0))
            except OSError:
                sock.close()
                raise
            sock.setblocking(False)
        self._sock = sock
        self._port = int(sock.getsockname()[1])
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), sock=sock
            )
        except BaseException:
            self._release_port()
            sock.close()
            raise
        self._transport = transport
        self._protocol = protocol
        self._started_at = self._clock()
        self._watchdog = asyncio.create_task(self._watch(), name=f"unicast-watchdog:{self._port}")
        self._log = self._log.bind(local_port=self._port)
        self._log.info("media.unicast_bound", local=f"{cfg.local_ip}:{self._port}")
        return self.local_address

    async def close(self) -> None:
        """Stop everything and release the port; ``frames()`` ends. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._watchdog is not None:
            await _reap(self._watchdog)
        if self._transport is not None:
            self._transport.close()
        if self._protocol is not None:
            # The socket is closed on a later loop turn: wait, so the port is really free.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._protocol.lost.wait(), 1.0)
        self._release_port()
        self._push_end()
        self._log.info("media.unicast_closed", **self.stats())

    async def __aenter__(self) -> UnicastEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _release_port(self) -> None:
        if self._ports is not None and self._port is not None:
            self._ports.release(self._port)

    @property
    def local_address(self) -> Address:
        if self._port is None:
            raise RuntimeError("endpoint not started")
        return (self.config.local_ip, self._port)

    @property
    def remote_address(self) -> Address | None:
        return self._remote

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> dict[str, int | float]:
        c = self.counters
        return {
            "frames_in": c.frames_in,
            "filler_frames": c.filler_frames,
            "bad_length": c.bad_length,
            "foreign_datagrams": c.foreign_datagrams,
            "inbound_dropped": c.inbound_dropped,
            "frames_out": c.frames_out,
            "underrun_frames": c.underrun_frames,
            "late_frames": c.late_frames,
            "max_lateness_ms": round(c.max_lateness_s * 1000, 1),
            "resyncs": c.resyncs,
            "send_errors": c.send_errors,
        }

    # ---- inbound ---------------------------------------------------------------------

    def _on_datagram(self, data: bytes, addr: Address) -> None:
        if self._closed or self.dead.is_set():
            return
        if self._remote is None:
            if self._expected_host is not None and addr[0] != self._expected_host:
                self._foreign(addr)
                return
            self._remote = addr
            self._remote_known.set()
            self._log.info("media.remote_learned", remote=f"{addr[0]}:{addr[1]}")
        elif addr != self._remote:
            self._foreign(addr)
            return
        now = self._clock()
        self._last_rx = now
        if len(data) != self.fmt.frame_bytes:
            self.counters.bad_length += 1
            n = self.counters.bad_length
            if n == 1 or n % 100 == 0:
                self._log.warning(
                    "media.bad_frame_length", got=len(data), want=self.fmt.frame_bytes, count=n
                )
            return
        filler = is_filler(data)
        self.counters.frames_in += 1
        if filler:
            self.counters.filler_frames += 1
        frame = InboundFrame(
            data=data, received_at=now, is_filler=filler, seq=self._seq, fmt=self.fmt
        )
        self._seq += 1
        if self._queue.qsize() >= self.config.inbound_queue_frames:
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self.counters.inbound_dropped += 1
            n = self.counters.inbound_dropped
            if n == 1 or n % 250 == 0:
                self._log.warning("media.inbound_overflow", dropped=n)
        self._queue.put_nowait(frame)

    def _foreign(self, addr: Address) -> None:
        self.counters.foreign_datagrams += 1
        n = self.counters.foreign_datagrams
        if n == 1 or n % 100 == 0:
            self._log.warning("media.foreign_datagram", source=f"{addr[0]}:{addr[1]}", count=n)

    def _on_socket_error(self, exc: Exception) -> None:
        self.counters.send_errors += 1
        n = self.counters.send_errors
        if n == 1 or n % 100 == 0:
            self._log.warning("media.socket_error", error=repr(exc), count=n)

    def _push_end(self) -> None:
        self._queue.put_nowait(_END)

    async def frames(self) -> AsyncIterator[InboundFrame]:
        """Inbound frames in arrival order; ends when the endpoint is closed or dead."""
        while True:
            frame = await self._queue.get()
            if frame is None:
                self._push_end()  # let a later reader see the end too
                return
            yield frame

    # ---- watchdog --------------------------------------------------------------------

    def pause_watchdog(self) -> None:
        """Audio stops while FreeSWITCH runs an app (e.g. a transfer): don't call it dead."""
        self._watchdog_paused = True

    def resume_watchdog(self) -> None:
        self._watchdog_paused = False
        self._last_rx = self._clock() if self._last_rx is not None else None
        self._started_at = self._clock()

    async def _watch(self) -> None:
        cfg = self.config
        step = max(0.01, min(0.25, cfg.dead_after_s / 4, cfg.start_timeout_s / 4))
        while not self._closed:
            await asyncio.sleep(step)
            if self._watchdog_paused:
                continue
            now = self._clock()
            if self._last_rx is None:
                if now - self._started_at >= cfg.start_timeout_s:
                    self._declare_dead(f"no datagram within {cfg.start_timeout_s:g} s of start")
                    return
            elif now - self._last_rx >= cfg.dead_after_s:
                self._declare_dead(f"no datagram for {cfg.dead_after_s:g} s")
                return

    def _declare_dead(self, reason: str) -> None:
        if self.dead.is_set():
            return
        self.dead_reason = reason
        self.dead.set()
        self._push_end()
        self._log.warning("media.stream_dead", reason=reason, **self.stats())
        if self._on_dead is not None:
            try:
                self._on_dead(reason)
            except Exception:
                self._log.exception("media.on_dead_failed")

    # ---- outbound --------------------------------------------------------------------

    async def play(self, pcm: bytes, *, cancel: asyncio.Event | None = None) -> PlayResult:
        """Send L16le ``pcm`` at the call's rate as paced frames (last one zero-padded).
        Returns early, sending nothing more, once ``cancel`` is set."""

        async def one() -> AsyncIterator[bytes]:
            yield pcm

        return await self.play_stream(one(), cancel=cancel)

    async def play_stream(
        self, chunks: AsyncIterable[bytes], *, cancel: asyncio.Event | None = None
    ) -> PlayResult:
        """Play an async stream of L16le chunks at the call's rate (e.g. TTS sentences,
        resampled): the first frame goes out as soon as the first chunk arrives, later
        chunks are produced meanwhile; if the stream falls behind, silence frames keep
        the pace (``underrun_frames``). A failing stream ends playback with ``error``."""
        result = PlayResult(fmt=self.fmt)
        async with self._play_lock:
            if self._closed or self.dead.is_set():
                result.error = "endpoint closed" if self._closed else "stream dead"
                return result
            remote = await self._wait_remote(cancel)
            if remote is None:
                result.cancelled = bool(cancel and cancel.is_set())
                result.error = None if result.cancelled else "remote address unknown"
                if result.error:
                    self._log.warning("media.play_no_remote", wait_s=self.config.remote_wait_s)
                return result
            queue: asyncio.Queue[bytes | None] = asyncio.Queue()
            errors: list[str] = []
            producer = asyncio.create_task(self._produce(chunks, queue, errors))
            try:
                await self._send_paced(queue, remote, cancel, result)
            finally:
                await _reap(producer)
            if errors:
                result.error = errors[0]
            return result

    async def _wait_remote(self, cancel: asyncio.Event | None) -> Address | None:
        if self._remote is not None:
            return self._remote
        waiters = [asyncio.ensure_future(self._remote_known.wait())]
        if cancel is not None:
            waiters.append(asyncio.ensure_future(cancel.wait()))
        try:
            await asyncio.wait(
                waiters, timeout=self.config.remote_wait_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for w in waiters:
                w.cancel()
        if cancel is not None and cancel.is_set():
            return None
        return self._remote

    async def _produce(
        self, chunks: AsyncIterable[bytes], queue: asyncio.Queue[bytes | None], errors: list[str]
    ) -> None:
        assembler = FrameAssembler(self.fmt)
        try:
            async for chunk in chunks:
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    self._log.warning("media.play_bad_chunk", type=type(chunk).__name__)
                    continue
                for frame in assembler.push(bytes(chunk)):
                    queue.put_nowait(frame)
            for frame in assembler.flush():
                queue.put_nowait(frame)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
            self._log.exception("media.play_stream_failed")
        finally:
            queue.put_nowait(_END)

    async def _send_paced(
        self,
        queue: asyncio.Queue[bytes | None],
        remote: Address,
        cancel: asyncio.Event | None,
        result: PlayResult,
    ) -> None:
        # Wait for the first frame (or the end, or a cancel) before starting the clock.
        first_get = asyncio.ensure_future(queue.get())
        waiters: list[asyncio.Future[Any]] = [first_get]
        if cancel is not None:
            waiters.append(asyncio.ensure_future(cancel.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters[1:]:
                w.cancel()
        if cancel is not None and cancel.is_set():
            first_get.cancel()
            result.cancelled = True
            return
        frame: bytes | None = first_get.result()
        if frame is None:
            result.completed = True
            return
        pacer = Pacer(
            self.fmt.ptime_s,
            clock=self._clock,
            sleep=self._sleep,
            late_threshold_s=self.config.late_threshold_s,
            resync_after_s=self.config.resync_after_s,
        )
        c = self.counters
        last_index = 0
        try:
            while True:
                tick = await pacer.next_tick()
                if cancel is not None and cancel.is_set():
                    result.cancelled = True
                    return
                if self._closed or self.dead.is_set():
                    result.error = "endpoint closed" if self._closed else "stream dead"
                    return
                if frame is None:
                    # The stream had nothing at the last send: take what is there now.
                    try:
                        frame = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        frame = silence(self.fmt)
                        result.underrun_frames += 1
                        c.underrun_frames += 1
                    if frame is None:
                        break
                self._send(frame, remote)
                last_index = tick.index
                lateness = self._clock() - tick.due
                result.frames_sent += 1
                result.max_lateness_s = max(result.max_lateness_s, lateness)
                c.max_lateness_s = max(c.max_lateness_s, lateness)
                if lateness > self.config.late_threshold_s:
                    c.late_frames += 1
                try:
                    frame = queue.get_nowait()
                except asyncio.QueueEmpty:
                    frame = None
                    continue
                if frame is None:
                    break
            # Hold the slot of the last frame, so a following play keeps the cadence
            # and "prompt finished" means the caller has heard it.
            await pacer.wait_until(pacer.due(last_index + 1))
            result.completed = True
        finally:
            c.resyncs += pacer.resyncs

    def _send(self, frame: bytes, remote: Address) -> None:
        if self._transport is None or self._transport.is_closing():
            self.counters.send_errors += 1
            return
        try:
            self._transport.sendto(frame, remote)
        except OSError as e:
            self._on_socket_error(e)
            return
        self.counters.frames_out += 1
