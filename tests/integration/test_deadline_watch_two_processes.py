"""Exactly once with two real bot processes on one PostgreSQL (issue 11 items 1, 2, 6):
two ``python -m bot serve`` processes, a deadline sweep every second, tickets overdue
the moment they are seen (each needs a warning, an alarm with a chase, a violation and
the surveyor's task). The leader is killed with SIGKILL in the middle of a sweep; the
other process takes the lead, marks the interrupted run and finishes the sweep, and
every ticket ends with each of its effects exactly once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text
from sqlmodel import Session, col, func, select

from bot.jobs.models import JobRun
from bot.sla.models import DeadlineViolation, DeadlineWatch, TicketEvent
from bot.store import service, workflow
from bot.store.db import Database
from bot.store.models import DeskTask, Ticket, utcnow
from bot.store.workflow import Actor
from bot.world.loader import load_world
from bot.world.parse import parse_world_file
from tests.conftest import DEMO_WORLD, REPO_ROOT, _empty_postgres

pytestmark = pytest.mark.postgres

BATCH = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def overdue_tickets(db: Database, prefix: str, n: int) -> list[str]:
    """Tickets dispatched 25 h ago to a 24 h centre: the first look warns and alarms."""
    at = utcnow() - timedelta(hours=25)

    def make(s: Session) -> list[str]:
        ids = []
        for i in range(n):
            data = service.ReportData(conversation_id=f"{prefix}-{i}", channel="webchat", language="zh",
                                      kind="new", fault_number="057187650001", contact_number="13800138000",
                                      symptom_category="no_dial_tone")
            tid = service.create_report(s, data).ticket_id
            workflow.perform(s, tid, "approve_dispatch", Actor("sen", "senior"), reason="ok",
                             params={"fault_class": "其他"}, now=at)
            ids.append(tid)
        return ids

    return db.call(make)


def count(db: Database, model: type, *where: object) -> int:
    return int(db.call(lambda s: s.exec(select(func.count()).select_from(model).where(*where)).one()))


class Bot:
    def __init__(self, name: str, db_url: str, tmp: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "HOTLINE_DATABASE_URL": db_url, "HOTLINE_PORT": str(self.port),
               "HOTLINE_VOICE_ENABLED": "false", "HOTLINE_SLA_SWEEP_S": "1", "HOTLINE_JOBS_LEADER_RETRY_S": "0.3",
               "HOTLINE_JOBS_POLL_S": "0.5", "HOTLINE_RASA_URL": "http://127.0.0.1:9",
               "HOTLINE_CALL_RECORDINGS_DIR": str(tmp / f"calls-{name}"), "HOTLINE_LOG_JSON": "false",
               "HOTLINE_TIMEZONE": "Asia/Shanghai"}
        self.log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=REPO_ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def health(self) -> dict[str, object] | None:
        import asyncio

        async def get() -> dict[str, object] | None:
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s, \
                        s.get(f"http://127.0.0.1:{self.port}/healthz") as r:
                    return dict(await r.json())
            except (aiohttp.ClientError, TimeoutError):
                return None

        return asyncio.run(get())

    def leads(self) -> bool:
        body = self.health()
        return bool(body and isinstance(body.get("jobs"), dict) and body["jobs"].get("leader"))  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _runs(s: Session) -> list[JobRun]:
    return list(s.exec(select(JobRun).where(JobRun.kind == "deadline_watch")))


def wait_for(check: object, what: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def pg_db(pg_url: str, tmp_path: Path) -> Iterator[Database]:
    db = Database(pg_url)
    _empty_postgres(db)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))
    load_world(db, parse_world_file(DEMO_WORLD), current_file=tmp_path / "world.yml")
    yield db
    db.dispose()


def test_kill_the_leader_mid_sweep_and_the_other_finishes_once(pg_db: Database, pg_url: str,
                                                               tmp_path: Path) -> None:
    db = pg_db
    first = Bot("first", pg_url, tmp_path)
    second: Bot | None = None
    try:
        wait_for(first.leads, "the first process to lead")
        second = Bot("second", pg_url, tmp_path)
        wait_for(lambda: second.health() is not None, "the second process to answer")
        assert not second.leads()
        watched_before = count(db, DeadlineWatch)  # the demo world's own open faults
        tickets: list[str] = []  # grows batch by batch; alarmed() counts them all

        def alarmed() -> int:
            return count(db, DeadlineWatch, col(DeadlineWatch.alarmed_at).is_not(None),
                         col(DeadlineWatch.ticket_id).in_(tickets))

        killed = False
        for attempt in range(3):  # a sweep faster than our look: give it a bigger batch
            tickets += overdue_tickets(db, f"b{attempt}", BATCH * (attempt + 1))
            total = len(tickets)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                done = alarmed()
                if 0 < done < total:
                    first.proc.send_signal(signal.SIGKILL)
                    first.proc.wait()
                    killed = True
                    break
                if done == total:
                    break
                time.sleep(0.01)
            if killed:
                break
        assert killed, "never caught the leader in the middle of a sweep"
        done_at_kill, killed_at = alarmed(), time.monotonic()
        wait_for(second.leads, "the second process to take the lead", timeout=30)
        took_over = time.monotonic() - killed_at
        wait_for(lambda: alarmed() == len(tickets), "the new leader to finish the sweep", timeout=60)
        finished = time.monotonic() - killed_at
        time.sleep(2.5)  # two more sweeps: they must find nothing left to do
    finally:
        first.stop()
        if second is not None:
            second.stop()

    n = len(tickets)
    print(f"killed the leader with {done_at_kill} of {n} tickets alarmed; the other led after "  # (-s)
          f"{took_over:.1f} s and finished {finished:.1f} s after the kill; "
          f"runs: {sorted((r.state, r.runner.split(':')[1]) for r in db.call(_runs))}")
    assert 0 < done_at_kill < n
    assert count(db, DeadlineWatch) == watched_before + n
    assert count(db, DeadlineWatch, col(DeadlineWatch.ticket_id).in_(tickets)) == n
    assert count(db, DeadlineViolation, col(DeadlineViolation.ticket_id).in_(tickets)) == n
    assert count(db, DeskTask, DeskTask.kind == "explain_delay", col(DeskTask.ticket_id).in_(tickets)) == n
    assert count(db, DeskTask, DeskTask.kind == "branch_notice", col(DeskTask.ticket_id).in_(tickets)) == 2 * n
    assert count(db, TicketEvent, col(TicketEvent.ticket_id).in_(tickets)) == 2 * n
    chases = db.call(lambda s: list(s.exec(select(Ticket.chase_count).where(col(Ticket.id).in_(tickets)))))
    assert chases == [1] * n
    runs = db.call(lambda s: list(s.exec(select(JobRun).where(JobRun.kind == "deadline_watch"))))
    assert any(r.state == "interrupted" for r in runs)  # the run the kill cut short
    assert {r.runner.split(":")[1] for r in runs if r.state == "succeeded"} >= {str(second.proc.pid)}
