"""The satisfaction survey's store (bot/store/surveys.py, U3–U5), on SQLite and
PostgreSQL: opened on the centre's receipt (census), attempts once each, the calling
hours, answers as they come, "not fixed" → a second dispatch, stopped where it stopped,
do-not-call, the surveyor's causes, the signed link's one use, the CSV.
Category: unit (a real database, no HTTP; times are given, never the clock's)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlmodel import Session, select

from bot.store import service, surveys, workflow
from bot.store.db import Database
from bot.store.errors import Conflict, ServiceError
from bot.store.models import DeskTask, Ticket, TicketNote
from bot.store.survey_records import ContactPreference, SecondDispatch, Survey, SurveyAttempt
from bot.store.workflow import Actor

LINE = "057187650001"  # 西湖分公司 in the demo world
CONTACT = "13800138000"
SENIOR = Actor("senior", "senior")
CENTRE = Actor("centre", "centre", "西湖分公司")
SURVEYOR = Actor("surveyor", "surveyor")
RULES = surveys.SurveyRules(attempts=3, retry_hours=2, calling_start=time(9), calling_end=time(20),
                            timezone="Asia/Shanghai", satisfied_from=4, chat_wait_days=3)
# 2026-12-07 is a Monday; 10:00 in Shanghai is 02:00 UTC.
MONDAY_10 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def resolved(db: Database, *, channel: str = "voice", contact: str | None = CONTACT,
             conversation: str = "c1", number: str = LINE) -> str:
    """A report (by ``channel``), dispatched by a senior, repaired: the centre's receipt."""
    data = service.ReportData(conversation_id=conversation, channel=channel, language="zh", kind="new",
                              fault_number=number, contact_number=contact, symptom_category="no_dial_tone",
                              symptom_text="没有拨号音")
    tid = db.call(service.create_report, data).ticket_id
    db.call(workflow.perform, tid, "approve_dispatch", SENIOR, reason="ok", params={"fault_class": "用户线路故障"})
    db.call(workflow.perform, tid, "receipt", CENTRE, reason="换了入户线")
    return tid


def survey_of(db: Database, tid: str) -> Survey:
    row = db.call(surveys.for_ticket, tid)
    assert row is not None
    return row


def answer(db: Database, sid: int, conv: str, question: str, value: object = None, **kw: str) -> Survey:
    return db.call(surveys.record_answer, sid, conv, surveys.Answer(question, value, **kw), RULES)  # type: ignore[arg-type]


def on_the_phone(db: Database, tid: str, conv: str = "call-1") -> int:
    """Attempt 1 placed and answered: the dialogue may start the survey in ``conv``."""
    sid = int(survey_of(db, tid).id or 0)
    assert db.call(surveys.claim_attempt, sid, 1, channel="phone", asked_by="bot (phone)") is not None
    db.call(surveys.attach_call, sid, 1, 99, conv)
    db.call(surveys.start_conversation, sid, conv)
    return sid


# ------------------------------------------------------------------ opened on the receipt


def test_every_resolved_report_gets_one_survey(demo_db: Database) -> None:
    tid = resolved(demo_db)
    s = survey_of(demo_db, tid)
    assert (s.channel, s.state, s.number, s.language) == ("phone", "due", CONTACT, "zh")
    assert s.next_attempt_at is not None
    # Reopened and repaired again: still one survey for the report (census, not twice).
    demo_db.call(workflow.perform, tid, "reopen", SENIOR, reason="still broken")
    demo_db.call(workflow.perform, tid, "approve_dispatch", SENIOR, reason="ok", params={"fault_class": "其他"})
    demo_db.call(workflow.perform, tid, "receipt", CENTRE, reason="done")
    assert demo_db.call(lambda x: len(x.exec(select(Survey)).all())) == 1


def test_the_first_call_is_a_due_job_committed_with_the_receipt(demo_db: Database) -> None:
    from bot.jobs import store as jobs_store

    sid = survey_of(demo_db, resolved(demo_db)).id
    job = demo_db.call(jobs_store.get_job, "survey_call", f"survey-{sid}-1")
    assert job is not None and job.payload == {"survey_id": sid, "attempt": 1} and job.state == "scheduled"
    chat = survey_of(demo_db, resolved(demo_db, channel="webchat", conversation="c2", number="057187650002"))
    assert demo_db.call(jobs_store.get_job, "survey_call", f"survey-{chat.id}-1") is None  # waits for the chat


