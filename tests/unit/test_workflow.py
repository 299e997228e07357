"""The ticket workflow's table and rules (bot/store/workflow.py), on SQLite and PostgreSQL.
Category: unit (a real database, no HTTP)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.store import service, workflow
from bot.store.db import Database
from bot.store.models import DeskTask, LineRow, Report, Ticket, TicketStatus
from bot.store.workflow import ACTIONS, STATUS_OF, Actor, CompensationRules, SubStep

LINE = "057187650001"  # a residential line of 西湖分公司 in the demo world
JUNIOR = Actor("junior", "junior")
SENIOR = Actor("senior", "senior")
CENTRE = Actor("centre", "centre", "西湖分公司")
OTHER_CENTRE = Actor("bj", "centre", "滨江分公司")
MANAGER = Actor("manager", "manager")
RULES = CompensationRules(after_overdue_hours=24, amounts={"residential": 20.0, "business": 100.0},
                          big_customer_amount=200.0)


def report(db: Database, conversation: str = "c1", number: str = LINE) -> str:
    data = service.ReportData(conversation_id=conversation, channel="webchat", language="zh", kind="new",
                              fault_number=number, contact_number="13800138000",
                              symptom_category="no_dial_tone", symptom_text="没有拨号音")
    return db.call(service.create_report, data).ticket_id


def do(db: Database, tid: str, action: str, actor: Actor, reason: str | None = "because", *,
       params: dict[str, str] | None = None, expected_version: int | None = None) -> workflow.ActionResult:
    return db.call(workflow.perform, tid, action, actor, reason=reason, params=params,
                   expected_version=expected_version)


def ticket(db: Database, tid: str) -> Ticket:
    row = db.call(lambda s: s.get(Ticket, tid))
    assert row is not None
    return row


def tasks(db: Database, **where: object) -> list[DeskTask]:
    def q(s: Session) -> list[DeskTask]:
        stmt = select(DeskTask)
        for k, v in where.items():
            stmt = stmt.where(getattr(DeskTask, k) == v)
        return list(s.exec(stmt))

    return db.call(q)


# ------------------------------------------------------------------ the table


def test_every_sub_step_has_a_status_and_every_action_known_steps() -> None:
    assert set(STATUS_OF) == {s.value for s in SubStep}
    assert set(STATUS_OF.values()) <= {s.value for s in TicketStatus}
    for a in ACTIONS.values():
        assert a.from_steps <= set(STATUS_OF), a.name
        assert a.to_step is None or a.to_step in STATUS_OF, a.name
        assert a.roles, a.name


def test_final_sub_steps_allow_only_notes() -> None:
    for step in workflow.FINAL_SUB_STEPS:
        assert {a.name for a in ACTIONS.values() if step in a.from_steps} == {"note"}


def test_the_api_status_graph_is_tmf621s_usual_one() -> None:
    """The moves another system can make with PATCH status, derived from the table."""
    assert {k: set(v) for k, v in workflow.API_STATUS_TRANSITIONS.items()} == {
        "acknowledged": {"inProgress", "rejected", "cancelled"},
        "inProgress": {"pending", "held", "resolved", "cancelled"},
        "pending": {"inProgress", "cancelled"},
        "held": {"inProgress", "cancelled"},
        "resolved": {"closed", "inProgress"},
        "closed": set(), "rejected": set(), "cancelled": set(),
    }


def test_desk_moves_are_in_the_full_graph() -> None:
    full = workflow.ALLOWED_STATUS_TRANSITIONS
    assert "resolved" in full["acknowledged"]  # J6: answered on the spot
    assert "pending" in full["acknowledged"]  # S2: no dispatch needed → callback
    assert "acknowledged" in full["resolved"]  # J4: fault still there → reopened for review


def test_who_may_do_what() -> None:
    assert ACTIONS["approve_dispatch"].roles == {"senior"}  # S2: a senior reviews every dispatch
    assert ACTIONS["receipt"].roles == {"centre"}
    assert "junior" not in ACTIONS["close"].roles
    assert all(a.allowed_for("admin") for a in ACTIONS.values())


# --------------------------------------------------------------- the flow


def test_report_dispatch_receipt_is_one_history(demo_db: Database) -> None:
    """A10 → S2 approve with a fault class → the centre's receipt resolves the ticket."""
    tid = report(demo_db)
    t = ticket(demo_db, tid)
    assert (t.status, t.sub_step, t.version) == ("acknowledged", "awaiting_review", 1)
    before = datetime.now(UTC)
    do(demo_db, tid, "approve_dispatch", SENIOR, "用户线路故障，派测量中心", params={"fault_class": "用户线路故障"},
       expected_version=1)
    t = ticket(demo_db, tid)
    assert (t.status, t.sub_step, t.centre_id, t.fault_class, t.version) == (
        "inProgress", "dispatched", "MC-XH", "用户线路故障", 2)
    assert t.expected_resolution_date is not None and t.dispatched_at is not None
    assert t.expected_resolution_date - t.dispatched_at == timedelta(hours=24)  # MC-XH's deadline
    assert t.dispatched_at >= before
    do(demo_db, tid, "receipt", CENTRE, "更换入户线，已修复", expected_version=2)
    view = demo_db.call(service.get_ticket, tid)
    assert (view.ticket.status, view.ticket.sub_step) == ("resolved", "receipt_received")
    assert view.ticket.resolution_date is not None
    rows = [(h.action, h.author, h.from_sub_step, h.to_sub_step, h.to_status, h.reason) for h in view.history]
    assert rows == [
        ("report", "webchat", None, "awaiting_review", "acknowledged", "reported by the caller"),
        ("approve_dispatch", "senior", "awaiting_review", "dispatched", "inProgress", "用户线路故障，派测量中心"),
        ("receipt", "centre", "dispatched", "receipt_received", "resolved", "更换入户线，已修复"),
    ]


