"""A drift-free real-time pacer.

Frame ``k`` is due at ``t0 + k * ptime`` on a monotonic clock: an absolute schedule, so
the small oversleep of every ``sleep`` does not add up (a loop of ``sleep(ptime)`` runs
slow by the sum of its oversleeps, seconds over a long prompt). A frame that wakes late
is sent at once and the following frames catch up; a stall longer than
``resync_after_s`` (an overloaded event loop) re-anchors the schedule instead, so we do
not fire a burst of frames at FreeSWITCH, which writes every datagram to the call as it
comes. Clock and sleep are injectable for tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Tick:
    """Frame ``index`` was due at ``due`` and the pacer released it at ``released_at``
    (both on the pacer's clock, seconds). ``lateness_s`` is their difference."""

    index: int
    due: float
    released_at: float

    @property
    def lateness_s(self) -> float:
        return self.released_at - self.due


class Pacer:
    """Releases frames on an absolute schedule ``t0 + k * ptime_s``.

    ``t0`` is the clock reading at the first ``next_tick`` (frame 0 goes at once), or
    ``start`` if called. Counters: ``ticks``, ``late_frames`` (lateness over
    ``late_threshold_s``), ``max_lateness_s``, ``resyncs``.
    """

    def __init__(
        self,
        ptime_s: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        late_threshold_s: float = 0.040,
        resync_after_s: float | None = 0.100,
    ) -> None:
        if ptime_s <= 0:
            raise ValueError(f"ptime must be positive, got {ptime_s}")
        self.ptime_s = ptime_s
        self._clock = clock
        self._sleep = sleep
        self.late_threshold_s = late_threshold_s
        self.resync_after_s = resync_after_s
        self._t0: float | None = None
        self._k = 0
        self.ticks = 0
        self.late_frames = 0
        self.max_lateness_s = 0.0
        self.resyncs = 0

    @property
    def started(self) -> bool:
        return self._t0 is not None

    def start(self, t0: float | None = None) -> None:
        """Anchor the schedule at ``t0`` (default: now); frame 0 is due then."""
        self._t0 = self._clock() if t0 is None else t0
        self._k = 0

    def due(self, index: int) -> float:
        if self._t0 is None:
            raise RuntimeError("pacer not started")
        return self._t0 + index * self.ptime_s

    async def next_tick(self) -> Tick:
        """Wait until the next frame is due and return its timing."""
        now = self._clock()
        if self._t0 is None:
            self.start(now)
        due = self.due(self._k)
        while now < due:
            await self._sleep(due - now)
            now = self._clock()
        tick = Tick(self._k, due, now)
        lateness = tick.lateness_s
        if lateness > self.max_lateness_s:
            self.max_lateness_s = lateness
        if lateness > self.late_threshold_s:
            self.late_frames += 1
        if self.resync_after_s is not None and lateness > self.resync_after_s:
            # Re-anchor: this frame becomes on time, the next one is a ptime away.
            self._t0 = now - self._k * self.ptime_s
            self.resyncs += 1
        self._k += 1
        self.ticks += 1
        return tick

    async def wait_until(self, t: float) -> None:
        """Sleep until clock time ``t`` (no tick, no counters)."""
        now = self._clock()
        while now < t:
            await self._sleep(t - now)
            now = self._clock()
