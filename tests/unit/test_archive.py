"""D1, the archive: the night's finished reports, conversations' outcomes and entered
texts, classified and archived once; a report finished late lands in the next night;
the same night run twice adds nothing; records cannot be changed or deleted, not even
with SQL. SQLite and PostgreSQL (the ``db`` fixture runs both)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from bot.app import create_app
from bot.cli import app
from bot.jobs import JobContext, jobs_of
from bot.settings import Settings, get_settings
from bot.store import archive, service, workflow
from bot.store.archive import ArchiveFilter, ArchiveRecord, archive_day
from bot.store.db import Database
from bot.store.models import Attachment, ConversationOutcome, Report, TicketNote
from bot.store.workflow import Actor

TZ = "Asia/Shanghai"
SH = ZoneInfo(TZ)
NIGHT = date(2026, 3, 2)  # a Monday
LINE = "057187650001"  # 王建国, residential, 西湖分公司; the world's test finds an open circuit
BIG = "057188880001"  # a big customer (business), 滨江分公司
UNKNOWN = "057187659999"  # a known exchange, no line in the world
SENIOR, JUNIOR = Actor("sen", "senior"), Actor("jun", "junior")
NOW = datetime(2026, 3, 5, 3, 0, tzinfo=SH)  # the runs happen later than the nights they archive


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SH)


def report(db: Database, conversation: str, number: str = LINE, *, symptom: str = "no_dial_tone",
           text_: str | None = "电话没有拨号音", test: str = "open_circuit", when: datetime | None = None) -> str:
    data = service.ReportData(conversation_id=conversation, channel="webchat", language="zh", kind="new",
                              fault_number=number, symptom_category=symptom, symptom_text=text_,
                              line_test=service.LineTestData(test_id=f"t-{conversation}", result=test))
    tid = db.call(service.create_report, data).ticket_id
    if when is not None:
        set_time(db, Report, Report.ticket_id == tid, "at", when)
    return tid


def set_time(db: Database, model: Any, where: Any, column: str, when: datetime) -> None:
    db.call(lambda s: s.execute(update(model).where(where).values({column: when})))


def act(db: Database, tid: str, action: str, who: Actor, when: datetime, **params: str) -> None:
    db.call(workflow.perform, tid, action, who, reason=f"{action} reason", params=params, now=when)


def records(db: Database, **where: Any) -> list[ArchiveRecord]:
    def read(s: Session) -> list[ArchiveRecord]:
        q = select(ArchiveRecord).order_by(col(ArchiveRecord.id))
        for name, value in where.items():
            q = q.where(getattr(ArchiveRecord, name) == value)
        return list(s.exec(q))

    return db.call(read)


def run(db: Database, night: date) -> archive.ArchiveSummary:
    return archive_day(db, night, timezone=TZ, now=NOW)


def outcome(db: Database, conversation: str, when: datetime, **kw: Any) -> int:
    data = service.OutcomeData(conversation_id=conversation, channel=kw.pop("channel", "voice"), language="zh",
                               outcome=kw.pop("outcome", "accepted"), step=kw.pop("step", "A10"), **kw)
    oid = db.call(service.record_outcome, data)
    set_time(db, ConversationOutcome, ConversationOutcome.id == oid, "at", when)
    return oid


def a_night(db: Database) -> dict[str, Any]:
    """Night NIGHT: one report answered on the spot, one dispatched and repaired, one
    still open, a conversation's outcome, a caller's message and an operator's note."""
    answered = report(db, "c-ans", when=at(NIGHT, 9))
    act(db, answered, "answer_on_spot", JUNIOR, at(NIGHT, 10))
    repaired = report(db, "c-rep", BIG, symptom="broadband_down", text_="宽带上不了网", test="ok", when=at(NIGHT, 8))
    act(db, repaired, "approve_dispatch", SENIOR, at(NIGHT, 8, 30), fault_class="交接箱故障")
    act(db, repaired, "receipt", Actor("cen", "centre", "滨江分公司"), at(NIGHT, 16))
    still_open = report(db, "c-open", when=at(NIGHT, 11))
    act(db, still_open, "note", JUNIOR, at(NIGHT, 11, 30))
    set_time(db, TicketNote, TicketNote.ticket_id == still_open, "at", at(NIGHT, 11, 30))
    db.call(service.add_voice_message, answered, "c-ans", text="请下午来修，家里有老人")
    set_time(db, Attachment, Attachment.ticket_id == answered, "created", at(NIGHT, 9, 5))
    outcome(db, "c-ans", at(NIGHT, 9, 6), ticket_id=answered, fault_number=LINE)
    outcome(db, "c-x", at(NIGHT, 12), outcome="abandoned", step="A2", fault_number=UNKNOWN)
    return {"answered": answered, "repaired": repaired, "open": still_open}


