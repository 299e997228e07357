"""T5's report periods, in the centre's local days: weekly (Monday to Sunday, made on
the Monday after), monthly (made on the 1st), quarterly (made on the first day of the
next quarter) and annual (21 December to 20 December, made on 21 December)."""

from __future__ import annotations

from datetime import date, timedelta

from bot.stats.figures import Period
from bot.store.errors import ServiceError
from bot.store.stats import PeriodKind

KINDS = tuple(k.value for k in PeriodKind)
ANNUAL_DAY = (12, 21)  # the annual report's day (seed text: 每年12月份的21号)


def _month(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_starting(kind: str, start: date) -> Period:
    """The period of ``kind`` that starts on ``start``; a start that is not one is refused."""
    if kind == PeriodKind.weekly.value:
        if start.isoweekday() != 1:
            raise ServiceError(f"a weekly report starts on a Monday; {start} is not one", code="invalid_period")
        return Period(start, start + timedelta(days=7))
    if kind == PeriodKind.monthly.value:
        if start.day != 1:
            raise ServiceError(f"a monthly report starts on the 1st; {start} is not", code="invalid_period")
        return Period(start, _month(start, 1))
    if kind == PeriodKind.quarterly.value:
        if start.day != 1 or start.month not in (1, 4, 7, 10):
            raise ServiceError(f"a quarterly report starts on 1 January, April, July or October; not {start}",
                               code="invalid_period")
        return Period(start, _month(start, 3))
    if kind == PeriodKind.annual.value:
        if (start.month, start.day) != ANNUAL_DAY:
            raise ServiceError(f"an annual report runs from 21 December; {start} is not", code="invalid_period")
        return Period(start, date(start.year + 1, *ANNUAL_DAY))
    raise ServiceError(f"unknown report kind {kind!r}; one of {', '.join(KINDS)}", code="invalid_kind")


def last_complete(kind: str, today: date) -> Period:
    """The newest period of ``kind`` that has ended by ``today`` (local): the one its
    report is due for today or was due for earlier."""
    if kind == PeriodKind.weekly.value:
        monday = today - timedelta(days=today.isoweekday() - 1)
        return period_starting(kind, monday - timedelta(days=7))
    if kind == PeriodKind.monthly.value:
        return period_starting(kind, _month(today.replace(day=1), -1))
    if kind == PeriodKind.quarterly.value:
        quarter = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        return period_starting(kind, _month(quarter, -3))
    if kind == PeriodKind.annual.value:
        this_year = date(today.year, *ANNUAL_DAY)
        end = this_year if today >= this_year else date(today.year - 1, *ANNUAL_DAY)
        return period_starting(kind, date(end.year - 1, *ANNUAL_DAY))
    raise ServiceError(f"unknown report kind {kind!r}; one of {', '.join(KINDS)}", code="invalid_kind")

