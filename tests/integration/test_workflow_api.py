"""The workflow over HTTP for other systems (issue 4 §7): bearer sign-in, the same actions
and refusals per post as the desk, tasks, and the TMF621 API's writes behind the same
authentication, with If-Match. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from bot import desk
from bot.api import workflow as api_workflow
from bot.settings import Settings
from bot.store import service
from bot.store.db import Database
from bot.store.models import DeskUser, Ticket
from tests.conftest import DESK_TEST_PASSWORD, AClient, make_test_app
from tests.integration.test_desk_http import _make_accounts
from tests.unit.test_workflow import make_overdue

TT = "/tmf-api/troubleTicket/v5/troubleTicket"
STAFF = {"Authorization": "Bearer staff-secret"}
LINE = "057187650001"


@pytest.fixture
async def api(aiohttp_client: AClient, demo_db: Database, settings: Settings, password_hash: str) -> Any:
    _make_accounts(demo_db, password_hash)
    demo_db.call(lambda s: s.add(DeskUser(username="bj", display_name="滨江", role="centre", branch="滨江分公司",
                                          password_hash=password_hash)))
    app: web.Application = make_test_app(demo_db, settings)
    api_workflow.setup_routes(app)
    desk.setup_routes(app)
    return await aiohttp_client(app)


async def bearer(api: Any, username: str) -> dict[str, str]:
    resp = await api.post("/api/session", json={"username": username, "password": DESK_TEST_PASSWORD})
    assert resp.status == 201, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


def a10_ticket(db: Database, conversation: str = "c1", number: str = LINE) -> str:
    return db.call(service.create_report, service.ReportData(
        conversation_id=conversation, channel="voice", language="zh", kind="new", fault_number=number,
        symptom_category="no_dial_tone")).ticket_id


async def act(api: Any, who: dict[str, str], tid: str, action: str, **body: Any) -> tuple[int, dict[str, Any]]:
    resp = await api.post(f"/api/tickets/{tid}/actions/{action}", json=body, headers=who)
    return resp.status, await resp.json()


# ----------------------------------------------------------------- sign-in


async def test_session_sign_in_and_refusals(api: Any) -> None:
    resp = await api.post("/api/session", json={"username": "sen", "password": "wrong"})
    assert resp.status == 401 and (await resp.json())["error"] == "sign_in_refused"
    resp = await api.post("/api/session", json={"username": "sen", "password": DESK_TEST_PASSWORD})
    body = await resp.json()
    assert resp.status == 201 and body["role"] == "senior" and len(body["token"]) >= 40
    resp = await api.post("/api/session", json={"username": "sen"})
    assert resp.status == 400
    who = {"Authorization": f"Bearer {body['token']}"}
    assert (await api.delete("/api/session", headers=who)).status == 200
    assert (await api.get("/api/tasks", headers=who)).status == 401  # the token ended with the session


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer short", "Bearer " + "x" * 43])
async def test_no_valid_token_no_access(api: Any, demo_db: Database, header: str | None) -> None:
    tid = a10_ticket(demo_db)
    headers = {} if header is None else {"Authorization": header}
    for resp in (await api.get(f"/api/tickets/{tid}/workflow", headers=headers),
                 await api.post(f"/api/tickets/{tid}/actions/note", json={"reason": "x"}, headers=headers),
                 await api.get("/api/tasks", headers=headers),
                 await api.patch(f"{TT}/{tid}", json={"status": "inProgress"}, headers=headers),
                 await api.post(TT, json={"description": "d", "severity": "Minor"}, headers=headers)):
        assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
    assert demo_db.call(lambda s: s.get(Ticket, tid)).version == 1


# --------------------------------------------------------------- the flow


async def test_dispatch_flow_per_post_with_refusals(api: Any, demo_db: Database) -> None:
    tid = a10_ticket(demo_db)
    jun, sen, cen, bj = [await bearer(api, n) for n in ("jun", "sen", "cen", "bj")]
    resp = await api.get(f"/api/tickets/{tid}/workflow", headers=sen)
    wf = await resp.json()
    assert wf["subStep"] == "awaiting_review" and wf["version"] == 1 and resp.headers["ETag"] == 'W/"1"'
    assert {"approve_dispatch", "no_dispatch_needed"} <= {a["name"] for a in wf["actions"]}
    assert "用户线路故障" in wf["faultClasses"]
    junior_can = {a["name"] for a in (await (await api.get(f"/api/tickets/{tid}/workflow", headers=jun)).json())
                  ["actions"]}
    assert "approve_dispatch" not in junior_can and "answer_on_spot" in junior_can

    status, body = await act(api, jun, tid, "approve_dispatch", version=1, reason="x",
                             params={"fault_class": "电缆故障"})
    assert status == 403 and body["error"] == "forbidden_action"
    status, body = await act(api, sen, tid, "approve_dispatch", version=1, reason="派西湖测量中心",
                             params={"fault_class": "电缆故障"})
    assert status == 200, body
    chars = {c["name"]: c["value"] for c in body["troubleTicketCharacteristic"]}
    assert (body["status"], chars["subStep"], chars["faultClass"], chars["measurementCentre"], chars["version"]) == (
        "inProgress", "dispatched", "电缆故障", "MC-XH", 2)
    assert body["expectedResolutionDate"]
    status, body = await act(api, sen, tid, "no_dispatch_needed", version=1, reason="late click")
    assert status == 409 and body["error"] == "stale" and "by sen" in body["reason"]
    status, body = await act(api, bj, tid, "receipt", reason="修好了")
    assert status == 404 and body["error"] == "not_found"  # another branch's ticket is not there (bot/scope.py)
    status, body = await act(api, cen, tid, "receipt", version=2)
    assert status == 400 and body["error"] == "reason_required"
    status, body = await act(api, cen, tid, "receipt", version=2, reason="更换分线盒，已修复")
    assert status == 200 and body["status"] == "resolved"
    history = [(h["action"], h["changedBy"], h["subStep"], h["status"]) for h in body["statusChangeHistory"]]
    assert history == [("report", "voice", "awaiting_review", "acknowledged"),
                       ("approve_dispatch", "sen", "dispatched", "inProgress"),
                       ("receipt", "cen", "receipt_received", "resolved")]
    # The TMF621 read gives the same history.
    tmf = await (await api.get(f"{TT}/{tid}", headers=cen)).json()
    assert [h["action"] for h in tmf["statusChangeHistory"]] == ["report", "approve_dispatch", "receipt"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/api/tickets/TT-NOPE/actions/note", {"reason": "x"}, 404, "not_found"),
        ("/api/tickets/{tid}/actions/teleport", {"reason": "x"}, 400, "unknown_action"),
        ("/api/tickets/{tid}/actions/note", {"reason": "x", "extra": 1}, 400, "invalid_request"),
        ("/api/tickets/{tid}/actions/note", {"reason": "x", "version": 0}, 400, "invalid_request"),
        ("/api/tickets/{tid}/actions/chase", {"reason": "x"}, 409, "illegal_transition"),
    ],
)
async def test_bad_action_requests(api: Any, demo_db: Database, path: str, body: dict[str, Any], status: int,
                                   code: str) -> None:
    tid = a10_ticket(demo_db)
    sen = await bearer(api, "sen")
    resp = await api.post(path.format(tid=tid), json=body, headers=sen)
    assert resp.status == status and (await resp.json())["error"] == code


async def test_the_staff_token_is_the_api_post(api: Any, demo_db: Database) -> None:
    tid = a10_ticket(demo_db)
    status, body = await act(api, STAFF, tid, "approve_dispatch", reason="x", params={"fault_class": "电缆故障"})
    assert status == 403
    wf = await (await api.get(f"/api/tickets/{tid}/workflow", headers=STAFF)).json()
    assert {a["name"] for a in wf["actions"]} == {"api_start", "api_reject", "api_cancel", "note"}


async def test_workflow_table_is_published(api: Any) -> None:
    body = await (await api.get("/api/workflow")).json()
    names = {a["name"] for a in body["actions"]}
    assert {"approve_dispatch", "receipt", "escalate", "reject_owner_mismatch"} <= names
    assert body["subSteps"]["dispatched"] == {"status": "inProgress"}


# ------------------------------------------------------------------- tasks


async def test_escalation_to_the_manager_with_compensation(api: Any, demo_db: Database) -> None:
    tid = a10_ticket(demo_db)
    jun, sen, man, cen = [await bearer(api, n) for n in ("jun", "sen", "man", "cen")]
    await act(api, sen, tid, "approve_dispatch", reason="x", params={"fault_class": "电缆故障"})
    make_overdue(demo_db, tid, 50)
    status, _body = await act(api, jun, tid, "escalate", reason="超时两天未修，用户要求赔偿")
    assert status == 200
    assert await (await api.get("/api/tasks", headers=jun)).json() == []
    [task] = await (await api.get("/api/tasks?kind=escalation", headers=man)).json()
    assert task["ticket_id"] == tid and task["created_by"] == "jun"
    assert (await api.get(f"/api/tasks/{task['id']}", headers=jun)).status == 404
    detail = await (await api.get(f"/api/tasks/{task['id']}", headers=man)).json()
    assert detail["compensationCheck"]["eligible"] and detail["compensationCheck"]["amount"] == 20.0
    resp = await api.post(f"/api/tasks/{task['id']}/decision", headers=sen,
                          json={"finding": "ours", "explanation": "x"})
    assert resp.status == 403
    resp = await api.post(f"/api/tasks/{task['id']}/decision", headers=man,
                          json={"finding": "not_ours", "explanation": "x", "grantCompensation": True})
    assert resp.status == 400 and (await resp.json())["error"] == "not_eligible"
    resp = await api.post(f"/api/tasks/{task['id']}/decision", headers=man,
                          json={"finding": "ours", "explanation": "维修超时属实", "grantCompensation": True})
    decided = await resp.json()
    assert resp.status == 200 and decided["state"] == "done" and decided["outcome"]["compensation"]["granted"]
    notices = await (await api.get("/api/tasks?kind=branch_notice", headers=cen)).json()
    assert [n["outcome"]["finding"] for n in notices] == ["ours"]
    resp = await api.post(f"/api/tasks/{notices[0]['id']}/ack", headers=cen)
    assert resp.status == 200 and (await resp.json())["state"] == "done"
    bj = await bearer(api, "bj")
    assert (await api.post(f"/api/tasks/{notices[0]['id']}/ack", headers=bj)).status == 404  # another branch's notice


async def test_grading_over_the_api(api: Any, demo_db: Database) -> None:
    from bot.store import workflow

    task_id = demo_db.call(workflow.open_senior_transfer, handoff_id=1, ticket_id=None, junior="jun", reason="r")
    jun, sen = await bearer(api, "jun"), await bearer(api, "sen")
    resp = await api.post(f"/api/tasks/{task_id}/grade", headers=jun, json={"grade": "correct"})
    assert resp.status == 403
    resp = await api.post(f"/api/tasks/{task_id}/grade", headers=sen, json={"grade": "maybe"})
    assert resp.status == 400
    resp = await api.post(f"/api/tasks/{task_id}/grade", headers=sen, json={"grade": "correct"})
    assert resp.status == 200 and (await resp.json())["grade"] == "correct"
    resp = await api.post(f"/api/tasks/{task_id}/grade", headers=sen, json={"grade": "correct"})
    assert resp.status == 409


# ------------------------------------------------------------ TMF621 writes


async def test_tmf_writes_by_post_and_if_match(api: Any, demo_db: Database) -> None:
    tid = a10_ticket(demo_db)
    jun = await bearer(api, "jun")
    resp = await api.patch(f"{TT}/{tid}", json={"status": "inProgress"}, headers=jun)
    assert resp.status == 403 and "actions" in (await resp.json())["reason"]
    resp = await api.patch(f"{TT}/{tid}", json={"note": [{"text": "用户来电询问进度"}]}, headers=jun)
    body = await resp.json()
    assert resp.status == 200 and body["note"][-1]["author"] == "jun" and resp.headers["ETag"] == 'W/"2"'
    resp = await api.patch(f"{TT}/{tid}", json={"status": "inProgress"}, headers={**STAFF, "If-Match": 'W/"1"'})
    assert resp.status == 412 and (await resp.json())["error"] == "stale"
    resp = await api.patch(f"{TT}/{tid}", json={"status": "inProgress"}, headers={**STAFF, "If-Match": "nonsense"})
    assert resp.status == 400
    resp = await api.patch(f"{TT}/{tid}", json={"status": "inProgress"}, headers={**STAFF, "If-Match": 'W/"2"'})
    assert resp.status == 200 and (await resp.json())["status"] == "inProgress"
    resp = await api.post(TT, json={"description": "外线断了", "severity": "Major", "ticketType": "fault"},
                          headers=jun)
    created = await resp.json()
    assert resp.status == 201 and created["statusChangeHistory"][0]["changedBy"] == "jun"