def test_a_night_is_archived_once_and_classified(demo_db: Database) -> None:
    t = a_night(demo_db)
    summary = run(demo_db, NIGHT)
    assert summary.counts == {"report": 2, "conversation": 2, "text:attachment": 1, "text:report": 3,
                              "text:ticket_note": 1}
    assert summary.late == 0
    reports = {r.ticket_id: r for r in records(demo_db, kind="report")}
    assert set(reports) == {t["answered"], t["repaired"]}  # the open ticket is not finished
    ans, rep = reports[t["answered"]], reports[t["repaired"]]
    assert (ans.day, ans.run_day, ans.outcome, ans.subkind) == (NIGHT, NIGHT, "answered", "resolved")
    # No senior's class: the line test's open circuit says "user line"; the senior's class wins.
    assert (ans.fault_class, ans.fault_class_source) == ("用户线路故障", "line_test")
    assert (rep.fault_class, rep.fault_class_source) == ("交接箱故障", "ticket")
    assert (ans.branch, ans.customer_type, ans.big_customer, ans.channel) == ("西湖分公司", "residential", False,
                                                                              "webchat")
    assert (rep.branch, rep.customer_type, rep.big_customer, rep.outcome) == ("滨江分公司", "business", True,
                                                                              "receipt_received")
    assert [h["action"] for h in rep.data["history"]][-2:] == ["approve_dispatch", "receipt"]
    convs = {r.conversation_id: r for r in records(demo_db, kind="conversation")}
    assert (convs["c-ans"].outcome, convs["c-ans"].step, convs["c-ans"].fault_class) == ("accepted", "A10",
                                                                                         "用户线路故障")
    # No ticket: the branch from the exchange prefix, the customer type unknown (no such line).
    assert (convs["c-x"].branch, convs["c-x"].customer_type, convs["c-x"].outcome) == ("西湖分公司", "unknown",
                                                                                      "abandoned")
    texts = {(r.subkind, r.ticket_id): r for r in records(demo_db, kind="text")}
    assert texts[("caller_message", t["answered"])].text == "请下午来修，家里有老人"
    assert texts[("symptom_text", t["repaired"])].text == "宽带上不了网"
    note = texts[("operator_note", t["open"])]
    assert (note.author, note.text, note.outcome) == ("jun", "note reason", "acknowledged")


def test_the_same_night_twice_changes_nothing(demo_db: Database) -> None:
    a_night(demo_db)
    first = run(demo_db, NIGHT)
    before = [r.model_dump() for r in records(demo_db)]
    second = run(demo_db, NIGHT)
    assert first.total == 9 and second.total == 0
    assert [r.model_dump() for r in records(demo_db)] == before


def test_a_report_finished_late_lands_in_the_next_night(demo_db: Database) -> None:
    t = a_night(demo_db)
    run(demo_db, NIGHT)
    # Finished before midnight of NIGHT, but entered after that night's run.
    late = report(demo_db, "c-late", when=at(NIGHT, 20))
    act(demo_db, late, "answer_on_spot", JUNIOR, at(NIGHT, 23, 30))
    # Finished the next day after midnight: that night's own.
    next_day = NIGHT + timedelta(days=1)
    act(demo_db, t["open"], "withdraw", JUNIOR, at(next_day, 0, 10))
    summary = run(demo_db, next_day)
    assert summary.counts["report"] == 2 and summary.late == 2  # the late report and its symptom text
    rec = records(demo_db, ticket_id=late, kind="report")
    assert len(rec) == 1 and (rec[0].day, rec[0].run_day) == (NIGHT, next_day)
    withdrawn = records(demo_db, ticket_id=t["open"], kind="report")
    assert len(withdrawn) == 1 and (withdrawn[0].day, withdrawn[0].run_day) == (next_day, next_day)
    assert withdrawn[0].outcome == "withdrawn"
    late_rows, total = demo_db.call(archive.list_records, ArchiveFilter(late=True))
    assert total == 2 and {r.ticket_id for r in late_rows} == {late}
    assert run(demo_db, next_day).total == 0 and run(demo_db, NIGHT).total == 0


def test_a_missed_night_is_in_the_next_run(demo_db: Database) -> None:
    a_night(demo_db)
    run(demo_db, NIGHT)
    missed = NIGHT + timedelta(days=1)  # its run never happened
    tid = report(demo_db, "c-missed", when=at(missed, 9))
    act(demo_db, tid, "answer_on_spot", JUNIOR, at(missed, 10))
    outcome(demo_db, "c-missed", at(missed, 9, 1), ticket_id=tid, fault_number=LINE)
    two_days = NIGHT + timedelta(days=2)
    summary = run(demo_db, two_days)
    assert summary.total == 3 and summary.late == 3
    assert {(r.kind, r.day, r.run_day) for r in records(demo_db, run_day=two_days)} == {
        ("report", missed, two_days), ("conversation", missed, two_days), ("text", missed, two_days)}
    assert run(demo_db, missed).total == 0  # running the missed night now finds it done