def test_a_chat_report_is_surveyed_in_the_chat(demo_db: Database) -> None:
    s = survey_of(demo_db, resolved(demo_db, channel="webchat"))
    assert (s.channel, s.state) == ("webchat", "due")


def test_without_a_usable_contact_number_nobody_is_called(demo_db: Database) -> None:
    tid = demo_db.call(service.create_ticket, service.TicketCreateData(description="x", severity="Minor",
                                                                        fault_number=LINE)).ticket.id
    demo_db.call(workflow.perform, tid, "request_dispatch", Actor("junior", "junior"), reason="r")
    demo_db.call(workflow.perform, tid, "approve_dispatch", SENIOR, reason="ok", params={"fault_class": "其他"})
    demo_db.call(workflow.perform, tid, "receipt", CENTRE, reason="fixed")
    s = survey_of(demo_db, tid)
    assert (s.state, s.state_reason, s.number) == ("no_contact", "no contact number", None)


def test_a_number_on_the_do_not_call_list_is_not_called(demo_db: Database) -> None:
    demo_db.call(surveys.set_preference, CONTACT, do_not_call=True, by="surveyor")
    s = survey_of(demo_db, resolved(demo_db))
    assert s.state == "do_not_call" and s.next_attempt_at is None


# ------------------------------------------------------------------ calling hours


@pytest.mark.parametrize(("local", "quiet", "expected_local"), [
    ("2026-12-07 10:00", [], "2026-12-07 10:00"),      # inside: now
    ("2026-12-07 07:30", [], "2026-12-07 09:00"),      # before: the window's start
    ("2026-12-07 20:00", [], "2026-12-08 09:00"),      # at the end: tomorrow
    ("2026-12-07 23:10", [], "2026-12-08 09:00"),
    ("2026-12-05 12:00", [6, 7], "2026-12-07 09:00"),  # Saturday, quiet weekends: Monday
    ("2026-12-07 19:59", [1], "2026-12-08 09:00"),     # Monday is quiet
])
def test_calls_are_placed_only_inside_the_calling_hours(local: str, quiet: list[int], expected_local: str) -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Shanghai")
    at = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    got = RULES.next_call_time(at, quiet).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    assert got == expected_local


def test_calling_hours_and_quiet_days_are_checked() -> None:
    assert surveys.parse_hours("09:00-20:00") == (time(9), time(20))
    assert surveys.parse_hours("08:30-24:00") == (time(8, 30), None)
    for bad in ("9-20", "20:00-09:00", "25:00-26:00", ""):
        with pytest.raises(ValueError):
            surveys.parse_hours(bad)
    with pytest.raises(ServiceError):
        surveys.parse_quiet_days("1,2,3,4,5,6,7")
    with pytest.raises(ServiceError):
        surveys.parse_quiet_days("0")
    assert surveys.parse_quiet_days("7, 6") == [6, 7]


# ------------------------------------------------------------------ attempts


def test_attempt_n_is_claimed_once_even_by_two_processes_at_once(demo_db: Database) -> None:
    sid = int(survey_of(demo_db, resolved(demo_db)).id or 0)
    got: list[object] = []
    barrier = threading.Barrier(2)

    def claim() -> None:
        barrier.wait()
        got.append(demo_db.call(surveys.claim_attempt, sid, 1, channel="phone", asked_by="bot (phone)"))

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(g is not None for g in got) == 1
    assert demo_db.call(surveys.claim_attempt, sid, 2, channel="phone", asked_by="x") is None  # not due
    assert demo_db.call(surveys.get, sid).state == "in_progress"


def test_no_answer_three_times_is_unreachable_with_the_retries_two_hours_apart(demo_db: Database) -> None:
    sid = int(survey_of(demo_db, resolved(demo_db)).id or 0)
    now = MONDAY_10
    for n, (result, cause) in enumerate([("no_answer", "NO_ANSWER"), ("busy", "USER_BUSY"),
                                         ("no_answer", "NO_ANSWER")], start=1):
        assert demo_db.call(surveys.claim_attempt, sid, n, channel="phone", asked_by="bot (phone)", now=now)
        demo_db.call(surveys.attach_call, sid, n, 100 + n, f"uuid-{n}")
        after = demo_db.call(surveys.call_ended, sid, n, result, cause, RULES, now=now)
        if n < 3:
            assert (after.state, after.next_attempt, after.next_at) == ("due", n + 1, now + timedelta(hours=2))
            now = after.next_at
    s = demo_db.call(surveys.get, sid)
    assert s.state == "unreachable" and s.attempts_made == 3 and "NO_ANSWER" in (s.state_reason or "")
    attempts = demo_db.call(surveys.attempts_of, sid)
    assert [(a.n, a.outcome, a.hangup_cause) for a in attempts] == [
        (1, "no_answer", "NO_ANSWER"), (2, "busy", "USER_BUSY"), (3, "no_answer", "NO_ANSWER")]


