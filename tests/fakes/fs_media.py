"""FreeSWITCH's end of ``unicast`` media, and a call that has it (``FakePhoneCall``).

As ``switch_ivr.c`` does for a parked channel with unicast set (design.md §3.4): it
binds ``local-ip:local-port``, and every ptime sends one datagram to
``remote-ip:remote-port`` — the caller's audio as L16 (host order, little-endian here),
or a frame of 0xFF bytes when the caller sends nothing (comfort noise). What comes
back is written to the channel as it arrives; here it is recorded with arrival times.

A bridge runs inside the socket app's park loop, so while the caller is bridged no
frame is sent (the loop is blocked in the bridge app); the unicast thread still writes
whatever arrives into the bridged call, so anything the bot sends then is counted as
``received_while_bridged`` (a fault). When the bridge app returns with the caller still
up (``hangup_after_bridge=false``) the park loop goes on with the same connection:
frames flow again to the same address, and no new ``unicast`` is needed (one would
fail to bind the port the first still holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import wave
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.fakes.freeswitch import CallScript, FakeCall, Packet

FILLER = 0xFF


@dataclass
class Arrival:
    at: float  # monotonic
    size: int
    loud: bool


@dataclass
class MediaLog:
    arrivals: list[Arrival] = field(default_factory=list)

    def first_loud_after(self, t: float) -> float | None:
        for a in self.arrivals:
            if a.at >= t and a.loud:
                return a.at
        return None

    def last_arrival(self) -> float | None:
        return self.arrivals[-1].at if self.arrivals else None

    def bursts(self, gap_s: float = 0.25) -> list[tuple[float, float, int]]:
        """Runs of frames the bot sent (start, end, frames): one per prompt played."""
        out: list[tuple[float, float, int]] = []
        for a in self.arrivals:
            if out and a.at - out[-1][1] <= gap_s:
                s, _, n = out[-1]
                out[-1] = (s, a.at, n + 1)
            else:
                out.append((a.at, a.at, 1))
        return out

    def late_frames(self, ptime_s: float, threshold_s: float = 0.040, gap_s: float = 0.25) -> int:
        """Frames that came more than ``threshold_s`` after they were due, as a receiver
        playing them out sees it: due = the previous frame's arrival + ptime, within a
        burst (a pause over ``gap_s`` is the end of a prompt, not lateness)."""
        late = 0
        prev: float | None = None
        for a in self.arrivals:
            if prev is not None and a.at - prev <= gap_s and a.at - (prev + ptime_s) > threshold_s:
                late += 1
            prev = a.at
        return late


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, media: FakeUnicastMedia) -> None:
        self.media = media

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.media.received(data)


class FakeUnicastMedia:
    def __init__(self, local: tuple[str, int], remote: tuple[str, int], rate: int = 8000, ptime_ms: int = 20,
                 *, filler: bool = True) -> None:
        self.local, self.remote = local, remote
        self.rate, self.ptime_ms = rate, ptime_ms
        self.frame_bytes = rate * ptime_ms // 1000 * 2
        self.filler = filler  # False: send digital silence (zeros) instead of 0xFF frames
        self.log = MediaLog()
        self._outgoing: deque[bytes] = deque()
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent_frames = 0
        self.talking = asyncio.Event()  # set while caller audio is being sent
        self.quiet = asyncio.Event()  # set once all queued caller audio went out
        self.quiet.set()
        self.last_voice_frame_at: float | None = None
        self.paused = False
        self.bridged = False
        self.received_while_bridged = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), local_addr=self.local)
        self._task = asyncio.create_task(self._send_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._transport is not None:
            self._transport.close()

    def received(self, data: bytes) -> None:
        pcm = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")
        loud = bool(pcm.size) and float(np.abs(pcm.astype(np.int32)).mean()) > 50
        self.log.arrivals.append(Arrival(time.monotonic(), len(data), loud))
        if self.bridged:
            self.received_while_bridged += 1

    def say_pcm(self, pcm: bytes) -> float:
        """Queue caller audio (L16le at the call rate); returns its length in seconds."""
        frames = [pcm[i : i + self.frame_bytes] for i in range(0, len(pcm), self.frame_bytes)]
        if frames and len(frames[-1]) < self.frame_bytes:
            frames[-1] = frames[-1] + b"\0" * (self.frame_bytes - len(frames[-1]))
        self._outgoing.extend(frames)
        self.talking.set()
        self.quiet.clear()
        return len(frames) * self.ptime_ms / 1000

    def say_wav(self, path: Path) -> float:
        return self.say_pcm(read_wav(path, self.rate))

    async def finished_talking(self) -> None:
        await self.quiet.wait()

    async def _send_loop(self) -> None:
        period = self.ptime_ms / 1000
        t0 = time.monotonic()
        k = 0
        silence = (bytes([FILLER]) if self.filler else b"\0") * self.frame_bytes
        while True:
            k += 1
            await asyncio.sleep(max(0.0, t0 + k * period - time.monotonic()))
            if self.paused or self._transport is None:
                continue
            if self._outgoing:
                frame = self._outgoing.popleft()
                self.last_voice_frame_at = time.monotonic()
                if not self._outgoing:
                    self.talking.clear()
                    self.quiet.set()
            else:
                frame = silence
            self._transport.sendto(frame, self.remote)
            self.sent_frames += 1


def read_wav(path: Path, rate: int) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, "fixtures are mono L16"
        src_rate = w.getframerate()
        pcm = w.readframes(w.getnframes())
    if src_rate != rate:
        import soxr

        pcm = soxr.resample(np.frombuffer(pcm, dtype="<i2"), src_rate, rate).astype("<i2").tobytes()
    return pcm


class FakePhoneCall(FakeCall):
    """A ``FakeCall`` whose channel also streams media once the bot sends ``unicast``."""

    def __init__(self, host: str, port: int, script: CallScript | None = None, *, ptime_ms: int = 20,
                 rate: int = 8000, filler: bool = True) -> None:
        if script is None:
            script = CallScript()
        overrides: Mapping[str, str] = {
            "variable_rtp_use_codec_ptime": str(ptime_ms),
            "variable_read_rate": str(rate),
            "Channel-Read-Codec-Rate": str(rate),
        }
        script.answer_overrides = {**overrides, **script.answer_overrides}
        super().__init__(host, port, script)
        self.ptime_ms, self.rate, self.filler = ptime_ms, rate, filler
        self.media: FakeUnicastMedia | None = None
        self.media_started = asyncio.Event()

    async def _sendmsg(self, p: Packet) -> None:
        await super()._sendmsg(p)
        if (p.header("call-command") or "").lower() == "unicast" and self.media is None:
            u = self.unicast or {}
            self.media = FakeUnicastMedia(
                (u.get("local-ip") or "127.0.0.1", int(u.get("local-port") or 8025)),
                (u.get("remote-ip") or "127.0.0.1", int(u.get("remote-port") or 8026)),
                self.rate, self.ptime_ms, filler=self.filler,
            )
            await self.media.start()
            self.media_started.set()

    async def _execute(self, app: str, arg: str) -> None:
        if app == "bridge" and self.script.bridge == "answer" and self.media is not None:
            # Unicast audio flows only while the channel is parked; bridged, it stops.
            self.media.paused = True
            self.media.bridged = True
        await super()._execute(app, arg)

    def _bridge_ended(self) -> None:
        if self.media is not None and self.channel_up:
            self.media.bridged = False
            self.media.paused = False

    async def _hangup(self, cause: str, before_complete: list[tuple[str, dict[str, str]]] | None = None) -> None:
        if self.media is not None:
            self.media.paused = True
        await super()._hangup(cause, before_complete)

    async def close(self) -> None:
        if self.media is not None:
            await self.media.stop()
        await super().close()
