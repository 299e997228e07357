"""What runs on the job scheduler (bot/jobs/) for the statistics (T5), in the centre's
time zone:

- ``stats_rollup_recount`` nightly (``HOTLINE_STATS_ROLLUP_AT``, 01:30): the rollup's
  last ``HOTLINE_STATS_SETTLE_DAYS`` days recounted, so late changes are taken in;
- ``stats_reports_due`` daily (``HOTLINE_STATS_REPORTS_AT``, 06:00): every report whose
  period has ended and that was not made yet becomes a draft — the weekly one on
  Monday, the monthly on the 1st, the quarterly on the quarter's first day, the annual
  on 21 December (a run missed while no leader ran happens when one starts).

Both are idempotent (the rollup is rebuilt, not added to; one draft per kind and period),
so a second run after a leader died mid-run changes nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import structlog
from sqlmodel import Session

from bot.settings import Settings
from bot.stats import reports, rollup
from bot.stats.reports import Options
from bot.stats.sqltime import local_day
from bot.store.models import utcnow

if TYPE_CHECKING:
    from bot.jobs import JobContext, Jobs

log = structlog.get_logger(__name__)


def options_of(settings: Settings) -> Options:
    return Options(ZoneInfo(settings.timezone), settings.stats_settle_days, settings.survey_satisfied_from)


def recount_recent(s: Session, options: Options, *, now: datetime | None = None) -> int:
    """Recount yesterday and the days before it that are not settled; returns how many."""
    now = now or utcnow()
    yesterday = local_day(now, options.tz) - timedelta(days=1)
    first = yesterday - timedelta(days=max(1, int(options.settle_days)))
    return len(rollup.ensure(s, first, yesterday, options.tz, options.settle_days, now=now))


def reports_due(s: Session, options: Options, *, now: datetime | None = None) -> list[int]:
    """Generate every report that is due; returns the new reports' ids."""
    made = reports.generate_due(s, options, now=now)
    for report in made:
        log.info("stats.report_due_generated", report_id=report.id, kind=report.kind, start=report.period_start)
    return [r.id for r in made if r.id is not None]


async def _recount(ctx: JobContext) -> None:
    await ctx.db.run(recount_recent, options_of(ctx.settings))


async def _reports(ctx: JobContext) -> None:
    await ctx.db.run(reports_due, options_of(ctx.settings))


def register(jobs: Jobs, settings: Settings) -> None:
    hour, minute = (int(x) for x in settings.stats_rollup_at.split(":"))
    jobs.cron("stats_rollup_recount", _recount, hour=hour, minute=minute, timeout_s=3600)
    hour, minute = (int(x) for x in settings.stats_reports_at.split(":"))
    jobs.cron("stats_reports_due", _reports, hour=hour, minute=minute, timeout_s=3600)
