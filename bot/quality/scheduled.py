"""What quality inspection runs on the job scheduler (bot/jobs/), in the centre's time zone:

- ``qa_daily`` every day at ``HOTLINE_QA_SAMPLE_AT`` (03:00): Q1's sample of every post's
  work of the day before, and Q6's hand-off flags for what moved that day;
- ``qa_weekly_report`` every Monday at the same time: the weekly QA analysis report of
  the week before (Q8), a draft on the statistics' report machinery (bot/stats/reports.py).

Both are idempotent (one draw per day and post, one flag per contact and reason, one
report per week), so a second run after a leader died mid-run changes nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.quality import handoffs, sampler, weekly
from bot.settings import Settings
from bot.stats.reports import Options
from bot.stats.sqltime import day_start_utc, local_day
from bot.store.models import utcnow

if TYPE_CHECKING:
    from bot.jobs import JobContext, Jobs

DAILY_KIND = "qa_daily"
WEEKLY_KIND = "qa_weekly_report"


def daily(s: Session, settings: Settings, *, now: datetime | None = None) -> dict[str, int]:
    """Yesterday's draw and hand-off flags; returns how many samples and flags were made."""
    now = now or utcnow()
    tz = ZoneInfo(settings.timezone)
    day = local_day(now, tz) - timedelta(days=1)
    drawn = sampler.daily(s, day, tz, settings.qa_sample_rate, settings.qa_seed, now=now)
    flags = handoffs.detect(s, day_start_utc(day, tz), day_start_utc(day + timedelta(days=1), tz),
                            settings.qa_handoff_max_passes, settings.qa_handoff_max_wait_min * 60, now=now)
    return {"samples": sum(len(d.samples) for d in drawn), "flags": len(flags)}


async def _daily(ctx: JobContext) -> None:
    await ctx.db.run(daily, ctx.settings)


def weekly_report(s: Session, settings: Settings, *, now: datetime | None = None) -> int | None:
    """Q8: the weekly QA report of the week before, drafted for the inspectors (once)."""
    report, _created = weekly.generate_due(s, Options(ZoneInfo(settings.timezone), settings.stats_settle_days),
                                           now=now)
    return report.id


async def _weekly(ctx: JobContext) -> None:
    await ctx.db.run(weekly_report, ctx.settings)


def register(jobs: Jobs, settings: Settings) -> None:
    hour, minute = (int(x) for x in settings.qa_sample_at.split(":"))
    jobs.cron(DAILY_KIND, _daily, hour=hour, minute=minute, timeout_s=3600)
    # Monday: a draft with what was scored by then; the inspector refreshes it before submitting.
    jobs.cron(WEEKLY_KIND, _weekly, day_of_week="mon", hour=hour, minute=minute, timeout_s=3600)
