"""Q1–Q8: the daily sample (rate, at least one, seeded, never twice), spot checks, the
scorecards' rules, a score's history after submission, violations and who sees them —
on small hand-made worlds, on SQLite and PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bot.quality import handoffs, sampler, scheduled, scoring, weekly
from bot.settings import Settings
from bot.store.db import Database
from bot.store.errors import Conflict, ServiceError
from bot.store.models import (
    Handoff,
    Ticket,
    TicketStatusChange,
)
from bot.store.quality import QaSample, QaViolation
from tests.quality_world import DAY, NOON, world

TZ = ZoneInfo("Asia/Shanghai")
CARDS = scoring.load_cards()
MONDAY = date(2026, 11, 2)
SETTINGS = Settings(timezone="Asia/Shanghai")


def _draw(db: Database, rate: float = 0.05, seed: str = "s") -> list[sampler.Drawn]:
    return db.call(sampler.daily, DAY, TZ, rate, seed, now=NOON + timedelta(days=1))


def _samples(db: Database) -> list[QaSample]:
    return db.call(lambda s: list(s.exec(select(QaSample).order_by(QaSample.id))))


def test_q1_the_daily_sample_takes_5_percent_of_each_posts_work_at_least_one(db: Database, settings: Any) -> None:
    db.call(world)
    made = {d.batch.post: d for d in _draw(db)}
    # junior: 40 contacts → 2 (5 %), one dispatch request → 1; english 3 → 1; machine 30 → 2 (1.5 up);
    # senior: one review and one grade → 1 each; posts with no work draw nothing.
    assert {p: d.batch.population for p, d in made.items()} == {
        "junior": 41, "senior": 2, "english": 3, "surveyor": 0, "datamanager": 0, "statistician": 0, "machine": 30}
    by_kind = {(d.batch.post, s.kind) for d in made.values() for s in d.samples}
    assert by_kind == {("junior", "contact"), ("junior", "decision"), ("senior", "review"), ("senior", "grade"),
                       ("english", "contact"), ("machine", "conversation")}
    sizes = {p: d.batch.size for p, d in made.items()}
    assert sizes == {"junior": 3, "senior": 2, "english": 1, "surveyor": 0, "datamanager": 0,
                     "statistician": 0, "machine": 2}
    rows = _samples(db)
    assert all(r.day == DAY.isoformat() for r in rows)  # the contact of the day before is not in it
    machine = [r for r in rows if r.post == "machine"]
    assert all(r.conversation_id and r.conversation_id.startswith("b") for r in machine)  # handed-off ones are contacts
    contact = next(r for r in rows if r.post == "junior" and r.kind == "contact")
    assert contact.person in ("jun1", "jun2") and contact.handoff_id is not None
    # Drawn once: the job's run for that day again, or the draw again, adds nothing.
    again = db.call(scheduled.daily, settings.model_copy(update={"timezone": "Asia/Shanghai"}),
                    now=NOON + timedelta(days=1))
    assert again == {"samples": 0, "flags": 0} and _draw(db) == []
    refs = [(r.kind, r.ref) for r in _samples(db)]
    assert len(refs) == len(set(refs)) == 8


def test_q1_the_same_seed_draws_the_same_sample_and_another_seed_another() -> None:
    items = [sampler.Item("junior", "contact", f"handoff:{n}", NOON + timedelta(minutes=n)) for n in range(200)]
    a = [i.ref for i in sampler.draw(items, 0.05, "seed-1")]
    assert a == [i.ref for i in sampler.draw(items, 0.05, "seed-1")]
    assert len(a) == 10
    others = {tuple(i.ref for i in sampler.draw(items, 0.05, f"seed-{n}")) for n in range(2, 12)}
    assert len(others) > 5  # different seeds: different samples


@pytest.mark.parametrize(("population", "rate", "size"), [(0, 0.05, 0), (1, 0.05, 1), (19, 0.05, 1), (20, 0.05, 1),
                                                          (21, 0.05, 2), (100, 0.05, 5), (3, 1.0, 3),
                                                          (10, 0.25, 3)])
def test_q1_sample_size_is_the_share_rounded_up_at_least_one(population: int, rate: float, size: int) -> None:
    assert sampler.size_for(population, rate) == size


def test_q1_the_draw_is_uniform_over_many_seeds() -> None:
    items = [sampler.Item("machine", "conversation", f"c{n}", NOON) for n in range(20)]
    counts = dict.fromkeys(range(20), 0)
    for seed in range(2000):
        for i in sampler.draw(items, 0.05, str(seed)):
            counts[int(i.ref[1:])] += 1
    assert sum(counts.values()) == 2000
    assert min(counts.values()) > 50 and max(counts.values()) < 150  # ~100 each


def test_q1_a_spot_check_draws_only_what_was_not_sampled(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampler, "CHUNK", 3)  # earlier samples are looked up a few refs at a time (SQLite's limit)
    db.call(world)
    _draw(db)
    start, end = NOON - timedelta(hours=12), NOON + timedelta(hours=12)
    spot = db.call(sampler.spot_check, "insp", start, end, TZ, person="jun1", limit=5, seed="x")
    assert spot.batch.size == 5 and all(s.person == "jun1" for s in spot.samples)
    rest = db.call(sampler.spot_check, "insp", start, end, TZ, post="junior", limit=200, seed="y")
    refs = [(r.kind, r.ref) for r in _samples(db)]
    assert len(refs) == len(set(refs))  # nothing sampled twice
    assert rest.batch.population == 41 - 3 - 5
    again = db.call(sampler.spot_check, "insp", start, end, TZ, post="junior", limit=10, seed="z")
    assert again.batch.size == 0


@pytest.mark.parametrize("kw", [{"post": "pilot"}, {"limit": 0}, {"limit": 1000}, {"rate": 0.0}])
def test_q1_a_spot_check_with_bad_input_is_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ServiceError):  # refused before the store is asked
        sampler.spot_check(None, "insp", NOON, NOON + timedelta(hours=1), TZ, **kw)  # type: ignore[arg-type]


def test_q1_a_spot_check_period_must_make_sense() -> None:
    with pytest.raises(ServiceError):
        sampler.spot_check(None, "insp", NOON, NOON, TZ)  # type: ignore[arg-type]
    with pytest.raises(ServiceError):
        sampler.spot_check(None, "insp", NOON, NOON + timedelta(days=40), TZ)  # type: ignore[arg-type]


# ---------------------------------------------------------------- scorecards and scores


FULL = {"prompt": {"points": 20}, "accurate": {"points": 25}, "courteous": {"points": 20},
        "ticket_complete": {"points": 20}, "owner_check": {"points": 15}}


def test_q2_scorecard_rules_points_weights_and_instant_fail() -> None:
    card = CARDS["junior"]
    assert card.max_points == 100
    ok = scoring.evaluate(card, FULL)
    assert (ok.points, ok.percent, ok.passed, ok.instant_fail) == (100, 100.0, True, False)
    low = scoring.evaluate(card, {**FULL, "accurate": {"points": 5}})
    assert (low.points, low.percent, low.passed) == (80, 80.0, True)  # the pass mark itself passes
    lower = scoring.evaluate(card, {**FULL, "accurate": {"points": 4}})
    assert not lower.passed
    rude = scoring.evaluate(card, {**FULL, "rude": {"found": True, "recording_at": "01:42", "transcript_line": 3}})
    assert (rude.points, rude.percent, rude.passed, rude.instant_fail) == (0, 0.0, False, True)
    row = next(i for i in rude.items if i["id"] == "rude")
    assert (row["recording_at"], row["transcript_line"]) == ("01:42", 3)


@pytest.mark.parametrize("given", [
    {**FULL, "prompt": {"points": 21}},  # above the weight
    {**FULL, "prompt": {"points": -1}},
    {**FULL, "prompt": {"points": "lots"}},
    {**FULL, "prompt": {"points": 10**400}},  # JSON's big numbers: refused, not a crash
    {**FULL, "prompt": {"points": "nan"}},
    {k: v for k, v in FULL.items() if k != "prompt"},  # an item left out
    {**FULL, "smile": {"points": 1}},  # not on the card
    {**FULL, "prompt": {"points": 20, "recording_at": "1 minute"}},
    {**FULL, "prompt": {"points": 20, "transcript_line": "third"}},
])
def test_q2_bad_scores_are_refused(given: dict[str, Any]) -> None:
    with pytest.raises(ServiceError):
        scoring.evaluate(CARDS["junior"], given)


def test_scorecards_file_is_checked() -> None:
    assert set(CARDS) == set(sampler.POSTS)
    with pytest.raises(scoring.CardError):
        scoring.parse_cards("junior:\n  items:\n    - {id: a, weight: 0}\n")
    with pytest.raises(scoring.CardError):
        scoring.parse_cards("junior:\n  items:\n    - {id: a, weight: 1}\n    - {id: a, weight: 2}\n")
    card = scoring.parse_cards("x:\n  pass_percent: 50\n  items:\n    - {id: a, weight: 4}\n"
                               "    - {id: b, instant_fail: true}\n")["x"]
    assert card.max_points == 4 and card.item("b") is not None and card.item("b").instant_fail  # type: ignore[union-attr]


def _a_contact_sample(db: Database) -> QaSample:
    db.call(world)
    _draw(db)
    return next(r for r in _samples(db) if r.post == "junior" and r.kind == "contact")


def test_q8_a_submitted_score_changes_only_with_a_reason_and_keeps_its_history(db: Database) -> None:
    sample = _a_contact_sample(db)
    assert sample.id is not None
    score = db.call(scoring.score_sample, CARDS, sample.id, FULL, "insp", "inspector")
    db.call(scoring.score_sample, CARDS, sample.id, {**FULL, "prompt": {"points": 10}}, "insp", "inspector",
            comment="slow start", submit=True)
    assert score.id is not None
    with pytest.raises(Conflict):  # submitted: not edited as a draft any more
        db.call(scoring.score_sample, CARDS, sample.id, FULL, "insp", "inspector")
    with pytest.raises(ServiceError):  # no reason, no change
        db.call(scoring.change_score, CARDS, score.id, FULL, "insp", "inspector", " ")
    changed = db.call(scoring.change_score, CARDS, score.id, FULL, "insp", "inspector", "listened again")
    assert changed.points == 100 and changed.state == "submitted"
    steps = db.call(scoring.history, score.id)
    assert [c.action for c in steps] == ["created", "edited", "submitted", "changed"]
    assert steps[-1].reason == "listened again" and steps[-1].before is not None
    assert steps[-1].before["points"] == 90 and steps[-1].after is not None and steps[-1].after["points"] == 100
    assert [c.version for c in steps] == [1, 2, 3, 4]
    with pytest.raises(ServiceError):  # only inspectors score
        db.call(scoring.change_score, CARDS, score.id, FULL, "jun1", "junior", "mine")


def test_q8_an_instant_fail_records_a_violation_once_and_a_change_withdraws_it(db: Database) -> None:
    sample = _a_contact_sample(db)
    assert sample.id is not None
    rude = {**FULL, "rude": {"found": True, "comment": "shouted", "recording_at": "00:42"}}
    score = db.call(scoring.score_sample, CARDS, sample.id, rude, "insp", "inspector", submit=True)
    assert score.id is not None and score.instant_fail and not score.passed

    def violations(s: Session) -> list[QaViolation]:
        return list(s.exec(select(QaViolation)))

    [v] = db.call(violations)
    assert (v.person, v.rule, v.description, v.evidence) == (sample.person, "rude", "shouted", "recording 00:42")
    db.call(scoring.change_score, CARDS, score.id, rude, "insp", "inspector", "typo in the comment")
    assert len(db.call(violations)) == 1  # still one
    db.call(scoring.change_score, CARDS, score.id, FULL, "insp", "inspector", "it was the caller shouting")
    [v] = db.call(violations)
    assert v.withdrawn_at is not None and v.withdrawn_reason == "it was the caller shouting"
    record = db.call(scoring.person_record, "insp", "inspector", sample.person)
    assert record.counted == 0 and len(record.violations) == 1


def test_q8_violations_are_seen_by_the_person_and_their_supervisors_only(db: Database) -> None:
    sample = _a_contact_sample(db)
    assert sample.id is not None and sample.person is not None
    other = "jun2" if sample.person == "jun1" else "jun1"
    db.call(scoring.record_violation, sample.id, "other", "did not test the line", "transcript line 4",
            "insp", "inspector")
    with pytest.raises(ServiceError):  # a junior records nothing
        db.call(scoring.record_violation, sample.id, "other", "x", None, other, "junior")
    own = db.call(scoring.person_record, sample.person, "junior", sample.person)
    assert own.counted == 1 and own.violations[0].evidence == "transcript line 4"
    for viewer, role in ((sample.person, "junior"), ("sen1", "senior"), ("dep1", "deputy"), ("insp", "inspector")):
        assert db.call(scoring.person_record, viewer, role, sample.person).counted == 1
    for viewer, role in ((other, "junior"), ("stat1", "statistician")):
        with pytest.raises(ServiceError):
            db.call(scoring.person_record, viewer, role, sample.person)
    with pytest.raises(ServiceError):  # a senior's own record is not for juniors or other seniors' eyes
        db.call(scoring.person_record, "jun1", "junior", "sen1")
    assert db.call(scoring.visible_people, "jun1", "junior") == ["jun1"]
    assert "jun2" in db.call(scoring.visible_people, "sen1", "senior")


# ---------------------------------------------------------------- Q6: hand-offs between posts


def _change(ticket: str, minute: int, to: str | None, action: str = "x") -> TicketStatusChange:
    return TicketStatusChange(ticket_id=ticket, to_status="acknowledged", action=action, author="a",
                              at=NOON + timedelta(minutes=minute), to_sub_step=to)


def test_q6_a_ticket_passed_back_and_forth_counts_each_pass() -> None:
    # junior → senior → centre → senior (returned) → centre → senior (returned) → centre → answered
    steps = [(0, "new"), (5, "awaiting_review"), (15, "dispatched"), (60, "returned"), (70, "dispatched"),
             (90, "returned"), (95, "dispatched"), (200, "receipt_received")]
    path = handoffs.ticket_path("T", [_change("T", m, to) for m, to in steps], NOON + timedelta(days=1))
    assert path is not None
    assert path.posts == ["junior", "senior", "centre", "senior", "centre", "senior", "centre"]
    assert path.passes == 6
    # waits at desk posts after a pass: senior 10 min, then 10, then 5: the longest is 10 min, the senior's
    assert (path.longest_wait_s, path.waited_at) == (600.0, "senior")


def test_q6_a_ticket_still_waiting_waits_until_now_and_an_escalation_is_a_pass() -> None:
    changes = [_change("T", 0, "new"), _change("T", 2, "awaiting_review"), _change("T", 3, None, "escalate")]
    path = handoffs.ticket_path("T", changes, NOON + timedelta(minutes=63))
    assert path is not None and path.posts == ["junior", "senior", "manager"] and path.passes == 2
    assert (path.longest_wait_s, path.waited_at) == (3600.0, "manager")  # since minute 3, still there


def test_q6_a_caller_sent_back_to_the_bot_and_again_to_a_person() -> None:
    h1 = Handoff(id=1, conversation_id="c", channel="phone", language="zh", reason="r", queue="junior",
                 state="returned", created=NOON, ended_at=NOON + timedelta(minutes=2))
    h2 = Handoff(id=2, conversation_id="c", channel="phone", language="zh", reason="r", queue="junior",
                 state="done", created=NOON + timedelta(minutes=5), taken_at=NOON + timedelta(minutes=6))
    h3 = Handoff(id=3, conversation_id="c", channel="phone", language="zh", reason="big", queue="senior",
                 state="done", created=NOON + timedelta(minutes=8), taken_at=NOON + timedelta(minutes=40),
                 transferred_from="jun1")
    path = handoffs.caller_path("c", [h1, h2, h3], NOON + timedelta(hours=2))
    assert path is not None
    assert path.posts == ["machine", "junior", "machine", "junior", "senior"] and path.passes == 4
    assert (path.longest_wait_s, path.waited_at) == (32 * 60.0, "senior")


def test_q6_flags_are_made_once_per_contact_and_reason(db: Database) -> None:
    def seed(s: Session) -> None:
        for t in ("PING", "CALM"):
            s.add(Ticket(id=t, name="t", description="d", severity="Minor"))
        s.flush()
        for m, to in [(0, "new"), (5, "awaiting_review"), (15, "dispatched"), (60, "returned"), (62, "dispatched"),
                      (70, "returned"), (72, "dispatched")]:
            s.add(_change("PING", m, to))
        for m, to in [(0, "new"), (50, "awaiting_review"), (52, "dispatched")]:
            s.add(_change("CALM", m, to))  # 50 min at new: the first holder, not a wait between posts

    db.call(seed)
    start, end, later = NOON - timedelta(hours=1), NOON + timedelta(hours=3), NOON + timedelta(hours=3)
    made = db.call(handoffs.detect, start, end, 3, 30 * 60.0, now=later)
    assert [(f.subject, f.reason, f.passes) for f in made] == [("ticket:PING", "passes", 6)]
    assert made[0].path == ["junior", "senior", "centre", "senior", "centre", "senior", "centre"]
    assert db.call(handoffs.detect, start, end, 3, 30 * 60.0, now=later) == []  # once
    slow = db.call(handoffs.detect, start, end, 10, 5 * 60.0, now=later)  # a stricter wait: PING's senior 10 min
    assert [(f.subject, f.reason, f.waited_at) for f in slow] == [("ticket:PING", "wait", "senior")]
    assert len(db.call(handoffs.list_flags)) == 2


# ---------------------------------------------------------------- Q8: the weekly QA analysis report


def test_q8_the_weekly_report_on_the_report_machinery(db: Database, tmp_path: Any) -> None:
    """A hand-scored week: a junior contact full marks, another with a rude answer (instant
    fail), and a violation recorded by hand → average 50 %, pass rate 1/2, 1 instant fail,
    2 violations; drafted, submitted by the inspector, approved by a deputy, numbers frozen."""
    import shutil
    import subprocess
    from io import BytesIO

    from openpyxl import load_workbook

    from bot.stats import reports
    from bot.stats.reports import Options, Who

    opts = Options(TZ)
    insp, dep, stat = Who("insp", "inspector"), Who("dep1", "deputy"), Who("stat1", "statistician")
    db.call(world)
    _draw(db)
    a, b = [r for r in _samples(db) if r.post == "junior" and r.kind == "contact"][:2]
    assert a.id is not None and b.id is not None
    db.call(scoring.score_sample, CARDS, a.id, FULL, "insp", "inspector", submit=True)
    db.call(scoring.score_sample, CARDS, b.id, {**FULL, "rude": {"found": True}}, "insp", "inspector", submit=True)
    db.call(scoring.record_violation, a.id, "other", "late callback", None, "insp", "inspector",
            now=NOON + timedelta(hours=2))
    later = NOON + timedelta(days=6)  # Monday 9 November, Shanghai morning
    with pytest.raises(ServiceError):  # a statistician does not write the QA report
        db.call(weekly.generate, MONDAY, opts, stat, now=later)
    report, created = db.call(weekly.generate, MONDAY, opts, insp, now=later)
    assert created and report.kind == "qa_weekly" and report.state == "draft"
    assert db.call(scheduled.weekly_report, SETTINGS, now=later) == report.id  # the Monday job: the same draft
    f = report.figures
    assert f["totals"] == {"samples": 8, "scored": 2, "average": 50.0, "pass_rate": 0.5, "instant_fails": 1,
                           "violations": 2, "handoff_flags": 0}
    assert f["by_post"][[r["post"] for r in f["by_post"]].index("junior")]["violations"] == 2
    assert {r["person"] for r in f["by_person"]} == {a.person, b.person} - {None}
    assert f["instant_fails"] == [{"post": "junior", "item": "rude", "zh": "态度恶劣", "en": "Rude answer", "found": 1}]
    assert [w["week"] for w in f["trend"]] == ["2026-10-12", "2026-10-19", "2026-10-26", "2026-11-02"]
    with pytest.raises(ServiceError):
        db.call(reports.approve, report.id, dep, None, now=later)  # a draft is not approved
    with pytest.raises(ServiceError):
        db.call(reports.submit, report.id, stat, None, now=later)
    db.call(reports.submit, report.id, insp, "two juniors listened to", now=later)
    db.call(reports.approve, report.id, dep, "ok", now=later)
    with pytest.raises(ServiceError):
        db.call(reports.refresh_figures, report.id, opts, insp, now=later)  # frozen after submission
    final = db.call(reports.get, report.id)
    assert (final.state, final.decided_by) == ("approved", "dep1")
    assert [e.action for e in db.call(reports.events, report.id)] == ["generated", "submitted", "approved"]
    if not db.is_sqlite:
        return  # the exports read the frozen snapshot, not the store: once is enough
    assert load_workbook(BytesIO(weekly.xlsx(final, "zh"))).sheetnames[:2] == ["概要", "按岗位"]
    pdf = weekly.pdf(final, "zh")
    assert pdf.startswith(b"%PDF")
    if shutil.which("pdftoppm") is not None:
        (tmp_path / "r.pdf").write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", "20", "-png", str(tmp_path / "r.pdf"), str(tmp_path / "p")], check=True)
        assert len(list(tmp_path.glob("p-*.png"))) == 3


def test_the_quality_pages_speak_the_desks_words() -> None:
    """Every t("…") of the quality templates has its Mandarin (bot/desk/texts/quality.yml),
    and the codes have words in both languages."""
    import re
    from pathlib import Path

    from bot.desk import i18n

    catalogue = i18n.catalogue()
    templates = Path(__file__).resolve().parents[2] / "bot" / "desk" / "templates"
    for path in templates.glob("*quality*.html"):
        for text in re.findall(r'\bt\("([^"]+)"\)', path.read_text(encoding="utf-8")):
            assert text in catalogue, f"{path.name}: {text!r} has no Mandarin"
    for kind, values in {"qa_post": sampler.POSTS, "qa_kind": ("contact", "decision", "review", "grade", "warning",
                                                               "alarm", "chase", "survey", "article", "task", "report",
                                                               "conversation"),
                         "qa_flag": ("passes", "wait"), "qa_origin": ("daily", "spot")}.items():
        for value in values:
            assert i18n.code_text(kind, value, "zh") != value and f"en.{kind}:{value}" in catalogue


def test_q1_the_bots_own_conversation_is_read_from_its_tracker(tmp_path: Any) -> None:
    import json
    import sqlite3

    from bot.quality import transcripts

    path = tmp_path / "tracker.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, type_name TEXT, timestamp REAL, "
                 "intent_name TEXT, action_name TEXT, data TEXT)")
    for sender, kind, text in (("b1", "bot", "您好，请输入您的故障电话号码"), ("b1", "user", "0571 8888 1234"),
                               ("b1", "action", None), ("b2", "user", "别的"), ("b1", "bot", "")):
        conn.execute("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?, ?, 1.0, ?)",
                     (sender, kind, json.dumps({"text": text})))
    conn.commit()
    conn.close()
    lines = transcripts.bot_transcript(path, "b1")
    assert [(x["who"], x["text"]) for x in lines] == [("bot", "您好，请输入您的故障电话号码"), ("caller", "0571 8888 1234")]
    assert transcripts.bot_transcript(tmp_path / "none.db", "b1") == []
    (tmp_path / "broken.db").write_text("not a database")
    assert transcripts.bot_transcript(tmp_path / "broken.db", "b1") == []


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_q4_the_data_managers_hard_cases_done_late_or_missed_are_work_to_sample(db: Database) -> None:
    from bot.store.knowledge import KbTask

    def seed(s: Session) -> None:
        s.add(KbTask(source_task_id=1, junior="jun1", senior="sen1", reason="r", created=NOON - timedelta(hours=5),
                     due_at=NOON - timedelta(hours=1), state="done", done_at=NOON, done_by="dm"))  # late
        s.add(KbTask(source_task_id=2, junior="jun1", senior="sen1", reason="r", created=NOON - timedelta(hours=2),
                     due_at=NOON + timedelta(hours=2)))  # missed: still open
        s.add(KbTask(source_task_id=3, junior="jun1", senior="sen1", reason="r", created=NOON,
                     due_at=NOON + timedelta(days=2)))  # not due yet: not the day's work

    db.call(seed)
    items = db.call(sampler.work, NOON - timedelta(hours=12), NOON + timedelta(hours=12))
    tasks = [(i.kind, i.person, i.details["late"]) for i in items if i.post == "datamanager"]
    assert tasks == [("task", "dm", True), ("task", None, True)]


def test_the_daily_draw_and_the_monday_report_are_jobs(tmp_path: Any) -> None:
    from aiohttp import web
    from apscheduler.triggers.cron import CronTrigger

    from bot.jobs import Jobs

    settings = Settings(timezone="Asia/Shanghai", qa_sample_at="03:15")
    jobs = Jobs(web.Application(), Database(f"sqlite:///{tmp_path / 'j.db'}"), settings)
    scheduled.register(jobs, settings)
    daily, monday = jobs.kinds[scheduled.DAILY_KIND], jobs.kinds[scheduled.WEEKLY_KIND]
    assert isinstance(daily.trigger, CronTrigger) and isinstance(monday.trigger, CronTrigger)
    assert "hour='3'" in str(daily.trigger) and "minute='15'" in str(daily.trigger)
    assert "day_of_week='mon'" in str(monday.trigger)
