"""Local time in SQL, the same on SQLite and PostgreSQL.

Every time is stored in UTC; "day", "hour of day" and "day of week" are the centre's
(``HOTLINE_TIMEZONE``). PostgreSQL converts with its own time-zone database
(``timezone(tz, at)``). SQLite has none, so the UTC offsets in force over the period are
worked out here (zoneinfo) and the SQL shifts each time by the offset of its stretch: a
``CASE`` over the period's offset changes (none in Asia/Shanghai; two a year where
summer time is kept), so a figure is right on both sides of a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Integer, String, case, cast, func, literal
from sqlalchemy.sql.elements import ColumnElement

from bot.store.models import UTCDateTime


def day_start_utc(day: date, tz: ZoneInfo) -> datetime:
    """00:00 of ``day`` in ``tz``, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def _offset_s(moment: datetime, tz: ZoneInfo) -> int:
    offset = moment.astimezone(tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def offset_changes(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, int]]:
    """[(from this UTC moment on, offset in seconds)], the first from ``start``: the
    offsets in force between ``start`` and ``end`` (found hour by hour, then to the second)."""
    changes = [(start, _offset_s(start, tz))]
    step = timedelta(hours=1)
    moment = start
    while moment < end:
        nxt = min(moment + step, end)
        if _offset_s(nxt, tz) != changes[-1][1]:
            lo, hi = moment, nxt  # the change lies in (lo, hi]
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if _offset_s(mid, tz) == changes[-1][1]:
                    lo = mid
                else:
                    hi = mid
            changes.append((hi.replace(microsecond=0), _offset_s(nxt, tz)))
        moment = nxt
    return changes


@dataclass(frozen=True)
class LocalTime:
    """Local-time expressions for the columns of one query over ``[start, end)`` (UTC)."""

    dialect: str
    tz: ZoneInfo
    start: datetime
    end: datetime

    @property
    def name(self) -> str:
        return str(self.tz.key)

    def _sqlite_modifier(self, column: Any) -> ColumnElement[Any]:
        # Times outside the period (a handoff taken after it) get the nearest stretch's offset.
        changes = offset_changes(self.start - timedelta(days=1), self.end + timedelta(days=1), self.tz)
        if len(changes) == 1:
            return literal(f"{changes[0][1]:+d} seconds")
        whens = [(column < literal(at, UTCDateTime), literal(f"{prev:+d} seconds"))
                 for (at, _), (_, prev) in zip(changes[1:], changes[:-1], strict=True)]
        return case(*whens, else_=literal(f"{changes[-1][1]:+d} seconds"))

    def day(self, column: Any) -> ColumnElement[str]:
        """YYYY-MM-DD, local."""
        if self.dialect == "sqlite":
            return func.date(column, self._sqlite_modifier(column))
        return func.to_char(func.timezone(self.name, column), "YYYY-MM-DD")

    def hour(self, column: Any) -> ColumnElement[str]:
        """00 … 23, local."""
        if self.dialect == "sqlite":
            return func.strftime("%H", column, self._sqlite_modifier(column))
        return func.to_char(func.timezone(self.name, column), "HH24")

    def weekday(self, column: Any) -> ColumnElement[str]:
        """ISO day of the week, local: 1 Monday … 7 Sunday."""
        if self.dialect == "sqlite":
            w = func.strftime("%w", column, self._sqlite_modifier(column))  # 0 Sunday … 6
            return case((w == "0", literal("7")), else_=w)
        return func.to_char(func.timezone(self.name, column), "ID")


def seconds_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[float]:
    if dialect == "sqlite":
        return cast((func.julianday(later) - func.julianday(earlier)) * 86400.0, Float)
    return cast(func.extract("epoch", later - earlier), Float)


def as_text(value: Any) -> ColumnElement[str]:
    return cast(value, String)


def as_int(value: Any) -> ColumnElement[int]:
    return cast(value, Integer)
