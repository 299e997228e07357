"""T5: report periods, generation once per period (the scheduler's due run included), the
review (draft → submitted → approved; sent back; a v2 correction), numbers frozen after
submission, who may do what; the exports open in real readers (openpyxl, pdftoppm)."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import update

from bot.stats import charts, exports, periods, reports
from bot.stats.reports import Options, Who
from bot.store.db import Database
from bot.store.errors import Conflict, ServiceError
from bot.store.models import Handoff
from bot.store.stats import StatsReport
from tests import stats_world

WEEK = stats_world.read("week.yml")
OPTIONS = Options(ZoneInfo("Asia/Shanghai"))
MONDAY = date(2026, 11, 2)
LATER = datetime(2026, 12, 1, tzinfo=UTC)
STAT, DEPUTY, JUNIOR = Who("stat", "statistician"), Who("dep", "deputy"), Who("jun", "junior")


@pytest.mark.parametrize(("kind", "today", "start", "end"), [
    ("weekly", date(2026, 11, 9), date(2026, 11, 2), date(2026, 11, 9)),     # Monday: the week before
    ("weekly", date(2026, 11, 15), date(2026, 11, 2), date(2026, 11, 9)),    # Sunday: still that week
    ("monthly", date(2026, 12, 1), date(2026, 11, 1), date(2026, 12, 1)),
    ("monthly", date(2027, 1, 31), date(2026, 12, 1), date(2027, 1, 1)),
    ("quarterly", date(2027, 1, 1), date(2026, 10, 1), date(2027, 1, 1)),
    ("quarterly", date(2026, 6, 30), date(2026, 1, 1), date(2026, 4, 1)),
    ("annual", date(2026, 12, 21), date(2025, 12, 21), date(2026, 12, 21)),  # made on 21 December
    ("annual", date(2026, 12, 20), date(2024, 12, 21), date(2025, 12, 21)),
])
def test_last_complete_period(kind: str, today: date, start: date, end: date) -> None:
    period = periods.last_complete(kind, today)
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize(("kind", "start"), [("weekly", date(2026, 11, 3)), ("monthly", date(2026, 11, 2)),
                                             ("quarterly", date(2026, 2, 1)), ("annual", date(2026, 1, 1)),
                                             ("daily", date(2026, 11, 2))])
def test_a_period_that_is_not_one_is_refused(kind: str, start: date) -> None:
    with pytest.raises(ServiceError):
        periods.period_starting(kind, start)


@pytest.fixture
def week(db: Database) -> Database:
    stats_world.load(db, WEEK)
    return db


def test_review_path_and_numbers_frozen_after_submission(week: Database) -> None:
    report, created = week.call(reports.generate, "weekly", MONDAY, OPTIONS, STAT, now=LATER)
    assert created and report.state == "draft" and report.version == 1
    assert report.figures["handling"]["contacts"] == 10
    again, created = week.call(reports.generate, "weekly", MONDAY, OPTIONS, now=LATER)  # the scheduler
    assert not created and again.id == report.id
    rid = report.id
    assert rid is not None

    week.call(reports.comment, rid, STAT, "数字已核对", now=LATER)
    week.call(reports.submit, rid, STAT, now=LATER)
    # A late change to the store: the submitted report's numbers stay as they were.
    week.call(lambda s: s.execute(update(Handoff).where(Handoff.id == 7).values(
        state="done", taken_by="sen", taken_at=datetime(2026, 11, 6, 12, 1, tzinfo=UTC))))
    with pytest.raises(Conflict):
        week.call(reports.refresh_figures, rid, OPTIONS, STAT, now=LATER)
    with pytest.raises(ServiceError):
        week.call(reports.approve, rid, STAT, now=LATER)  # a statistician does not approve
    with pytest.raises(ServiceError):
        week.call(reports.send_back, rid, DEPUTY, "  ", now=LATER)  # sending back needs a reason
    week.call(reports.send_back, rid, DEPUTY, "请补充分公司说明", now=LATER)
    week.call(reports.submit, rid, STAT, "已补充", now=LATER)
    approved = week.call(reports.approve, rid, DEPUTY, now=LATER)
    assert approved.state == "approved" and approved.decided_by == "dep" and approved.decided_at == LATER
    assert approved.figures == report.figures
    actions = [(e.action, e.actor) for e in week.call(reports.events, rid)]
    assert actions == [("generated", "stat"), ("commented", "stat"), ("submitted", "stat"),
                       ("sent_back", "dep"), ("submitted", "stat"), ("approved", "dep")]

    # The correction: a new version with the new numbers, linked; v1 keeps its own.
    with pytest.raises(ServiceError):
        week.call(reports.correct, rid, OPTIONS, STAT, "", now=LATER)
    v2 = week.call(reports.correct, rid, OPTIONS, STAT, "c7 was answered after all", now=LATER)
    assert (v2.version, v2.previous_id, v2.state) == (2, rid, "draft")
    assert v2.figures["handling"]["abandoned"] == 1 and report.figures["handling"]["abandoned"] == 2
    v1 = week.call(reports.get, rid)
    assert v1.superseded_by_id == v2.id and v1.state == "approved" and v1.figures == report.figures
    with pytest.raises(Conflict):
        week.call(reports.correct, rid, OPTIONS, STAT, "again", now=LATER)
    assert [r.version for r in week.call(reports.versions, v1)] == [1, 2]


def test_a_period_not_over_is_not_reported_and_due_reports_are_made_once(db: Database) -> None:
    with pytest.raises(ServiceError):
        db.call(reports.generate, "weekly", date(2026, 11, 30), OPTIONS, now=LATER)
    made = db.call(reports.generate_due, OPTIONS, now=datetime(2026, 12, 21, 1, tzinfo=UTC))  # 09:00 local
    assert sorted((r.kind, r.period_start) for r in made) == [
        ("annual", "2025-12-21"), ("monthly", "2026-11-01"), ("quarterly", "2026-07-01"), ("weekly", "2026-12-14")]
    assert db.call(reports.generate_due, OPTIONS, now=datetime(2026, 12, 21, 2, tzinfo=UTC)) == []


def test_only_the_statistician_writes_and_only_a_deputy_approves(db: Database) -> None:
    with pytest.raises(ServiceError):
        db.call(reports.generate, "weekly", MONDAY, OPTIONS, JUNIOR, now=LATER)
    report, _ = db.call(reports.generate, "weekly", MONDAY, OPTIONS, STAT, now=LATER)
    assert report.id is not None
    with pytest.raises(ServiceError):
        db.call(reports.comment, report.id, DEPUTY, "x", now=LATER)
    with pytest.raises(Conflict):
        db.call(reports.approve, report.id, DEPUTY, now=LATER)  # not submitted yet
    with pytest.raises(ServiceError):
        db.call(reports.comment, report.id, STAT, "长" * 4001, now=LATER)


# ------------------------------------------------------------------ exports


@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory) -> StatsReport:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('export') / 'h.db'}")
    db.upgrade()
    stats_world.load(db, WEEK)
    report, _ = db.call(reports.generate, "weekly", MONDAY, OPTIONS, STAT, now=LATER)
    assert report.id is not None
    db.call(reports.submit, report.id, STAT, "数字已核对", now=LATER)
    done = db.call(reports.approve, report.id, DEPUTY, now=LATER)
    db.dispose()
    return done


def test_xlsx_reads_back(approved: StatsReport) -> None:
    wb = load_workbook(io.BytesIO(exports.xlsx(approved, "zh")))
    assert wb.sheetnames == ["概要", "业务量（T2）", "受理情况（T3）", "满意度（T4）"]
    summary = {row[0]: row[1] for row in wb["概要"].iter_rows(values_only=True) if row and len(row) > 1}
    assert summary["障碍申告量"] == 8 and summary["接触量"] == 10 and summary["未转人工率"] == 0.6
    volume = [row for row in wb["业务量（T2）"].iter_rows(values_only=True)]
    assert ("无拨号音", 4) in [tuple(r[:2]) for r in volume]
    centres = list(wb["满意度（T4）"].iter_rows(values_only=True))
    assert centres[1][0] == "滨江测量管理中心" and centres[2][:3] == ("西湖测量管理中心", 2, 2)


def _ink(png: Path) -> float:
    """The share of the page that is not white."""
    image = Image.open(png).convert("L")
    histogram = image.histogram()
    return 1 - sum(histogram[245:]) / (image.width * image.height)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (Debian poppler-utils) is not installed")
def test_pdf_pages_render_with_content(approved: StatsReport, tmp_path: Path) -> None:
    (tmp_path / "r.pdf").write_bytes(exports.pdf(approved, "zh"))
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(tmp_path / "r.pdf"), str(tmp_path / "p")], check=True)
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) == 1 + len(charts.charts_of(approved.figures)) == 1 + len(charts.CHARTS)
    for png in pngs:
        assert _ink(png) > 0.005, png.name  # every page has something drawn on it
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True)
    if text.returncode == 0:  # the title page's words are real text, in Chinese
        assert "周报" in text.stdout and "接触量" in text.stdout


def test_charts_have_chinese_labels_and_a_font(approved: StatsReport) -> None:
    assert charts.cjk_font() is not None, "install fonts-wqy-microhei (.ci/run does)"
    svgs = charts.all_svgs(approved.figures, "zh")
    assert set(svgs) == set(charts.CHARTS)
    assert all(s.startswith("<svg") and "<path" in s for s in svgs.values())




def test_the_jobs_run_in_the_centres_zone_and_twice_change_nothing(tmp_path: Path) -> None:
    from aiohttp import web

    from bot.jobs import Jobs
    from bot.settings import Settings
    from bot.stats import scheduled

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'h.db'}", timezone="Asia/Shanghai")
    db = Database(settings.database_url)
    db.upgrade()
    jobs = Jobs(web.Application(), db, settings)
    scheduled.register(jobs, settings)
    kinds = jobs._kinds  # noqa: SLF001 - what was registered
    sunday_night = datetime(2026, 12, 20, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    due = kinds["stats_reports_due"].trigger.get_next_fire_time(None, sunday_night)
    assert due.isoformat() == "2026-12-21T06:00:00+08:00"  # Monday 06:00 local: the weekly one is due
    recount = kinds["stats_rollup_recount"].trigger.get_next_fire_time(None, sunday_night)
    assert recount.isoformat() == "2026-12-21T01:30:00+08:00"

    stats_world.load(db, WEEK)
    at_six = datetime(2026, 11, 9, 0, 0, tzinfo=UTC)  # Monday 08:00 local, after the week
    assert db.call(scheduled.recount_recent, scheduled.options_of(settings), now=at_six) == 8
    made = db.call(scheduled.reports_due, scheduled.options_of(settings), now=at_six)
    assert len(made) == 4
    kinds_made = sorted(db.call(reports.get, i).kind for i in made)
    assert kinds_made == ["annual", "monthly", "quarterly", "weekly"]
    assert db.call(scheduled.reports_due, scheduled.options_of(settings), now=at_six) == []
    db.dispose()
