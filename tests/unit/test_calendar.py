"""Working hours (bot/world/calendar.py): deadlines counted in working time (D2: a hard
case within half a working day), across lunch, evenings, weekends, holidays and the
extra working days (调休); the world file's ``working_hours`` and its errors."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.world.calendar import DEFAULT_WORKING_HOURS, WorkingCalendar, WorkingHours
from bot.world.parse import WorldFileError, parse_world_text

SH = ZoneInfo("Asia/Shanghai")
DAYS = {d: ["08:30-12:00", "13:30-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")}  # 7.5 h a day
CAL = WorkingCalendar(WorkingHours(days=DAYS, holidays=[date(2026, 10, 1), date(2026, 10, 2)],
                                   workdays=[date(2026, 9, 27)]), "Asia/Shanghai")


def sh(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


@pytest.mark.parametrize(("start", "due"), [
    (sh(2026, 3, 2, 9, 0), sh(2026, 3, 2, 14, 15)),  # Monday morning: 3 h before lunch, 45 min after
    (sh(2026, 3, 2, 7, 0), sh(2026, 3, 2, 13, 45)),  # before opening: counts from 08:30
    (sh(2026, 3, 2, 12, 30), sh(2026, 3, 2, 17, 15)),  # at lunch: counts from 13:30
    (sh(2026, 3, 2, 16, 0), sh(2026, 3, 3, 10, 45)),  # 1.5 h today, the rest tomorrow morning
    (sh(2026, 3, 6, 17, 0), sh(2026, 3, 9, 11, 45)),  # Friday evening → Monday
    (sh(2026, 3, 7, 10, 0), sh(2026, 3, 9, 13, 45)),  # Saturday → Monday: 3.5 h to lunch, 15 min after
    (sh(2026, 9, 30, 17, 0), sh(2026, 10, 5, 11, 45)),  # the holidays (1–2 Oct) and a weekend skipped
    (sh(2026, 9, 26, 20, 0), sh(2026, 9, 27, 13, 45)),  # Saturday night → the extra working Sunday
])
def test_half_a_working_day(start: datetime, due: datetime) -> None:
    assert CAL.full_day_hours == 7.5
    assert CAL.half_day_after(start) == due.astimezone(ZoneInfo("UTC"))


def test_working_time_between() -> None:
    assert CAL.working_hours_between(sh(2026, 3, 2, 9), sh(2026, 3, 2, 14)) == 3.5
    assert CAL.working_hours_between(sh(2026, 3, 6, 17), sh(2026, 3, 9, 9)) == 1.0  # Fri 17–17:30, Mon 8:30–9
    assert CAL.working_hours_between(sh(2026, 3, 2, 14), sh(2026, 3, 2, 9)) == 0.0


def test_default_and_midnight() -> None:
    cal = WorkingCalendar(DEFAULT_WORKING_HOURS, "Asia/Shanghai")
    assert cal.full_day_hours == 8.0 and cal.half_day_after(sh(2026, 3, 2, 9)) == sh(2026, 3, 2, 14)
    night = WorkingCalendar(WorkingHours(days={"mon": ["20:00-24:00"]}), "Asia/Shanghai")
    assert night.add(sh(2026, 3, 2, 23), 2) == sh(2026, 3, 9, 21)


@pytest.mark.parametrize(("days", "error"), [
    ({"mon": ["08:30-12:00", "11:00-13:00"]}, "overlap"),
    ({"monday": ["08:00-12:00"]}, "not a weekday"),
    ({"mon": ["12:00-08:00"]}, "ends before"),
    ({"mon": ["8-12"]}, "HH:MM-HH:MM"),
    ({"sat": []}, "no working period"),
])
def test_bad_working_hours(days: dict[str, list[str]], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        WorkingHours(days=days)


WORLD = """\
version: 1
exchanges: [{{prefix: "0571", name: x, branch: y}}]
working_hours:
  days:
{days}
  holidays: [2026-10-01]
"""


def test_the_world_file_section() -> None:
    world = parse_world_text(WORLD.format(days='    mon: ["09:00-12:00"]'))
    assert world.working_hours is not None and world.working_hours.holidays == [date(2026, 10, 1)]
    with pytest.raises(WorldFileError, match=r"world.yml:4: working_hours.days: mon: periods overlap"):
        parse_world_text(WORLD.format(days='    mon: ["09:00-12:00", "10:00-11:00"]'))
