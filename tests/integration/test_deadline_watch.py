"""U1–U2, the deadline watch on the store (bot/sla/watch.py), SQLite and PostgreSQL, at
frozen instants (every "now" is given): one warning at 80 % (notice, note, TMF621
event), one alarm at the deadline (chase, violation, the surveyor's task, event), the
receipt closing the watch with how late it came, the clock stopped while the ticket
waits on the customer, a second dispatch watched again, a working-hours centre, and
two sweeps at once sending nothing twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, func, select

from bot.sla import watch
from bot.sla.models import DeadlineViolation, DeadlineWatch, TicketEvent
from bot.store import service, workflow
from bot.store.db import Database
from bot.store.models import DeskTask, MeasurementCentreRow, Ticket, TicketNote
from bot.store.workflow import Actor

LINE = "057187650001"  # 西湖分公司 → MC-XH, 24 h (demo world)
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai
H = timedelta(hours=1)
CFG = watch.WatchConfig(warn_share=0.8, timezone="Asia/Shanghai", base_url="http://bot.test")
JUNIOR, SENIOR = Actor("junior", "junior"), Actor("senior", "senior")
CENTRE, API = Actor("centre", "centre", "西湖分公司"), Actor("api", "api")


def dispatch(db: Database, conversation: str, at: datetime) -> str:
    data = service.ReportData(conversation_id=conversation, channel="webchat", language="zh", kind="new",
                              fault_number=LINE, contact_number="13800138000", symptom_category="no_dial_tone")
    tid = db.call(service.create_report, data).ticket_id
    if db.call(lambda s: workflow.sub_step_of(s.get(Ticket, tid))) == "new":
        db.call(workflow.perform, tid, "request_dispatch", JUNIOR, reason="needs repair", now=at)
    db.call(workflow.perform, tid, "approve_dispatch", SENIOR, reason="ok", params={"fault_class": "其他"}, now=at)
    return tid


def act(db: Database, tid: str, action: str, actor: Actor, at: datetime, reason: str | None = "r") -> None:
    db.call(workflow.perform, tid, action, actor, reason=reason, now=at)


def sweep(db: Database, at: datetime, tid: str) -> watch.Outcome:
    return db.call(watch.watch_ticket, tid, CFG, at)


def count(db: Database, model: Any, *where: Any) -> int:
    return int(db.call(lambda s: s.exec(select(func.count()).select_from(model).where(*where)).one()))


def notices(db: Database, tid: str) -> list[DeskTask]:
    return db.call(lambda s: list(s.exec(select(DeskTask).where(DeskTask.ticket_id == tid,
                                                                DeskTask.kind == "branch_notice")
                                         .order_by(col(DeskTask.id)))))


def test_one_warning_at_80_percent_then_one_alarm_at_the_deadline(demo_db: Database) -> None:
    tid = dispatch(demo_db, "w1", T0)
    t = demo_db.call(lambda s: s.get(Ticket, tid))
    assert t.expected_resolution_date == T0 + 24 * H and t.centre_id == "MC-XH"
    assert sweep(demo_db, T0 + 19 * H, tid) == watch.Outcome()  # 79 %: nothing yet
    assert sweep(demo_db, T0 + 19.2 * H, tid).warned  # 80 %
    for later in (19.3, 20, 23.9):
        assert sweep(demo_db, T0 + later * H, tid) == watch.Outcome()  # never twice
    [warning] = notices(demo_db, tid)
    assert warning.branch == "西湖分公司" and warning.outcome == {
        "sla": "warning", "dispatch": 1, "deadline": (T0 + 24 * H).isoformat()}
    assert "80%" in warning.reason and "2026-12-02 10:00" in warning.reason  # the deadline, Shanghai time
    [note] = demo_db.call(lambda s: list(s.exec(select(TicketNote).where(TicketNote.ticket_id == tid))))
    assert note.author == "deadline-watch" and note.text == warning.reason
    assert demo_db.call(lambda s: s.get(Ticket, tid)).version == t.version  # a note, no new version

    assert sweep(demo_db, T0 + 24 * H, tid).alarmed
    assert sweep(demo_db, T0 + 30 * H, tid) == watch.Outcome()
    t = demo_db.call(lambda s: s.get(Ticket, tid))
    assert t.chase_count == 1
    alarm = notices(demo_db, tid)[1]
    assert alarm.outcome is not None and alarm.outcome["sla"] == "overdue" and alarm.outcome["chase"] == 1
    [violation] = demo_db.call(lambda s: list(s.exec(select(DeadlineViolation))))
    assert (violation.ticket_id, violation.centre_id, violation.centre_name, violation.dispatch_no) == (
        tid, "MC-XH", "西湖测量管理中心", 1)
    assert violation.deadline_at == T0 + 24 * H and violation.late_by_s is None
    [task] = demo_db.call(lambda s: list(s.exec(select(DeskTask).where(DeskTask.kind == "explain_delay"))))
    assert task.role == "surveyor" and task.ticket_id == tid and task.state == "open"
    events = demo_db.call(lambda s: list(s.exec(select(TicketEvent).order_by(col(TicketEvent.id)))))
    states = [e.event["troubleTicket"]["troubleTicketCharacteristic"][0]["value"] for e in events]
    assert states == ["deadlineWarning", "overdue"]
    assert {e.event_type for e in events} == {"TroubleTicketAttributeValueChangeEvent"}

    # The receipt, 3 h late: the watch ends and the violation says how late.
    act(demo_db, tid, "receipt", CENTRE, T0 + 27 * H, "fixed")
    assert sweep(demo_db, T0 + 28 * H, tid).ended == 1
    violation = demo_db.call(lambda s: s.get(DeadlineViolation, violation.id))
    assert violation.ended_at == T0 + 27 * H and violation.late_by_s == 3 * 3600
    [w] = demo_db.call(lambda s: list(s.exec(select(DeadlineWatch))))
    assert (w.end_reason, w.ended_at) == ("receipt_received", T0 + 27 * H)
    assert watch.tickets_to_watch.__name__ and tid not in demo_db.call(watch.tickets_to_watch)


def test_a_receipt_in_time_means_no_alarm(demo_db: Database) -> None:
    tid = dispatch(demo_db, "w2", T0)
    sweep(demo_db, T0 + 20 * H, tid)
    act(demo_db, tid, "receipt", CENTRE, T0 + 23 * H, "fixed")
    assert sweep(demo_db, T0 + 48 * H, tid) == watch.Outcome(ended=1)
    assert count(demo_db, DeadlineViolation) == 0 and demo_db.call(lambda s: s.get(Ticket, tid)).chase_count == 0


def test_the_clock_stops_while_the_ticket_waits_on_the_customer(demo_db: Database) -> None:
    tid = dispatch(demo_db, "w3", T0)
    sweep(demo_db, T0 + 1 * H, tid)
    act(demo_db, tid, "api_pending", API, T0 + 10 * H, None)  # TMF621 pending: waiting on the customer
    assert sweep(demo_db, T0 + 40 * H, tid) == watch.Outcome()  # 30 h later: still 10 h used
    act(demo_db, tid, "api_resume", API, T0 + 50 * H, None)
    assert sweep(demo_db, T0 + 50 * H, tid) == watch.Outcome()
    deadline = T0 + 64 * H  # 24 h of clock + the 40 h pause
    assert demo_db.call(lambda s: s.get(Ticket, tid)).expected_resolution_date == deadline  # TMF621 follows
    assert sweep(demo_db, T0 + 59.2 * H, tid).warned  # 19.2 h of clock
    assert not sweep(demo_db, deadline - timedelta(seconds=1), tid).alarmed
    assert sweep(demo_db, deadline, tid).alarmed


def test_a_second_dispatch_is_watched_again(demo_db: Database) -> None:
    tid = dispatch(demo_db, "w4", T0)
    sweep(demo_db, T0 + 25 * H, tid)  # warned and overdue
    act(demo_db, tid, "receipt", CENTRE, T0 + 26 * H, "fixed")
    act(demo_db, tid, "reopen", JUNIOR, T0 + 30 * H, "still no dial tone")
    demo_db.call(workflow.perform, tid, "approve_dispatch", SENIOR, reason="again",
                 params={"fault_class": "其他"}, now=T0 + 31 * H)
    assert sweep(demo_db, T0 + 31 * H, tid) == watch.Outcome(ended=1)  # the first dispatch's watch ends
    assert sweep(demo_db, T0 + 50.2 * H, tid).warned  # 80 % of the new deadline (T0 + 55 h)
    assert sweep(demo_db, T0 + 55 * H, tid).alarmed
    watches = demo_db.call(lambda s: list(s.exec(select(DeadlineWatch).order_by(col(DeadlineWatch.dispatch_no)))))
    assert [(w.dispatch_no, w.end_reason) for w in watches] == [(1, "receipt_received"), (2, None)]
    assert count(demo_db, DeadlineViolation) == 2 and count(demo_db, TicketEvent) == 4
    assert demo_db.call(lambda s: s.get(Ticket, tid)).chase_count == 2
    # The TMF621 reopen (another system) restarts the deadline as well.
    act(demo_db, tid, "receipt", CENTRE, T0 + 56 * H, "fixed")
    act(demo_db, tid, "api_reopen", API, T0 + 60 * H, None)
    t = demo_db.call(lambda s: s.get(Ticket, tid))
    assert t.dispatched_at == T0 + 60 * H and t.expected_resolution_date == T0 + 84 * H
    sweep(demo_db, T0 + 61 * H, tid)
    assert count(demo_db, DeadlineWatch) == 3


def test_a_working_hours_centre_counts_only_its_calendar(demo_db: Database) -> None:
    def calendar(s: Session) -> None:
        centre = s.get(MeasurementCentreRow, "MC-XH")
        assert centre is not None
        centre.completion_deadline_hours = 8
        centre.working_hours = {"days": {d: ["08:30-12:00", "13:30-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")},
                                   "holidays": ["2026-12-02"], "workdays": [], "timezone": "Asia/Shanghai"}
        s.add(centre)

    demo_db.call(calendar)
    start = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)  # Tuesday 16:30 in Shanghai
    tid = dispatch(demo_db, "w5", start)
    deadline = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)  # Thursday 17:00 (Wednesday is a holiday)
    assert demo_db.call(lambda s: s.get(Ticket, tid)).expected_resolution_date == deadline
    assert sweep(demo_db, datetime(2026, 12, 2, 23, 0, tzinfo=UTC), tid) == watch.Outcome()  # Thu 07:00 local
    assert sweep(demo_db, datetime(2026, 12, 3, 7, 24, tzinfo=UTC), tid).warned  # Thu 15:24: 6.4 working h
    assert sweep(demo_db, deadline, tid).alarmed


def test_two_sweeps_at_once_send_everything_once(demo_db: Database) -> None:
    tids = [dispatch(demo_db, f"race-{i}", T0) for i in range(4)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            for tid in tids:
                try:
                    sweep(demo_db, T0 + 25 * H, tid)
                except workflow.Conflict:
                    pass  # the other sweep changed the ticket first; the next sweep looks again
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for tid in tids:
        sweep(demo_db, T0 + 26 * H, tid)  # whatever a conflict left is done now
    assert count(demo_db, DeadlineViolation) == 4 and count(demo_db, DeadlineWatch) == 4
    assert count(demo_db, DeskTask, DeskTask.kind == "explain_delay") == 4
    assert count(demo_db, DeskTask, DeskTask.kind == "branch_notice") == 8  # a warning and an alarm each
    assert count(demo_db, TicketEvent) == 8
    assert sorted(demo_db.call(lambda s: list(s.exec(select(Ticket.chase_count).where(
        col(Ticket.id).in_(tids)))))) == [1, 1, 1, 1]


@pytest.mark.parametrize("hours", [0.5])
def test_world_faults_keep_their_own_deadline(demo_db: Database, hours: float) -> None:
    """TT-W0003 (demo world) was dispatched with a deadline of its own in the world file."""
    tid = "TT-W0003"
    t = demo_db.call(lambda s: s.get(Ticket, tid))
    assert t is not None and t.expected_resolution_date is not None
    deadline = t.expected_resolution_date
    assert sweep(demo_db, deadline - hours * H, tid).warned
    assert sweep(demo_db, deadline, tid).alarmed
    assert demo_db.call(lambda s: s.get(Ticket, tid)).expected_resolution_date == deadline