def test_a_retry_that_would_fall_after_hours_waits_for_the_morning(demo_db: Database) -> None:
    sid = int(survey_of(demo_db, resolved(demo_db)).id or 0)
    evening = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)  # 19:00 local: +2 h is 21:00
    demo_db.call(surveys.claim_attempt, sid, 1, channel="phone", asked_by="bot (phone)", now=evening)
    after = demo_db.call(surveys.call_ended, sid, 1, "no_answer", "NO_ANSWER", RULES, now=evening)
    assert after.next_at == datetime(2026, 12, 8, 1, 0, tzinfo=UTC)  # 09:00 local the next day


def test_answered_with_nothing_said_is_a_voicemail_and_counts_as_not_reached(demo_db: Database) -> None:
    sid = on_the_phone(demo_db, resolved(demo_db))
    after = demo_db.call(surveys.call_ended, sid, 1, "answered", "NORMAL_CLEARING", RULES, now=MONDAY_10)
    assert after.state == "due" and after.next_attempt == 2
    assert demo_db.call(surveys.attempts_of, sid)[0].outcome == "no_response"


def test_a_call_that_could_not_be_placed_does_not_count(demo_db: Database) -> None:
    sid = int(survey_of(demo_db, resolved(demo_db)).id or 0)
    demo_db.call(surveys.claim_attempt, sid, 1, channel="phone", asked_by="bot (phone)")
    demo_db.call(surveys.release_attempt, sid, 1, MONDAY_10, "FreeSWITCH unreachable")
    s = demo_db.call(surveys.get, sid)
    assert (s.state, s.attempts_made, s.next_attempt_at) == ("due", 0, MONDAY_10)
    assert demo_db.call(surveys.attempts_of, sid) == []


# ------------------------------------------------------------------ the dialogue's answers


def test_a_satisfied_reporter_completes_the_survey(demo_db: Database) -> None:
    sid = on_the_phone(demo_db, resolved(demo_db))
    answer(demo_db, sid, "call-1", "fixed", True)
    answer(demo_db, sid, "call-1", "attitude", 5)
    answer(demo_db, sid, "call-1", "quality", 4)
    answer(demo_db, sid, "call-1", "wants_comment", False)
    s = demo_db.call(surveys.finish, sid, "call-1", RULES)
    assert (s.state, s.result, s.stopped_at, s.asked_by) == ("completed", "satisfied", None, "bot (phone)")
    after = demo_db.call(surveys.call_ended, sid, 1, "answered", "NORMAL_CLEARING", RULES)
    assert after.state == "completed" and after.next_attempt is None


def test_not_fixed_makes_a_second_dispatch_at_once_for_a_senior_to_review(demo_db: Database) -> None:
    tid = resolved(demo_db)
    sid = on_the_phone(demo_db, tid)
    s = answer(demo_db, sid, "call-1", "fixed", False, text="还是没有拨号音")
    assert s.result == "not_fixed" and s.cause == "telecom" and s.second_ticket_id
    second = demo_db.call(lambda x: x.get(Ticket, s.second_ticket_id))
    assert second is not None
    assert (second.sub_step, second.status, second.fault_number, second.branch, second.origin) == (
        "awaiting_review", "acknowledged", LINE, "西湖分公司", "second_dispatch")
    assert tid in second.description and "还是没有拨号音" in second.description
    link = demo_db.call(surveys.second_dispatch_of, second.id)
    assert link is not None and (link.first_ticket_id, link.why, link.survey_id) == (tid, "not_fixed", sid)
    notes = demo_db.call(lambda x: [n.text for n in x.exec(select(TicketNote).where(TicketNote.ticket_id == tid))])
    assert any(second.id in n for n in notes)
    # Said again (a retried action): still one second dispatch.
    answer(demo_db, sid, "call-1", "fixed", False)
    assert demo_db.call(lambda x: len(x.exec(select(SecondDispatch)).all())) == 1
    # A comment said later goes on the second dispatch too.
    answer(demo_db, sid, "call-1", "comment", text="请尽快来修")
    notes2 = demo_db.call(lambda x: [n.text for n in x.exec(select(TicketNote).where(
        TicketNote.ticket_id == second.id))])
    assert any("请尽快来修" in n for n in notes2)


