"""The daily rollup: the cubes' counts stored per local day, rebuilt by SQL.

``refresh(s, first, last, tz)`` deletes the days' rows and inserts what the cubes count
now (``INSERT … SELECT``): run twice, it gives the same rows; run after a late change (a
fault classified at dispatch, a handoff taken after midnight), it takes it in. Which days
it holds and when they were computed is in ``stats_rollup_day``.

A day is *settled* once it was refreshed ``settle_days`` after it ended (late changes
after that are rare); figures read a period from the rollup after refreshing the days
that are not settled yet (:func:`ensure`). The nightly job refreshes the days of the
last ``settle_days``, so reports over older days only read.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import delete, insert, select, text
from sqlmodel import Session, col

from bot.stats.cubes import CUBES, stretch
from bot.stats.sqltime import day_start_utc
from bot.store.models import utc, utcnow
from bot.store.stats import StatsDaily, StatsRollupDay

log = structlog.get_logger(__name__)

CHUNK_DAYS = 31  # one INSERT … SELECT per cube per month at most: bounded work per statement
_COLUMNS = ["day", "cube", "k1", "k2", "k3", "k4", "k5", "k6", "n", "v"]
_LOCK_KEY = 0x5717_0001  # PostgreSQL advisory lock: one refresh at a time across processes


def _lock(s: Session) -> None:
    """Two refreshes of the same days at once would each delete only what it saw and
    both insert: serialise them (SQLite's BEGIN IMMEDIATE already does)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})


def refresh(s: Session, first: date, last: date, tz: ZoneInfo, *, now: datetime | None = None) -> int:
    """Recompute the rollup of local days ``first`` … ``last`` (inclusive). Returns the days."""
    if last < first:
        return 0
    now = now or utcnow()
    _lock(s)
    day = first
    while day <= last:
        chunk_last = min(last, day + timedelta(days=CHUNK_DAYS - 1))
        a, b = day.isoformat(), (chunk_last + timedelta(days=1)).isoformat()
        s.execute(delete(StatsDaily).where(col(StatsDaily.day) >= a, col(StatsDaily.day) < b))
        lt = stretch(s, tz, day_start_utc(day, tz), day_start_utc(chunk_last + timedelta(days=1), tz))
        for cube in CUBES.values():
            s.execute(insert(StatsDaily).from_select(_COLUMNS, cube(s, lt)))
        d = day
        while d <= chunk_last:
            s.merge(StatsRollupDay(day=d.isoformat(), timezone=tz.key, refreshed_at=now))
            d += timedelta(days=1)
        s.flush()
        day = chunk_last + timedelta(days=1)
    log.info("stats.rollup_refreshed", first=first.isoformat(), last=last.isoformat())
    return (last - first).days + 1


def unsettled(s: Session, first: date, last: date, tz: ZoneInfo, settle_days: float, *,
              now: datetime | None = None) -> list[date]:
    """The days of ``first`` … ``last`` whose rollup is missing, in another zone, or was
    computed less than ``settle_days`` after the day ended."""
    now = now or utcnow()
    rows = {r.day: r for r in s.execute(select(StatsRollupDay).where(
        col(StatsRollupDay.day) >= first.isoformat(), col(StatsRollupDay.day) <= last.isoformat())).scalars()}
    due = []
    day = first
    while day <= last:
        row = rows.get(day.isoformat())
        settled_at = day_start_utc(day + timedelta(days=1), tz) + timedelta(days=settle_days)
        if row is None or row.timezone != tz.key or utc(row.refreshed_at) < min(settled_at, now):
            due.append(day)
        day += timedelta(days=1)
    return due


def ensure(s: Session, first: date, last: date, tz: ZoneInfo, settle_days: float, *,
           now: datetime | None = None, fresh_within_s: float = 0.0) -> list[date]:
    """Refresh the days of the period that are not settled; returns them. A day refreshed
    less than ``fresh_within_s`` ago is left as it is (the dashboard's throttle)."""
    now = now or utcnow()
    due = unsettled(s, first, last, tz, settle_days, now=now)
    if fresh_within_s > 0 and due:
        recent = {r.day for r in s.execute(select(StatsRollupDay).where(
            col(StatsRollupDay.day).in_([d.isoformat() for d in due]),
            col(StatsRollupDay.refreshed_at) >= now - timedelta(seconds=fresh_within_s),
            col(StatsRollupDay.timezone) == tz.key)).scalars()}
        due = [d for d in due if d.isoformat() not in recent]
    for a, b in _runs(due):
        refresh(s, a, b, tz, now=now)
    return due


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) stretches."""
    runs: list[tuple[date, date]] = []
    for d in days:
        if runs and runs[-1][1] + timedelta(days=1) == d:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs
