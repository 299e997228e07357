"""The live dashboard (manager, admin, statistician, deputy): today's and this week's
main figures (from the rollup, today recounted at most every
``HOTLINE_STATS_DASHBOARD_FRESH_S``) and what stands right now (callers waiting for a
seat, open and overdue tickets)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.stats.figures import SATISFIED_FROM, Period, compute
from bot.stats.sqltime import local_day
from bot.store.models import OPEN_STATUSES, Handoff, HandoffState, Ticket, utcnow

# T4 on the dashboard: the completion receipts and the surveys (U3–U5).
SATISFACTION = ("receipts", "on_time_rate", "second_dispatches", "surveys_due", "surveys_answered",
                "survey_response_rate", "satisfaction_attitude", "satisfaction_quality")
MAIN = ("contacts", "machine_rate", "containment_rate", "handoff_rate", "abandoned", "abandonment_rate",
        "average_answer_wait_s", "repeat_report_rate")


def _main(figures: dict[str, Any]) -> dict[str, Any]:
    h = figures["handling"]
    return {"reports": figures["volume"]["total"], **{k: h[k] for k in MAIN},
            "by_handled_by": h["by_handled_by"], "by_channel": h["by_channel"],
            "by_hour": figures["volume"]["by_hour"],
            **{k: figures["satisfaction"]["totals"][k] for k in SATISFACTION}}


def dashboard(s: Session, tz: ZoneInfo, *, fresh_within_s: float = 30.0,
              now: datetime | None = None, satisfied_from: int = SATISFIED_FROM) -> dict[str, Any]:
    now = now or utcnow()
    today = local_day(now, tz)
    monday = today - timedelta(days=today.isoweekday() - 1)
    # Days before today as the nightly recount left them (settle_days 0); today recounted.
    week = compute(s, Period(monday, monday + timedelta(days=7)), tz, settle_days=0, now=now,
                   fresh_within_s=fresh_within_s, satisfied_from=satisfied_from)
    day = compute(s, Period(today, today + timedelta(days=1)), tz, settle_days=0, now=now,
                  fresh_within_s=fresh_within_s, satisfied_from=satisfied_from)
    waiting = s.execute(select(func.count()).select_from(Handoff).where(
        col(Handoff.state) == HandoffState.queued.value)).scalar_one()
    open_tickets = s.execute(select(func.count()).select_from(Ticket).where(
        col(Ticket.status).in_(OPEN_STATUSES))).scalar_one()
    overdue = s.execute(select(func.count()).select_from(Ticket).where(
        col(Ticket.status).in_(OPEN_STATUSES), col(Ticket.expected_resolution_date) < now)).scalar_one()
    return {
        "at": now.isoformat(), "timezone": tz.key, "today": {"day": today.isoformat(), **_main(day)},
        "week": {"start": monday.isoformat(), **_main(week)},
        "now": {"waiting": int(waiting), "open_tickets": int(open_tickets), "overdue": int(overdue)},
    }