@pytest.mark.parametrize(
    ("action", "actor", "code"),
    [
        ("approve_dispatch", JUNIOR, "forbidden_action"),  # only a senior dispatches
        ("approve_dispatch", MANAGER, "forbidden_action"),
        ("receipt", SENIOR, "forbidden_action"),
        ("receipt", CENTRE, "illegal_transition"),  # not dispatched yet
        ("close", JUNIOR, "forbidden_action"),
    ],
)
def test_refusals_say_why_and_change_nothing(demo_db: Database, action: str, actor: Actor, code: str) -> None:
    tid = report(demo_db)
    with pytest.raises(service.ServiceError) as info:
        do(demo_db, tid, action, actor, params={"fault_class": "用户线路故障"})
    assert info.value.code == code and info.value.reason
    t = ticket(demo_db, tid)
    assert (t.sub_step, t.version) == ("awaiting_review", 1)
    assert len(demo_db.call(service.get_ticket, tid).history) == 1


def test_illegal_move_names_what_is_possible(demo_db: Database) -> None:
    tid = report(demo_db)
    with pytest.raises(service.IllegalTransition) as info:
        do(demo_db, tid, "chase", SENIOR)
    assert "not possible while the ticket is awaiting_review" in info.value.reason
    assert "approve_dispatch" in info.value.reason and "no_dispatch_needed" in info.value.reason


def test_centre_of_another_branch_cannot_touch_it(demo_db: Database) -> None:
    tid = report(demo_db)
    do(demo_db, tid, "approve_dispatch", SENIOR, params={"fault_class": "电缆故障"})
    with pytest.raises(service.ServiceError) as info:
        do(demo_db, tid, "receipt", OTHER_CENTRE, "done")
    assert info.value.code == "forbidden_action" and "your branch" in info.value.reason
    assert [a.name for a in workflow.available_actions(ticket(demo_db, tid), OTHER_CENTRE)] == []
    assert {a.name for a in workflow.available_actions(ticket(demo_db, tid), CENTRE)} == {
        "receipt", "return_to_review", "note"}


@pytest.mark.parametrize(
    ("action", "params", "reason", "code"),
    [
        ("approve_dispatch", {}, "x", "param_required"),
        ("approve_dispatch", {"fault_class": "天气不好"}, "x", "invalid_fault_class"),
        ("no_dispatch_needed", {}, None, "reason_required"),
        ("no_dispatch_needed", {}, "   ", "reason_required"),
        ("no_dispatch_needed", {}, "x" * 2001, "reason_too_long"),
        ("fly_to_the_moon", {}, "x", "unknown_action"),
    ],
)
def test_bad_input_is_refused(demo_db: Database, action: str, params: dict[str, str], reason: str | None,
                              code: str) -> None:
    tid = report(demo_db)
    with pytest.raises(service.ServiceError) as info:
        do(demo_db, tid, action, SENIOR, reason, params=params)
    assert info.value.code == code
    assert ticket(demo_db, tid).version == 1


