"""What runs on a schedule (T5): the reports that are due, and the nightly recount of the
rollup's last ``HOTLINE_STATS_SETTLE_DAYS`` days. Idempotent, so it may run as often as
the scheduler likes, from any number of processes."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlmodel import Session

from bot.settings import Settings
from bot.stats import reports, rollup
from bot.stats.reports import Options
from bot.stats.sqltime import local_day
from bot.store.models import utcnow

log = structlog.get_logger(__name__)


def recount_recent(s: Session, options: Options, *, now: datetime | None = None) -> int:
    """The nightly job: recount yesterday and the days before it that are not settled."""
    now = now or utcnow()
    yesterday = local_day(now, options.tz) - timedelta(days=1)
    first = yesterday - timedelta(days=max(1, int(options.settle_days)))
    return len(rollup.ensure(s, first, yesterday, options.tz, options.settle_days, now=now))


def run_scheduled(s: Session, settings: Settings, *, now: datetime | None = None) -> list[int]:
    """Recount the recent days, then generate every report that is due; returns the new reports' ids."""
    options = Options(ZoneInfo(settings.timezone), settings.stats_settle_days)
    recount_recent(s, options, now=now)
    made = reports.generate_due(s, options, now=now)
    for report in made:
        log.info("stats.report_due_generated", report_id=report.id, kind=report.kind, start=report.period_start)
    return [r.id for r in made if r.id is not None]
