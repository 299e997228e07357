"""The data manager's post over HTTP (D1–D2): the desk's pages and the API for other
systems. Roles enforced on the server; the hard case from a senior's grade to an approved
article suggested on a junior's page; the archive listed, searched and exported (CSV
with a BOM, XLSX read back); bad input answered with a 4xx and a reason. SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from openpyxl import load_workbook
from sqlalchemy import update
from sqlmodel import Session

from bot import desk
from bot.api import knowledge as api_knowledge
from bot.api import workflow as api_workflow
from bot.settings import Settings
from bot.store import archive, knowledge, service, workflow
from bot.store.db import Database
from bot.store.models import DeskUser
from bot.store.workflow import Actor
from tests.conftest import DESK_TEST_PASSWORD, AClient, make_test_app
from tests.integration.desk_client import XSS, XSS_ESCAPED, Client, sign_in

SH = ZoneInfo("Asia/Shanghai")
NIGHT = date(2026, 3, 2)
ACCOUNTS = {"jun": "junior", "sen": "senior", "dm": "datamanager", "adm": "admin", "cen": "centre"}
LINE = "057187650001"


@pytest.fixture
async def web_client(aiohttp_client: AClient, demo_db: Database, settings: Settings, password_hash: str) -> Client:
    def add(s: Session) -> None:
        for name, role in ACCOUNTS.items():
            s.add(DeskUser(username=name, display_name=name, role=role, password_hash=password_hash,
                           branch="西湖分公司" if role == "centre" else None))

    demo_db.call(add)
    app: web.Application = make_test_app(demo_db, settings)
    desk.setup_routes(app)
    api_workflow.setup_routes(app)
    api_knowledge.setup_routes(app)
    return await aiohttp_client(app)


def a_hard_case(db: Database, symptom_text: str = "电话没有拨号音，换了话机也不行") -> tuple[str, int]:
    data = service.ReportData(conversation_id="c-hard", channel="voice", language="zh", kind="new",
                              fault_number=LINE, symptom_category="no_dial_tone", symptom_text=symptom_text)
    ticket_id = db.call(service.create_report, data).ticket_id
    transfer = db.call(workflow.open_senior_transfer, handoff_id=1, ticket_id=ticket_id, junior="jun",
                       reason="判断不了是不是线路问题")
    db.call(workflow.grade_transfer, transfer, Actor("sen", "senior"), "correct", "断线，派单即可",
            timezone="Asia/Shanghai")
    return ticket_id, transfer


SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # the store's part runs on both elsewhere


@SQLITE_ONLY
async def test_each_page_is_for_its_posts(web_client: Client) -> None:
    ops = {name: await sign_in(web_client, name) for name in ACCOUNTS}
    expect = {  # path: the posts that may open it
        "/desk/datamanager": {"dm", "adm"}, "/desk/archive": {"dm", "adm"},
        "/desk/archive/export.csv": {"dm", "adm"}, "/desk/kb/articles/new": {"dm", "adm"},
        "/desk/kb/approvals": {"sen", "adm"}, "/desk/kb/articles": set(ACCOUNTS),
    }
    for path, allowed in expect.items():
        for name, op in ops.items():
            status, _body = await op.get(path)
            assert status == (200 if name in allowed else 403), (path, name, status)
    status, _body = await ops["dm"].get("/desk/")
    assert status == 303  # the data manager's home is their own page
    r = await web_client.get("/desk/", headers=ops["dm"].cookie, allow_redirects=False)
    assert r.headers["Location"] == "/desk/datamanager"
    # Writes refused on the server, whatever the page showed.
    status, body, _loc = await ops["jun"].post("/desk/kb/articles", question="q", answer="a")
    assert status == 403
    status, body, _loc = await ops["dm"].post("/desk/kb/articles", question="", answer="a")
    assert status == 400 and "write the question" in body
    status, body, _loc = await ops["dm"].post("/desk/kb/articles", csrf=None, question="q", answer="a")
    assert status == 403 and "security token" in body


async def test_from_a_hard_case_to_a_suggestion_on_the_juniors_page(web_client: Client, demo_db: Database) -> None:
    ticket_id, _transfer = a_hard_case(demo_db)
    dm, sen, jun = [await sign_in(web_client, n) for n in ("dm", "sen", "jun")]
    status, home = await dm.get("/desk/datamanager")
    [task] = demo_db.call(knowledge.list_tasks)
    assert status == 200 and f"/desk/kb/tasks/{task.id}" in home and "判断不了是不是线路问题" in home
    status, page = await dm.get(f"/desk/kb/tasks/{task.id}")
    assert status == 200 and ticket_id in page and "断线，派单即可" in page and "电话没有拨号音" in page
    status, form = await dm.get(f"/desk/kb/articles/new?task={task.id}")
    assert status == 200 and "断线，派单即可" in form  # the senior's answer is the draft's start
    status, _body, location = await dm.post(
        "/desk/kb/articles", task_id=str(task.id), question=f"电话没有拨号音 {XSS}",
        answer="请用户换话机；仍无拨号音时做线路测试，断线则派单。", fault_class="用户线路故障",
        symptoms="no_dial_tone", keywords="拨号音，话机", submit="yes")
    assert status == 303 and location is not None
    article_id = int(location.rsplit("/", 1)[1])
    assert demo_db.call(knowledge.get_task, task.id).outcome == "written"
    # Juniors do not see it before a senior approves.
    status, _body = await jun.get(location)
    assert status == 404
    status, queue = await sen.get("/desk/kb/approvals")
    assert status == 200 and f"approval-{article_id}" in queue and XSS_ESCAPED in queue and XSS not in queue
    status, _body, _loc = await dm.post(f"/desk/kb/articles/{article_id}/approve", version="1")
    assert status == 403  # the data manager does not approve their own
    status, _body, _loc = await sen.post(f"/desk/kb/articles/{article_id}/approve", version="1", back="approvals")
    assert status == 303
    # A caller with the same symptom waits for a junior: the article is suggested, highlighted.
    data = service.ReportData(conversation_id="c-next", channel="webchat", language="zh", kind="new",
                              fault_number=LINE, symptom_category="no_dial_tone", symptom_text="家里座机没拨号音了")
    next_ticket = demo_db.call(service.create_report, data).ticket_id
    hid = demo_db.call(service.queue_handoff, service.HandoffData(
        conversation_id="c-next", channel="webchat", language="zh", reason="caller_request", fault_number=LINE,
        ticket_id=next_ticket)).handoff_id
    status, _body, _loc = await jun.post(f"/desk/handoffs/{hid}/take")
    status, page = await jun.get(f"/desk/handoffs/{hid}")
    assert status == 200 and 'id="kb-suggestions"' in page and f"/desk/kb/articles/{article_id}" in page
    assert "<mark>没有拨号音</mark>" in page  # the caller said 没拨号音: one synonym group
    status, article = await jun.get(f"/desk/kb/articles/{article_id}")
    assert status == 200 and "断线则派单" in article and "article-versions" not in article  # no history for juniors


@SQLITE_ONLY
async def test_the_archive_pages_and_exports(web_client: Client, demo_db: Database) -> None:
    data = service.ReportData(conversation_id="c-a", channel="voice", language="zh", kind="new", fault_number=LINE,
                              symptom_category="other", symptom_text="=HYPERLINK(\"http://x\",\"点我\") 线路有问题")
    tid = demo_db.call(service.create_report, data).ticket_id
    demo_db.call(workflow.perform, tid, "answer_on_spot", Actor("jun", "junior"), reason="已告知用户",
                 now=datetime(2026, 3, 2, 10, tzinfo=SH))
    demo_db.call(lambda s: s.execute(update(service.Report).values(at=datetime(2026, 3, 2, 9, tzinfo=SH))))
    archive.archive_day(demo_db, NIGHT, timezone="Asia/Shanghai")
    dm = await sign_in(web_client, "dm")
    status, page = await dm.get("/desk/archive?q=线路&kind=text")
    assert status == 200 and 'id="archive-total">1 ' in page and "HYPERLINK" in page
    status, page = await dm.get("/desk/archive?from=2026-13-01")
    assert status == 400 and "from is a date YYYY-MM-DD" in page
    r = await web_client.get("/desk/archive/export.csv?from=2026-03-02&to=2026-03-02", headers=dm.cookie)
    raw = await r.read()
    assert r.status == 200 and r.headers["Content-Disposition"].startswith('attachment; filename="archive-')
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert {row["kind"] for row in rows} == {"report", "text"} and len(rows) == 2
    text_row = next(row for row in rows if row["kind"] == "text")
    assert text_row["text"].startswith("'=HYPERLINK")  # never a formula in a spreadsheet
    assert text_row["finished_at"] == "2026-03-02 09:00:00" and text_row["branch"] == "西湖分公司"
    r = await web_client.get("/desk/archive/export.xlsx?kind=text", headers=dm.cookie)
    sheet = load_workbook(io.BytesIO(await r.read())).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    header, [only] = values[0], values[1:]
    cell = only[header.index("text")]
    assert isinstance(cell, str) and cell.startswith("=HYPERLINK")  # stored as text, not a formula
    assert sheet.cell(row=2, column=header.index("text") + 1).data_type == "s"


async def api_token(client: Client, username: str) -> dict[str, str]:
    r = await client.post("/api/session", json={"username": username, "password": DESK_TEST_PASSWORD})
    assert r.status == 201, await r.text()
    return {"Authorization": f"Bearer {(await r.json())['token']}"}


async def test_the_api_for_other_systems(web_client: Client, demo_db: Database) -> None:
    a_hard_case(demo_db)
    dm, jun = await api_token(web_client, "dm"), await api_token(web_client, "jun")
    staff = {"Authorization": "Bearer staff-secret"}

    async def call(method: str, path: str, headers: dict[str, str] | None, **kw: Any) -> tuple[int, Any]:
        r = await web_client.request(method, path, headers=headers or {}, **kw)
        body = await r.json() if r.content_type == "application/json" else await r.read()
        return r.status, body

    # The hard case's task, then an article written, submitted and approved through the API.
    status, tasks = await call("GET", "/api/kb/tasks?state=open", dm)
    assert status == 200 and len(tasks) == 1 and tasks[0]["status"] in ("open", "overdue")
    status, made = await call("POST", "/api/kb/articles", dm, json={
        "question": "宽带上不了网，光猫红灯", "answer": "光纤中断，派单。", "fault_class": "宽带故障",
        "symptoms": ["broadband_down"], "keywords": ["光猫"], "task_id": tasks[0]["id"], "submit": True})
    assert status == 201 and made["state"] == "submitted" and made["versions"][0]["version"] == 1
    sen = await api_token(web_client, "sen")
    status, approved = await call("POST", f"/api/kb/articles/{made['id']}/approve", sen, json={"version": 1})
    assert status == 200 and approved["state"] == "approved"
    status, found = await call("GET", "/api/kb/articles?q=网络", jun)  # 网络 ~ 宽带 (synonyms)
    assert status == 200 and [a["id"] for a in found["articles"]] == [made["id"]]
    assert "<mark>宽带</mark>" in found["articles"][0]["highlight"]["question"] and "state" not in found["articles"][0]
    status, sugg = await call("GET", "/api/kb/suggestions?symptom=broadband_down&text=光猫灯是红的", staff)
    assert status == 200 and sugg["articles"][0]["id"] == made["id"]
    # Refusals: a 4xx with the reason, never a 500.
    for method, path, headers, json_body, expected in [
        ("GET", "/api/kb/articles?scope=current", jun, None, 403),
        ("GET", "/api/kb/articles?symptom=smoke", jun, None, 400),
        ("GET", "/api/kb/articles?limit=0", jun, None, 400),
        ("GET", "/api/kb/articles?q=" + "长" * 201, jun, None, 400),
        ("GET", "/api/kb/articles?bogus=1", jun, None, 400),
        ("GET", "/api/kb/articles/999999", jun, None, 404),
        ("GET", "/api/kb/articles/abc", jun, None, 400),
        ("POST", "/api/kb/articles", jun, {"question": "q", "answer": "a"}, 403),
        ("POST", "/api/kb/articles", dm, {"question": "q"}, 400),
        ("POST", "/api/kb/articles", dm, {"question": "q", "answer": "a", "extra": 1}, 400),
        ("POST", f"/api/kb/articles/{made['id']}/versions", dm, {"question": "q", "answer": "a", "reason": "r",
                                                                 "version": 7}, 409),
        ("GET", "/api/kb/tasks", jun, None, 403),
        ("GET", "/api/archive", jun, None, 403),
        ("GET", "/api/archive", None, None, 401),
        ("GET", "/api/archive?from=yesterday", dm, None, 400),
        ("GET", "/api/archive?kind=everything", dm, None, 400),
        ("GET", "/api/archive?from=2026-03-03&to=2026-03-01", dm, None, 400),
        ("GET", "/api/archive/export?format=pdf", dm, None, 400),
        ("POST", "/api/archive/runs", dm, {"day": "2999-01-01"}, 400),
        ("POST", "/api/archive/runs", dm, {"day": "not a day"}, 400),
    ]:
        status, body = await call(method, path, headers, json=json_body)
        assert status == expected, (method, path, status, body)
        assert isinstance(body, dict) and body["reason"], (path, body)
    # The archive: a run by hand (idempotent), listed and exported.
    demo_db.call(lambda s: s.execute(update(service.Report).values(at=datetime(2026, 3, 2, 11, tzinfo=SH))))
    status, run = await call("POST", "/api/archive/runs", staff, json={"day": "2026-03-02"})
    assert status == 200 and run["day"] == "2026-03-02"
    status, again = await call("POST", "/api/archive/runs", dm, json={"day": "2026-03-02"})
    assert status == 200 and again["total"] == 0
    status, listed = await call("GET", "/api/archive?kind=text&limit=5", dm)
    assert status == 200 and listed["total"] >= 1 and listed["records"][0]["kind"] == "text"
    status, one = await call("GET", f"/api/archive/{listed['records'][0]['id']}", staff)
    assert status == 200 and one["id"] == listed["records"][0]["id"]
    status, xlsx = await call("GET", "/api/archive/export?format=xlsx&kind=text", dm)
    assert status == 200 and load_workbook(io.BytesIO(xlsx)).active is not None