def test_unknown_ticket_is_not_found(demo_db: Database) -> None:
    with pytest.raises(service.NotFound):
        do(demo_db, "TT-00000000", "note", SENIOR)


def test_no_dispatch_needed_opens_a_callback_that_answering_closes(demo_db: Database) -> None:
    tid = report(demo_db)
    task_id = do(demo_db, tid, "no_dispatch_needed", SENIOR, "用户话机故障，无需派单").task_id
    assert ticket(demo_db, tid).status == "pending"
    [task] = tasks(demo_db, kind="callback")
    assert (task.id, task.role, task.state, task.created_by) == (task_id, "senior", "open", "senior")
    do(demo_db, tid, "callback_done", SENIOR, "已电话告知用户更换话机")
    [task] = tasks(demo_db, kind="callback")
    assert task.state == "done" and task.outcome == {"answer": "已电话告知用户更换话机"}
    t = ticket(demo_db, tid)
    assert (t.status, t.sub_step) == ("resolved", "answered")


def test_chase_counts_and_tells_the_branch_until_the_receipt(demo_db: Database) -> None:
    tid = report(demo_db)
    do(demo_db, tid, "approve_dispatch", SENIOR, params={"fault_class": "电缆故障"})
    do(demo_db, tid, "chase", JUNIOR, "用户再次来电催修")
    do(demo_db, tid, "chase", SENIOR, "第二次催单")
    t = ticket(demo_db, tid)
    assert (t.chase_count, t.sub_step, t.status) == (2, "dispatched", "inProgress")
    notices = tasks(demo_db, kind="branch_notice")
    assert [(n.role, n.branch, n.state) for n in notices] == [("centre", "西湖分公司", "open")] * 2
    do(demo_db, tid, "receipt", CENTRE, "已修复")
    assert {n.state for n in tasks(demo_db, kind="branch_notice")} == {"done"}


def test_return_then_redispatch(demo_db: Database) -> None:
    tid = report(demo_db)
    do(demo_db, tid, "approve_dispatch", SENIOR, params={"fault_class": "电缆故障"})
    do(demo_db, tid, "return_to_review", CENTRE, "地址不详，无法上门")
    assert (ticket(demo_db, tid).status, ticket(demo_db, tid).sub_step) == ("pending", "returned")
    do(demo_db, tid, "approve_dispatch", SENIOR, "已补充地址", params={"fault_class": "电缆故障"})
    assert ticket(demo_db, tid).sub_step == "dispatched"


def test_reopen_clears_the_resolution(demo_db: Database) -> None:
    tid = report(demo_db)
    do(demo_db, tid, "answer_on_spot", JUNIOR, "话机未挂好")
    assert ticket(demo_db, tid).resolution_date is not None
    do(demo_db, tid, "reopen", JUNIOR, "用户说仍然没有拨号音")
    t = ticket(demo_db, tid)
    assert (t.status, t.sub_step, t.resolution_date) == ("acknowledged", "awaiting_review", None)


def test_supplement_adds_a_report_and_keeps_the_step(demo_db: Database) -> None:
    tid = report(demo_db)
    do(demo_db, tid, "supplement", JUNIOR, "晚上噪音更大", params={"channel": "voice"})
    kinds = demo_db.call(lambda s: [r.kind for r in s.exec(select(Report).where(Report.ticket_id == tid))])
    assert kinds == ["new", "supplement"]
    assert ticket(demo_db, tid).sub_step == "awaiting_review"


def test_world_faults_start_dispatched_to_their_centre(demo_db: Database) -> None:
    rows = demo_db.call(lambda s: list(s.exec(select(Ticket).where(Ticket.origin == "world"))))
    assert rows and {(t.sub_step, t.status) for t in rows} == {("dispatched", "inProgress")}
    assert all(t.centre_id for t in rows)


# ------------------------------------------------------------ optimistic locking


