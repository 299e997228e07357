"""U1–U2: the completion-deadline clock, as pure functions of stored UTC times.

A dispatched ticket's clock starts at its dispatch and counts up to the centre's
allowance (``completion_deadline_hours``). It stops while the ticket waits on the
customer (TMF621 ``pending``) and resumes after; with a working calendar it counts only
the centre's working hours (weekdays and hours in local time, holidays off, extra
workdays on). Everything is computed in UTC from stored UTC instants: the local zone
only places the working hours, so a clock change (DST) moves no instant, and the watch
decides on *counted seconds*, never on a wall-clock reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.store.models import utc

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# While a dispatched ticket is in these sub-steps it waits on the customer (TMF621 pending).
PAUSED_SUB_STEPS = frozenset({"waiting"})
# The sub-steps of a dispatch still running (the clock counts or is stopped).
WATCHED_SUB_STEPS = frozenset({"dispatched"}) | PAUSED_SUB_STEPS
HORIZON = timedelta(days=800)  # no deadline is searched for further than this

Span = tuple[datetime, datetime | None]  # [start, end); end None: still open


@dataclass(frozen=True)
class WorkCalendar:
    """A centre's working hours (the world file's ``working_hours``, bot/world/calendar.py):
    periods per weekday, holidays closed, extra workdays (调休) with a full day's periods."""

    tz: ZoneInfo
    periods: Mapping[int, tuple[tuple[time, time | None], ...]]  # 0 = Monday; end None: 24:00
    holidays: frozenset[date]
    workdays: frozenset[date]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_tz: str) -> WorkCalendar:
        """From the stored ``working_hours`` (with the ``timezone`` the loader added)."""
        periods: dict[int, tuple[tuple[time, time | None], ...]] = {}
        for day, spans in (data.get("days") or {}).items():
            parsed = []
            for span in spans or []:
                start, end = str(span).split("-")
                parsed.append((time.fromisoformat(start), None if end == "24:00" else time.fromisoformat(end)))
            periods[WEEKDAYS.index(day)] = tuple(sorted(parsed, key=lambda p: p[0]))
        return cls(
            tz=ZoneInfo(data.get("timezone") or default_tz),
            periods=periods,
            holidays=frozenset(date.fromisoformat(str(d)) for d in data.get("holidays") or []),
            workdays=frozenset(date.fromisoformat(str(d)) for d in data.get("workdays") or []),
        )

    def periods_on(self, day: date) -> tuple[tuple[time, time | None], ...]:
        if day in self.holidays:
            return ()
        if day in self.workdays:  # a full day: the longest weekday's periods
            return max(self.periods.values(), key=_length, default=())
        return self.periods.get(day.weekday(), ())

    def working_spans(self, start: datetime, end: datetime | None) -> Iterator[tuple[datetime, datetime]]:
        """The working time inside [start, end) (end None: onwards), in UTC, in order."""
        day = start.astimezone(self.tz).date() - timedelta(days=1)
        while True:
            first = datetime.combine(day, time(0), tzinfo=self.tz)
            if end is not None and first.astimezone(ZoneInfo("UTC")) >= end:
                return
            if first - start > HORIZON:
                return
            for opens, closes in self.periods_on(day):
                a = utc(datetime.combine(day, opens, tzinfo=self.tz))
                b = utc(datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz) if closes is None
                        else datetime.combine(day, closes, tzinfo=self.tz))
                a, b = max(a, start), (b if end is None else min(b, end))
                if a < b:
                    yield a, b
            day += timedelta(days=1)


def _length(spans: tuple[tuple[time, time | None], ...]) -> float:
    return sum((24 * 3600 if b is None else b.hour * 3600 + b.minute * 60) - (a.hour * 3600 + a.minute * 60)
               for a, b in spans)


def pauses_from_history(changes: Iterable[tuple[datetime, str | None]], since: datetime) -> list[Span]:
    """When the clock stood still: the spans spent in a paused sub-step after ``since``,
    from the ticket's history (``(at, to_sub_step)`` in order)."""
    spans: list[Span] = []
    paused_at: datetime | None = None
    for at, step in changes:
        at = utc(at)
        if at < since:
            continue
        if step in PAUSED_SUB_STEPS and paused_at is None:
            paused_at = at
        elif step not in PAUSED_SUB_STEPS and paused_at is not None:
            spans.append((paused_at, at))
            paused_at = None
    if paused_at is not None:
        spans.append((paused_at, None))
    return spans


def _running(start: datetime, pauses: Sequence[Span]) -> Iterator[Span]:
    """[start, ∞) without the pauses; an open pause ends the clock for now."""
    cursor = start
    for p_start, p_end in sorted(pauses, key=lambda p: p[0]):
        if p_end is not None and p_end <= cursor:
            continue
        if p_start > cursor:
            yield cursor, p_start
        if p_end is None:
            return
        cursor = max(cursor, p_end)
    yield cursor, None


def _counting(start: datetime, pauses: Sequence[Span], calendar: WorkCalendar | None) -> Iterator[Span]:
    for a, b in _running(start, pauses):
        if calendar is None:
            yield a, b
        else:
            yield from calendar.working_spans(a, b)


def counted_seconds(start: datetime, pauses: Sequence[Span], calendar: WorkCalendar | None,
                    now: datetime) -> float:
    """How much of the clock has run between ``start`` and ``now``."""
    total = 0.0
    for a, b in _counting(utc(start), pauses, calendar):
        if a >= now:
            break
        total += ((now if b is None else min(b, now)) - a).total_seconds()
    return total


def moment_reaching(start: datetime, pauses: Sequence[Span], calendar: WorkCalendar | None,
                    seconds: float) -> datetime | None:
    """When the clock reaches ``seconds`` (None: it stands still before that, waiting on
    the customer, so no one knows yet)."""
    remaining = timedelta(seconds=seconds)
    start = utc(start)
    for a, b in _counting(start, pauses, calendar):
        if a - start > HORIZON:
            return None
        if b is None or b - a >= remaining:
            return a + remaining
        remaining -= b - a
    return None


@dataclass(frozen=True)
class Assessment:
    allowance_s: float
    used_s: float
    warn_s: float  # the warning threshold (HOTLINE_SLA_WARN_AT of the allowance)
    deadline: datetime | None  # when the allowance runs out (None: paused before it)
    warn_at: datetime | None
    paused: bool

    @property
    def share(self) -> float:
        return self.used_s / self.allowance_s if self.allowance_s > 0 else 1.0

    @property
    def warning_due(self) -> bool:
        return self.used_s >= self.warn_s

    @property
    def overdue(self) -> bool:
        return self.used_s >= self.allowance_s


def assess(start: datetime, allowance_hours: float, pauses: Sequence[Span], calendar: WorkCalendar | None,
           warn_share: float, now: datetime) -> Assessment:
    """Where a dispatch's clock stands at ``now``."""
    allowance = allowance_hours * 3600
    warn = allowance * warn_share
    paused = bool(pauses) and pauses[-1][1] is None and utc(pauses[-1][0]) <= now
    return Assessment(allowance, counted_seconds(start, pauses, calendar, now), warn,
                      moment_reaching(start, pauses, calendar, allowance),
                      moment_reaching(start, pauses, calendar, warn), paused)
