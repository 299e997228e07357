"""The simulated line-test unit's core: timing, heads, results, measurements, and
following the world file. Category: unit (no network; time from a ManualClock)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.linetest.client import LineTest, LineTestState
from bot.linetest.simulator import (
    OVER_RANGE_OHM,
    LineTestUnit,
    ManualClock,
    UnitOverloaded,
    WorldFollower,
    measurements_for,
    world_path_for,
)
from bot.settings import Settings
from bot.world.parse import parse_world_file
from bot.world.schema import Exchange, Line, LineTestBehaviour, LineTestResultCode, World

FIXED = "057187654321"
MOBILE = "13800138000"
Code = LineTestResultCode


def world(*lines: Line) -> World:
    return World(
        exchanges=[Exchange(prefix="0571", name="Hangzhou", branch="HZ")], lines=list(lines)
    )


def line(number: str = FIXED, **behaviour: Any) -> Line:
    return Line(number=number, owner="Test", line_test=LineTestBehaviour(**behaviour))


def unit(clock: ManualClock, heads: int = 4, duration_s: float = 3.0, **kw: Any) -> LineTestUnit:
    return LineTestUnit(heads=heads, default_duration_s=duration_s, clock=clock, **kw)


def get(u: LineTestUnit, test_id: str) -> LineTest:
    test = u.get(test_id)
    assert test is not None, f"{test_id} forgotten"
    return test


def since(t: datetime | None, origin: datetime) -> float:
    assert t is not None
    return (t - origin).total_seconds()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# --- timing ---------------------------------------------------------------------------


def test_free_unit_runs_then_finishes_after_default_duration(clock: ManualClock) -> None:
    u = unit(clock)
    t = u.submit(FIXED, world(line()))
    assert t.state is LineTestState.running
    assert t.started_at == t.queued_at == clock.now
    assert t.result is None and t.summary is None and t.measurements is None

    clock.advance(2.9)
    assert get(u, t.id).state is LineTestState.running
    clock.advance(0.1)
    done = get(u, t.id)
    assert done.state is LineTestState.done and done.finished
    assert done.result is Code.ok
    assert done.finished_at == clock.now
    assert done.summary is not None and done.summary.zh and done.summary.en
    assert done.measurements is not None and done.measurements["cpe"] == "on_hook"


def test_busy_line_waits_busy_s_then_runs_its_own_duration(clock: ManualClock) -> None:
    u = unit(clock)
    t = u.submit(FIXED, world(line(busy_s=10, duration_s=5, result=Code.earth_fault)))
    assert t.state is LineTestState.waiting and t.started_at is None

    clock.advance(9.99)
    assert get(u, t.id).state is LineTestState.waiting
    clock.advance(0.01)
    running = get(u, t.id)
    assert running.state is LineTestState.running
    assert since(running.started_at, t.queued_at) == 10

    clock.advance(5)
    done = get(u, t.id)
    assert done.state is LineTestState.done and done.result is Code.earth_fault
    assert since(done.finished_at, t.queued_at) == 15


def test_one_big_jump_replays_the_timeline_exactly(clock: ManualClock) -> None:
    u = unit(clock, heads=1)
    w = world(line())
    a, b, c = (u.submit(FIXED, w) for _ in range(3))
    assert [a.state, b.state, c.state] == [
        LineTestState.running,
        LineTestState.waiting,
        LineTestState.waiting,
    ]

    clock.advance(100)  # nobody looked in between: the replay still gets every instant right
    tests = [get(u, x.id) for x in (a, b, c)]
    assert all(t.state is LineTestState.done for t in tests)
    offsets = [(since(t.started_at, a.queued_at), since(t.finished_at, a.queued_at)) for t in tests]
    assert offsets == [(0, 3), (3, 6), (6, 9)]


def test_head_limit_queues_the_rest_and_frees_heads_in_order(clock: ManualClock) -> None:
    u = unit(clock, heads=2)
    w = world(line())
    first = [u.submit(FIXED, w) for _ in range(2)]
    clock.advance(1)
    third = u.submit(FIXED, w)
    assert [t.state for t in first] == [LineTestState.running] * 2
    assert third.state is LineTestState.waiting
    assert u.status() == (2, 1)

    clock.advance(2)  # the first two finish at t=3; the third takes a head at once
    t3 = get(u, third.id)
    assert t3.state is LineTestState.running
    assert since(t3.started_at, third.queued_at) == 2
    assert u.status() == (1, 0)


def test_busy_test_does_not_hold_a_head_while_it_waits(clock: ManualClock) -> None:
    u = unit(clock, heads=1)
    busy = u.submit("057100000001", world(line("057100000001", busy_s=30)))
    free = u.submit(FIXED, world(line()))
    assert busy.state is LineTestState.waiting
    assert free.state is LineTestState.running


def test_ready_tests_take_heads_in_the_order_they_became_ready(clock: ManualClock) -> None:
    u = unit(clock, heads=1, duration_s=10)
    w = world(line("057100000001", busy_s=2), line("057100000002", busy_s=1), line(FIXED))
    blocker = u.submit(FIXED, w)
    late = u.submit("057100000001", w)  # ready at 2
    early = u.submit("057100000002", w)  # ready at 1
    clock.advance(10)
    assert get(u, blocker.id).state is LineTestState.done
    assert get(u, early.id).state is LineTestState.running
    assert get(u, late.id).state is LineTestState.waiting


# --- results --------------------------------------------------------------------------


def test_mobile_numbers_cannot_be_tested_and_use_no_head(clock: ManualClock) -> None:
    u = unit(clock, heads=1)
    t = u.submit(MOBILE, world(line(MOBILE, result=Code.open_circuit, busy_s=60)))
    assert t.state is LineTestState.done
    assert t.result is Code.cannot_test
    assert t.finished_at == t.queued_at == clock.now
    assert t.measurements is None and t.summary is not None
    assert u.status() == (0, 0)


@pytest.mark.parametrize("w", [None, world()], ids=["no-world", "not-in-world"])
def test_unknown_lines_test_ok(clock: ManualClock, w: World | None) -> None:
    u = unit(clock)
    t = u.submit(FIXED, w)
    clock.advance(3)
    done = get(u, t.id)
    assert done.state is LineTestState.done and done.result is Code.ok


def test_cannot_test_on_a_fixed_line_is_a_failed_test(clock: ManualClock) -> None:
    u = unit(clock)
    t = u.submit(FIXED, world(line(result=Code.cannot_test)))
    clock.advance(3)
    failed = get(u, t.id)
    assert failed.state is LineTestState.failed and failed.finished
    assert (
        failed.result is Code.cannot_test
        and failed.measurements is None
        and failed.summary is not None
    )


def test_each_finished_test_carries_the_summary_for_its_result(clock: ManualClock) -> None:
    from bot.linetest.results import summary_for

    u = unit(clock, duration_s=0)
    t = u.submit(FIXED, world(line(result=Code.foreign_voltage)))
    assert t.summary is not None
    assert t.summary.model_dump() == summary_for("foreign_voltage")


def _m(code: LineTestResultCode, number: str = FIXED) -> dict[str, Any]:
    m = measurements_for(code, number)
    assert m is not None
    return m


@pytest.mark.parametrize("number", [FIXED, "057100000001", "02112345678"])
def test_measurements_match_the_fault(number: str) -> None:
    ok = _m(Code.ok, number)
    assert 100 < ok["loop_resistance_ohm"] < 1200
    assert (
        min(
            ok[k]
            for k in (
                "insulation_tip_ring_mohm",
                "insulation_tip_ground_mohm",
                "insulation_ring_ground_mohm",
            )
        )
        >= 50
    )
    assert ok["foreign_dc_v"] <= 0.5 and ok["foreign_ac_v"] <= 0.3
    assert ok["cpe"] == "on_hook" and ok["fault_distance_m"] is None

    open_ = _m(Code.open_circuit, number)
    assert open_["loop_resistance_ohm"] == OVER_RANGE_OHM
    assert (
        open_["capacitance_nf"] < 200 < ok["capacitance_nf"]
    )  # no ringer, only cable up to the break
    assert open_["cpe"] == "not_detected" and open_["fault_distance_m"] > 0

    short = _m(Code.short_circuit, number)
    assert short["loop_resistance_ohm"] < ok["loop_resistance_ohm"]
    assert short["insulation_tip_ring_mohm"] < 0.001

    earth = _m(Code.earth_fault, number)
    assert min(earth["insulation_tip_ground_mohm"], earth["insulation_ring_ground_mohm"]) < 1
    assert earth["insulation_tip_ring_mohm"] >= 50

    high = _m(Code.high_resistance, number)
    assert high["loop_resistance_ohm"] > 1500 + 0.8 * 280

    foreign = _m(Code.foreign_voltage, number)
    assert foreign["foreign_dc_v"] >= 15 and foreign["foreign_ac_v"] >= 8

    cpe = _m(Code.cpe_fault, number)
    assert cpe["cpe"] == "faulty"
    assert cpe["insulation_tip_ground_mohm"] >= 50 and cpe["insulation_tip_ring_mohm"] < 1
    assert 100 < cpe["loop_resistance_ohm"] < 1200

    assert measurements_for(Code.cannot_test, number) is None


def test_measurements_are_stable_for_a_line() -> None:
    assert measurements_for(Code.ok, FIXED) == measurements_for(Code.ok, FIXED)
    assert measurements_for(Code.ok, FIXED) != measurements_for(Code.ok, "057100000001")


# --- bounded memory --------------------------------------------------------------------


def test_finished_tests_are_forgotten_after_retention(clock: ManualClock) -> None:
    u = unit(clock, retention_s=60)
    old = u.submit(FIXED, None)
    clock.advance(3 + 59)
    assert u.get(old.id) is not None
    clock.advance(1)
    assert u.get(old.id) is None


def test_finished_tests_are_capped_oldest_first(clock: ManualClock) -> None:
    u = unit(clock, duration_s=0, max_finished=3)
    ids = [u.submit(FIXED, None).id for _ in range(5)]
    assert [u.get(i) is not None for i in ids] == [False, False, True, True, True]


def test_running_tests_are_never_forgotten(clock: ManualClock) -> None:
    u = unit(clock, duration_s=1000, retention_s=1, max_finished=0)
    t = u.submit(FIXED, None)
    clock.advance(999)
    assert u.get(t.id) is not None


def test_a_full_queue_is_refused(clock: ManualClock) -> None:
    u = unit(clock, heads=1, max_queued=2)
    u.submit(FIXED, None)
    u.submit(FIXED, None)
    with pytest.raises(UnitOverloaded):
        u.submit(FIXED, None)


# --- following the world file ----------------------------------------------------------


def write_world(path: Path, result: str, *, mtime: float, name: str = "w") -> None:
    doc = {
        "name": name,
        "exchanges": [{"prefix": "0571", "name": "Hangzhou", "branch": "HZ"}],
        "lines": [{"number": FIXED, "owner": "Test", "line_test": {"result": result}}],
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    os.utime(path, (mtime, mtime))  # explicit mtimes: filesystems with coarse ones can't fool us


def break_world(path: Path, *, mtime: float) -> None:
    path.write_text("exchanges: [ {prefix: '0571'", encoding="utf-8")  # not even YAML
    os.utime(path, (mtime, mtime))


def result_in(w: World | None) -> LineTestResultCode | None:
    found = w.line(FIXED) if w is not None else None
    return found.line_test.result if found is not None else None


class CountingParse:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, path: Path) -> World:
        self.calls += 1
        return parse_world_file(path)


async def test_world_is_reloaded_only_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "world.yml"
    write_world(path, "open_circuit", mtime=1_000_000)
    parse = CountingParse()
    follower = WorldFollower(lambda: path, parse)

    assert result_in(await follower.current()) is Code.open_circuit
    assert result_in(await follower.current()) is Code.open_circuit
    assert parse.calls == 1  # unchanged file: a stat, no parse

    write_world(path, "earth_fault", mtime=1_000_001)
    assert result_in(await follower.current()) is Code.earth_fault
    assert parse.calls == 2


async def test_broken_world_keeps_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "world.yml"
    write_world(path, "open_circuit", mtime=1_000_000)
    parse = CountingParse()
    follower = WorldFollower(lambda: path, parse)
    assert result_in(await follower.current()) is Code.open_circuit

    break_world(path, mtime=1_000_001)
    assert result_in(await follower.current()) is Code.open_circuit
    assert result_in(await follower.current()) is Code.open_circuit
    assert parse.calls == 2  # the broken file is not parsed again until it changes

    write_world(path, "no_such_result", mtime=1_000_002)  # YAML, but fails validation
    assert result_in(await follower.current()) is Code.open_circuit

    write_world(path, "cpe_fault", mtime=1_000_003)
    assert result_in(await follower.current()) is Code.cpe_fault


async def test_missing_world_file_means_no_world_until_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "world.yml"
    follower = WorldFollower(lambda: path)
    assert await follower.current() is None
    write_world(path, "short_circuit", mtime=1_000_000)
    assert result_in(await follower.current()) is Code.short_circuit


async def test_follows_the_world_the_bot_last_loaded(tmp_path: Path) -> None:
    configured, loaded = tmp_path / "demo.yml", tmp_path / "var" / "world.yml"
    write_world(configured, "open_circuit", mtime=1_000_000)
    settings = Settings(world_file=configured, current_world_file=loaded)
    follower = WorldFollower(world_path_for(settings))
    assert result_in(await follower.current()) is Code.open_circuit

    loaded.parent.mkdir()
    write_world(loaded, "high_resistance", mtime=900_000)  # older mtime, but a different file
    assert result_in(await follower.current()) is Code.high_resistance
