"""U1–U2's deadline arithmetic (bot/sla/clock.py), at frozen instants: the warning at
80 %, the clock stopped while the ticket waits on the customer, a working-hours calendar
with a holiday and a make-up workday, and a clock change (DST) that moves no warning.
Pure functions: every "now" is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.sla.clock import (
    WorkCalendar,
    assess,
    counted_seconds,
    moment_reaching,
    pauses_from_history,
)

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai
H = timedelta(hours=1)
SH = ZoneInfo("Asia/Shanghai")


def test_the_warning_comes_at_80_percent_and_the_deadline_at_100() -> None:
    before = assess(T0, 10, [], None, 0.8, T0 + 8 * H - timedelta(seconds=1))
    at = assess(T0, 10, [], None, 0.8, T0 + 8 * H)
    assert not before.warning_due and at.warning_due and not at.overdue
    assert at.warn_at == T0 + 8 * H and at.deadline == T0 + 10 * H
    assert at.share == pytest.approx(0.8)
    assert assess(T0, 10, [], None, 0.8, T0 + 10 * H).overdue
    assert not assess(T0, 10, [], None, 0.8, T0 + 10 * H - timedelta(seconds=1)).overdue


def test_the_clock_stops_while_the_ticket_waits_on_the_customer() -> None:
    history = [(T0, "dispatched"), (T0 + 2 * H, "waiting"), (T0 + 5 * H, "dispatched")]
    pauses = pauses_from_history(history, T0)
    assert pauses == [(T0 + 2 * H, T0 + 5 * H)]
    state = assess(T0, 10, pauses, None, 0.8, T0 + 6 * H)
    assert state.used_s == 3 * 3600 and not state.paused
    assert state.deadline == T0 + 13 * H and state.warn_at == T0 + 11 * H  # both moved by the 3 h pause
    # Still waiting: the clock stands at 2 h and nobody knows the deadline yet.
    waiting = pauses_from_history(history[:2], T0)
    state = assess(T0, 10, waiting, None, 0.8, T0 + 30 * H)
    assert state.paused and state.used_s == 2 * 3600 and state.deadline is None and not state.warning_due
    # History before this dispatch (an earlier wait) does not count.
    assert pauses_from_history([(T0 - 5 * H, "waiting"), (T0 - 4 * H, "dispatched")], T0) == []


WEEK = {d: ["08:30-12:00", "13:30-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")}
CALENDAR = WorkCalendar.from_dict({
    "days": WEEK,
    "holidays": ["2026-12-02"],  # Wednesday
    "workdays": ["2026-12-05"],  # Saturday, worked (调休)
    "timezone": "Asia/Shanghai",
}, "UTC")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH)


def test_working_hours_skip_nights_lunch_weekends_and_holidays() -> None:
    start = local(1, 16, 30)  # Tuesday 16:30: one working hour left today
    # 8 working hours: Tue 16:30–17:30 (1), Wednesday is a holiday, Thu 08:30–12:00 (3.5),
    # Thu 13:30–17:00 (3.5).
    assert moment_reaching(start, [], CALENDAR, 8 * 3600) == local(3, 17, 0)
    state = assess(start, 8, [], CALENDAR, 0.8, local(3, 15, 24))
    assert state.warn_at == local(3, 15, 24) and state.warning_due  # 6.4 h: Thu 13:30 + 1 h 54
    assert counted_seconds(start, [], CALENDAR, local(2, 23, 0)) == 3600  # the holiday counted nothing
    # Friday afternoon into the make-up Saturday, past Sunday.
    friday = local(4, 16, 0)
    assert moment_reaching(friday, [], CALENDAR, 3 * 3600) == local(5, 10, 0)  # Fri 1.5 h + Sat 1.5 h
    assert moment_reaching(friday, [], CALENDAR, 11 * 3600) == local(7, 10, 30)  # + Sat 7.5 h, Sunday off, Mon 2 h
    # A start in the lunch break counts from 13:30.
    assert moment_reaching(local(1, 12, 10), [], CALENDAR, 3600) == local(1, 14, 30)


def test_a_pause_inside_working_hours_moves_the_deadline_by_working_time_only() -> None:
    start = local(1, 8, 30)
    pauses = [(local(1, 11, 0), local(1, 15, 0))]  # waiting 11:00–15:00: 2.5 h of working time lost
    # 08:30–11:00 counts 2.5 h, then 15:00–16:30 the remaining 1.5 h (without the pause: 13:30).
    assert moment_reaching(start, [], CALENDAR, 4 * 3600) == local(1, 14, 0)
    assert moment_reaching(start, pauses, CALENDAR, 4 * 3600) == local(1, 16, 30)
    assert counted_seconds(start, pauses, CALENDAR, local(1, 16, 0)) == 2.5 * 3600 + 3600


def test_a_clock_change_moves_no_instant() -> None:
    """New York springs forward on 2026-03-08 (02:00 → 03:00). Working hours are local,
    the counting is in UTC: the warning and the deadline each come once, at the instant
    the counted time reaches them."""
    ny = WorkCalendar.from_dict({"days": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                                 "timezone": "America/New_York"}, "UTC")
    start = datetime(2026, 3, 8, 0, 30, tzinfo=ZoneInfo("America/New_York"))  # before the change
    deadline = moment_reaching(start, [], ny, 4 * 3600)
    assert deadline is not None and deadline - start == timedelta(hours=4)  # 4 real hours, not 5
    assert deadline.astimezone(ZoneInfo("America/New_York")).hour == 5  # the wall clock skipped 02:00–03:00
    assert counted_seconds(start, [], ny, deadline) == 4 * 3600
    hours = WorkCalendar.from_dict({"days": {"sun": ["01:00-04:00"]}, "timezone": "America/New_York"}, "UTC")
    # 01:00–04:00 local on that Sunday is only 2 real hours long: the clock counts 2.
    day = datetime(2026, 3, 8, 0, 0, tzinfo=ZoneInfo("America/New_York"))
    assert counted_seconds(day, [], hours, day + timedelta(hours=6)) == 2 * 3600


def test_a_calendar_without_working_time_ahead_gives_no_deadline() -> None:
    never = WorkCalendar(SH, {}, frozenset(), frozenset())  # no working period at all
    assert moment_reaching(T0, [], never, 3600) is None