@pytest.mark.parametrize(("question", "value"), [("attitude", 6), ("quality", 0), ("attitude", True),
                                                 ("fixed", 1), ("mood", 3)])
def test_an_answer_that_is_not_one_is_refused(demo_db: Database, question: str, value: object) -> None:
    sid = on_the_phone(demo_db, resolved(demo_db))
    with pytest.raises(ServiceError):
        answer(demo_db, sid, "call-1", question, value)
    assert demo_db.call(surveys.get, sid).attitude is None


def test_answers_only_in_the_conversation_that_asks(demo_db: Database) -> None:
    sid = on_the_phone(demo_db, resolved(demo_db))
    with pytest.raises(Conflict):
        answer(demo_db, sid, "someone-else", "attitude", 5)
    with pytest.raises(Conflict):
        demo_db.call(surveys.start_conversation, sid, "someone-else")


def test_silence_past_the_limit_stops_the_survey_where_it_stopped(demo_db: Database) -> None:
    sid = on_the_phone(demo_db, resolved(demo_db))
    answer(demo_db, sid, "call-1", "fixed", True)
    answer(demo_db, sid, "call-1", "attitude", 2)
    s = demo_db.call(surveys.finish, sid, "call-1", RULES, stopped_at="quality", reason="gave_up")
    assert (s.state, s.stopped_at, s.result, s.attitude) == ("stopped", "quality", "dissatisfied", 2)


def test_a_hang_up_keeps_what_was_answered(demo_db: Database) -> None:
    sid = on_the_phone(demo_db, resolved(demo_db))
    answer(demo_db, sid, "call-1", "fixed", True)
    assert demo_db.call(surveys.conversation_ended, "call-1", "hangup") is True
    after = demo_db.call(surveys.call_ended, sid, 1, "answered", "NORMAL_CLEARING", RULES)
    s = demo_db.call(surveys.get, sid)
    assert (after.state, s.state, s.stopped_at, s.fixed) == ("stopped", "stopped", "attitude", True)
    assert demo_db.call(surveys.conversation_ended, "not-a-survey", "hangup") is False


def test_dont_call_me_again_lists_the_number(demo_db: Database) -> None:
    sid = on_the_phone(demo_db, resolved(demo_db))
    s = demo_db.call(surveys.opt_out, sid, "call-1", RULES)
    assert (s.state, s.stopped_at) == ("opted_out", "fixed")
    pref = demo_db.call(lambda x: x.get(ContactPreference, CONTACT))
    assert pref is not None and pref.do_not_call
    # The next resolved report on that number is not called.
    other = survey_of(demo_db, resolved(demo_db, conversation="c2", number="057187650002"))
    assert other.state == "do_not_call"


# ------------------------------------------------------------------ web chat


def test_a_chat_survey_waits_for_the_same_browser_and_a_visit_without_answers_does_not_end_it(
        demo_db: Database) -> None:
    demo_db.call(surveys.remember_browser, "c1", "browser-aaaa")
    tid = resolved(demo_db, channel="webchat")
    sid = int(survey_of(demo_db, tid).id or 0)
    assert demo_db.call(surveys.pending_for_browser, "browser-bbbb") is None
    assert demo_db.call(surveys.pending_for_browser, "browser-aaaa") == sid
    assert demo_db.call(surveys.claim_chat, sid, "chat-2", "webchat") is True
    assert demo_db.call(surveys.pending_for_browser, "browser-aaaa") is None  # being asked
    demo_db.call(surveys.conversation_ended, "chat-2", "user_left")
    s = demo_db.call(surveys.get, sid)
    assert (s.state, s.attempts_made) == ("due", 1)
    assert demo_db.call(surveys.attempts_of, sid)[0].outcome == "left"
    assert demo_db.call(surveys.pending_for_browser, "browser-aaaa") == sid


