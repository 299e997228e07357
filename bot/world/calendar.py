"""Working hours: when the centre works, for deadlines counted in working time (D2: a
hard case is written up within half a working day).

The world file's ``working_hours`` (the customer-service centre's own calendar; the
same shape can serve any post or centre)::

    working_hours:
      days:                                   # periods per weekday, local time
        mon: ["08:30-12:00", "13:30-17:30"]
        tue: ["08:30-12:00", "13:30-17:30"]
        …
        sat: []                               # a day left out or empty: closed
      holidays: [2026-10-01, 2026-10-02]      # closed all day
      workdays: [2026-09-27]                  # extra working days (调休), with the hours of a full day

A world without it gets :data:`DEFAULT_WORKING_HOURS` (Monday to Friday, 09:00–12:00
and 13:00–18:00). Times are local to the calendar's time zone (the centre's,
``HOTLINE_TIMEZONE``); what is stored and compared is UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PERIOD = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
MAX_DAYS = 3 * 366  # a calendar with no working time left in three years is a mistake, not a wait


def _parse_period(text: str) -> tuple[time, time | None]:
    """"08:30-12:00" → (08:30, 12:00); "…-24:00" ends at midnight (None)."""
    m = _PERIOD.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a period HH:MM-HH:MM")
    start = time(int(m.group(1)), int(m.group(2)))
    end = None if m.group(3) == "24" else time(int(m.group(3)), int(m.group(4)))
    if m.group(3) == "24" and m.group(4) != "00":
        raise ValueError(f"{text!r}: 24:00 is the latest end")
    if end is not None and end <= start:
        raise ValueError(f"{text!r} ends before it starts")
    return start, end


class WorkingHours(BaseModel):
    """The world file's ``working_hours`` (also usable per measurement centre)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: dict[str, list[str]] = Field(default_factory=dict)
    holidays: list[date] = []
    workdays: list[date] = []

    @field_validator("days")
    @classmethod
    def _check_days(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, periods in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday; use {', '.join(WEEKDAYS)}")
            spans = sorted(_parse_period(p) for p in periods)
            for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
                if end is None or end > start:
                    raise ValueError(f"{day}: periods overlap")
        if not any(value.values()):
            raise ValueError("no working period on any weekday")
        return value


DEFAULT_WORKING_HOURS = WorkingHours(days={d: ["09:00-12:00", "13:00-18:00"] for d in WEEKDAYS[:5]})


@dataclass(frozen=True)
class WorkingCalendar:
    hours: WorkingHours
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _day_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working periods of one local date, as aware local datetimes."""
        if day in self.hours.holidays:
            return []
        if day in self.hours.workdays:
            periods = self._full_day_periods()
        else:
            periods = self.hours.days.get(WEEKDAYS[day.weekday()], [])
        spans = []
        for p in periods:
            start, end = _parse_period(p)
            begin = datetime.combine(day, start, self.zone)
            finish = (datetime.combine(day + timedelta(days=1), time(0), self.zone) if end is None
                      else datetime.combine(day, end, self.zone))
            spans.append((begin, finish))
        return sorted(spans)

    def _full_day_periods(self) -> list[str]:
        """The periods of the longest weekday (what an extra working day works)."""
        return max((self.hours.days.get(d, []) for d in WEEKDAYS), key=_period_hours)

    @property
    def full_day_hours(self) -> float:
        """A full working day: the longest weekday's working time."""
        return _period_hours(self._full_day_periods())

    def _spans_from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        day = start.astimezone(self.zone).date()
        for offset in range(MAX_DAYS):
            yield from self._day_spans(day + timedelta(days=offset))
        raise ValueError(f"no working time within {MAX_DAYS} days of {start.isoformat()}")

    def add(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` of working time after ``start`` (UTC). Time outside the
        working periods does not count: a task given at 17:00 with 4 h lands next morning."""
        left = timedelta(hours=hours)
        start = start.astimezone(UTC)
        for begin, end in self._spans_from(start):
            begin = max(begin, start)
            if begin >= end:
                continue
            if begin + left <= end:
                return (begin + left).astimezone(UTC)
            left -= end - begin
        raise AssertionError("unreachable")  # _spans_from raises first

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Working time from ``start`` to ``end`` (0 when end is not after start)."""
        if end <= start:
            return 0.0
        total = timedelta()
        for begin, finish in self._spans_from(start):
            if begin >= end:
                break
            lo, hi = max(begin, start), min(finish, end)
            if hi > lo:
                total += hi - lo
        return total.total_seconds() / 3600

    def half_day_after(self, start: datetime) -> datetime:
        """D2: the deadline half a working day after ``start``."""
        return self.add(start, self.full_day_hours / 2)


def _period_hours(periods: list[str]) -> float:
    total = 0.0
    for p in periods:
        start, end = _parse_period(p)
        end_h = 24.0 if end is None else end.hour + end.minute / 60
        total += end_h - (start.hour + start.minute / 60)
    return total
