"""U1–U2 on the desk and the ticket API over HTTP: the surveyor's live deadline board and
"explain the delay" form (roles on the server, bad input refused with a reason), the
centre's page showing warned / overdue and its violations, the TMF621 events of a
ticket, hubs, and the delivery of an event to a listener. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from sqlmodel import Session, select

from bot import desk
from bot.api import events
from bot.jobs import JobContext
from bot.jobs.models import Job
from bot.settings import Settings
from bot.sla import watch
from bot.store import service, workflow
from bot.store.db import Database
from bot.store.models import DeskTask, DeskUser, TicketNote, utcnow
from bot.store.workflow import Actor
from tests.conftest import AClient, make_test_app
from tests.integration.desk_client import XSS, XSS_ESCAPED, Client, sign_in

STAFF = {"Authorization": "Bearer staff-secret"}
LINE = "057187650001"


def dispatched(db: Database, conversation: str, hours_ago: float, symptom: str = "没有拨号音") -> str:
    data = service.ReportData(conversation_id=conversation, channel="webchat", language="zh", kind="new",
                              fault_number=LINE, contact_number="13800138000", symptom_category="no_dial_tone",
                              symptom_text=symptom)
    tid = db.call(service.create_report, data).ticket_id
    db.call(workflow.perform, tid, "approve_dispatch", Actor("sen", "senior"), reason="ok",
            params={"fault_class": "其他"}, now=utcnow() - timedelta(hours=hours_ago))
    return tid


@pytest.fixture
def watched(demo_db: Database, password_hash: str, settings: Settings) -> dict[str, str]:
    def add(s: Session) -> None:
        for name, role, branch in (("sur", "surveyor", None), ("cen", "centre", "西湖分公司"),
                                   ("jun", "junior", None), ("adm", "admin", None)):
            s.add(DeskUser(username=name, display_name=name, role=role, branch=branch, password_hash=password_hash))

    demo_db.call(add)
    tickets = {"fresh": dispatched(demo_db, "fresh", 2), "warned": dispatched(demo_db, "warned", 20),
               "overdue": dispatched(demo_db, "overdue", 30, symptom=XSS)}
    cfg = watch.WatchConfig.from_settings(settings)
    for tid in demo_db.call(watch.tickets_to_watch):
        demo_db.call(watch.watch_ticket, tid, cfg)
    return tickets


@pytest.fixture
async def web_client(aiohttp_client: AClient, demo_db: Database, settings: Settings) -> Client:
    app = make_test_app(demo_db, settings)
    events.setup_routes(app)
    desk.setup_routes(app)
    return await aiohttp_client(app)


def row_state(page: str, tid: str) -> str:
    m = re.search(rf'id="board-{tid}" data-share="(\d+)" data-state="(\w+)"', page)
    assert m is not None, tid
    return f"{m.group(2)}:{m.group(1)}"


async def test_the_board_and_the_explanation(web_client: Client, demo_db: Database,
                                             watched: dict[str, str]) -> None:
    sur, jun, cen = [await sign_in(web_client, n) for n in ("sur", "jun", "cen")]
    status, _ = await jun.get("/desk/surveyor")
    assert status == 403
    status, _ = await cen.get("/desk/surveyor")
    assert status == 403
    status, page = await sur.get("/desk/surveyor")
    assert status == 200
    assert row_state(page, watched["fresh"]) == "running:8"
    assert row_state(page, watched["warned"]) == "warned:83"
    assert row_state(page, watched["overdue"]).startswith("overdue:12")
    assert page.index(f'id="board-{watched["overdue"]}"') < page.index(f'id="board-{watched["warned"]}"')
    assert "TT-W0003" in page  # the demo world's overdue open fault is watched too
    [task] = demo_db.call(lambda s: list(s.exec(select(DeskTask).where(DeskTask.kind == "explain_delay",
                                                                      DeskTask.ticket_id == watched["overdue"]))))
    assert f'id="explain-{task.id}"' in page and "13800138000" in page  # who to call
    assert XSS not in page

    path = f"/desk/surveyor/explanations/{task.id}"
    status, text, _ = await sur.post(path, how="carrier-pigeon", when="2026-12-07T10:00", what="x")
    assert status == 400 and "how: one of phone" in text
    status, text, _ = await sur.post(path, how="phone", when="yesterday", what="x")
    assert status == 400 and "when must be a date and time" in text
    future = (utcnow() + timedelta(days=1)).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")
    status, text, _ = await sur.post(path, how="phone", when=future, what="x")
    assert status == 400 and "cannot be in the future" in text
    status, text, _ = await sur.post(path, how="phone", when="2026-12-07T10:00", what="  ")
    assert status == 400 and "say what the customer was told" in text
    status, _, _ = await jun.post(path, how="phone", when="2026-12-07T10:00", what="x")
    assert status == 403
    status, _, _ = await sur.post(path, csrf=None, how="phone", when="2026-12-07T10:00", what="x")
    assert status == 403
    said = f"致歉，配件到货后明早修复 {XSS}"
    status, _, location = await sur.post(path, how="phone", when="2026-12-07T10:00", what=said)
    assert (status, location) == (303, "/desk/surveyor")
    task = demo_db.call(lambda s: s.get(DeskTask, task.id))
    assert task.state == "done" and task.done_by == "sur"
    assert task.outcome is not None and task.outcome["how"] == "phone" and task.outcome["what"] == said
    assert task.outcome["when"] == "2026-12-07T02:00:00+00:00"  # entered in Shanghai time, stored in UTC
    notes = demo_db.call(lambda s: [n.text for n in s.exec(select(TicketNote).where(
        TicketNote.ticket_id == watched["overdue"]))])
    assert any("Delay explained to the customer (phone" in n for n in notes)
    status, text, _ = await sur.post(path, how="sms", when="2026-12-07T10:00", what="again")
    assert status == 409 and "already explained by sur" in text
    status, page = await sur.get("/desk/surveyor")
    assert "No delay to explain." not in page or f'id="explain-{task.id}"' not in page
    assert XSS_ESCAPED in page and XSS not in page  # the explanation shown as text
    assert "2026-12-07 10:00:00" in page  # shown in the centre's zone


async def test_the_centre_sees_warned_and_overdue(web_client: Client, watched: dict[str, str]) -> None:
    cen = await sign_in(web_client, "cen")
    status, page = await cen.get("/desk/centre")
    assert status == 200
    assert re.search(rf'id="dispatched-{watched["warned"]}".*?data-state="warned"', page, re.S)
    assert re.search(rf'id="dispatched-{watched["overdue"]}".*?data-state="overdue"', page, re.S)
    assert "deadline warning" in page and "西湖测量管理中心: " in page


async def test_ticket_events_and_hubs(web_client: Client, demo_db: Database, watched: dict[str, str]) -> None:
    r = await web_client.get(f"/tmf-api/troubleTicket/v5/troubleTicket/{watched['overdue']}/event")
    assert r.status == 401
    r = await web_client.get(f"/tmf-api/troubleTicket/v5/troubleTicket/{watched['overdue']}/event", headers=STAFF)
    body = await r.json()
    assert [e["event"]["troubleTicket"]["troubleTicketCharacteristic"][0]["value"] for e in body] == [
        "deadlineWarning", "overdue"]
    assert body[1]["eventType"] == "TroubleTicketAttributeValueChangeEvent" and body[1]["priority"] == "Critical"
    r = await web_client.post("/tmf-api/troubleTicket/v5/hub", json={"callback": "ftp://x"}, headers=STAFF)
    assert r.status == 400
    r = await web_client.post("/tmf-api/troubleTicket/v5/hub", json={"callback": "http://crm.test/tmf"})
    assert r.status == 401
    r = await web_client.post("/tmf-api/troubleTicket/v5/hub", json={"callback": "http://crm.test/tmf"},
                              headers=STAFF)
    assert r.status == 201
    hub = await r.json()
    r = await web_client.get(f"/tmf-api/troubleTicket/v5/hub/{hub['id']}", headers=STAFF)
    assert (await r.json())["callback"] == "http://crm.test/tmf"
    # An event from now on is sent to the hub by a job, once per event and hub.
    tid = dispatched(demo_db, "later", 20)
    demo_db.call(watch.watch_ticket, tid, watch.WatchConfig(0.8, "Asia/Shanghai", "http://bot.test"))
    jobs = demo_db.call(lambda s: list(s.exec(select(Job).where(Job.kind == watch.NOTIFY_KIND))))
    assert len(jobs) == 1 and jobs[0].payload["hub"] == int(hub["id"])
    r = await web_client.delete(f"/tmf-api/troubleTicket/v5/hub/{hub['id']}", headers=STAFF)
    assert r.status == 204
    r = await web_client.get(f"/tmf-api/troubleTicket/v5/hub/{hub['id']}", headers=STAFF)
    assert r.status == 404


async def test_an_event_is_posted_to_the_listener(aiohttp_client: AClient, demo_db: Database, settings: Settings,
                                                  watched: dict[str, str]) -> None:
    received: list[tuple[str, Any]] = []
    answer = {"status": 503}

    async def listener(request: web.Request) -> web.Response:
        received.append((request.path, await request.json()))
        return web.Response(status=answer["status"])

    crm = web.Application()
    crm.router.add_post("/tmf/listener/{name}", listener)
    crm_client = await aiohttp_client(crm)
    callback = str(crm_client.make_url("/tmf"))

    def hub_and_event(s: Session) -> tuple[int, int]:
        from bot.sla.models import EventHub, TicketEvent

        hub = EventHub(callback=callback, created_by="api")
        s.add(hub)
        s.flush()
        event = s.exec(select(TicketEvent)).first()
        assert hub.id is not None and event is not None and event.id is not None
        return hub.id, event.id

    hub_id, event_id = demo_db.call(hub_and_event)
    ctx = JobContext(watch.NOTIFY_KIND, f"e:{hub_id}", {"event": event_id, "hub": hub_id}, 1, utcnow(),
                     web.Application(), demo_db, settings)
    with pytest.raises(RuntimeError, match="answered 503"):  # the scheduler retries it later
        await events.notify(ctx)
    answer["status"] = 201
    await events.notify(ctx)
    path, body = received[-1]
    assert path == "/tmf/listener/troubleTicketAttributeValueChangeEvent"
    assert body["eventType"] == "TroubleTicketAttributeValueChangeEvent" and body["event"]["troubleTicket"]["id"]
