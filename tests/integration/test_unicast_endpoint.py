"""UnicastEndpoint over real loopback UDP, with a peer that behaves as FreeSWITCH's
unicast does (switch_ivr.c): one datagram per frame of L16le from its own bound socket,
0xFF-filled frames when the caller sends nothing, and each datagram it receives written
to the call as one frame. Category: integration (loopback UDP; assertions count frames
and bytes, never wall-clock speed)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator
from typing import cast

import pytest

from voice.media.frames import AudioFormat, InboundFrame, split_into_frames
from voice.media.unicast import NoFreePort, PortPool, UnicastConfig, UnicastEndpoint

F20 = AudioFormat(8000, 20)
F30 = AudioFormat(8000, 30)


def speech_like(nbytes: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(nbytes))


class FakeFreeSwitch(asyncio.DatagramProtocol):
    """FreeSWITCH's end of unicast: bound to its own port, sending to ``remote``."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls) -> FakeFreeSwitch:
        loop = asyncio.get_running_loop()
        proto = cls()
        await loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return (str(host), int(port))

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, to)

    async def recv(self, timeout: float = 1.0) -> bytes:
        return await asyncio.wait_for(self.received.get(), timeout)

    def drain(self) -> list[bytes]:
        out = []
        while not self.received.empty():
            out.append(self.received.get_nowait())
        return out

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@pytest.fixture
async def fs() -> AsyncIterator[FakeFreeSwitch]:
    peer = await FakeFreeSwitch.open()
    yield peer
    peer.close()


async def take(
    frames: AsyncIterator[InboundFrame], n: int, timeout: float = 1.0
) -> list[InboundFrame]:
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(anext(frames), timeout))
    return out


async def test_inbound_frames_with_filler_and_bad_lengths(fs: FakeFreeSwitch) -> None:
    async with UnicastEndpoint(F20, call_id="c1") as ep:
        audio = speech_like(F20.frame_bytes * 3)
        script = split_into_frames(audio, F20)
        script[1:1] = [b"\xff" * 320, b"\xff" * 320]  # the caller goes quiet for 40 ms
        for datagram in script[:2]:
            fs.send(datagram, ep.local_address)
        fs.send(b"\x00" * 480, ep.local_address)  # a 30 ms frame on a 20 ms call: dropped
        fs.send(b"\x01" * 7, ep.local_address)  # garbage: dropped
        for datagram in script[2:]:
            fs.send(datagram, ep.local_address)
        got = await take(aiter(ep.frames()), 5)
        assert [f.data for f in got] == script
        assert [f.is_filler for f in got] == [False, True, True, False, False]
        assert [f.seq for f in got] == [0, 1, 2, 3, 4]
        assert got[1].pcm == bytes(320)
        assert all(b.received_at >= a.received_at for a, b in zip(got, got[1:], strict=False))
        assert ep.remote_address == fs.address  # learned from the first datagram
        c = ep.counters
        assert (c.frames_in, c.filler_frames, c.bad_length) == (5, 2, 2)


async def test_datagrams_from_another_source_are_dropped(fs: FakeFreeSwitch) -> None:
    intruder = await FakeFreeSwitch.open()
    try:
        async with UnicastEndpoint(F20) as ep:
            fs.send(bytes(320), ep.local_address)
            (first,) = await take(aiter(ep.frames()), 1)
            intruder.send(b"\x01" * 320, ep.local_address)
            fs.send(b"\x02" * 320, ep.local_address)
            (second,) = await take(aiter(ep.frames()), 1)
            assert second.data == b"\x02" * 320
            assert ep.counters.foreign_datagrams == 1
    finally:
        intruder.close()


async def test_play_sends_exact_frames_in_count(fs: FakeFreeSwitch) -> None:
    async with UnicastEndpoint(F20) as ep:
        fs.send(b"\xff" * 320, ep.local_address)  # FreeSWITCH speaks first: address learned
        await take(aiter(ep.frames()), 1)
        pcm = speech_like(320 * 9 + 100)  # 9 frames and a bit: 10 datagrams
        result = await ep.play(pcm)
        got = [await fs.recv() for _ in range(10)]
        assert all(len(d) == 320 for d in got)
        assert b"".join(got) == pcm + bytes(220)
        assert result.completed and not result.cancelled and result.error is None
        assert result.frames_sent == 10 == ep.counters.frames_out
        assert result.underrun_frames == 0
        assert result.played_s == pytest.approx(0.2)
        await asyncio.sleep(0.05)
        assert fs.drain() == []  # nothing after the last frame


async def test_thirty_ms_call(fs: FakeFreeSwitch) -> None:
    async with UnicastEndpoint(F30, remote=fs.address) as ep:  # remote configured
        fs.send(b"\x00" * 320, ep.local_address)  # 20 ms frame on a 30 ms call: dropped
        fs.send(b"\x03" * 480, ep.local_address)
        (frame,) = await take(aiter(ep.frames()), 1)
        assert frame.data == b"\x03" * 480 and ep.counters.bad_length == 1
        result = await ep.play(speech_like(480 * 4))
        got = [await fs.recv() for _ in range(4)]
        assert [len(d) for d in got] == [480] * 4
        assert result.frames_sent == 4