def test_a_stale_version_is_refused_and_names_who_changed_it(demo_db: Database) -> None:
    tid = report(demo_db)
    do(demo_db, tid, "no_dispatch_needed", SENIOR, "无需派单", expected_version=1)
    with pytest.raises(service.Conflict) as info:  # a second senior, with the page they opened before
        do(demo_db, tid, "approve_dispatch", Actor("senior2", "senior"), params={"fault_class": "电缆故障"},
           expected_version=1)
    assert info.value.code == "stale" and "by senior" in info.value.reason and "reload" in info.value.reason
    t = ticket(demo_db, tid)
    assert (t.sub_step, t.version, t.fault_class) == ("callback", 2, None)


def test_two_writers_at_once_one_wins(demo_db: Database) -> None:
    """Both read version 1 and act at the same moment: exactly one succeeds, the other
    gets a conflict (stale, or the move is no longer possible), nothing is half-written."""
    tid = report(demo_db)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(actor: Actor, action: str, params: dict[str, str]) -> None:
        barrier.wait()
        try:
            do(demo_db, tid, action, actor, params=params, expected_version=1)
            outcomes.append("ok")
        except service.Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=act, args=(Actor("s1", "senior"), "approve_dispatch",
                                                  {"fault_class": "电缆故障"})),
               threading.Thread(target=act, args=(Actor("s2", "senior"), "no_dispatch_needed", {}))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes)[0] == "ok" and outcomes.count("ok") == 1
    view = demo_db.call(service.get_ticket, tid)
    assert view.ticket.version == 2 and len(view.history) == 2


# ------------------------------------------------------------- escalations (M)


def make_overdue(db: Database, tid: str, hours: float) -> None:
    """The ticket's completion deadline passed ``hours`` ago."""
    def q(s: Session) -> None:
        t = s.get(Ticket, tid)
        assert t is not None
        t.expected_resolution_date = datetime.now(UTC) - timedelta(hours=hours)
        s.add(t)

    db.call(q)


def test_escalation_decision_with_compensation_tells_the_branch(demo_db: Database) -> None:
    tid = report(demo_db)
    do(demo_db, tid, "approve_dispatch", SENIOR, params={"fault_class": "电缆故障"})
    make_overdue(demo_db, tid, 30)
    task_id = do(demo_db, tid, "escalate", JUNIOR, "超时未修复，用户要求经理处理").task_id
    assert task_id is not None and ticket(demo_db, tid).sub_step == "dispatched"  # the repair goes on
    task = demo_db.call(workflow.decide_escalation, task_id, MANAGER, finding="ours",
                        explanation="线路维修超时，属我方责任", rules=RULES, grant_compensation=True)
    assert task.state == "done" and task.done_by == "manager"
    comp = (task.outcome or {})["compensation"]
    assert comp["eligible"] and comp["granted"] and comp["amount"] == 20.0 and comp["overdue_hours"] >= 30
    [notice] = tasks(demo_db, kind="branch_notice")
    assert (notice.branch, notice.role, notice.state) == ("西湖分公司", "centre", "open")
    notes = demo_db.call(service.get_ticket, tid).notes
    assert notes[-1].author == "manager" and "compensation 20 CNY granted" in notes[-1].text
    with pytest.raises(service.Conflict):
        demo_db.call(workflow.decide_escalation, task_id, MANAGER, finding="ours", explanation="again", rules=RULES)


def test_compensation_is_refused_when_the_rules_do_not_allow_it(demo_db: Database) -> None:
    tid = report(demo_db)
    do(demo_db, tid, "approve_dispatch", SENIOR, params={"fault_class": "电缆故障"})
    make_overdue(demo_db, tid, 2)  # overdue, but not by more than 24 h
    task_id = do(demo_db, tid, "escalate", JUNIOR, "用户不满").task_id
    assert task_id is not None
    with pytest.raises(service.ServiceError) as info:
        demo_db.call(workflow.decide_escalation, task_id, MANAGER, finding="ours", explanation="x", rules=RULES,
                     grant_compensation=True)
    assert info.value.code == "not_eligible" and "not more than 24 h" in info.value.reason
    with pytest.raises(service.ServiceError) as role:
        demo_db.call(workflow.decide_escalation, task_id, SENIOR, finding="ours", explanation="x", rules=RULES)
    assert role.value.code == "forbidden_action"
    task = demo_db.call(workflow.decide_escalation, task_id, MANAGER, finding="not_ours",
                        explanation="用户室内线故障，已解释", rules=RULES)
    assert task.outcome is not None and task.outcome["finding"] == "not_ours"


