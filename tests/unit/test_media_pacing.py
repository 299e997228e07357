"""The real-time pacer against a fake clock: an absolute schedule that does not drift
over 10 minutes of frames, lateness measured per frame, stalls caught up or re-anchored.
Category: unit (fake clock and sleep; no real waiting)."""

from __future__ import annotations

import random

import pytest

from voice.media.pacing import Pacer

TEN_MINUTES_20MS = 10 * 60 * 50  # 30 000 frames


class FakeClock:
    """A monotonic clock that only moves when slept on; every sleep oversleeps by a
    random 0–3 ms, like a busy event loop, plus any stall scheduled for a given sleep."""

    def __init__(self, start: float = 1_000_000.0, jitter_s: float = 0.003, seed: int = 7) -> None:
        self.now = start
        self.jitter_s = jitter_s
        self.rng = random.Random(seed)
        self.sleeps = 0
        self.stalls: dict[int, float] = {}

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += max(0.0, seconds) + self.rng.uniform(0, self.jitter_s)
        self.now += self.stalls.pop(self.sleeps, 0.0)


async def test_no_drift_over_ten_minutes() -> None:
    clock = FakeClock()
    pacer = Pacer(0.020, clock=clock, sleep=clock.sleep)
    t0 = clock.now
    ticks = [await pacer.next_tick() for _ in range(TEN_MINUTES_20MS)]
    last = ticks[-1]
    assert last.index == TEN_MINUTES_20MS - 1
    assert last.due == pytest.approx(t0 + (TEN_MINUTES_20MS - 1) * 0.020, abs=1e-6)
    # 10 minutes later we are still within one oversleep of the schedule
    assert 0.0 <= last.lateness_s <= 0.003
    assert max(t.lateness_s for t in ticks) <= 0.003
    assert pacer.late_frames == 0 and pacer.resyncs == 0
    assert pacer.ticks == TEN_MINUTES_20MS
    # frames are released in order, never two in the same slot
    assert all(b.released_at > a.released_at for a, b in zip(ticks, ticks[1:], strict=False))


async def test_naive_sleep_loop_would_drift() -> None:
    """What the absolute schedule avoids: sleep(ptime) per frame runs seconds slow."""
    clock = FakeClock()
    t0 = clock.now
    for _ in range(TEN_MINUTES_20MS):
        await clock.sleep(0.020)
    assert clock.now - t0 - TEN_MINUTES_20MS * 0.020 > 30.0  # ~45 s behind


async def test_thirty_ms_frames() -> None:
    clock = FakeClock(jitter_s=0.0)
    pacer = Pacer(0.030, clock=clock, sleep=clock.sleep)
    t0 = clock.now
    ticks = [await pacer.next_tick() for _ in range(2000)]  # one minute
    assert [t.due - t0 for t in ticks[:3]] == pytest.approx([0.0, 0.030, 0.060])
    assert ticks[-1].released_at - t0 == pytest.approx(1999 * 0.030)
    assert all(t.lateness_s == pytest.approx(0.0, abs=1e-9) for t in ticks)


async def test_lateness_measured_and_caught_up() -> None:
    clock = FakeClock(jitter_s=0.0)
    clock.stalls[100] = 0.070  # the 100th sleep returns 70 ms late
    pacer = Pacer(0.020, clock=clock, sleep=clock.sleep, late_threshold_s=0.040)
    t0 = clock.now
    ticks = [await pacer.next_tick() for _ in range(200)]
    late = [round(t.lateness_s, 6) for t in ticks[100:106]]
    # frame 100 is 70 ms late; 101–103 go at once to catch up; 104 is back on time
    assert late == [0.07, 0.05, 0.03, 0.01, 0.0, 0.0]
    assert pacer.max_lateness_s == pytest.approx(0.070)
    assert pacer.late_frames == 2  # 70 and 50 ms are over the 40 ms threshold
    assert pacer.resyncs == 0
    assert ticks[-1].due == pytest.approx(t0 + 199 * 0.020)  # the schedule is intact


async def test_long_stall_reanchors_instead_of_bursting() -> None:
    clock = FakeClock(jitter_s=0.0)
    clock.stalls[50] = 0.500  # half a second lost (an overloaded loop)
    pacer = Pacer(0.020, clock=clock, sleep=clock.sleep, resync_after_s=0.100)
    ticks = [await pacer.next_tick() for _ in range(100)]
    assert ticks[50].lateness_s == pytest.approx(0.5)
    assert pacer.resyncs == 1
    # no burst: after the stall every frame is a full ptime after the previous one
    gaps = [b.released_at - a.released_at for a, b in zip(ticks[50:], ticks[51:], strict=False)]
    assert gaps == pytest.approx([0.020] * len(gaps))
    assert all(t.lateness_s == pytest.approx(0.0, abs=1e-9) for t in ticks[51:])


async def test_first_tick_is_immediate_and_start_anchors() -> None:
    clock = FakeClock(jitter_s=0.0)
    pacer = Pacer(0.020, clock=clock, sleep=clock.sleep)
    assert not pacer.started
    first = await pacer.next_tick()
    assert first.index == 0 and first.lateness_s == 0.0 and clock.sleeps == 0
    pacer.start(clock.now + 0.1)  # re-anchor in the future: frame 0 waits for it
    tick = await pacer.next_tick()
    assert tick.index == 0 and tick.released_at == pytest.approx(tick.due)
    await pacer.wait_until(clock.now + 0.05)
    assert clock.now == pytest.approx(tick.due + 0.05)


def test_bad_ptime() -> None:
    with pytest.raises(ValueError):
        Pacer(0)
    with pytest.raises(RuntimeError):
        Pacer(0.02).due(0)
