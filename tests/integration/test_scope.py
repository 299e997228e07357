"""Who may see what (bot/scope.py, issue 14 item 2), tried per post on every API and page
that reads tickets: another branch's ticket is not there (404, so ids cannot be probed),
lists leave it out, and hotline-wide personal records are not for a centre. One app
(bot/app.py's, whole) per API; every post's session made straight in the store (no
argon2 per account). SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import Session

from bot import scope as scopes
from bot.desk import auth
from bot.store import service, workflow
from bot.store.db import Database
from bot.store.models import DeskRole, DeskUser
from tests.conftest import INTERNAL_AUTH

TT = "/tmf-api/troubleTicket/v5/troubleTicket"
XH, BJ = "西湖分公司", "滨江分公司"
XH_LINE = "057187650001"  # 西湖分公司
CONTACT = "13912345678"  # the caller's contact number: never shown to another branch
# One account per post; "cen" is 西湖's centre (the ticket's), "bj" 滨江's (another branch).
POSTS: dict[str, tuple[str, str | None]] = {r.value: (r.value, None) for r in DeskRole if r is not DeskRole.centre}
POSTS |= {"cen": ("centre", XH), "bj": ("centre", BJ)}


def sees(name: str) -> bool:
    return name != "bj"


@dataclass
class World:
    client: Any
    db: Database
    ticket: str
    attachment: int
    notice: int
    tokens: dict[str, str]
    csrf: dict[str, str]

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def cookie(self, name: str) -> dict[str, str]:
        return {"Cookie": f"{auth.SESSION_COOKIE}={self.tokens[name]}"}


@pytest.fixture
async def world(app_client: Any, demo_db: Database, password_hash: str) -> World:
    def setup(s: Session) -> tuple[str, int, dict[str, str], dict[str, str]]:
        tokens, csrf = {}, {}
        for name, (role, branch) in POSTS.items():
            user = DeskUser(username=name, display_name=name, role=role, branch=branch, password_hash=password_hash)
            s.add(user)
            s.flush()
            assert user.id is not None
            tokens[name] = auth.open_session(s, user.id, 1)
            who = auth.session_identity(s, tokens[name])
            assert who is not None
            csrf[name] = who.csrf_token
        tid = service.create_report(s, service.ReportData(
            conversation_id="scope-1", channel="webchat", language="zh", kind="new", fault_number=XH_LINE,
            contact_number=CONTACT, symptom_category="no_dial_tone", symptom_text="没有拨号音，西湖的")).ticket_id
        attachment, _ = service.add_voice_message(s, tid, "scope-1", "请下午来修")
        return tid, attachment, tokens, csrf

    tid, attachment, tokens, csrf = demo_db.call(setup)
    senior = workflow.Actor("senior", "senior")
    demo_db.call(workflow.perform, tid, "approve_dispatch", senior, reason="派单",
                 params={"fault_class": "电缆故障"})
    demo_db.call(workflow.perform, tid, "chase", workflow.Actor("junior", "junior"), reason="客户催修")
    notice = demo_db.call(lambda s: max(t.id for t in workflow.open_tasks(s, "centre", kind="branch_notice",
                                                                           branch=XH)))
    return World(app_client, demo_db, tid, attachment, notice, tokens, csrf)


def test_the_rule_per_post() -> None:
    """The table in bot/scope.py, post by post."""
    for role in DeskRole:
        scope = scopes.scope_for(role.value, XH if role is DeskRole.centre else None)
        if role is DeskRole.centre:
            assert (scope.tickets, scope.personal) == ("branch", False)
            assert scopes.sees_ticket(scope, XH) and not scopes.sees_ticket(scope, BJ)
            assert not scopes.sees_ticket(scope, None)
        else:
            assert (scope.tickets, scope.personal) == ("all", True), role
            assert scopes.sees_ticket(scope, BJ) and scopes.sees_ticket(scope, None)
    nobranch = scopes.scope_for("centre", None)  # an account not set up sees nothing
    assert nobranch.tickets == "none" and not scopes.sees_ticket(nobranch, XH)
    assert scopes.scope_for("someone-new").tickets == "none"  # an unknown post: nothing
    assert scopes.sees_task(scopes.scope_for("centre", XH), "centre", XH)
    assert not scopes.sees_task(scopes.scope_for("centre", BJ), "centre", XH)
    assert not scopes.sees_task(scopes.scope_for("junior"), "senior", None)
    assert scopes.sees_task(scopes.scope_for("admin"), "centre", XH)


Check = Callable[[World, str], Awaitable[tuple[int, str]]]


async def _get(w: World, name: str, path: str, *, desk: bool = False) -> tuple[int, str]:
    resp = await w.client.get(path, headers=w.cookie(name) if desk else w.bearer(name), allow_redirects=False)
    return resp.status, await resp.text()


async def tmf_ticket(w: World, name: str) -> tuple[int, str]:
    return await _get(w, name, f"{TT}/{w.ticket}")


async def tmf_events(w: World, name: str) -> tuple[int, str]:
    return await _get(w, name, f"{TT}/{w.ticket}/event")


async def ticket_workflow(w: World, name: str) -> tuple[int, str]:
    return await _get(w, name, f"/api/tickets/{w.ticket}/workflow")


async def attachment(w: World, name: str) -> tuple[int, str]:
    return await _get(w, name, f"/api/attachments/{w.attachment}/content")


async def desk_ticket(w: World, name: str) -> tuple[int, str]:
    return await _get(w, name, f"/desk/tickets/{w.ticket}", desk=True)


SINGLE: dict[str, Check] = {
    "GET troubleTicket/{id}": tmf_ticket, "GET troubleTicket/{id}/event": tmf_events,
    "GET /api/tickets/{id}/workflow": ticket_workflow, "GET /api/attachments/{id}/content": attachment,
    "GET /desk/tickets/{id}": desk_ticket,
}


async def test_one_ticket_per_api_and_post(world: World) -> None:
    """The table: every API that reads one ticket × every post (one app, to stay fast)."""
    for api, check in SINGLE.items():
        for name in POSTS:
            status, body = await check(world, name)
            if sees(name):
                assert status == 200, (api, name, status, body[:300])
            else:
                assert status == 404, (api, name, status, body[:300])
                assert CONTACT not in body and "西湖的" not in body and "请下午来修" not in body


async def test_a_branch_notice_per_post(world: World) -> None:
    for name in POSTS:
        status, body = await _get(world, name, f"/api/tasks/{world.notice}")
        assert status == (200 if name in ("cen", "admin") else 404), (name, status, body[:200])
        status, _ = await _get(world, name, f"/desk/tasks/{world.notice}", desk=True)
        assert status == (200 if name in ("cen", "admin") else 404 if name == "bj" else 403), (name, status)
    resp = await world.client.post(f"/api/tasks/{world.notice}/ack", headers=world.bearer("bj"))
    assert resp.status == 404
    listed = await (await world.client.get("/api/tasks?kind=branch_notice", headers=world.bearer("bj"))).json()
    assert listed == []


LIST_QUERIES = ["?relatedEntity.id=" + XH_LINE, "", "?status=inProgress", "?limit=500"]


async def test_lists_leave_out_what_a_post_may_not_see(world: World) -> None:
    for query in LIST_QUERIES:
        await _list_per_post(world, query)


async def _list_per_post(world: World, query: str) -> None:
    for name in POSTS:
        resp = await world.client.get(f"{TT}{query}", headers=world.bearer(name))
        assert resp.status == 200, (name, await resp.text())
        rows = await resp.json()
        ids = {t["id"] for t in rows}
        assert int(resp.headers["X-Total-Count"]) >= len(rows)
        if sees(name):
            assert world.ticket in ids, (name, query)
        else:
            assert ids == set() and resp.headers["X-Total-Count"] == "0", (name, query, ids)
            assert CONTACT not in await resp.text()
    # The bot's own services and the staff token read every branch.
    for headers in (INTERNAL_AUTH, {"Authorization": "Bearer staff-secret"}):
        resp = await world.client.get(f"{TT}{query}", headers=headers)
        assert world.ticket in {t["id"] for t in await resp.json()}


async def test_writes_to_another_branchs_ticket_are_not_found(world: World) -> None:
    before = world.db.call(service.get_ticket, world.ticket).ticket.version
    resp = await world.client.patch(f"{TT}/{world.ticket}", json={"note": [{"text": "探一探"}]},
                                    headers=world.bearer("bj"))
    assert resp.status == 404
    resp = await world.client.post(f"/api/tickets/{world.ticket}/actions/receipt",
                                   json={"version": before, "reason": "不是我们的"}, headers=world.bearer("bj"))
    assert resp.status == 404 and CONTACT not in await resp.text()
    resp = await world.client.post(f"/desk/tickets/{world.ticket}/actions/note", allow_redirects=False,
                                   data={"csrf": world.csrf["bj"], "version": str(before), "reason": "探一探"},
                                   headers=world.cookie("bj"))
    assert resp.status == 404 and "西湖的" not in await resp.text()
    assert world.db.call(service.get_ticket, world.ticket).ticket.version == before
    resp = await world.client.patch(f"{TT}/{world.ticket}", json={"note": [{"text": "收到"}]},
                                    headers=world.bearer("cen"))
    assert resp.status == 200


PERSONAL = ["/api/handoffs", "/api/outcomes?conversation_id=scope-1", f"/api/inventory/lines/{XH_LINE}",
            "/api/surveys"]


async def test_hotline_records_are_not_for_a_centre(world: World) -> None:
    for path in PERSONAL:
        for name in POSTS:
            status, body = await _get(world, name, path)
            if POSTS[name][0] == "centre":
                assert status == 403 and CONTACT not in body, (name, path, status)
            else:
                assert status != 403 and status < 500, (name, path, status, body[:200])


async def test_no_desk_page_or_export_shows_another_branchs_ticket(world: World) -> None:
    """Every fixed GET route of the app (desk pages, lists, exports) as the other branch's
    centre: a 403/404 or a page without the ticket."""
    paths = sorted({r.canonical for r in world.client.app.router.resources()
                    if "{" not in r.canonical and (r.canonical.startswith(("/desk", "/api", "/tmf-api")))})
    assert "/desk/centre" in paths and f"{TT}" in paths
    for path in paths:
        for desk in (True, False):
            status, body = await _get(world, "bj", path, desk=desk)
            assert status < 500, (path, status)
            assert world.ticket not in body and CONTACT not in body, (path, desk)
