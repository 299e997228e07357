"""The ticket store and world loader, on SQLite and PostgreSQL (the ``db`` fixture).
Category: unit (a real database, no HTTP)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from bot.settings import Settings
from bot.store import service
from bot.store.db import Database
from bot.store.models import ConversationOutcome, Handoff, LineRow, LineTest, Report, Ticket
from bot.world.loader import load_world
from bot.world.parse import WorldFileError, parse_world_file
from bot.world.schema import World

WORLDS = Path(__file__).resolve().parents[1] / "fixtures" / "worlds"
LINE = "057187650001"


def new_report(conversation: str = "c1", number: str = LINE, **kw: object) -> service.ReportData:
    fields: dict[str, object] = dict(
        conversation_id=conversation, channel="webchat", language="zh", kind="new", fault_number=number,
        contact_number="13800138000", symptom_category="no_dial_tone", symptom_text="没有拨号音",
    )
    fields.update(kw)
    return service.ReportData(**fields)  # type: ignore[arg-type]


def count(db: Database, model: type) -> int:
    def q(s: Session) -> int:
        return int(s.exec(select(func.count()).select_from(model)).one())

    return db.call(q)


# ------------------------------------------------------------------ migrations


def test_upgrade_is_idempotent(db: Database) -> None:
    db.upgrade()  # already at head: a no-op
    assert count(db, Ticket) == 0


def test_sqlite_default_folder_is_created(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'var' / 'deep' / 'hotline.db'}")
    db.upgrade()
    assert (tmp_path / "var" / "deep" / "hotline.db").exists()
    db.dispose()


# -------------------------------------------------------------------- reports


def test_new_report_is_idempotent(demo_db: Database) -> None:
    lt = service.LineTestData(test_id="T1", result="open_circuit", measurements={"r_ab_ohm": 1e7})
    first = demo_db.call(service.create_report, new_report(line_test=lt))
    again = demo_db.call(service.create_report, new_report(line_test=lt))
    assert first.created and first.report_count == 1
    assert again == service.ReportResult(first.ticket_id, False, 1)
    view = demo_db.call(service.get_ticket, first.ticket_id)
    assert view.ticket.status == "acknowledged" and view.ticket.origin == "conversation"
    assert view.ticket.branch == "西湖分公司"
    assert view.last_test is not None and view.last_test.summary_en.startswith("The test found a break")
    assert [h.to_status for h in view.history] == ["acknowledged"]
    assert count(demo_db, LineTest) == 3 + 1  # the world's three last tests, and this one


def test_other_conversation_makes_another_ticket(demo_db: Database) -> None:
    a = demo_db.call(service.create_report, new_report("c1"))
    b = demo_db.call(service.create_report, new_report("c2"))
    assert a.ticket_id != b.ticket_id and b.created


def test_concurrent_creates_make_one_ticket(demo_db: Database) -> None:
    barrier = threading.Barrier(4)
    results: list[service.ReportResult] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            barrier.wait()
            results.append(demo_db.call(service.create_report, new_report("race")))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len({r.ticket_id for r in results}) == 1
    assert sum(r.created for r in results) == 1

    def conversation_tickets(s: Session) -> int:
        return len(s.exec(select(Ticket).where(Ticket.conversation_id == "race")).all())

    assert demo_db.call(conversation_tickets) == 1


def test_unique_constraint_holds_in_the_database(demo_db: Database) -> None:
    demo_db.call(service.create_report, new_report("c1"))

    def duplicate(s: Session) -> None:
        s.add(Ticket(id="TT-DUP", name="x", description="x", severity="Major", fault_number=LINE,
                     conversation_id="c1", origin="conversation"))
        s.flush()

    with pytest.raises(IntegrityError):
        demo_db.call(duplicate)


def test_repeat_reports_are_counted_once_per_conversation(demo_db: Database) -> None:
    first = demo_db.call(service.create_report, new_report("c1"))
    repeat = new_report("c2", kind="repeat", contact_number=None, symptom_category=None, symptom_text=None)
    assert demo_db.call(service.create_report, repeat) == service.ReportResult(first.ticket_id, False, 2)
    assert demo_db.call(service.create_report, repeat).report_count == 2  # a retry
    # The conversation that opened the ticket does not count twice either.
    same = new_report("c1", kind="repeat", contact_number=None, symptom_category=None)
    assert demo_db.call(service.create_report, same).report_count == 2
    view = demo_db.call(service.get_ticket, first.ticket_id)
    assert [r.kind for r in view.reports] == ["new", "repeat"]
    assert view.notes[-1].text.startswith("Repeat report #2 via webchat")


def test_repeat_on_world_fault_reaches_four(demo_db: Database) -> None:
    # A6: the demo's 0571 8765 0008 has 3 reports; this caller's is the 4th.
    repeat = new_report("c9", number="057187650008", kind="repeat", contact_number=None, symptom_category=None)
    assert demo_db.call(service.create_report, repeat) == service.ReportResult("TT-W0003", False, 4)


def test_repeat_without_open_ticket_is_not_found(demo_db: Database) -> None:
    repeat = new_report("c1", number="057187650002", kind="repeat")
    with pytest.raises(service.NotFound) as info:
        demo_db.call(service.create_report, repeat)
    assert info.value.code == "no_open_ticket"


def test_closed_ticket_is_not_repeated(demo_db: Database) -> None:
    t = demo_db.call(service.create_report, new_report("c1"))
    for status in ("inProgress", "resolved", "closed"):
        demo_db.call(service.patch_ticket, t.ticket_id, status=status, status_change_reason="test")
    with pytest.raises(service.NotFound):
        demo_db.call(service.create_report, new_report("c2", kind="repeat"))
    # …and a new report on the line makes a new ticket.
    assert demo_db.call(service.create_report, new_report("c3")).created


# ---------------------------------------------------------------- transitions


def test_allowed_transitions_are_recorded(demo_db: Database) -> None:
    tid = demo_db.call(service.create_report, new_report()).ticket_id
    for status in ("inProgress", "pending", "inProgress", "held", "inProgress", "resolved", "closed"):
        view = demo_db.call(service.patch_ticket, tid, status=status, status_change_reason=f"to {status}",
                            author="operator")
    assert view.ticket.status == "closed" and view.ticket.resolution_date is not None
    assert [h.to_status for h in view.history] == [
        "acknowledged", "inProgress", "pending", "inProgress", "held", "inProgress", "resolved", "closed"
    ]
    assert view.history[-1].from_status == "resolved" and view.history[-1].author == "operator"


@pytest.mark.parametrize(
    ("path", "to"),
    [
        ([], "resolved"),  # acknowledged → resolved skips the work
        ([], "pending"),
        (["rejected"], "inProgress"),  # final
        (["inProgress", "resolved", "closed"], "inProgress"),  # final
        (["cancelled"], "acknowledged"),
    ],
)
def test_illegal_transitions_are_refused(demo_db: Database, path: list[str], to: str) -> None:
    tid = demo_db.call(service.create_report, new_report()).ticket_id
    for status in path:
        demo_db.call(service.patch_ticket, tid, status=status)
    with pytest.raises(service.IllegalTransition) as info:
        demo_db.call(service.patch_ticket, tid, status=to)
    assert f"cannot go from {path[-1] if path else 'acknowledged'} to {to}" in info.value.reason
    assert demo_db.call(service.get_ticket, tid).ticket.status == (path[-1] if path else "acknowledged")


@pytest.mark.parametrize("open_status", ["acknowledged", "inProgress", "pending", "held"])
def test_any_open_state_can_be_cancelled(demo_db: Database, open_status: str) -> None:
    tid = demo_db.call(service.create_report, new_report()).ticket_id
    for status in {"acknowledged": [], "inProgress": ["inProgress"], "pending": ["inProgress", "pending"],
                   "held": ["inProgress", "held"]}[open_status]:
        demo_db.call(service.patch_ticket, tid, status=status)
    assert demo_db.call(service.patch_ticket, tid, status="cancelled").ticket.status == "cancelled"


def test_unknown_status(demo_db: Database) -> None:
    tid = demo_db.call(service.create_report, new_report()).ticket_id
    with pytest.raises(service.ServiceError, match="unknown status"):
        demo_db.call(service.patch_ticket, tid, status="fixed")


# ------------------------------------------------------ attachments, outcomes, handoffs


def test_voice_message_is_idempotent(demo_db: Database) -> None:
    tid = demo_db.call(service.create_report, new_report()).ticket_id
    a = demo_db.call(service.add_voice_message, tid, "c1", "请下午来修")
    b = demo_db.call(service.add_voice_message, tid, "c1", "请下午来修")
    c = demo_db.call(service.add_voice_message, tid, "c1", "x" * 2000)
    assert a == (a[0], True) and b == (a[0], False) and c[1] and c[0] != a[0]
    with pytest.raises(service.NotFound):
        demo_db.call(service.add_voice_message, "TT-NOPE", "c1", "hi")


def test_outcomes_keep_every_row_and_expose_the_latest(db: Database) -> None:
    for outcome, step in (("accepted", "A10"), ("informed_repaired", "A5")):
        db.call(service.record_outcome, service.OutcomeData("c1", "voice", "zh", outcome, step,
                                                            fault_number="057187650004"))
    rows = db.call(service.list_outcomes, "c1")
    assert [r["outcome"] for r in rows] == ["accepted", "informed_repaired"]
    latest = db.call(service.latest_outcome, "c1")
    assert latest is not None and latest["step"] == "A5" and latest["fault_number"] == "057187650004"
    assert db.call(service.latest_outcome, "nobody") is None


def test_handoffs_queue_positions_and_big_customers(demo_db: Database) -> None:
    def handoff(cid: str, number: str | None = None, queue: str | None = None) -> service.HandoffResult:
        return demo_db.call(service.queue_handoff, service.HandoffData(
            conversation_id=cid, channel="voice", language="zh", reason="asked for a human",
            fault_number=number, transcript=[{"role": "user", "text": "转人工"}], queue=queue))

    a, b = handoff("c1"), handoff("c2", LINE)
    big = handoff("c3", "057188880001", queue="junior")  # J3: senior whatever was asked
    assert (a.queue, a.position, b.position) == ("junior", 1, 2)
    assert (big.queue, big.position) == ("senior", 1)
    retry = handoff("c2", LINE)
    assert retry == service.HandoffResult(b.handoff_id, "junior", 2, False)
    queued = demo_db.call(service.list_handoffs, "queued")
    assert [h["conversation_id"] for h in queued] == ["c1", "c2", "c3"]
    assert queued[0]["transcript"] == [{"role": "user", "text": "转人工"}]
    # Issue 13 item 5: a complaint goes to the manager hotline, big customer or not (M2).
    complaint = handoff("c4", "057188880001", queue="manager")
    assert (complaint.queue, complaint.position) == ("manager", 1)


# ------------------------------------------------------------------ inventory


@pytest.mark.parametrize(
    ("number", "state"),
    [
        ("057189990001", "unknown_prefix"),  # A4
        ("01012345678", "unknown_prefix"),
        ("057187650004", "repaired"),  # A5
        ("057187650005", "engineering"),
        ("057187660001", "engineering"),  # prefix-wide work
        ("057187660099", "engineering"),  # not listed, still under the prefix work
        ("057187650006", "open_fault"),  # A6
        ("057187650001", "normal"),
        ("057187659999", "normal"),  # known prefix, not listed
        ("13800138000", "normal"),
        ("13712345678", "unknown_prefix"),
    ],
)
def test_lookup_states(demo_db: Database, number: str, state: str) -> None:
    kind = "mobile" if number.startswith("1") else "fixed"
    info = demo_db.call(service.lookup_number, number, kind)
    assert info["state"] == state and info["number"] == number and info["kind"] == kind
    assert info["known_prefix"] is (state != "unknown_prefix")


def test_lookup_details(demo_db: Database) -> None:
    info = demo_db.call(service.lookup_number, "057187650006", "fixed")
    assert info["exchange"] == {"prefix": "05718765", "name": "西湖文三路局", "branch": "西湖分公司"}
    assert info["line"] == {"owner": "赵丽", "big_customer": False, "customer_type": "residential",
                            "branch": "西湖分公司"}
    fault = info["open_fault"]
    assert fault["ticket_id"] == "TT-W0001" and fault["report_count"] == 1
    assert fault["repairman_message"]["zh"].startswith("维修人员已找到故障点")
    assert fault["last_test"]["result"] == "open_circuit"
    assert fault["last_test"]["summary"]["zh"] == "测试结果：线路断线，我们会尽快派人维修。"
    # J4 automated (issue 13 item 4): where the ticket is and when it should be repaired.
    assert fault["status"] in ("acknowledged", "inProgress") and fault["sub_step"]
    assert fault["expected_resolution"] is None or fault["expected_resolution"].endswith("+00:00")
    no_message = demo_db.call(service.lookup_number, "057187650007", "fixed")["open_fault"]
    assert no_message["repairman_message"] is None and no_message["report_count"] == 2
    assert no_message["last_test"]["result"] == "high_resistance"
    unlisted = demo_db.call(service.lookup_number, "057187659999", "fixed")
    assert unlisted["line"] is None and unlisted["open_fault"] is None and unlisted["engineering"] is None
    works = demo_db.call(service.lookup_number, "057187650005", "fixed")["engineering"]
    assert works["id"] == "EW-2024-031" and works["until"].startswith("2030-12-31T10:00:00")


def test_finished_engineering_work_does_not_count(db: Database, settings: Settings) -> None:
    world = parse_world_file(WORLDS / "small.yml")
    past = world.model_copy(update={"engineering_works": [
        world.engineering_works[0].model_copy(update={"until": datetime.now(UTC) - timedelta(hours=1)})
    ]})
    load_world(db, past, current_file=settings.current_world_file)
    assert db.call(service.lookup_number, "057187650004", "fixed")["state"] == "normal"


def test_open_fault_state_follows_a_new_conversation_ticket(demo_db: Database) -> None:
    demo_db.call(service.create_report, new_report("c1"))
    info = demo_db.call(service.lookup_number, LINE, "fixed")
    assert info["state"] == "open_fault" and info["open_fault"]["report_count"] == 1


# --------------------------------------------------------------- world loading


def test_load_writes_the_current_world_file(db: Database, tmp_path: Path) -> None:
    world = parse_world_file(WORLDS / "small.yml")
    target = tmp_path / "var" / "world.yml"
    text = (WORLDS / "small.yml").read_text(encoding="utf-8")
    summary = load_world(db, world, text=text, current_file=target)
    assert (summary.exchanges, summary.lines, summary.open_faults) == (2, 3, 1)
    assert target.read_text(encoding="utf-8") == text
    load_world(db, world, current_file=target)  # without text: the model, dumped
    assert "057187650001" in target.read_text(encoding="utf-8")


def test_world_fault_becomes_ticket_with_reports(db: Database, settings: Settings) -> None:
    load_world(db, parse_world_file(WORLDS / "small.yml"), current_file=settings.current_world_file)
    view = db.call(service.get_ticket, "TT-S0001")
    assert view.ticket.status == "inProgress" and view.ticket.origin == "world"
    assert view.ticket.world_fault_id == "TT-S0001" and view.report_count == 2
    assert view.last_test is not None and view.last_test.result == "high_resistance"


def test_reload_keeps_conversation_tickets(demo_db: Database, settings: Settings) -> None:
    mine = demo_db.call(service.create_report, new_report("c1")).ticket_id
    demo_db.call(service.record_outcome, service.OutcomeData("c1", "webchat", "zh", "accepted", "A10"))
    other = parse_world_file(WORLDS / "other.yml")
    load_world(demo_db, other, current_file=settings.current_world_file)
    assert demo_db.call(service.get_ticket, mine).ticket.fault_number == LINE
    with pytest.raises(service.NotFound):
        demo_db.call(service.get_ticket, "TT-W0001")  # the old world's tickets are gone
    assert demo_db.call(service.lookup_number, "057187650006", "fixed")["state"] == "unknown_prefix"
    assert demo_db.call(service.lookup_number, "057188880001", "fixed")["line"]["owner"] == "赵四"
    assert count(demo_db, ConversationOutcome) == 1


def test_reset_deletes_every_ticket(demo_db: Database, demo_world: World, settings: Settings) -> None:
    demo_db.call(service.create_report, new_report("c1"))
    demo_db.call(service.record_outcome, service.OutcomeData("c1", "webchat", "zh", "accepted", "A10"))
    demo_db.call(service.queue_handoff, service.HandoffData("c1", "webchat", "zh", "asked"))
    summary = load_world(demo_db, demo_world, reset=True, current_file=settings.current_world_file)
    assert summary.reset
    assert count(demo_db, Ticket) == 3  # only the world's open faults again
    assert count(demo_db, Report) == 1 + 2 + 3
    assert count(demo_db, ConversationOutcome) == 0 and count(demo_db, Handoff) == 0


def test_broken_file_leaves_the_old_world(demo_db: Database) -> None:
    with pytest.raises(WorldFileError):
        parse_world_file(WORLDS / "broken_fields.yml")  # refused before loading: nothing to undo
    assert count(demo_db, LineRow) == 15


def test_failed_load_is_rolled_back(demo_db: Database, settings: Settings) -> None:
    # A world that parses but cannot be stored (its fault id is taken by a conversation
    # ticket) must leave everything as it was: one transaction.
    mine = demo_db.call(service.create_report, new_report("c1")).ticket_id
    small = parse_world_file(WORLDS / "small.yml")
    clash = small.model_copy(update={"open_faults": [small.open_faults[0].model_copy(update={"id": mine})]})
    settings.current_world_file.parent.mkdir(parents=True, exist_ok=True)
    settings.current_world_file.write_text("old", encoding="utf-8")
    with pytest.raises(IntegrityError):
        load_world(demo_db, clash, current_file=settings.current_world_file)
    assert count(demo_db, LineRow) == 15  # still the demo world
    assert demo_db.call(service.get_ticket, "TT-W0001").ticket.status == "inProgress"
    assert settings.current_world_file.read_text(encoding="utf-8") == "old"


# ------------------------------------------------------------------------ CLI


def test_cli_load_check_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bot.settings import get_settings
    from bot.store.cli import db_app
    from bot.world.cli import world_app

    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("HOTLINE_CURRENT_WORLD_FILE", str(tmp_path / "current.yml"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(db_app, ["upgrade"]).exit_code == 0
        ok = runner.invoke(world_app, ["check", str(WORLDS / "small.yml")])
        assert ok.exit_code == 0 and "2 exchanges, 3 lines" in ok.output
        loaded = runner.invoke(world_app, ["load", str(WORLDS / "small.yml")])
        assert loaded.exit_code == 0, loaded.output
        assert "2 exchanges, 3 lines, 1 engineering works, 1 open faults" in loaded.output
        assert (tmp_path / "current.yml").read_text(encoding="utf-8") == (WORLDS / "small.yml").read_text(
            encoding="utf-8")
        bad = runner.invoke(world_app, ["load", str(WORLDS / "broken_fields.yml")])
        assert bad.exit_code == 2 and "broken_fields.yml:9: lines[1].number" in bad.output
        assert runner.invoke(world_app, ["check", str(WORLDS / "broken_syntax.yml")]).exit_code == 2
        reset = runner.invoke(world_app, ["load", "--reset", str(WORLDS / "other.yml")])
        assert reset.exit_code == 0 and "(all tickets reset)" in reset.output
    finally:
        get_settings.cache_clear()


def test_migrations_match_the_models(tmp_path: Path) -> None:
    """What Alembic builds is what the SQLModel tables declare (indexes included)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from bot.store.db import include_object

    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.upgrade()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diffs = compare_metadata(context, SQLModel.metadata)
    db.dispose()
    assert diffs == []
