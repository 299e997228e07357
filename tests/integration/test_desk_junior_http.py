"""The junior operator at the seat over HTTP (J2–J6): owner mismatch, transfer to a
senior, a new report and a supplementary one, each with a real line test through the
line-test simulator's HTTP API; refusals for the wrong operator, post and form.
SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlmodel import select

from bot import desk
from bot.linetest.simulator import create_app as create_linetest_app
from bot.settings import Settings
from bot.store import service
from bot.store.db import Database
from bot.store.models import DeskTask, Handoff, LineTest, Report, Ticket, TicketStatusChange
from tests.conftest import AClient, make_test_app
from tests.integration.desk_client import XSS, XSS_ESCAPED, Client, Operator, sign_in
from tests.integration.test_desk_http import _make_accounts, handoff_row, queue

LINE = "057187650001"  # residential, 西湖分公司; the world says its test finds nothing wrong
REPEAT_LINE = "057187650008"  # has the open world fault TT-W0003


@pytest.fixture
async def linetest_url(settings: Settings) -> AsyncIterator[str]:
    """The real line-test simulator over HTTP, fast (tests take 50 ms)."""
    sim_settings = settings.model_copy(update={"linetest_duration_s": 0.05})
    server = TestServer(create_linetest_app(sim_settings, tick_s=0.05))
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _client(aiohttp_client: AClient, db: Database, settings: Settings, password_hash: str,
                  linetest_url: str) -> Client:
    _make_accounts(db, password_hash)
    app: web.Application = make_test_app(db, settings.model_copy(update={"linetest_url": linetest_url}))
    desk.setup_routes(app)
    return await aiohttp_client(app)


@pytest.fixture
async def seat(aiohttp_client: AClient, demo_db: Database, settings: Settings, password_hash: str,
               linetest_url: str) -> Client:
    return await _client(aiohttp_client, demo_db, settings, password_hash, linetest_url)


async def taken(client: Client, db: Database, number: str | None = LINE, conversation: str = "c1",
                **kw: Any) -> tuple[Operator, int]:
    hid = queue(db, conversation, fault_number=number, **kw)
    jun = await sign_in(client, "jun")
    status, _body, _loc = await jun.post(f"/desk/handoffs/{hid}/take")
    assert status == 303
    return jun, hid


def rows(db: Database, model: type, **where: Any) -> list[Any]:
    def q(s: Any) -> list[Any]:
        stmt = select(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        return list(s.exec(stmt))

    return db.call(q)


# ------------------------------------------------------------------------ J6


async def test_new_report_is_recorded_tested_and_linked(seat: Client, demo_db: Database) -> None:
    jun, hid = await taken(seat, demo_db)
    status, page = await jun.get(f"/desk/handoffs/{hid}")
    assert status == 200 and 'id="j6"' in page and 'id="j2"' in page and 'id="j3"' in page
    status, body, location = await jun.post(f"/desk/handoffs/{hid}/new-report", symptom_category="noise",
                                            symptom_text="电话里有沙沙声", contact_number="138 0013 8000")
    assert status == 303, body
    assert location is not None and location.startswith("/desk/tickets/TT-")
    tid = location.rsplit("/", 1)[1]
    [t] = rows(demo_db, Ticket, id=tid)
    assert (t.sub_step, t.status, t.channel, t.fault_number, t.contact_number, t.symptom_category) == (
        "new", "acknowledged", "webchat", LINE, "13800138000", "noise")
    assert t.conversation_id == "c1" and t.branch == "西湖分公司"
    [created] = rows(demo_db, TicketStatusChange, ticket_id=tid)
    assert (created.author, created.action, created.to_sub_step) == ("jun", "create", "new")
    [test] = rows(demo_db, LineTest, ticket_id=tid)
    assert test.result and test.fault_number == LINE and test.summary_zh
    assert handoff_row(demo_db, hid).ticket_id == tid
    # A transfer after the report lands on the ticket too.
    status, _body, _loc = await jun.post(f"/desk/handoffs/{hid}/to-senior", reason="用户要求高级话务员")
    assert status == 303
    notes = demo_db.call(service.get_ticket, tid).notes
    assert notes[-1].author == "jun" and "用户要求高级话务员" in notes[-1].text


async def test_new_report_without_the_line_test_unit_is_still_recorded(
        aiohttp_client: AClient, demo_db: Database, settings: Settings, password_hash: str) -> None:
    client = await _client(aiohttp_client, demo_db, settings, password_hash, f"http://127.0.0.1:{_free_port()}")
    jun, hid = await taken(client, demo_db)
    status, _body, location = await jun.post(f"/desk/handoffs/{hid}/new-report", symptom_category="no_dial_tone")
    assert status == 303 and location is not None
    tid = location.rsplit("/", 1)[1]
    assert rows(demo_db, LineTest, ticket_id=tid) == []
    notes = demo_db.call(service.get_ticket, tid).notes
    assert any("line-test unit is unavailable (unreachable)" in n.text for n in notes)


async def test_new_report_asks_for_a_number_when_the_caller_gave_none(seat: Client, demo_db: Database) -> None:
    jun, hid = await taken(seat, demo_db, number=None)
    _status, page = await jun.get(f"/desk/handoffs/{hid}")
    assert 'name="fault_number"' in page
    status, body, _loc = await jun.post(f"/desk/handoffs/{hid}/new-report", symptom_category="noise")
    assert status == 400 and "faulty line" in body
    status, _body, location = await jun.post(f"/desk/handoffs/{hid}/new-report", symptom_category="noise",
                                             fault_number="8765-0001")
    assert status == 303 and location is not None
    [t] = rows(demo_db, Ticket, id=location.rsplit("/", 1)[1])
    assert t.fault_number == LINE  # the local area code is added (A2)


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"symptom_category": "aliens"}, "Symptom must be one of"),
        ({"symptom_category": "noise", "contact_number": "12"}, "is not a valid number"),
        ({"symptom_category": "noise", "symptom_text": "x" * 2001}, "longer than 2000"),
        ({}, "Fill in symptom category"),
    ],
)
async def test_bad_new_report_forms_are_refused(seat: Client, demo_db: Database, form: dict[str, str],
                                                expected: str) -> None:
    jun, hid = await taken(seat, demo_db)
    status, body, _loc = await jun.post(f"/desk/handoffs/{hid}/new-report", **form)
    assert status == 400 and expected in body
    assert rows(demo_db, Ticket, conversation_id="c1") == []


async def test_callers_words_in_a_new_report_stay_inert(seat: Client, demo_db: Database) -> None:
    jun, hid = await taken(seat, demo_db)
    await jun.post(f"/desk/handoffs/{hid}/new-report", symptom_category="other", symptom_text=XSS)
    status, page = await jun.get(f"/desk/handoffs/{hid}")
    assert status == 200 and XSS not in page and XSS_ESCAPED in page


# ------------------------------------------------------------------------ J5


async def test_supplementary_report_adds_to_the_open_ticket_and_tests(seat: Client, demo_db: Database) -> None:
    jun, hid = await taken(seat, demo_db, number=REPEAT_LINE)
    _status, page = await jun.get(f"/desk/handoffs/{hid}")
    assert 'id="j5"' in page and 'value="TT-W0003"' in page
    version = rows(demo_db, Ticket, id="TT-W0003")[0].version
    status, body, location = await jun.post(f"/desk/handoffs/{hid}/supplement", ticket_id="TT-W0003",
                                            version=str(version), text="现在连来电也听不到了")
    assert status == 303 and location == "/desk/tickets/TT-W0003", body
    kinds = [r.kind for r in rows(demo_db, Report, ticket_id="TT-W0003")]
    assert kinds[-1] == "supplement"
    tests = rows(demo_db, LineTest, ticket_id="TT-W0003")
    assert len(tests) == 2  # the world's last test and this one
    [t] = rows(demo_db, Ticket, id="TT-W0003")
    assert t.version == version + 1 and t.sub_step == "dispatched"
    # The same form again, with the version it showed: the ticket has moved on.
    status, body, _loc = await jun.post(f"/desk/handoffs/{hid}/supplement", ticket_id="TT-W0003",
                                        version=str(version), text="again")
    assert status == 409 and "reload" in body


async def test_supplement_only_on_the_callers_own_line(seat: Client, demo_db: Database) -> None:
    jun, hid = await taken(seat, demo_db, number=LINE)
    status, body, _loc = await jun.post(f"/desk/handoffs/{hid}/supplement", ticket_id="TT-W0003", version="1",
                                        text="x")
    assert status == 404 and "not a ticket on this caller" in body


# --------------------------------------------------------------------- J3, J2


async def test_transfer_to_a_senior_requeues_and_opens_a_task_to_grade(seat: Client, demo_db: Database) -> None:
    jun, hid = await taken(seat, demo_db)
    status, body, _loc = await jun.post(f"/desk/handoffs/{hid}/to-senior", reason="")
    assert status == 400 and "Fill in reason" in body
    status, _body, location = await jun.post(f"/desk/handoffs/{hid}/to-senior", reason="用户要求投诉，需高级话务员")
    assert status == 303 and location == "/desk/"
    row = handoff_row(demo_db, hid)
    assert (row.queue, row.state, row.taken_by, row.transferred_from) == ("senior", "queued", None, "jun")
    [task] = rows(demo_db, DeskTask, kind="senior_transfer")
    assert (task.handoff_id, task.created_by, task.grade, task.state) == (hid, "jun", None, "open")
    status, _page = await jun.get(f"/desk/handoffs/{hid}")
    assert status == 403  # the senior queue is not a junior's
    sen = await sign_in(seat, "sen")
    status, home = await sen.get("/desk/")
    assert status == 200 and f"Handoff {hid}" in home
    status, _body, _loc = await sen.post(f"/desk/handoffs/{hid}/take")
    assert status == 303
    status, page = await sen.get(f"/desk/handoffs/{hid}")
    assert 'id="j3"' not in page  # a senior does not transfer to a senior


async def test_owner_mismatch_rejects_the_bots_ticket_and_ends(seat: Client, demo_db: Database) -> None:
    report = demo_db.call(service.create_report, service.ReportData(
        conversation_id="c1", channel="webchat", language="zh", kind="new", fault_number=LINE,
        symptom_category="noise"))
    hid = demo_db.call(service.queue_handoff, service.HandoffData(
        conversation_id="c1", channel="webchat", language="zh", reason="caller_request", fault_number=LINE,
        ticket_id=report.ticket_id)).handoff_id
    jun = await sign_in(seat, "jun")
    await jun.post(f"/desk/handoffs/{hid}/take")
    status, _body, location = await jun.post(f"/desk/handoffs/{hid}/owner-mismatch", reason="机主姓名不符")
    assert status == 303 and location == "/desk/"
    [t] = rows(demo_db, Ticket, id=report.ticket_id)
    assert (t.status, t.sub_step, t.status_change_reason) == ("rejected", "rejected", "机主姓名不符")
    row = handoff_row(demo_db, hid)
    assert row.state == "done" and row.ended_at is not None and "J2" in (row.end_reason or "")


# ------------------------------------------------------------------ refusals


async def test_only_the_operator_who_took_the_caller_acts(seat: Client, demo_db: Database) -> None:
    _jun, hid = await taken(seat, demo_db)
    other = await sign_in(seat, "jun2")
    for path, form in ((f"/desk/handoffs/{hid}/to-senior", {"reason": "x"}),
                       (f"/desk/handoffs/{hid}/new-report", {"symptom_category": "noise"}),
                       (f"/desk/handoffs/{hid}/owner-mismatch", {})):
        status, body, _loc = await other.post(path, **form)
        assert status == 403 and "taken by jun" in body, path
    assert handoff_row(demo_db, hid).state == "taken"


async def test_a_waiting_caller_must_be_taken_first(seat: Client, demo_db: Database) -> None:
    hid = queue(demo_db, "c9", fault_number=LINE)
    jun = await sign_in(seat, "jun")
    status, body, _loc = await jun.post(f"/desk/handoffs/{hid}/to-senior", reason="x")
    assert status == 409 and "take it first" in body


@pytest.mark.parametrize("name", ["cen", "man"])
async def test_other_posts_cannot_act_at_the_seat(seat: Client, demo_db: Database, name: str) -> None:
    _jun, hid = await taken(seat, demo_db)
    who = await sign_in(seat, name)
    status, _body, _loc = await who.post(f"/desk/handoffs/{hid}/new-report", symptom_category="noise")
    assert status == 403
    assert rows(demo_db, Ticket, conversation_id="c1") == []


async def test_seat_forms_need_the_csrf_token(seat: Client, demo_db: Database) -> None:
    jun, hid = await taken(seat, demo_db)
    status, _body, _loc = await jun.post(f"/desk/handoffs/{hid}/to-senior", csrf=None, reason="x")
    assert status == 403
    assert handoff_row(demo_db, hid).queue == "junior"
    assert rows(demo_db, Handoff, id=hid)[0].state == "taken"