def test_a_reopened_report_finished_again_is_a_second_report_but_closing_is_not(demo_db: Database) -> None:
    tid = report(demo_db, "c-re", when=at(NIGHT, 8))
    act(demo_db, tid, "answer_on_spot", JUNIOR, at(NIGHT, 9))
    act(demo_db, tid, "close", SENIOR, at(NIGHT, 10))  # resolved → closed: the same finished report
    run(demo_db, NIGHT)
    nxt = NIGHT + timedelta(days=1)
    assert len(records(demo_db, ticket_id=tid, kind="report")) == 1
    tid2 = report(demo_db, "c-re2", when=at(nxt, 8))
    act(demo_db, tid2, "answer_on_spot", JUNIOR, at(nxt, 9))
    act(demo_db, tid2, "reopen", JUNIOR, at(nxt, 10))
    act(demo_db, tid2, "approve_dispatch", SENIOR, at(nxt, 11), fault_class="电缆故障")
    act(demo_db, tid2, "receipt", Actor("cen", "centre", "西湖分公司"), at(nxt, 15))
    run(demo_db, nxt)
    twice = records(demo_db, ticket_id=tid2, kind="report")
    assert [(r.outcome, r.fault_class) for r in twice] == [("answered", "电缆故障"), ("receipt_received", "电缆故障")]


def test_records_are_immutable_in_the_database(demo_db: Database) -> None:
    a_night(demo_db)
    run(demo_db, NIGHT)
    first = records(demo_db)[0]
    for sql in (f"UPDATE archive_record SET text = 'changed' WHERE id = {first.id}",
                f"DELETE FROM archive_record WHERE id = {first.id}", "DELETE FROM archive_record"):
        with pytest.raises(DBAPIError, match="immutable"):
            demo_db.call(lambda s, q=sql: s.execute(text(q)))
    assert records(demo_db)[0].model_dump() == first.model_dump()
    # … and the code has no path that changes one.
    source = archive.__file__ and open(archive.__file__, encoding="utf-8").read()
    assert "update(" not in source and "delete(" not in source and ".delete" not in source


def test_a_night_not_over_is_refused(demo_db: Database) -> None:
    today = datetime.now(UTC).astimezone(SH).date()
    with pytest.raises(ValueError, match="has not ended"):
        archive_day(demo_db, today, timezone=TZ)
    assert archive.nightly_day(datetime(2026, 3, 3, 18, 30, tzinfo=UTC), TZ) == date(2026, 3, 3)  # 02:30 local


def test_filters_and_text_search(demo_db: Database) -> None:
    t = a_night(demo_db)
    run(demo_db, NIGHT)

    def find(**kw: Any) -> set[tuple[str, str | None]]:
        rows, total = demo_db.call(archive.list_records, ArchiveFilter(**kw))
        assert total == len(rows)
        return {(r.kind, r.ticket_id) for r in rows}

    assert find(kind="report", branch="滨江分公司") == {("report", t["repaired"])}
    assert find(q="老人") == {("text", t["answered"])}  # a caller's message, by two characters
    assert find(q="宽") == {("report", t["repaired"]), ("text", t["repaired"])}
    assert find(q="100%_") == set()  # LIKE's wildcards are plain characters here
    assert find(customer_type="unknown") == {("conversation", None)}
    assert find(day_from=NIGHT + timedelta(days=1)) == set()
    assert find(fault_class="用户线路故障", kind="conversation") == {("conversation", t["answered"])}
    facets = demo_db.call(archive.facets)
    assert facets["kind"] == ["conversation", "report", "text"] and "滨江分公司" in facets["branch"]


def test_the_nightly_job_archives_the_night_before_it_was_due(demo_db: Database, settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"archive_hour": 3}), demo_db)
    kind = jobs_of(app).kinds["nightly_archive"]
    assert str(kind.trigger) == "cron[hour='3', minute='0']" and kind.retry  # local time (HOTLINE_TIMEZONE)
    a_night(demo_db)
    # Due at 03:00 the day after NIGHT; run late (a leader started at noon): still NIGHT's run.
    ctx = JobContext("nightly_archive", "k", {}, 1, at(NIGHT + timedelta(days=1), 3), app, demo_db, settings)
    asyncio.run(archive.nightly_archive(ctx))
    assert {r.run_day for r in records(demo_db)} == {NIGHT} and len(records(demo_db)) == 9
    asyncio.run(archive.nightly_archive(ctx))  # a retry, or a second leader's run: nothing more
    assert len(records(demo_db)) == 9


def test_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HOTLINE_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        bad = runner.invoke(app, ["archive", "run", "--day", "2026-13-01"])
        assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
        future = runner.invoke(app, ["archive", "run", "--day", "2999-01-01"])
        assert future.exit_code == 1 and "has not ended yet" in future.output
        done = runner.invoke(app, ["archive", "run", "--day", NIGHT.isoformat()])
        assert done.exit_code == 0, done.output
        assert json.loads(done.output.strip().splitlines()[-1]) == {
            "day": NIGHT.isoformat(), "counts": {"report": 0, "conversation": 0, "text:attachment": 0,
                                                 "text:report": 0, "text:ticket_note": 0}, "late": 0, "total": 0}
    finally:
        get_settings.cache_clear()
