"""The admin's view of the job scheduler (bot/jobs/).

    GET  /desk/admin/jobs                 which process leads, periodic kinds with their last
                                          success, jobs given up (with their errors), jobs
                                          waiting, the latest runs
    POST /desk/admin/jobs/{id}/retry      run a one-off job that gave up once more, now
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from aiohttp import web
from sqlmodel import Session

from bot.desk import pages
from bot.desk.auth import Identity, require_role
from bot.jobs import JOBS_KEY
from bot.jobs import store as jobs_store
from bot.jobs.models import Job, JobRun
from bot.store.db import DB_KEY
from bot.store.models import utc

log = structlog.get_logger(__name__)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:300] if (text or "").strip() else ""


def _when(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


def _job(j: Job) -> dict[str, Any]:
    return {"id": j.id, "kind": j.kind, "key": j.key, "run_at": utc(j.run_at), "state": j.state,
            "attempts": j.attempts, "error": j.last_error or "", "error_line": _first_line(j.last_error),
            "updated": utc(j.updated)}


def _run(r: JobRun) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "key": r.key, "attempt": r.attempt, "state": r.state,
            "error": r.error or "", "error_line": _first_line(r.error), "runner": r.runner,
            "started": utc(r.started), "finished": _when(r.finished), "next_try": _when(r.next_try)}


def _context(s: Session) -> dict[str, Any]:
    o = jobs_store.overview(s)
    return {"failed_jobs": [_job(j) for j in o.failed_jobs], "failed_runs": [_run(r) for r in o.failed_runs],
            "waiting": [_job(j) for j in o.waiting], "recent": [_run(r) for r in o.recent],
            "counts": o.counts, "last_success": jobs_store.last_successes(s)}


async def _page(request: web.Request, who: Identity, *, status: int = 200, error: str | None = None) -> web.Response:
    ctx = await request.app[DB_KEY].run(_context)
    jobs = request.app.get(JOBS_KEY)
    periodic = [] if jobs is None else [
        {"name": k.name, "schedule": str(k.trigger), "retry": k.retry, "max_attempts": k.max_attempts}
        for k in jobs.kinds.values() if k.trigger is not None]
    return pages.render(request, "admin_jobs.html", status=status, who=who, error=error,
                        scheduler=jobs.status() if jobs is not None else None, periodic=periodic, **ctx)


@require_role("admin")
async def jobs_page(request: web.Request, who: Identity) -> web.StreamResponse:
    return await _page(request, who)


@require_role("admin")
async def retry(request: web.Request, who: Identity) -> web.StreamResponse:
    job_id = int(request.match_info["id"])
    if not await request.app[DB_KEY].run(jobs_store.retry_failed, job_id):
        return await _page(request, who, status=409,
                           error=f"Job {job_id} has not given up (it is waiting, running or done): nothing to retry.")
    log.info("desk.job_retry", username=who.username, job_id=job_id)
    return pages.redirect("/desk/admin/jobs")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/desk/admin/jobs", jobs_page)
    app.router.add_post(r"/desk/admin/jobs/{id:[0-9]{1,9}}/retry", retry)