async def test_cancel_stops_within_one_frame(fs: FakeFreeSwitch) -> None:
    async with UnicastEndpoint(F20, remote=fs.address) as ep:
        cancel = asyncio.Event()
        play = asyncio.create_task(ep.play(speech_like(320 * 100), cancel=cancel))  # 2 s
        for _ in range(5):
            await fs.recv()
        sent_at_cancel = ep.counters.frames_out
        cancel.set()  # barge-in
        result = await asyncio.wait_for(play, 0.2)
        assert result.cancelled and not result.completed
        assert result.frames_sent <= sent_at_cancel + 1
        assert ep.counters.frames_out == result.frames_sent < 100
        await asyncio.sleep(0.06)
        assert len(fs.drain()) + 5 == result.frames_sent


async def test_play_stream_first_chunk_plays_while_rest_is_produced(fs: FakeFreeSwitch) -> None:
    async with UnicastEndpoint(F20, remote=fs.address) as ep:
        first_heard = asyncio.Event()
        sentence1, sentence2 = b"\x11" * (320 * 3), b"\x22" * (320 * 2 + 160)

        async def tts() -> AsyncIterator[bytes]:
            yield sentence1
            await first_heard.wait()  # the second sentence is "synthesised" only now
            yield sentence2[:333]  # ragged chunk boundaries
            yield sentence2[333:]

        play = asyncio.create_task(ep.play_stream(tts()))
        assert await fs.recv() == b"\x11" * 320
        first_heard.set()
        result = await asyncio.wait_for(play, 1.0)
        rest = fs.drain()
        assert result.completed and result.frames_sent == 1 + len(rest)
        audio = [d for d in rest if d != bytes(320)]  # silence only if TTS fell behind
        assert len(rest) - len(audio) == result.underrun_frames
        assert b"".join(audio) == b"\x11" * 640 + sentence2 + bytes(160)
        assert all(len(d) == 320 for d in rest)


async def test_failing_stream_ends_playback_without_crash(fs: FakeFreeSwitch) -> None:
    async with UnicastEndpoint(F20, remote=fs.address) as ep:

        async def broken() -> AsyncIterator[bytes]:
            yield bytes(640)
            raise RuntimeError("piper died")

        result = await ep.play_stream(broken())
        assert result.error == "RuntimeError: piper died"
        assert result.frames_sent == 2  # what was produced still plays
        # the endpoint is still usable
        again = await ep.play(bytes(320))
        assert again.completed and again.frames_sent == 1


async def test_play_without_remote_gives_up() -> None:
    cfg = UnicastConfig(remote_wait_s=0.05)
    async with UnicastEndpoint(F20, config=cfg) as ep:
        result = await ep.play(bytes(320))
        assert result.frames_sent == 0 and result.error == "remote address unknown"


async def test_dead_stream_fires_once_and_ends_frames(fs: FakeFreeSwitch) -> None:
    reasons: list[str] = []
    cfg = UnicastConfig(dead_after_s=0.15)
    async with UnicastEndpoint(F20, config=cfg, on_dead=reasons.append) as ep:
        for _ in range(3):
            fs.send(bytes(320), ep.local_address)
        got = [f async for f in ep.frames()]  # ends when the stream is declared dead
        assert len(got) == 3
        await asyncio.wait_for(ep.dead.wait(), 1.0)
        assert reasons == ["no datagram for 0.15 s"] and ep.dead_reason == reasons[0]
        result = await ep.play(bytes(320))
        assert result.error == "stream dead" and result.frames_sent == 0


async def test_no_first_datagram_is_dead_too_unless_paused() -> None:
    cfg = UnicastConfig(start_timeout_s=0.1)
    async with UnicastEndpoint(F20, config=cfg) as ep:
        ep.pause_watchdog()  # e.g. FreeSWITCH is running an app, no audio flows
        await asyncio.sleep(0.2)
        assert not ep.dead.is_set()
        ep.resume_watchdog()
        await asyncio.wait_for(ep.dead.wait(), 1.0)
        assert ep.dead_reason == "no datagram within 0.1 s of start"


def free_port_block(size: int) -> int:
    """A base port with ``size`` consecutive free UDP ports on loopback."""
    for _ in range(50):
        base = random.randrange(40000, 60000)
        socks = []
        try:
            for p in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no free block of UDP ports")


async def test_port_range_allocates_per_call_and_releases() -> None:
    base = free_port_block(2)
    pool = PortPool(base, base + 1)
    cfg = UnicastConfig(port_min=base, port_max=base + 1)
    a = UnicastEndpoint(F20, config=cfg, ports=pool)
    b = UnicastEndpoint(F20, config=cfg, ports=pool)
    await a.start()
    await b.start()
    try:
        assert {a.local_address[1], b.local_address[1]} == {base, base + 1}
        with pytest.raises(NoFreePort):
            await UnicastEndpoint(F20, config=cfg, ports=pool).start()
        await a.close()
        assert pool.in_use == {b.local_address[1]}
        c = UnicastEndpoint(F20, config=cfg, ports=pool)
        assert (await c.start()) == a.local_address
        await c.close()
    finally:
        with contextlib.suppress(Exception):
            await a.close()
        await b.close()
    assert pool.in_use == frozenset()


async def test_cancelling_the_play_task_propagates_and_frees_the_endpoint(
    fs: FakeFreeSwitch,
) -> None:
    async with UnicastEndpoint(F20, remote=fs.address) as ep:
        play = asyncio.create_task(ep.play(bytes(320 * 100)))
        await fs.recv()
        play.cancel()
        with pytest.raises(asyncio.CancelledError):
            await play
        result = await asyncio.wait_for(ep.play(bytes(320)), 1.0)  # lock released
        assert result.completed and result.frames_sent == 1
