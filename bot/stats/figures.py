"""The figures of a period (T2 volume, T3 handling, T4 satisfaction), each one SQL sum
over the daily rollup, after the rollup's unsettled days of the period were recomputed
from the store (:func:`bot.stats.rollup.ensure`). Definitions: ``bot/stats/FIGURES.md``.

The result is plain JSON (what a report freezes as its snapshot): tables are lists of
``[key, n]`` rows in a fixed order, rates are fractions (``None`` when nothing was counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from bot.stats import rollup
from bot.stats.cubes import KEYS, SURVEY_OUTCOMES, WAIT_BUCKETS
from bot.stats.sqltime import local_day
from bot.store.models import ExchangeRow, MeasurementCentreRow, utc, utcnow
from bot.store.stats import StatsDaily

# 2: T4 gained the surveys and second dispatches (U3–U5); a version-1 snapshot (a report
# frozen before) has none of them and lists them under ``not_yet_recorded``: it is shown as it is.
FIGURES_VERSION = 2
DAILY = StatsDaily.__table__  # type: ignore[attr-defined]

CHANNELS = ("phone", "webchat", "other")
HANDLED_BY = ("machine", "indirect", "person", "none")
STEP_ORDER = ("A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9", "A10", "A11", "J1", "J", "S", "M")
KINDS = ("new", "repeat", "supplement")
SATISFIED_FROM = 4  # U4: a rating of 4 (satisfied) or 5 (very satisfied); HOTLINE_SURVEY_SATISFIED_FROM
RATINGS = ("1", "2", "3", "4", "5")
SURVEY_RESULTS = ("satisfied", "dissatisfied", "not_fixed")
SURVEY_STATES = ("completed", "stopped", "opted_out", "do_not_call", "unreachable", "no_contact")
SECOND_DISPATCH_WHY = ("not_fixed", "telecom")
# The counts of a centre's row (summed into the totals); its rates are computed from them.
SURVEY_COUNTS = ("second_dispatches", "surveys_due", *(f"surveys_{k}" for k in SURVEY_OUTCOMES),
                 "attitude_rated", "attitude_satisfied", "quality_rated", "quality_satisfied")
_EMPTY_CENTRE = ("dispatches", "receipts", "receipts_on_time", "receipts_late", "returns", "chases", "reopened",
                 "warnings", "alarms", "violations", *SURVEY_COUNTS)


@dataclass(frozen=True)
class Period:
    """Local days ``start`` … ``end`` (exclusive)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("a period ends after it starts")

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "last": self.last.isoformat()}


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