def test_a_chat_reporter_who_never_comes_back_is_called_instead(demo_db: Database) -> None:
    sid = int(survey_of(demo_db, resolved(demo_db, channel="webchat")).id or 0)
    assert demo_db.call(surveys.expire_chat_surveys, RULES, MONDAY_10) == []  # not yet
    later = datetime.now(UTC) + timedelta(days=4)
    (called,) = demo_db.call(surveys.expire_chat_surveys, RULES, later)
    s = demo_db.call(surveys.get, sid)
    assert called[:2] == (sid, 1) and (s.channel, s.state, s.number) == ("phone", "due", CONTACT)


def test_the_signed_links_nonce_works_once_and_not_after_it_expired(demo_db: Database) -> None:
    sid = int(survey_of(demo_db, resolved(demo_db)).id or 0)
    soon = datetime.now(UTC) + timedelta(days=1)
    demo_db.call(surveys.issue_link, sid, "nonce-1", soon)
    demo_db.call(surveys.issue_link, sid, "nonce-2", soon)  # replaces the first
    with pytest.raises(Conflict):
        demo_db.call(surveys.use_link, sid, "nonce-1", "chat-1")
    demo_db.call(surveys.use_link, sid, "nonce-2", "chat-1")
    assert demo_db.call(surveys.get, sid).conversation_id == "chat-1"
    with pytest.raises(Conflict):
        demo_db.call(surveys.use_link, sid, "nonce-2", "chat-2")
    sid2 = int(survey_of(demo_db, resolved(demo_db, conversation="c2", number="057187650002")).id or 0)
    demo_db.call(surveys.issue_link, sid2, "nonce-3", datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(Conflict):
        demo_db.call(surveys.use_link, sid2, "nonce-3", "chat-3")


def test_the_install_secret_is_made_once(demo_db: Database) -> None:
    first = demo_db.call(surveys.install_secret, "survey_link", "made-1")
    assert demo_db.call(surveys.install_secret, "survey_link", "made-2") == first == "made-1"


# ------------------------------------------------------------------ U4–U5: the surveyor


def dissatisfied(db: Database, conversation: str = "c1", number: str = LINE) -> tuple[str, int]:
    tid = resolved(db, conversation=conversation, number=number)
    sid = on_the_phone(db, tid, f"call-{conversation}")
    answer(db, sid, f"call-{conversation}", "fixed", True)
    answer(db, sid, f"call-{conversation}", "attitude", 1)
    answer(db, sid, f"call-{conversation}", "quality", 4)
    answer(db, sid, f"call-{conversation}", "wants_comment", False)
    db.call(surveys.finish, sid, f"call-{conversation}", RULES)
    return tid, sid


def test_dissatisfied_waits_in_the_surveyors_queue(demo_db: Database) -> None:
    _tid, sid = dissatisfied(demo_db)
    assert [s.id for s in demo_db.call(surveys.dissatisfied_queue)] == [sid]


def test_not_our_fault_explained_and_not_accepted_goes_to_the_manager_hotline(demo_db: Database) -> None:
    tid, sid = dissatisfied(demo_db)
    finding = surveys.CauseFinding("not_ours", "用户室内电话机故障", explained_how="phone",
                                   explained_at=datetime.now(UTC), accepted=False)
    s = demo_db.call(surveys.record_cause, sid, finding, SURVEYOR)
    task = demo_db.call(lambda x: x.get(DeskTask, s.task_id))
    assert task is not None and (task.kind, task.role, task.ticket_id, task.state) == (
        "escalation", "manager", tid, "open")
    assert demo_db.call(surveys.dissatisfied_queue) == []
    with pytest.raises(Conflict):
        demo_db.call(surveys.record_cause, sid, finding, SURVEYOR)


def test_not_our_fault_accepted_is_recorded_how_and_when(demo_db: Database) -> None:
    _tid, sid = dissatisfied(demo_db)
    when = datetime.now(UTC) - timedelta(hours=1)
    s = demo_db.call(surveys.record_cause, sid, surveys.CauseFinding(
        "not_ours", "用户自己的路由器", explained_how="sms", explained_at=when, accepted=True), SURVEYOR)
    assert (s.cause, s.explained_how, s.explained_at, s.explanation_accepted, s.task_id) == (
        "not_ours", "sms", when, True, None)


def test_the_centres_fault_records_the_staff_member_and_tasks_the_team_leader(demo_db: Database) -> None:
    tid, sid = dissatisfied(demo_db)
    with pytest.raises(ServiceError):  # who was it?
        demo_db.call(surveys.record_cause, sid, surveys.CauseFinding("centre", "态度差"), SURVEYOR)
    s = demo_db.call(surveys.record_cause, sid, surveys.CauseFinding("centre", "态度差", staff_member="junior"),
                     SURVEYOR)
    assert s.staff_member == "junior"
    (task,) = demo_db.call(surveys.team_leader_tasks)
    assert (task.role, task.kind, task.ticket_id, task.id) == ("senior", "staff_fault", tid, s.task_id)
    with pytest.raises(ServiceError):
        demo_db.call(surveys.finish_team_task, task.id, Actor("junior", "junior"), "done")
    done = demo_db.call(surveys.finish_team_task, task.id, SENIOR, "谈话并培训")
    assert done.state == "done" and (done.outcome or {})["handled"] == "谈话并培训"


def test_the_telecom_sides_fault_is_a_second_dispatch(demo_db: Database) -> None:
    tid, sid = dissatisfied(demo_db)
    s = demo_db.call(surveys.record_cause, sid, surveys.CauseFinding("telecom", "线路老化，需更换"), SURVEYOR)
    link = demo_db.call(surveys.second_dispatch_of, s.second_ticket_id or "")
    assert link is not None and (link.first_ticket_id, link.why, link.created_by) == (tid, "telecom", "surveyor")
    assert demo_db.call(surveys.counts)["second_dispatches"] == 1


def test_only_the_surveyor_records_a_cause_and_only_for_the_dissatisfied(demo_db: Database) -> None:
    _tid, sid = dissatisfied(demo_db)
    with pytest.raises(ServiceError):
        demo_db.call(surveys.record_cause, sid, surveys.CauseFinding("telecom", "x"), SENIOR)
    satisfied_sid = on_the_phone(demo_db, resolved(demo_db, conversation="c2", number="057187650002"), "call-x")
    with pytest.raises(Conflict):
        demo_db.call(surveys.record_cause, satisfied_sid, surveys.CauseFinding("telecom", "x"), SURVEYOR)


# ------------------------------------------------------------------ CSV


def test_the_csv_has_a_bom_and_chinese_and_no_formulas(demo_db: Database) -> None:
    _tid, sid = dissatisfied(demo_db)
    rows = demo_db.call(surveys.csv_rows, surveys.CsvFilter(), "Asia/Shanghai")
    assert rows and rows[0][0] == str(sid) and rows[0][2] == "0571 8765 0001"
    data = surveys.to_csv(surveys.CSV_COLUMNS, [*rows, ["=cmd()", "中文"]])
    assert data.startswith("\ufeff".encode()) and "中文".encode() in data
    assert b"'=cmd()" in data


def test_lists_for_the_surveyors_pages(demo_db: Database) -> None:
    due_tid = resolved(demo_db, conversation="c9", number="057187650002")
    _tid, sid = dissatisfied(demo_db)
    assert [s.ticket_id for s in demo_db.call(surveys.list_surveys, "due")] == [due_tid]
    assert [s.id for s in demo_db.call(surveys.list_surveys, "results")] == [sid]

    def with_session(s: Session) -> int:
        return len(s.exec(select(SurveyAttempt)).all())

    assert demo_db.call(with_session) == 1


def test_an_ended_survey_is_archived_the_night_after(demo_db: Database) -> None:
    """U4 → D1: the data manager's nightly archive takes the survey's result and answers."""
    from bot.store.archive import ArchiveRecord, archive_day

    _tid, sid = dissatisfied(demo_db)
    due = survey_of(demo_db, resolved(demo_db, conversation="c2", number="057187650002"))
    finished = demo_db.call(surveys.get, sid).finished_at
    assert finished is not None
    from zoneinfo import ZoneInfo

    night = finished.astimezone(ZoneInfo("Asia/Shanghai")).date()
    summary = archive_day(demo_db, night, timezone="Asia/Shanghai", now=finished + timedelta(days=1))
    assert summary.counts.get("survey") == 1
    (rec,) = demo_db.call(lambda s: list(s.exec(select(ArchiveRecord).where(ArchiveRecord.kind == "survey"))))
    assert (rec.source_id, rec.outcome, rec.step, rec.subkind) == (sid, "dissatisfied", "U3", "phone")
    assert rec.data["survey"]["answers"]["attitude"] == 1 and due.id != sid  # the due one waits
