"""U3 on the job scheduler (bot/jobs/, APScheduler for real), SQLite and PostgreSQL: the
centre's receipt commits the survey's first call as a due job; the leader runs it
("place attempt 1 of survey S", as bot/app.py registers it); the call's end schedules
the next attempt two hours on as another due job; the sweep finds nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import time, timedelta
from typing import Any

import pytest
from aiohttp import web

from bot.app import SURVEY_CALLER_KEY, register_jobs
from bot.jobs import JOBS_KEY, Jobs
from bot.jobs import store as jobs_store
from bot.settings import SETTINGS_KEY, Settings
from bot.store import surveys
from bot.store.db import DB_KEY, Database
from bot.survey.caller import SurveyCaller
from tests.integration.test_jobs_scheduler import _clear_apscheduler, fast_settings, until
from tests.unit.test_surveys import resolved, survey_of

ALL_DAY = surveys.SurveyRules(attempts=3, retry_hours=2, calling_start=time(0), calling_end=None)


class RecordingPlacer:
    """The outbound calls' side the survey uses (voice/outbound.py is tested on its own)."""

    def __init__(self) -> None:
        self.on_ended: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {}
        self.placed: list[tuple[str, str, str | None]] = []

    async def place(self, number: str, purpose: str, *, ref_id: str | None = None,
                    requested_by: str | None = None, language: Any = "zh") -> dict[str, Any]:
        self.placed.append((number, purpose, ref_id))
        return {"id": len(self.placed), "channel_uuid": f"uuid-{len(self.placed)}"}


@pytest.fixture
async def running(demo_db: Database, settings: Settings) -> AsyncIterator[tuple[Jobs, RecordingPlacer]]:
    _clear_apscheduler(demo_db)
    fast = fast_settings(settings)
    app = web.Application()
    app[SETTINGS_KEY], app[DB_KEY] = fast, demo_db
    jobs = Jobs(app, demo_db, fast)
    app[JOBS_KEY] = jobs
    placer = RecordingPlacer()
    app[SURVEY_CALLER_KEY] = SurveyCaller(demo_db, ALL_DAY, None, jobs)
    register_jobs(app)
    await app[SURVEY_CALLER_KEY].start(placer)
    await jobs.start()
    try:
        yield jobs, placer
    finally:
        await jobs.stop()


async def test_the_receipt_schedules_the_call_and_the_call_the_retry(
        running: tuple[Jobs, RecordingPlacer], demo_db: Database) -> None:
    jobs, placer = running
    assert {"survey_call", "survey_sweep"} <= set(jobs.kinds)
    sid = survey_of(demo_db, resolved(demo_db)).id
    await until(lambda: bool(placer.placed), "the first survey call, run as a due job")
    assert placer.placed == [("13800138000", "survey", str(sid))]
    job = demo_db.call(jobs_store.get_job, "survey_call", f"survey-{sid}-1")
    assert job is not None
    await until(lambda: demo_db.call(jobs_store.get_job, "survey_call", f"survey-{sid}-1").state == "done",
                "the job done")
    await placer.on_ended["survey"]({"id": 1, "result": "no_answer", "hangup_cause": "NO_ANSWER"})
    attempt = demo_db.call(surveys.attempts_of, int(sid or 0))[0]
    retry = demo_db.call(jobs_store.get_job, "survey_call", f"survey-{sid}-2")
    assert retry is not None and retry.payload == {"survey_id": sid, "attempt": 2}
    assert attempt.ended_at is not None and retry.run_at == attempt.ended_at + timedelta(hours=2)
    assert placer.placed == [("13800138000", "survey", str(sid))]  # not before its time
