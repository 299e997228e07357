"""The desk's ticket work over HTTP (bot/desk/work.py): the ticket page and its workflow
actions for every post, the senior's review (S1–S3), the measurement centre (S2), the
manager hotline (M1–M3) and the admin overview; roles and branches enforced on the
server, CSRF, stale versions, inert caller text, local times. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from bot import desk
from bot.settings import Settings
from bot.store import service, workflow
from bot.store.db import Database
from bot.store.models import DeskTask, DeskUser, Ticket, TicketNote, TicketStatusChange
from bot.store.workflow import Actor
from tests.conftest import AClient, make_test_app
from tests.integration.desk_client import XSS, XSS_ESCAPED, Client, Operator, sign_in

XH, BJ = "西湖分公司", "滨江分公司"
ACCOUNTS = {  # username: (role, branch)
    "jun": ("junior", None), "sen": ("senior", None), "cen": ("centre", XH), "bj": ("centre", BJ),
    "man": ("manager", None), "adm": ("admin", None),
}
LINE = "057187650001"  # residential, 西湖分公司
BJ_LINE = "057188880001"  # big customer (business), 滨江分公司
OVERDUE = "TT-W0003"  # demo world: dispatched to MC-XH, deadline -1d1h (relative to loading)
DISPATCHED = "TT-W0001"  # demo world: dispatched to MC-XH, no deadline
Desk = Operator


@pytest.fixture
def accounts(demo_db: Database, password_hash: str) -> Database:
    def add(s: Session) -> None:
        for name, (role, branch) in ACCOUNTS.items():
            s.add(DeskUser(username=name, display_name=f"{name} display", role=role, branch=branch,
                           password_hash=password_hash))

    demo_db.call(add)
    return demo_db


@pytest.fixture
async def web_client(aiohttp_client: AClient, accounts: Database, settings: Settings) -> Client:
    app = make_test_app(accounts, settings)
    desk.setup_routes(app)
    return await aiohttp_client(app)


@pytest.fixture
async def who(web_client: Client) -> dict[str, Desk]:
    return {name: await sign_in(web_client, name) for name in ACCOUNTS}


def report(db: Database, conversation: str, number: str = LINE, symptom_text: str = "没有拨号音") -> str:
    """A bot's A10 report: a ticket awaiting a senior's review, with a line test."""
    data = service.ReportData(
        conversation_id=conversation, channel="webchat", language="zh", kind="new", fault_number=number,
        contact_number="13800138000", symptom_category="no_dial_tone", symptom_text=symptom_text,
        line_test=service.LineTestData(test_id=f"t-{conversation}", result="open_circuit"))
    return db.call(service.create_report, data).ticket_id


def ticket(db: Database, tid: str) -> Ticket:
    row = db.call(lambda s: s.get(Ticket, tid))
    assert row is not None
    return row


def set_created(db: Database, tid: str, when: datetime) -> None:
    def write(s: Session) -> None:
        row = s.get(Ticket, tid)
        assert row is not None
        row.creation_date = when
        s.add(row)

    db.call(write)


def history(db: Database, tid: str) -> list[TicketStatusChange]:
    return db.call(lambda s: list(s.exec(select(TicketStatusChange).where(TicketStatusChange.ticket_id == tid)
                                         .order_by(col(TicketStatusChange.id)))))


def tasks(db: Database, kind: str) -> list[DeskTask]:
    return db.call(lambda s: list(s.exec(select(DeskTask).where(DeskTask.kind == kind)
                                         .order_by(col(DeskTask.id)))))


def perform(db: Database, tid: str, action: str, actor: Actor, reason: str | None = "because", **params: str) -> None:
    db.call(workflow.perform, tid, action, actor, reason=reason, params=params)


SEN = Actor("sen", "senior")
JUN = Actor("jun", "junior")
CEN = Actor("cen", "centre", XH)


def forms(body: str) -> set[str]:
    return set(re.findall(r'action="/desk/tickets/[^/"]+/actions/([a-z_]+)"', body))


# ------------------------------------------------------------------ the ticket page


async def test_ticket_page_shows_fields_reports_test_and_whole_history(
        who: dict[str, Desk], accounts: Database) -> None:
    tid = report(accounts, "c-page")
    perform(accounts, tid, "approve_dispatch", SEN, "线路断开", fault_class="用户线路故障")
    perform(accounts, tid, "chase", JUN, "客户催促")
    status, body = await who["sen"].get(f"/desk/tickets/{tid}")
    assert status == 200
    t = ticket(accounts, tid)
    # Codes are shown as words (issue 14 item 5; this account reads English): inProgress → in progress.
    for shown in (tid, LINE, "13800138000", "没有拨号音", XH, "in progress", "dispatched", "用户线路故障",
                  "西湖测量管理中心 (MC-XH)", "王建国", f"<dt>Chases</dt><dd>{t.chase_count}</dd>",
                  f"<dt>Version</dt><dd>{t.version}</dd>", "open circuit (broken line)", "left"):
        assert shown in body, shown
    assert t.chase_count == 1
    rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td><td>[^<]*<span class=\"muted\">\((\w+)\)</span>",
                      body.split('id="history"')[1])
    assert [r[1] for r in rows] == ["report", "approve_dispatch", "chase"]
    assert [r[0] for r in rows][1:] == ["sen", "jun"]
    assert "awaiting review → dispatched" in body and "acknowledged → in progress" in body
    assert "inProgress" not in body.split('id="history"')[1] and "awaiting_review" not in body
    assert "线路断开" in body and "客户催促" in body
    assert "审核通过并派单 / Approve and dispatch" in body


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Europe/London"])
async def test_times_are_shown_in_the_configured_time_zone(
        aiohttp_client: AClient, accounts: Database, settings: Settings, tz: str) -> None:
    from zoneinfo import ZoneInfo

    settings.timezone = tz
    app = make_test_app(accounts, settings)
    desk.setup_routes(app)
    sen = await sign_in(await aiohttp_client(app), "sen")
    [ticket] = accounts.call(lambda s: list(s.exec(select(Ticket).where(Ticket.id == OVERDUE))))
    deadline = ticket.expected_resolution_date  # the demo world's -1d1h, relative to loading
    assert deadline is not None
    stored = deadline.replace(tzinfo=deadline.tzinfo or UTC)
    local = stored.astimezone(ZoneInfo(tz))
    shown = local.strftime("%Y-%m-%d %H:%M:%S")
    status, body = await sen.get(f"/desk/tickets/{OVERDUE}")
    assert status == 200
    assert f"<dt>Deadline</dt><dd>{shown} ({tz})" in body
    if local.utcoffset():
        assert stored.strftime("%Y-%m-%d %H:%M:%S") not in body  # never the stored UTC
    assert re.search(r'class="flag">overdue by \d+ d \d+ h \d\d min<', body)


@pytest.mark.parametrize("name", ["jun", "sen", "cen", "man", "adm"])
async def test_every_post_opens_a_ticket_of_its_scope(who: dict[str, Desk], name: str) -> None:
    status, body = await who[name].get(f"/desk/tickets/{OVERDUE}")
    assert status == 200 and "打不出去" in body


async def test_a_centre_of_another_branch_cannot_open_or_act_on_a_ticket(
        who: dict[str, Desk], accounts: Database) -> None:
    before = ticket(accounts, OVERDUE)
    status, body = await who["bj"].get(f"/desk/tickets/{OVERDUE}")
    assert status == 404 and "打不出去" not in body  # not there for them (bot/scope.py): no probing ids
    for action in ("receipt", "note", "return_to_review"):
        status, body, _ = await who["bj"].act(OVERDUE, action, before.version, reason="不是我们的")
        assert status == 404 and "打不出去" not in body, action
    after = ticket(accounts, OVERDUE)
    assert (after.version, after.sub_step) == (before.version, before.sub_step)


async def test_signed_out_and_unknown_tickets(who: dict[str, Desk], web_client: Client) -> None:
    r = await web_client.get(f"/desk/tickets/{OVERDUE}", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/desk/login"
    r = await web_client.post(f"/desk/tickets/{OVERDUE}/actions/note", data={"version": "1"},
                              allow_redirects=False)
    assert r.status == 401
    assert (await who["sen"].get("/desk/tickets/TT-00000000"))[0] == 404
    status, body, _ = await who["sen"].act("TT-00000000", "note", 1, reason="x")
    assert status == 404 and "TT-00000000" in body


async def test_the_forms_are_the_posts_available_actions(who: dict[str, Desk], accounts: Database) -> None:
    tid = report(accounts, "c-forms")
    t = ticket(accounts, tid)
    for name, role, branch in (("jun", "junior", None), ("sen", "senior", None), ("man", "manager", None),
                               ("cen", "centre", XH), ("adm", "admin", None)):
        _, body = await who[name].get(f"/desk/tickets/{tid}")
        expected = {a.name for a in workflow.available_actions(t, Actor(name, role, branch))}
        assert forms(body) == expected, name
        assert body.count(f'name="version" value="{t.version}"') == len(expected)
    _, body = await who["sen"].get(f"/desk/tickets/{tid}")
    assert {"approve_dispatch", "no_dispatch_needed"} <= forms(body)
    select_html = body.split('id="action-approve_dispatch"')[1].split("</form>")[0]
    for fc in ("用户线路故障", "交接箱故障", "宽带故障"):
        assert f'<option value="{fc}">{fc}</option>' in select_html
    assert "approve_dispatch" not in forms((await who["jun"].get(f"/desk/tickets/{tid}"))[1])
    assert forms((await who["man"].get(f"/desk/tickets/{tid}"))[1]) == {"note"}


async def test_a_senior_approves_a_dispatch_from_the_page(who: dict[str, Desk], accounts: Database) -> None:
    tid = report(accounts, "c-approve")
    version = ticket(accounts, tid).version
    status, _, location = await who["sen"].act(tid, "approve_dispatch", version, reason="断线",
                                               fault_class="电缆故障")
    assert status == 303 and location == f"/desk/tickets/{tid}"
    t = ticket(accounts, tid)
    assert (t.sub_step, t.status, t.fault_class, t.centre_id) == ("dispatched", "inProgress", "电缆故障", "MC-XH")
    assert t.expected_resolution_date is not None and t.dispatched_at is not None
    assert t.expected_resolution_date - t.dispatched_at == timedelta(hours=24)
    assert history(accounts, tid)[-1].author == "sen"


@pytest.mark.parametrize("name", ["man", "jun", "cen"])
async def test_other_posts_cannot_dispatch(who: dict[str, Desk], accounts: Database, name: str) -> None:
    tid = report(accounts, f"c-nodispatch-{name}")
    version = ticket(accounts, tid).version
    status, body, _ = await who[name].act(tid, "approve_dispatch", version, reason="x", fault_class="电缆故障")
    assert status == 403 and "may not approve_dispatch" in body
    assert ticket(accounts, tid).sub_step == "awaiting_review"


@pytest.mark.parametrize("data,needle", [
    ({"reason": ""}, "needs a reason"),
    ({"reason": "断线"}, "needs fault_class"),
    ({"reason": "断线", "fault_class": "不存在的分类"}, "unknown fault class"),
    ({"reason": "x" * 2001, "fault_class": "电缆故障"}, "longer than 2000"),
])
async def test_bad_input_is_400_and_the_text_is_kept(who: dict[str, Desk], accounts: Database,
                                                     data: dict[str, str], needle: str) -> None:
    tid = report(accounts, "c-bad")
    status, body, _ = await who["sen"].act(tid, "approve_dispatch", ticket(accounts, tid).version, **data)
    assert status == 400 and needle in body
    if data["reason"] and len(data["reason"]) < 100:
        assert f">{data['reason']}</textarea>" in body
    assert ticket(accounts, tid).sub_step == "awaiting_review"


async def test_a_missing_version_or_unknown_action_is_400(who: dict[str, Desk], accounts: Database) -> None:
    tid = report(accounts, "c-version")
    status, body, _ = await who["sen"].post(f"/desk/tickets/{tid}/actions/note", reason="x")
    assert status == 400 and "no valid ticket version" in body
    status, body, _ = await who["sen"].post(f"/desk/tickets/{tid}/actions/note", reason="x", version="abc")
    assert status == 400
    status, body, _ = await who["sen"].act(tid, "fly_away", ticket(accounts, tid).version, reason="x")
    assert status == 400 and "unknown action" in body
    assert len(history(accounts, tid)) == 1


async def test_a_stale_form_gets_409_and_nothing_is_lost(who: dict[str, Desk], accounts: Database) -> None:
    tid = report(accounts, "c-stale")
    version = ticket(accounts, tid).version  # both operators' pages show this version
    first = await who["sen"].act(tid, "approve_dispatch", version, reason="线路断开", fault_class="电缆故障")
    assert first[0] == 303
    status, body, _ = await who["jun"].act(tid, "answer_on_spot", version, reason="已告知客户稍后再试")
    assert status == 409 and "Reload" in body and "changed by sen" in body
    assert ">已告知客户稍后再试</textarea>" in body  # kept in the form it was typed in
    t = ticket(accounts, tid)
    assert (t.sub_step, t.version, t.fault_class) == ("dispatched", version + 1, "电缆故障")
    assert [h.action for h in history(accounts, tid)] == ["report", "approve_dispatch"]
    # The second operator's words are kept in the form they used, now with the fresh version.
    note_status, note_body, _ = await who["jun"].act(tid, "note", version, reason="客户仍不满意")
    assert note_status == 409 and ">客户仍不满意</textarea>" in note_body
    assert f'name="version" value="{version + 1}"' in note_body


async def test_an_action_not_possible_now_is_409(who: dict[str, Desk], accounts: Database) -> None:
    tid = report(accounts, "c-illegal")
    status, body, _ = await who["cen"].act(tid, "receipt", ticket(accounts, tid).version, reason="修好了")
    assert status == 409 and "not possible while the ticket is awaiting_review" in body and "Reload" in body
    assert ticket(accounts, tid).sub_step == "awaiting_review"


async def test_actions_need_the_csrf_token(who: dict[str, Desk], accounts: Database) -> None:
    tid = report(accounts, "c-csrf")
    version = ticket(accounts, tid).version
    for csrf in (None, "x" * 43):
        status, body, _ = await who["sen"].post(f"/desk/tickets/{tid}/actions/note", csrf=csrf,
                                                version=str(version), reason="forged")
        assert status == 403 and "security token" in body
    assert ticket(accounts, tid).version == version


async def test_callers_and_operators_words_are_inert(who: dict[str, Desk], accounts: Database) -> None:
    tid = report(accounts, "c-xss", symptom_text=XSS)
    perform(accounts, tid, "note", JUN, XSS)
    for name, path in (("sen", f"/desk/tickets/{tid}"), ("sen", "/desk/review"), ("adm", "/desk/admin")):
        status, body = await who[name].get(path)
        assert status == 200 and XSS not in body and XSS_ESCAPED in body, path
    status, body, _ = await who["sen"].act(tid, "note", 1, reason=XSS)  # a stale form echoes the text
    assert status == 409 and XSS not in body and XSS_ESCAPED in body


async def test_pages_carry_the_csp(who: dict[str, Desk], web_client: Client) -> None:
    r = await web_client.get(f"/desk/tickets/{OVERDUE}", headers=who["sen"].cookie)
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "<script" not in await r.text()


# ------------------------------------------------------------------ the senior's review


@pytest.mark.parametrize("name", ["jun", "cen", "man"])
async def test_only_seniors_and_admins_open_the_review(who: dict[str, Desk], name: str) -> None:
    status, body = await who[name].get("/desk/review")
    assert status == 403 and "cannot open this page" in body
    assert (await who["sen"].get("/desk/review"))[0] == 200
    assert (await who["adm"].get("/desk/review"))[0] == 200


async def test_review_queue_oldest_first_with_the_centres_return_reason(
        who: dict[str, Desk], accounts: Database) -> None:
    older = report(accounts, "c-old")
    newer = report(accounts, "c-new", number="057187650002")
    set_created(accounts, older, datetime(2024, 1, 1, tzinfo=UTC))
    perform(accounts, older, "approve_dispatch", SEN, fault_class="电缆故障")
    perform(accounts, older, "return_to_review", CEN, "不是线路问题，是终端")
    status, body = await who["sen"].get("/desk/review")
    assert status == 200
    queue = body.split('id="review-queue"')[1].split("</table>")[0]
    assert queue.index(f'id="review-{older}"') < queue.index(f'id="review-{newer}"')
    row = queue.split(f'id="review-{older}"')[1].split("</tr>")[0]
    assert "returned" in row and "不是线路问题，是终端" in row and "cen" in row
    assert "open circuit (broken line)" in queue and "没有拨号音" in queue and XH in queue
    assert OVERDUE not in queue  # dispatched: not to review


async def test_a_callback_is_listed_until_done(who: dict[str, Desk], accounts: Database) -> None:
    tid = report(accounts, "c-callback")
    status, _, _ = await who["sen"].act(tid, "no_dispatch_needed", ticket(accounts, tid).version,
                                        reason="终端问题，请重启光猫")
    assert status == 303
    _, body = await who["sen"].get("/desk/review")
    assert "终端问题，请重启光猫" in body.split('id="callbacks"')[1]
    status, _, _ = await who["jun"].act(tid, "callback_done", ticket(accounts, tid).version, reason="已回访")
    assert status == 303
    _, body = await who["sen"].get("/desk/review")
    assert 'id="callbacks"' not in body and "No call-backs open" in body
    assert ticket(accounts, tid).sub_step == "answered"


def transfer(db: Database, handoff_id: int, reason: str = "大客户，转高级") -> int:
    return db.call(workflow.open_senior_transfer, handoff_id=handoff_id, ticket_id=None, junior="jun",
                   reason=reason)


async def test_grading_a_transfer_correct_makes_a_hard_case(who: dict[str, Desk], accounts: Database) -> None:
    task_id = transfer(accounts, 7001, "用户反复申告，疑难")
    _, body = await who["sen"].get("/desk/review")
    assert f'id="transfer-{task_id}"' in body and f'action="/desk/tasks/{task_id}/grade"' in body
    status, _, location = await who["sen"].post(f"/desk/tasks/{task_id}/grade", grade="correct", note="好案例")
    assert status == 303 and location == "/desk/review"
    _, body = await who["sen"].get("/desk/review")
    assert f'id="transfer-{task_id}"' not in body
    assert "用户反复申告，疑难" in body.split('id="hard-cases"')[1]
    status, body, _ = await who["sen"].post(f"/desk/tasks/{task_id}/grade", grade="incorrect", note="again")
    assert status == 409 and "already graded correct by sen" in body
    assert [t.grade for t in tasks(accounts, "senior_transfer")] == ["correct"]


async def test_an_incorrect_grade_needs_a_note(who: dict[str, Desk], accounts: Database) -> None:
    task_id = transfer(accounts, 7002)
    status, body, _ = await who["sen"].post(f"/desk/tasks/{task_id}/grade", grade="incorrect", note="")
    assert status == 400 and "the junior reads it" in body
    status, body, _ = await who["sen"].post(f"/desk/tasks/{task_id}/grade", grade="maybe")
    assert status == 400
    status, _, _ = await who["sen"].post(f"/desk/tasks/{task_id}/grade", grade="incorrect", note="可以当场答复")
    assert status == 303
    notes = accounts.call(workflow.assessment_notes, "jun")
    assert [(n.grade, n.grade_note) for n in notes] == [("incorrect", "可以当场答复")]


@pytest.mark.parametrize("name", ["jun", "man", "cen"])
async def test_only_seniors_grade(who: dict[str, Desk], accounts: Database, name: str) -> None:
    task_id = transfer(accounts, 7003)
    status, _, _ = await who[name].post(f"/desk/tasks/{task_id}/grade", grade="correct")
    assert status == 403
    status, _, _ = await who["sen"].post(f"/desk/tasks/{task_id}/grade", csrf=None, grade="correct")
    assert status == 403
    assert tasks(accounts, "senior_transfer")[0].grade is None


# ------------------------------------------------------------------ the measurement centre


async def test_each_post_lands_on_its_own_page(who: dict[str, Desk]) -> None:
    for name, home in (("cen", "/desk/centre"), ("man", "/desk/escalations"), ("adm", "/desk/admin")):
        r = await who[name].client.get("/desk/", headers=who[name].cookie, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == home, name
    assert (await who["jun"].get("/desk/"))[0] == 200


async def test_nav_links_follow_the_post(who: dict[str, Desk]) -> None:
    links = {"/desk/review", "/desk/centre", "/desk/escalations", "/desk/admin"}
    expected = {"jun": set(), "sen": {"/desk/review"}, "cen": {"/desk/centre"},
                "man": {"/desk/escalations"}, "adm": links}
    for name, shown in expected.items():
        _, body = await who[name].get(f"/desk/tickets/{OVERDUE}")
        header = body.split("</header>")[0]
        assert {link for link in links if f'href="{link}"' in header} == shown, name


@pytest.mark.parametrize("name", ["jun", "sen", "man"])
async def test_only_centres_and_admins_open_the_centre_page(who: dict[str, Desk], name: str) -> None:
    assert (await who[name].get("/desk/centre"))[0] == 403


async def test_the_centre_sees_its_branch_overdue_first(who: dict[str, Desk], accounts: Database) -> None:
    bj_ticket = report(accounts, "c-bj", number=BJ_LINE)
    perform(accounts, bj_ticket, "approve_dispatch", SEN, fault_class="电缆故障")
    fresh = report(accounts, "c-fresh")
    perform(accounts, fresh, "approve_dispatch", SEN, fault_class="电缆故障")
    status, body = await who["cen"].get("/desk/centre")
    assert status == 200
    table = body.split('id="dispatched"')[1].split("</table>")[0]
    ids = re.findall(r'id="dispatched-([^"]+)"', table)
    assert ids[0] == OVERDUE and set(ids) == {OVERDUE, "TT-W0001", "TT-W0002", fresh}
    assert ids.index(fresh) < ids.index("TT-W0001")  # a deadline before none
    assert bj_ticket not in body and "1 overdue" in body
    assert re.search(r"overdue by \d+ d", table) and re.search(r"23 h \d\d min left|24 h 00 min left", table)
    status, body = await who["bj"].get("/desk/centre")
    assert bj_ticket in body and OVERDUE not in body and "48 h" in body
    _, body = await who["adm"].get("/desk/centre")
    assert bj_ticket in body and OVERDUE in body


async def test_the_centre_receipts_and_returns_on_the_ticket_page(who: dict[str, Desk], accounts: Database) -> None:
    _, body = await who["cen"].get(f"/desk/tickets/{OVERDUE}")
    assert forms(body) == {"receipt", "return_to_review", "note"}
    status, _, _ = await who["cen"].act(OVERDUE, "receipt", ticket(accounts, OVERDUE).version, reason="已修复")
    assert status == 303 and ticket(accounts, OVERDUE).sub_step == "receipt_received"
    _, body = await who["cen"].get("/desk/centre")
    assert OVERDUE in body.split('id="receipts"')[1] and 'id="dispatched-TT-W0003"' not in body
    status, _, _ = await who["cen"].act(DISPATCHED, "return_to_review", ticket(accounts, DISPATCHED).version,
                                        reason="地址不详")
    assert status == 303
    _, body = await who["sen"].get("/desk/review")
    assert "地址不详" in body.split(f'id="review-{DISPATCHED}"')[1].split("</tr>")[0]


async def test_a_chase_is_a_notice_for_that_branch_only(who: dict[str, Desk], accounts: Database) -> None:
    status, _, _ = await who["jun"].act(DISPATCHED, "chase", ticket(accounts, DISPATCHED).version,
                                        reason="客户第三次来电")
    assert status == 303
    notice = tasks(accounts, "branch_notice")[0]
    _, body = await who["cen"].get("/desk/centre")
    assert f'id="notice-{notice.id}"' in body and "客户第三次来电" in body and "chase 1" in body
    _, body = await who["bj"].get("/desk/centre")
    assert f'id="notice-{notice.id}"' not in body
    status, _, _ = await who["bj"].post(f"/desk/tasks/{notice.id}/ack")
    assert status == 404  # another branch's notice is not there for them
    assert (await who["bj"].get(f"/desk/tasks/{notice.id}"))[0] == 404
    status, _, _ = await who["cen"].post(f"/desk/tasks/{notice.id}/ack", csrf=None)
    assert status == 403 and tasks(accounts, "branch_notice")[0].state == "open"
    status, _, location = await who["cen"].post(f"/desk/tasks/{notice.id}/ack")
    assert status == 303 and location == "/desk/centre"
    assert tasks(accounts, "branch_notice")[0].done_by == "cen"
    _, body = await who["cen"].get("/desk/centre")
    assert f'id="notice-{notice.id}"' not in body


# ------------------------------------------------------------------ the manager hotline


def escalate(db: Database, tid: str, reason: str = "超时未修，客户投诉") -> int:
    perform(db, tid, "escalate", JUN, reason)
    return tasks(db, "escalation")[-1].id or 0


@pytest.mark.parametrize("name", ["jun", "sen", "cen"])
async def test_only_the_manager_hotline_opens_escalations(who: dict[str, Desk], accounts: Database,
                                                          name: str) -> None:
    task_id = escalate(accounts, OVERDUE)
    assert (await who[name].get("/desk/escalations"))[0] == 403
    assert (await who[name].get(f"/desk/tasks/{task_id}"))[0] == 403
    status, _, _ = await who[name].post(f"/desk/tasks/{task_id}/decision", finding="not_ours", explanation="x")
    assert status == 403
    assert tasks(accounts, "escalation")[0].state == "open"


async def test_an_escalation_with_its_history_and_compensation_check(
        who: dict[str, Desk], accounts: Database) -> None:
    task_id = escalate(accounts, OVERDUE)
    status, body = await who["man"].get("/desk/escalations")
    assert status == 200
    row = body.split(f'id="escalation-{task_id}"')[1].split("</tr>")[0]
    assert OVERDUE in row and "jun" in row and "超时未修，客户投诉" in row and "overdue by" in row
    status, body = await who["man"].get(f"/desk/tasks/{task_id}")
    assert status == 200
    comp = body.split('id="compensation"')[1].split("</section>")[0]
    assert "<strong>yes</strong>: 20.0 CNY" in comp and "residential" in comp
    assert 'name="grant_compensation"' in body
    assert 'id="history"' in body and "escalate" in body.split('id="history"')[1]


async def test_the_manager_decides_ours_with_compensation(who: dict[str, Desk], accounts: Database) -> None:
    task_id = escalate(accounts, OVERDUE)
    status, _, location = await who["man"].post(f"/desk/tasks/{task_id}/decision", finding="ours",
                                                explanation="施工延误，向客户致歉", grant_compensation="yes")
    assert status == 303 and location == f"/desk/tasks/{task_id}"
    task = tasks(accounts, "escalation")[0]
    assert task.state == "done" and task.outcome is not None
    assert task.outcome["finding"] == "ours" and task.outcome["compensation"]["granted"] is True
    _, body = await who["man"].get("/desk/escalations")
    assert 'id="open-escalations"' not in body
    assert "施工延误，向客户致歉" in body.split('id="decided-escalations"')[1] and "20.0 CNY" in body
    _, body = await who["man"].get(f"/desk/tasks/{task_id}")
    assert 'id="decision"' not in body and "our fault" in body
    # The branch is told, with the compensation; the ticket's history has the decision.
    _, body = await who["cen"].get("/desk/centre")
    assert "Compensation granted: 20.0 CNY" in body
    assert history(accounts, OVERDUE)[-1].author == "man"
    again = await who["man"].post(f"/desk/tasks/{task_id}/decision", finding="not_ours", explanation="x")
    assert again[0] == 409 and "already decided by man" in again[1]


async def test_compensation_the_rules_do_not_allow_is_refused(who: dict[str, Desk], accounts: Database) -> None:
    tid = report(accounts, "c-nocomp")  # no deadline yet: nothing is overdue
    task_id = escalate(accounts, tid)
    _, body = await who["man"].get(f"/desk/tasks/{task_id}")
    assert "no completion deadline" in body and 'name="grant_compensation"' not in body
    status, body, _ = await who["man"].post(f"/desk/tasks/{task_id}/decision", finding="ours",
                                            explanation="已解释", grant_compensation="yes")
    assert status == 400 and "allow no compensation" in body and ">已解释</textarea>" in body
    status, body, _ = await who["man"].post(f"/desk/tasks/{task_id}/decision", finding="ours", explanation=" ")
    assert status == 400 and "record the explanation" in body
    status, _, _ = await who["man"].post(f"/desk/tasks/{task_id}/decision", finding="ours",
                                         explanation="x", csrf="y" * 43)
    assert status == 403
    assert tasks(accounts, "escalation")[0].state == "open"
    status, _, _ = await who["man"].post(f"/desk/tasks/{task_id}/decision", finding="not_ours",
                                         explanation="终端问题，非我方原因")
    assert status == 303
    assert not (tasks(accounts, "escalation")[0].outcome or {})["compensation"]["granted"]


async def test_unknown_tasks_are_404(who: dict[str, Desk]) -> None:
    assert (await who["man"].get("/desk/tasks/999999"))[0] == 404
    status, _, _ = await who["man"].post("/desk/tasks/999999/decision", finding="ours", explanation="x")
    assert status == 404
    assert (await who["adm"].get("/desk/tasks/99999999999"))[0] == 404  # too long for the route


# ------------------------------------------------------------------ admin


async def test_the_admin_overview_links_everything_and_counts(who: dict[str, Desk], accounts: Database) -> None:
    report(accounts, "c-adm")
    escalate(accounts, OVERDUE)
    status, body = await who["adm"].get("/desk/admin")
    assert status == 200
    for link in ("/desk/review", "/desk/centre", "/desk/escalations"):
        assert f'href="{link}"' in body.split('id="overview"')[1]
    assert "1 to review" in body and "3 dispatched, 1 overdue" in body and "1 open escalations" in body
    for name in ("jun", "sen", "cen", "man"):
        assert (await who[name].get("/desk/admin"))[0] == 403


async def test_the_admin_may_do_everything(who: dict[str, Desk], accounts: Database) -> None:
    tid = report(accounts, "c-admin-acts")
    _, body = await who["adm"].get(f"/desk/tickets/{tid}")
    assert {"approve_dispatch", "no_dispatch_needed", "escalate", "note"} <= forms(body)
    assert (await who["adm"].act(tid, "approve_dispatch", ticket(accounts, tid).version, reason="x",
                                 fault_class="电缆故障"))[0] == 303
    assert (await who["adm"].act(tid, "receipt", ticket(accounts, tid).version, reason="修好"))[0] == 303
    task_id = escalate(accounts, tid)
    assert (await who["adm"].post(f"/desk/tasks/{task_id}/decision", finding="not_ours",
                                  explanation="已解释"))[0] == 303
    r = await who["adm"].client.get("/desk/tickets", params={"id": tid}, headers=who["adm"].cookie,
                                    allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == f"/desk/tickets/{tid}"
    notes = accounts.call(lambda s: list(s.exec(select(TicketNote).where(TicketNote.ticket_id == tid))))
    assert [n.author for n in notes] == ["adm"]


async def test_a_task_page_is_for_its_post(who: dict[str, Desk], accounts: Database) -> None:
    task_id = transfer(accounts, 7004, "用户要求高级话务员")
    status, body = await who["sen"].get(f"/desk/tasks/{task_id}")
    assert status == 200 and "用户要求高级话务员" in body and f'action="/desk/tasks/{task_id}/grade"' in body
    for name in ("jun", "cen", "man"):
        status, body = await who[name].get(f"/desk/tasks/{task_id}")
        assert status == 403 and "用户要求高级话务员" not in body, name
    status, body = await who["adm"].get(f"/desk/tasks/{task_id}")
    assert status == 200 and f'action="/desk/tasks/{task_id}/grade"' in body
