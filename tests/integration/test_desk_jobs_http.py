"""The admin's jobs page (/desk/admin/jobs, bot/desk/jobs.py): admins only (others 403),
a job that gave up is listed with its error and can be run again; the scheduler's
status says whether this process leads. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp import web
from sqlmodel import Session

from bot import desk
from bot.jobs import JOBS_KEY, JobContext, Jobs
from bot.jobs import store as jobs_store
from bot.jobs.models import RunState
from bot.settings import Settings
from bot.store.db import Database
from bot.store.models import DeskUser, utcnow
from tests.conftest import AClient, make_test_app
from tests.integration.desk_client import Client, sign_in


@pytest.fixture
async def web_client(aiohttp_client: AClient, db: Database, settings: Settings, password_hash: str) -> Client:
    def add(s: Session) -> None:
        for name, role in (("adm", "admin"), ("sen", "senior")):
            s.add(DeskUser(username=name, display_name=name, role=role, password_hash=password_hash))

    db.call(add)
    app = make_test_app(db, settings)
    jobs = Jobs(app, db, settings)  # registered, not started: this process does not lead

    async def nightly(ctx: JobContext) -> None:
        return None

    jobs.cron("nightly_archive", nightly, hour=2, minute=30)
    app[JOBS_KEY] = jobs
    desk.setup_routes(app)
    return await aiohttp_client(app)


async def test_jobs_page_lists_what_gave_up_and_runs_it_again(web_client: Client, db: Database) -> None:
    def failures(s: Session) -> int:
        jobs_store.schedule_once(s, "survey_call", "survey-7-1", utcnow() - timedelta(minutes=5), {"survey": 7})
        [job] = jobs_store.claim_due(s, "host:1:1", utcnow(), 1)
        assert job.id is not None
        run = jobs_store.start_run(s, "survey_call", "survey-7-1", 1, "host:1:1", job_id=job.id)
        assert run is not None
        jobs_store.finish_run(s, run, RunState.failed, error="ConnectionError: <no gateway>\ntraceback …")
        jobs_store.job_failed(s, job.id, "ConnectionError: <no gateway>\ntraceback …", None)
        periodic = jobs_store.start_run(s, "nightly_archive", "2026-12-06T18:30:00Z", 1, "host:1:1")
        assert periodic is not None
        jobs_store.finish_run(s, periodic, RunState.failed, error="OSError: disk full")
        return job.id

    job_id = db.call(failures)
    adm, sen = await sign_in(web_client, "adm"), await sign_in(web_client, "sen")
    status, _ = await sen.get("/desk/admin/jobs")
    assert status == 403
    status, page = await adm.get("/desk/admin/jobs")
    assert status == 200
    assert f'id="failed-job-{job_id}"' in page and "survey-7-1" in page
    assert "ConnectionError: &lt;no gateway&gt;" in page  # errors are shown as text
    assert "OSError: disk full" in page and "nightly_archive" in page
    assert "Another process runs the jobs" in page and "cron[hour=&#39;2&#39;, minute=&#39;30&#39;]" in page
    status, overview = await adm.get("/desk/admin")
    assert status == 200 and "2 given up" in overview
    status, _, location = await adm.post(f"/desk/admin/jobs/{job_id}/retry")
    assert (status, location) == (303, "/desk/admin/jobs")
    job = db.call(jobs_store.get_job, "survey_call", "survey-7-1")
    assert job is not None and job.state == "scheduled" and job.attempts == 1
    status, text, _ = await adm.post(f"/desk/admin/jobs/{job_id}/retry")  # not given up any more
    assert status == 409 and "nothing to retry" in text
    status, _, _ = await adm.post(f"/desk/admin/jobs/{job_id}/retry", csrf=None)
    assert status == 403


def test_healthz_says_who_leads(settings: Settings) -> None:
    jobs = Jobs(web.Application(), Database("sqlite://"), settings)
    assert jobs.status()["leader"] is False and jobs.status()["lock"].startswith("in-memory")
