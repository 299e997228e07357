"""Statistics on the desk and over HTTP (T1–T5): each post sees what it may (enforced on
the server), the statistician and a deputy take a weekly report through its review in
forms, and other systems read figures and exports with the staff token; bad input is
a 4xx with a reason. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from openpyxl import load_workbook

from bot import desk
from bot.api import stats as api_stats
from bot.settings import Settings
from bot.stats import reports
from bot.stats.reports import Who
from bot.store.db import Database
from bot.store.models import DeskUser
from bot.store.stats import StatsReport
from tests import stats_world
from tests.conftest import AClient, make_test_app
from tests.integration.desk_client import Client, sign_in

STAFF = {"Authorization": "Bearer staff-secret"}


@pytest.fixture
async def stats_client(aiohttp_client: AClient, db: Database, settings: Settings, password_hash: str) -> Any:
    stats_world.load(db, stats_world.read("week.yml"))

    def accounts(s: Any) -> None:
        for name, role in (("stat", "statistician"), ("dep", "deputy"), ("jun", "junior"), ("man", "manager")):
            s.add(DeskUser(username=name, display_name=name, role=role, password_hash=password_hash))

    db.call(accounts)
    app = make_test_app(db, settings)
    desk.setup_routes(app)
    api_stats.setup_routes(app)
    return await aiohttp_client(app)


# The pages draw the same charts on either store: once is enough (the figures are compared
# on both in tests/unit/test_stats_figures.py, the API below runs on both).
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_review_in_the_desk_and_who_may_see_it(stats_client: Client, db: Database) -> None:
    stat, dep, jun = [await sign_in(stats_client, n) for n in ("stat", "dep", "jun")]
    assert (await jun.get("/desk/reports"))[0] == 403
    assert (await jun.get("/desk/dashboard"))[0] == 403
    status, body = await stat.get("/desk/dashboard")
    assert status == 200 and 'data-figure="contacts"' in body and 'data-figure="satisfaction_quality"' in body
    status, _text, location = await stat.post("/desk/reports/generate", kind="weekly", start="2026-11-02")
    assert status == 303 and location is not None
    report_id = int(location.rsplit("/", 1)[1])
    assert (await stat.post("/desk/reports/generate", kind="weekly", start="2026-11-03"))[0] == 400
    assert (await dep.post("/desk/reports/generate", kind="weekly", start="2026-11-02"))[0] == 403
    status, page = await stat.get(location)
    assert status == 200 and 'data-chart="volume_by_day"' in page and "<svg" in page
    assert 'id="surveys"' in page and 'data-chart="satisfaction_ratings"' in page  # T4: U3–U5
    assert (await dep.post(f"{location}/approve"))[0] == 409  # a draft is not approved
    assert (await stat.post(f"{location}/comment", text="<b>核对</b>"))[0] == 303
    assert (await stat.post(f"{location}/submit"))[0] == 303
    assert (await stat.post(f"{location}/approve"))[0] == 403
    assert (await dep.post(f"{location}/approve", text="同意上报"))[0] == 303
    status, page = await dep.get(location)
    assert 'data-state="approved"' in page and "&lt;b&gt;核对&lt;/b&gt;" in page
    r = await stats_client.get(f"{location}/export.xlsx", headers=dep.cookie)
    assert r.status == 200 and load_workbook(io.BytesIO(await r.read())).sheetnames[0] == "概要"
    assert (await jun.get(f"{location}/export.pdf"))[0] == 403
    row = db.call(reports.get, report_id)
    assert (row.state, row.decided_by) == ("approved", "dep")


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_a_report_frozen_before_the_surveys_still_shows(stats_client: Client, db: Database) -> None:
    """A report approved before the surveys were counted keeps its version-1 numbers: its
    page says which figures were not recorded yet (never zeros) and it still exports."""
    frozen = json.loads((stats_world.FIXTURES / "snapshot_v1.json").read_text(encoding="utf-8"))

    def approved(s: Any) -> int:
        row = StatsReport(kind="weekly", period_start="2026-11-02", period_end="2026-11-09", state="approved",
                          timezone="Asia/Shanghai", figures=frozen, generated_by="stat", decided_by="dep")
        s.add(row)
        s.flush()
        return int(row.id or 0)

    report_id = db.call(approved)
    dep = await sign_in(stats_client, "dep")
    status, page = await dep.get(f"/desk/reports/{report_id}")
    assert status == 200 and 'id="not-recorded"' in page and "Satisfaction with attitude" in page
    assert 'id="surveys"' not in page and 'data-chart="satisfaction_ratings"' not in page
    for fmt in ("xlsx", "pdf"):
        r = await stats_client.get(f"/desk/reports/{report_id}/export.{fmt}", headers=dep.cookie)
        assert r.status == 200 and len(await r.read()) > 1000, fmt
    assert db.call(reports.get, report_id).figures == frozen


async def test_the_api(stats_client: Client, db: Database) -> None:
    r = await stats_client.get("/api/stats/figures?start=2026-11-02&end=2026-11-09", headers=STAFF)
    assert r.status == 200 and (await r.json())["handling"]["contacts"] == 10
    for query, code in (("start=2026-11-02", 400), ("start=2026-11-09&end=2026-11-02", 400),
                        ("start=x&end=2026-11-02", 400), ("start=2025-01-01&end=2026-11-02", 400),
                        ("start=2026-11-02&end=2026-11-09&x=1", 400)):
        assert (await stats_client.get(f"/api/stats/figures?{query}", headers=STAFF)).status == code, query
    assert (await stats_client.get("/api/stats/figures?start=2026-11-02&end=2026-11-09")).status == 401
    r = await stats_client.get("/api/stats/dashboard", headers=STAFF)
    board = await r.json()
    assert r.status == 200 and set(board) == {"at", "timezone", "today", "week", "now"}
    assert board["now"]["waiting"] == 0 and "containment_rate" in board["today"]
    r = await stats_client.post("/api/stats/reports", json={"kind": "weekly", "start": "2026-11-02"}, headers=STAFF)
    assert r.status == 201
    report = await r.json()
    r = await stats_client.post("/api/stats/reports", json={"kind": "weekly", "start": "2026-11-02"}, headers=STAFF)
    assert r.status == 200 and (await r.json())["id"] == report["id"]
    for body in ({"kind": "hourly", "start": "2026-11-02"}, {"kind": "weekly"}, {"kind": "weekly", "start": 3},
                 {"kind": "weekly", "start": "2026-11-02", "x": 1}):
        assert (await stats_client.post("/api/stats/reports", json=body, headers=STAFF)).status == 400, body
    broken = await stats_client.post("/api/stats/reports", data=b"{",
                                     headers={**STAFF, "Content-Type": "application/json"})
    assert broken.status == 400
    # A body that is not JSON at all is refused for its type (the input boundary, issue 14).
    assert (await stats_client.post("/api/stats/reports", data=b"{", headers=STAFF)).status == 415
    # Another system does not review: submit and approve are people's.
    r = await stats_client.post(f"/api/stats/reports/{report['id']}/submit", json={}, headers=STAFF)
    assert r.status == 403
    r = await stats_client.get(f"/api/stats/reports/{report['id']}", headers=STAFF)
    body = await r.json()
    assert body["figures"]["volume"]["total"] == 8 and body["events"][0]["action"] == "generated"
    r = await stats_client.get(f"/api/stats/reports/{report['id']}/export.xlsx?lang=en", headers=STAFF)
    assert r.status == 200 and load_workbook(io.BytesIO(await r.read())).sheetnames[0] == "Summary"
    assert (await stats_client.get(f"/api/stats/reports/{report['id']}/export.pdf?lang=fr",
                                   headers=STAFF)).status == 400
    assert (await stats_client.get("/api/stats/reports/abc", headers=STAFF)).status == 400
    assert (await stats_client.get("/api/stats/reports/999", headers=STAFF)).status == 404
    assert (await stats_client.get("/api/stats/reports?kind=daily", headers=STAFF)).status == 400
    # A deputy's desk token (POST /api/session) approves over the API too.
    dep = await sign_in(stats_client, "dep")
    auth = {"Authorization": f"Bearer {dep.token}"}
    assert (await stats_client.post(f"/api/stats/reports/{report['id']}/approve", json={},
                                    headers=auth)).status == 409  # not submitted yet
    db.call(reports.submit, report["id"], Who("stat", "statistician"))
    r = await stats_client.post(f"/api/stats/reports/{report['id']}/approve", json={"text": "同意"}, headers=auth)
    assert r.status == 200 and (await r.json())["decided_by"] == "dep"