def _line(big: bool = False, kind: str = "residential") -> LineRow:
    return LineRow(number=LINE, owner="x", big_customer=big, customer_type=kind)


@pytest.mark.parametrize(
    ("overdue_h", "line", "eligible", "amount"),
    [
        (0, _line(), False, 0.0),
        (24, _line(), False, 0.0),  # not MORE than 24 h
        (25, _line(), True, 20.0),
        (25, _line(kind="business"), True, 100.0),
        (25, _line(big=True, kind="government"), True, 200.0),
        (25, _line(kind="unknown_kind"), True, 20.0),  # falls back to residential
        (25, None, True, 20.0),
    ],
)
def test_compensation_rules(overdue_h: float, line: LineRow | None, eligible: bool, amount: float) -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    t = Ticket(id="TT-1", name="n", description="d", severity="Major",
               expected_resolution_date=now - timedelta(hours=overdue_h))
    comp = workflow.compensation_for(t, line, RULES, now=now)
    assert (comp.eligible, comp.amount) == (eligible, amount)


def test_a_resolved_fault_is_overdue_until_its_resolution() -> None:
    deadline = datetime(2026, 11, 1, tzinfo=UTC)
    t = Ticket(id="TT-1", name="n", description="d", severity="Major", expected_resolution_date=deadline,
               resolution_date=deadline + timedelta(hours=10))
    comp = workflow.compensation_for(t, None, RULES, now=deadline + timedelta(days=30))
    assert not comp.eligible and round(comp.overdue_hours) == 10


# ---------------------------------------------------------------- grading (S3)


def test_grading_builds_the_hard_case_list_and_the_juniors_notes(demo_db: Database) -> None:
    a = demo_db.call(workflow.open_senior_transfer, handoff_id=1, ticket_id=None, junior="junior",
                     reason="大客户")
    b = demo_db.call(workflow.open_senior_transfer, handoff_id=2, ticket_id=None, junior="junior",
                     reason="不会处理")
    demo_db.call(workflow.grade_transfer, a, SENIOR, "correct")
    with pytest.raises(service.ServiceError) as info:
        demo_db.call(workflow.grade_transfer, b, SENIOR, "incorrect")
    assert info.value.code == "reason_required"
    demo_db.call(workflow.grade_transfer, b, SENIOR, "incorrect", "补充申告可以当场催单")
    assert [t.id for t in demo_db.call(workflow.hard_cases)] == [a]
    [note] = demo_db.call(workflow.assessment_notes, "junior")
    assert note.id == b and note.grade_note == "补充申告可以当场催单"
    with pytest.raises(service.Conflict):
        demo_db.call(workflow.grade_transfer, a, SENIOR, "incorrect", "changed my mind")
    with pytest.raises(service.ServiceError):
        demo_db.call(workflow.grade_transfer, a, JUNIOR, "correct")


def test_complaints_wait_on_the_manager_hotlines_page(demo_db: Database) -> None:
    """Issue 13 item 5 (M2): a complaint the bot handed over shows on the manager's home,
    and only the manager's post serves its queue."""
    from bot.desk import views
    from bot.desk.work import _complaint_callers

    demo_db.call(service.queue_handoff, service.HandoffData(
        conversation_id="angry-1", channel="webchat", language="zh", reason="complaint", queue="manager",
        transcript=[{"role": "bot", "text": "欢迎"}, {"role": "user", "text": "我要投诉"}]))
    demo_db.call(service.queue_handoff, service.HandoffData(
        conversation_id="calm-1", channel="webchat", language="zh", reason="caller_request"))
    page = demo_db.call(_complaint_callers, "manager")
    assert [(c["reason"], c["said"]) for c in page["callers"]] == [("complaint", "我要投诉")]
    assert views.QUEUES_FOR_ROLE["manager"] == ("manager",) and "manager" not in views.QUEUES_FOR_ROLE["senior"]
