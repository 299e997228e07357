"""The quality inspector's main path over HTTP (Q1–Q8): the daily sample on the desk, a
sample scored with an instant fail and a violation recorded by hand, the person sees
both, another person cannot (server-side), their senior can; a submitted score changes
only with a reason; other systems read the same over the API. SQLite (the store under
it runs on both in tests/unit/test_quality.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot import desk
from bot.api import quality as api_quality
from bot.api import stats as api_stats
from bot.api import workflow as api_workflow
from bot.quality import sampler
from bot.settings import Settings
from bot.store.db import Database
from bot.store.quality import QaSample
from tests.conftest import AClient, make_test_app
from tests.integration.desk_client import Client, sign_in
from tests.quality_world import DAY, NOON, world

STAFF = {"Authorization": "Bearer staff-secret"}
TZ = ZoneInfo("Asia/Shanghai")
FULL = {"prompt.points": "20", "accurate.points": "25", "courteous.points": "20", "ticket_complete.points": "20",
        "owner_check.points": "15"}


@pytest.fixture
async def qa_client(aiohttp_client: AClient, db: Database, settings: Settings, password_hash: str) -> Any:
    db.call(world, password_hash=password_hash)
    db.call(sampler.daily, DAY, TZ, 0.05, "http", now=NOON + timedelta(days=1))
    app = make_test_app(db, settings)
    desk.setup_routes(app)
    api_quality.setup_routes(app)
    api_workflow.setup_routes(app)  # POST /api/session
    api_stats.setup_routes(app)
    return await aiohttp_client(app)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_a_sample_scored_a_violation_recorded_the_person_sees_it_another_cannot(
        qa_client: Client, db: Database) -> None:
    insp, sen = await sign_in(qa_client, "insp"), await sign_in(qa_client, "sen1")
    status, home = await insp.get("/desk/quality")
    assert status == 200 and 'id="to-score"' in home
    sample_id = int(re.findall(r'id="sample-(\d+)" data-post="junior" data-kind="contact"', home)[0])
    sample = db.call(lambda s: s.get(QaSample, sample_id))
    person = sample.person
    assert person in ("jun1", "jun2")
    other = "jun2" if person == "jun1" else "jun1"
    mine, theirs = await sign_in(qa_client, person), await sign_in(qa_client, other)

    status, page = await insp.get(f"/desk/quality/samples/{sample_id}")
    assert status == 200 and 'id="score-form"' in page and 'name="rude.found"' in page
    # Bad points: refused with the reason, the form kept.
    status, page, _ = await insp.post(f"/desk/quality/samples/{sample_id}/score", **{**FULL, "prompt.points": "99"})
    assert status == 400 and 'role="alert"' in page and 'value="99"' in page
    # Scored and submitted with a rude answer found (an instant fail), evidence at 01:42.
    status, _, where = await insp.post(f"/desk/quality/samples/{sample_id}/score", submit="1", **FULL,
                                       **{"rude.found": "1", "rude.comment": "raised voice", "rude.recording_at": "01:42"})
    assert status == 303 and where == f"/desk/quality/samples/{sample_id}"
    status, _, _ = await insp.post(f"/desk/quality/samples/{sample_id}/violations", rule="other",
                                   description="did not read the number back", evidence="transcript line 2")
    assert status == 303
    status, page = await insp.get(f"/desk/quality/samples/{sample_id}")
    assert 'data-passed="no"' in page and "raised voice" in page and "recording 01:42" in page
    # The person sees their own; their senior sees it; another junior does not, by page or by typing the URL.
    status, page = await mine.get(f"/desk/quality/people/{person}")
    assert status == 200 and 'data-counted="2"' in page and "did not read the number back" in page
    assert (await sen.get(f"/desk/quality/people/{person}"))[0] == 200
    assert (await theirs.get(f"/desk/quality/people/{person}"))[0] == 403
    assert (await theirs.get("/desk/quality"))[0] == 403
    assert (await mine.get(f"/desk/quality/samples/{sample_id}"))[0] == 403
    assert (await mine.post(f"/desk/quality/samples/{sample_id}/violations", description="x"))[0] == 403
    assert (await mine.get("/desk/quality/people"))[0] == 303  # only themself: straight to their record
    # A submitted score changes only with a reason, and the history says so.
    page = (await insp.get(f"/desk/quality/samples/{sample_id}"))[1]
    score_id = int(re.findall(r'/desk/quality/scores/(\d+)/change', page)[0])
    status, page, _ = await insp.post(f"/desk/quality/scores/{score_id}/change", **FULL)
    assert status == 400 and 'role="alert"' in page
    status, _, _ = await insp.post(f"/desk/quality/scores/{score_id}/change", reason="the caller shouted", **FULL)
    assert status == 303
    status, page = await insp.get(f"/desk/quality/samples/{sample_id}")
    assert 'data-passed="yes"' in page and 'data-action="changed"' in page and "the caller shouted" in page

    # The bot's own conversation and the hand-off flags have their pages too.
    machine = db.call(lambda s: s.exec(select(QaSample).where(QaSample.post == "machine")).first())
    status, page = await insp.get(f"/desk/quality/samples/{machine.id}")
    assert status == 200 and 'id="outcomes"' in page and 'name="wrong_info.found"' in page
    assert (await insp.get("/desk/quality/handoffs"))[0] == 200
    assert (await insp.get("/desk/quality/samples/999999"))[0] == 404

    # Other systems: the same over the API; a junior's token is refused the samples.
    r = await qa_client.get(f"/api/quality/samples/{sample_id}", headers=STAFF)
    body = await r.json()
    assert r.status == 200 and [c["action"] for c in body["history"]] == ["created", "submitted", "changed"]
    r = await qa_client.get(f"/api/quality/people/{person}", headers=STAFF)
    assert (await r.json())["violations_counted"] == 1  # the instant fail's was withdrawn by the change
    assert (await qa_client.get("/api/quality/samples")).status == 401
    for bad in ("day=yesterday", "post=pilot", "x=1"):
        assert (await qa_client.get(f"/api/quality/samples?{bad}", headers=STAFF)).status == 400
    assert (await qa_client.get("/api/quality/samples/abc", headers=STAFF)).status == 404
    r = await qa_client.post("/api/quality/spot-checks", json={"start": "2026-11-03"}, headers=STAFF)
    assert r.status == 403  # another system reads; drawing is the inspectors'


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_the_weekly_qa_report_through_its_review(qa_client: Client, db: Database) -> None:
    """Q8 on the desk: the inspector generates the week's report and submits it, a deputy
    approves it (also reachable from the statistics' report list), the PDF downloads."""
    insp, dep, jun = [await sign_in(qa_client, n) for n in ("insp", "dep1", "jun1")]
    status, _, where = await insp.post("/desk/quality/reports/generate", start="2026-11-02")
    assert status == 303 and where is not None
    assert (await insp.post("/desk/quality/reports/generate", start="2026-11-03"))[0] == 400  # not a Monday
    assert (await dep.post("/desk/quality/reports/generate", start="2026-11-02"))[0] == 403
    status, page = await insp.get(where)
    assert status == 200 and 'data-state="draft"' in page and 'data-figure="samples">8<' in page
    assert (await jun.get(where))[0] == 403
    assert (await dep.post(f"{where}/approve"))[0] == 409  # a draft is not approved
    assert (await insp.post(f"{where}/submit", text="第一周"))[0] == 303
    assert (await insp.post(f"{where}/approve"))[0] == 403
    report_id = where.rsplit("/", 1)[1]
    status, _ = await dep.get(f"/desk/reports/{report_id}")  # the deputies' report list leads here too
    assert status == 303
    assert (await dep.post(f"{where}/approve", text="同意"))[0] == 303
    status, page = await dep.get(where)
    assert 'data-state="approved"' in page and 'data-action="approved"' in page
    r = await qa_client.get(f"{where}/export.pdf", headers=dep.cookie)
    assert r.status == 200 and (await r.read()).startswith(b"%PDF")


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_the_weekly_qa_report_over_the_api(qa_client: Client, db: Database) -> None:
    async def token(name: str) -> dict[str, str]:
        from tests.conftest import DESK_TEST_PASSWORD

        r = await qa_client.post("/api/session", json={"username": name, "password": DESK_TEST_PASSWORD})
        assert r.status == 201, await r.text()
        return {"Authorization": f"Bearer {(await r.json())['token']}"}

    insp, dep, jun = await token("insp"), await token("dep1"), await token("jun1")
    r = await qa_client.post("/api/quality/reports", json={"start": "2026-11-02"}, headers=insp)
    assert r.status == 201
    report = await r.json()
    again = await qa_client.post("/api/quality/reports", json={"start": "2026-11-02"}, headers=STAFF)
    assert again.status == 200 and (await again.json())["id"] == report["id"]  # once per week
    for body in ({"start": "2026-11-03"}, {"start": "soon"}, {"start": "2026-11-02", "x": 1}):
        assert (await qa_client.post("/api/quality/reports", json=body, headers=insp)).status == 400, body
    base = f"/api/quality/reports/{report['id']}"
    assert (await qa_client.get(base, headers=jun)).status == 403
    assert (await qa_client.post(f"{base}/submit", json={}, headers=dep)).status == 403
    assert (await qa_client.post(f"{base}/submit", json={"text": "ok"}, headers=insp)).status == 200
    assert (await qa_client.post(f"{base}/approve", json={}, headers=dep)).status == 200
    body = await (await qa_client.get(base, headers=STAFF)).json()
    assert body["state"] == "approved" and [e["action"] for e in body["events"]] == ["generated", "submitted",
                                                                                    "approved"]
    assert body["figures"]["totals"]["samples"] == 8
    r = await qa_client.get(f"{base}/export.xlsx?lang=en", headers=dep)
    assert r.status == 200 and (await r.read())[:2] == b"PK"
    assert (await qa_client.get("/api/quality/reports/999999", headers=STAFF)).status == 404
    # The statistics' report API is the same machinery, but the QA report names people's
    # scores: not for a statistician, by either API, nor in their list on the desk.
    stat = await token("stat1")
    assert (await qa_client.get(f"/api/stats/reports/{report['id']}", headers=stat)).status == 403
    assert (await qa_client.get(f"/api/stats/reports/{report['id']}/export.pdf", headers=stat)).status == 403
    assert report["id"] not in [r["id"] for r in await (await qa_client.get("/api/stats/reports", headers=stat)).json()]
    assert (await qa_client.get(base, headers=stat)).status == 403
    assert (await qa_client.get(f"/api/stats/reports/{report['id']}", headers=dep)).status == 200
    desk_stat = await sign_in(qa_client, "stat1")
    status, page = await desk_stat.get("/desk/reports")
    assert status == 200 and f'data-report="{report["id"]}"' not in page
    assert (await desk_stat.get(f"/desk/reports/{report['id']}/export.xlsx"))[0] == 403
