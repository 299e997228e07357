"""Jobs that run once: periodic sweeps, jobs due at a time, retries — kept in the
database, run by one leading bot process (README "Jobs").

The API (every bot process builds the same :class:`Jobs` in ``bot/app.py``; get it with
``jobs_of(app)``):

Register kinds while the app is built (before it starts)::

    jobs = jobs_of(app)
    jobs.every("deadline_watch", settings.sla_sweep_s, sweep)          # interval, seconds
    jobs.cron("nightly_archive", archive, hour=2, minute=30)           # HOTLINE_TIMEZONE
    jobs.kind("survey_call", call, max_attempts=3, timeout_s=900)      # one-off jobs

    async def call(ctx: JobContext) -> None:       # a handler
        survey_id = ctx.payload["survey"]         # JSON payload given when scheduled
        await ctx.db.run(...)                     # store work off the event loop
        outbound = ctx.app[OUTBOUND_CALLS_KEY]    # the leader process's services

Schedule and cancel from any process (leader or not)::

    await jobs_of(app).schedule_once("survey_call", f"survey-{sid}-1", run_at, {"survey": sid})
    await jobs_of(app).cancel("survey_call", f"survey-{sid}-1")
    # or inside a transaction of your own (commits with your other writes):
    bot.jobs.store.schedule_once(session, "survey_call", key, run_at, payload)

Semantics:

* (kind, key) names one job: scheduling it again changes nothing (``replace=True``
  moves a job that has not started); a job that ran never runs again under that key.
  Use a new key for a new job (``survey-17-2`` for the second attempt of a call).
* A handler that raises (or exceeds ``timeout_s``) is retried with exponential backoff
  (``HOTLINE_JOBS_RETRY_BASE_S`` doubling up to ``HOTLINE_JOBS_RETRY_MAX_S``) until
  ``max_attempts`` (``HOTLINE_JOBS_MAX_ATTEMPTS``); then the job shows, with its error,
  on ``/desk/admin/jobs``. A periodic kind retries only with ``retry=True`` (a sweep's
  next run is its retry).
* A job runs at least once: if the leader dies mid-run, the next leader runs it again.
  Make a handler's effects idempotent per item (a unique constraint on what it writes,
  each item committed in one transaction), so that a second run does only the rest.
* Due one-off jobs start within ``HOTLINE_JOBS_POLL_S`` (2 s) of their time.
* ``/metrics``: ``hotline_jobs_total{kind,result}``,
  ``hotline_job_last_success_timestamp_seconds{kind}``, ``hotline_jobs_leader``;
  ``/healthz`` says under ``jobs`` whether this process leads.

A chore that acts on one process's own memory (its web-chat conversations) is not a job:
it stays a per-process loop (``bot/periodic.py``).
"""

from __future__ import annotations

from aiohttp import web

from bot.jobs.scheduler import Handler, JobContext, JobKind, Jobs

JOBS_KEY = web.AppKey("jobs", Jobs)


def jobs_of(app: web.Application) -> Jobs:
    return app[JOBS_KEY]


__all__ = ["JOBS_KEY", "Handler", "JobContext", "JobKind", "Jobs", "jobs_of"]