class _Rollup:
    """Sums over one period of the rollup."""

    def __init__(self, s: Session, period: Period) -> None:
        self.s, self.period = s, period

    def sums(self, cube: str, keys: tuple[str, ...], **where: Any) -> list[tuple[Any, ...]]:
        """[(*keys, n, v)] for the period, grouped by ``keys``; ``where`` filters on keys
        (a value, or a tuple of values)."""
        names = KEYS[cube]
        cols = [DAILY.c[f"k{names.index(k) + 1}"] for k in keys]
        conditions = [DAILY.c.cube == cube, DAILY.c.day >= self.period.start.isoformat(),
                      DAILY.c.day < self.period.end.isoformat()]
        for k, value in where.items():
            column = DAILY.c[f"k{names.index(k) + 1}"]
            conditions.append(column.in_(value) if isinstance(value, tuple) else column == value)
        q = select(*cols, func.sum(DAILY.c.n), func.sum(DAILY.c.v)).where(*conditions).group_by(*cols)
        return [tuple(r) for r in self.s.execute(q)]

    def table(self, cube: str, key: str, order: tuple[str, ...] | None = None, **where: Any) -> list[list[Any]]:
        """[[key, n]]: in ``order`` (every value of it, zeros included, then any other) or by n."""
        counts = {str(r[0]): int(r[1] or 0) for r in self.sums(cube, (key,), **where)}
        if order is not None:
            rest = sorted(k for k in counts if k not in order)
            return [[k, counts.get(k, 0)] for k in (*order, *rest) if k in order or counts.get(k)]
        return [[k, n] for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    def total(self, cube: str, **where: Any) -> int:
        rows = self.sums(cube, (), **where)
        return int(rows[0][0] or 0) if rows else 0

    def total_v(self, cube: str, **where: Any) -> float:
        rows = self.sums(cube, (), **where)
        return float(rows[0][1] or 0.0) if rows else 0.0


def _n(table: list[list[Any]], key: str) -> int:
    return next((int(row[-1]) for row in table if row[0] == key), 0)


def volume(r: _Rollup, s: Session) -> dict[str, Any]:
    """T2: fault reports by kind, symptom category, fault class, channel, branch,
    exchange, local hour of day, day of week and day."""
    by_kind = r.table("rep_kind", "kind", KINDS)
    ex = ExchangeRow.__table__  # type: ignore[attr-defined]
    names: dict[str, str] = {str(k): str(v) for k, v in s.execute(select(ex.c.prefix, ex.c.name)).all()}
    by_exchange = [[k, names.get(k, ""), n] for k, n in r.table("rep_place", "exchange")]
    days = []
    d = r.period.start
    daily = {str(k): int(n or 0) for k, n, _v in _by_day(r, "rep_kind")}
    while d < r.period.end:
        days.append([d.isoformat(), daily.get(d.isoformat(), 0)])
        d += timedelta(days=1)
    return {
        "total": sum(int(row[1]) for row in by_kind),
        "by_kind": by_kind,
        "by_symptom": r.table("rep_kind", "symptom"),
        "by_fault_class": r.table("rep_kind", "fault_class"),
        "by_channel": r.table("rep_kind", "channel", CHANNELS),
        "by_branch": r.table("rep_place", "branch"),
        "by_exchange": by_exchange,
        "by_hour": r.table("rep_time", "hour", tuple(f"{h:02d}" for h in range(24))),
        "by_weekday": r.table("rep_time", "weekday", tuple(str(w) for w in range(1, 8))),
        "by_day": days,
    }


def _by_day(r: _Rollup, cube: str) -> list[tuple[Any, ...]]:
    q = select(DAILY.c.day, func.sum(DAILY.c.n), func.sum(DAILY.c.v)).where(
        DAILY.c.cube == cube, DAILY.c.day >= r.period.start.isoformat(), DAILY.c.day < r.period.end.isoformat(),
    ).group_by(DAILY.c.day)
    return [tuple(row) for row in r.s.execute(q)]


def handling(r: _Rollup) -> dict[str, Any]:
    """T3: contacts by channel, by who handled them, where they were settled, customer
    type; containment, handoffs and their reasons, abandonment by step and by wait,
    repeat reports."""
    contacts = r.total("contact")
    contained = r.total("contact", contained="contained")
    by_handled = r.table("contact", "handled_by", HANDLED_BY)
    channel_x_handled = {ch: {hb: 0 for hb in HANDLED_BY} for ch in CHANNELS}
    for ch, hb, n, _v in r.sums("contact", ("channel", "handled_by")):
        channel_x_handled.setdefault(str(ch), {})[str(hb)] = int(n or 0)
    abandoned_by_step = r.table("contact", "settled_at", STEP_ORDER, last_outcome="abandoned", handled_by="none")
    abandoned = sum(int(row[1]) for row in abandoned_by_step)
    handoffs = r.total("handoff")
    answered_wait = r.table("handoff", "wait_bucket", WAIT_BUCKETS, result="answered")
    abandoned_wait = r.table("handoff", "wait_bucket", WAIT_BUCKETS, result="abandoned")
    answered = r.total("handoff", result="answered")
    kinds = r.table("rep_kind", "kind", KINDS)
    new, repeat = _n(kinds, "new"), _n(kinds, "repeat")
    handled = {row[0]: row[1] for row in by_handled}
    return {
        "contacts": contacts,
        "by_channel": r.table("contact", "channel", CHANNELS),
        "by_handled_by": by_handled,
        "channel_x_handled_by": channel_x_handled,
        "by_settled_at": r.table("contact", "settled_at", STEP_ORDER),
        "by_customer_type": r.table("contact", "customer_type"),
        "machine_rate": _rate(handled.get("machine", 0), contacts),
        "contained": contained,
        "containment_rate": _rate(contained, contacts),
        "handed_off": contacts - contained,
        "handoff_rate": _rate(contacts - contained, contacts),
        "handoffs": handoffs,
        "handoff_reasons": r.table("handoff", "reason"),
        "handoff_results": r.table("handoff", "result", ("answered", "abandoned", "returned", "waiting")),
        "abandoned": abandoned,
        "abandonment_rate": _rate(abandoned, contacts),
        "abandoned_by_step": abandoned_by_step,
        "answered_by_wait": answered_wait,
        "abandoned_by_wait": abandoned_wait,
        "average_answer_wait_s": round(r.total_v("handoff", result="answered") / answered, 1) if answered else None,
        "repeat_reports": repeat,
        "repeat_report_rate": _rate(repeat, new + repeat),
    }


def satisfaction(r: _Rollup, s: Session, satisfied_from: int = SATISFIED_FROM) -> dict[str, Any]:
    """T4: per measurement centre, dispatches, completion receipts (on time / late),
    returns, chases and reopenings, the average time from dispatch to receipt; the
    deadline watch's warnings, alarms and violations (U1–U2) with their lateness; the
    surveys (U3–U5): due, answered, refused, unreachable, the response rate, satisfaction
    with attitude and with quality (ratings of ``satisfied_from`` or more), and second
    dispatches."""
    centres = {row[0]: row[1] for row in s.execute(select(
        MeasurementCentreRow.__table__.c.id, MeasurementCentreRow.__table__.c.name))}  # type: ignore[attr-defined]
    rows: dict[str, dict[str, Any]] = {}

    def row_of(centre: Any) -> dict[str, Any]:
        return rows.setdefault(str(centre), {"centre": str(centre), "name": centres.get(centre, ""),
                                             **dict.fromkeys(_EMPTY_CENTRE, 0), "_repair_s": 0.0, "_late_s": 0.0})

    for centre, event, n, v in r.sums("deadline", ("centre", "event")):
        row = row_of(centre)
        row[f"{event}s"] += int(n or 0)
        if event == "violation":
            row["_late_s"] += float(v or 0.0)
    for centre, action, timeliness, n, v in r.sums("centre", ("centre", "action", "timeliness")):
        row = row_of(centre)
        key = {"approve_dispatch": "dispatches", "receipt": "receipts", "return_to_review": "returns",
               "chase": "chases", "reopen": "reopened"}[str(action)]
        row[key] += int(n or 0)
        if action == "receipt":
            row["_repair_s"] += float(v or 0.0)
            if timeliness == "on_time":
                row["receipts_on_time"] += int(n or 0)
            elif timeliness == "late":
                row["receipts_late"] += int(n or 0)
    attitude: dict[str, int] = {}
    quality: dict[str, int] = {}
    by_result: dict[str, int] = {}
    by_state: dict[str, int] = {}
    by_why: dict[str, int] = {}
    for centre, event, detail, result, att, qual, n, _v in r.sums(
            "survey", ("centre", "event", "detail", "result", "attitude", "quality")):
        row, count = row_of(centre), int(n or 0)
        if event == "due":
            row["surveys_due"] += count
        elif event == "second_dispatch":
            row["second_dispatches"] += count
            by_why[str(detail)] = by_why.get(str(detail), 0) + count
        else:
            row[f"surveys_{event}"] += count
            by_state[str(detail)] = by_state.get(str(detail), 0) + count
            if event == "answered":
                key = str(result) or "none"
                by_result[key] = by_result.get(key, 0) + count
            for given, name, dist in ((att, "attitude", attitude), (qual, "quality", quality)):
                if given:
                    dist[str(given)] = dist.get(str(given), 0) + count
                    row[f"{name}_rated"] += count
                    if int(given) >= satisfied_from:
                        row[f"{name}_satisfied"] += count
    by_centre = []
    for centre in sorted(rows):
        row = rows[centre]
        repair, late = row.pop("_repair_s"), row.pop("_late_s")
        row["average_repair_hours"] = round(repair / row["receipts"] / 3600, 2) if row["receipts"] else None
        row["violation_late_hours"] = round(late / 3600, 2)
        _rates(row)
        by_centre.append(row)
    totals: dict[str, Any] = {k: sum(row[k] for row in by_centre) for k in _EMPTY_CENTRE}
    _rates(totals)
    return {"by_centre": by_centre, "totals": totals, "surveys": {
        "satisfied_from": satisfied_from,
        "attitude": _ordered(attitude, RATINGS), "quality": _ordered(quality, RATINGS),
        "by_result": _ordered(by_result, SURVEY_RESULTS), "by_state": _ordered(by_state, SURVEY_STATES),
        "second_dispatches_by_why": _ordered(by_why, SECOND_DISPATCH_WHY),
    }}


def _rates(row: dict[str, Any]) -> None:
    row["on_time_rate"] = _rate(row["receipts_on_time"], row["receipts_on_time"] + row["receipts_late"])
    finished = sum(row[f"surveys_{k}"] for k in SURVEY_OUTCOMES)
    row["survey_response_rate"] = _rate(row["surveys_answered"], finished)
    row["satisfaction_attitude"] = _rate(row["attitude_satisfied"], row["attitude_rated"])
    row["satisfaction_quality"] = _rate(row["quality_satisfied"], row["quality_rated"])


def _ordered(counts: dict[str, int], order: tuple[str, ...]) -> list[list[Any]]:
    """[[key, n]]: every key of ``order`` (zeros included), then any other."""
    return [[k, counts.get(k, 0)] for k in (*order, *sorted(k for k in counts if k not in order))]


def compute(s: Session, period: Period, tz: ZoneInfo, *, settle_days: float = 7.0,
            now: datetime | None = None, fresh_within_s: float = 0.0,
            satisfied_from: int = SATISFIED_FROM) -> dict[str, Any]:
    """Every figure of the period, as JSON. The rollup's unsettled days up to today are
    recomputed first (in this transaction)."""
    now = now or utcnow()
    last = min(period.last, local_day(now, tz))
    refreshed = rollup.ensure(s, period.start, last, tz, settle_days, now=now,
                              fresh_within_s=fresh_within_s) if last >= period.start else []
    r = _Rollup(s, period)
    return {
        "version": FIGURES_VERSION,
        "period": period.as_dict(),
        "timezone": tz.key,
        "computed_at": utc(now).isoformat(),
        "refreshed_days": len(refreshed),
        "volume": volume(r, s),
        "handling": handling(r),
        "satisfaction": satisfaction(r, s, satisfied_from),
    }
