"""T4 over the surveys (U3–U5): surveys due, answered, refused, unreachable, the response
rate, satisfaction with attitude and with quality, second dispatches, per measurement
centre and in total, against a hand-counted week (tests/fixtures/stats/surveys.yml), on
SQLite and PostgreSQL; a report frozen before the surveys were counted (a version-1
snapshot) still draws and exports as it was."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from bot.stats import charts, exports
from bot.stats.dashboard import dashboard
from bot.stats.figures import FIGURES_VERSION, Period, compute
from bot.store.db import Database
from bot.store.stats import StatsReport
from tests import stats_world

WORLD = stats_world.read("surveys.yml")
TZ = ZoneInfo(WORLD["timezone"])
PERIOD = Period(date.fromisoformat(WORLD["period"]["start"]), date.fromisoformat(WORLD["period"]["end"]))
LATER = datetime(2026, 12, 1, tzinfo=UTC)
SNAPSHOT_V1 = stats_world.FIXTURES / "snapshot_v1.json"


@pytest.fixture
def surveyed(db: Database) -> Database:
    stats_world.load(db, WORLD)
    return db


def test_survey_figures_by_centre_and_in_total(surveyed: Database) -> None:
    f = surveyed.call(compute, PERIOD, TZ, now=LATER)
    got, want = f["satisfaction"], WORLD["expected"]
    assert f["version"] == FIGURES_VERSION == 2 and "not_yet_recorded" not in got
    rows = {row["centre"]: row for row in got["by_centre"]}
    assert set(rows) == set(want["by_centre"])  # S8's ticket was never dispatched: centre "none"
    for centre, expected in want["by_centre"].items():
        assert {k: rows[centre][k] for k in expected} == expected, centre
    assert rows["MC-BJ"]["name"] == "滨江测量管理中心"
    assert {k: got["totals"][k] for k in want["totals"]} == want["totals"]
    assert got["surveys"] == want["surveys"]
    # The second dispatches' tickets are made by the survey, not reported by a caller (T2).
    assert f["volume"]["total"] == 0


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_satisfied_follows_the_setting(surveyed: Database) -> None:
    """HOTLINE_SURVEY_SATISFIED_FROM 5: only "very satisfied" counts as satisfied."""
    totals = surveyed.call(compute, PERIOD, TZ, now=LATER, satisfied_from=5)["satisfaction"]["totals"]
    assert (totals["attitude_satisfied"], totals["satisfaction_attitude"]) == (1, 0.3333)
    assert (totals["quality_satisfied"], totals["satisfaction_quality"]) == (0, 0.0)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_dashboard_shows_the_surveys(surveyed: Database) -> None:
    friday_noon = datetime(2026, 11, 6, 4, 0, tzinfo=UTC)
    d = surveyed.call(dashboard, TZ, now=friday_noon)
    assert (d["week"]["surveys_due"], d["week"]["surveys_answered"], d["week"]["second_dispatches"]) == (7, 4, 2)
    assert d["week"]["survey_response_rate"] == 0.5714 and d["week"]["satisfaction_quality"] == 0.5
    assert (d["today"]["surveys_due"], d["today"]["survey_response_rate"]) == (1, None)  # S6, not finished


def _report(figures: dict[str, Any]) -> StatsReport:
    return StatsReport(id=0, kind="weekly", period_start="2026-11-02", period_end="2026-11-09", version=1,
                       state="approved", timezone=TZ.key, figures=figures, generated_by="stat")


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_surveys_are_in_the_charts_and_the_xlsx(surveyed: Database) -> None:
    report = _report(surveyed.call(compute, PERIOD, TZ, now=LATER))
    svgs = charts.all_svgs(report.figures, "zh")
    assert set(svgs) == set(charts.CHARTS) and {"satisfaction_ratings", "surveys_by_centre"} <= set(svgs)
    sheet = load_workbook(io.BytesIO(exports.xlsx(report, "zh")))["满意度（T4）"]
    rows = [tuple(r) for r in sheet.iter_rows(values_only=True)]
    header = next(r for r in rows if r and r[0] == "测量管理中心" and "回访应答率" in r)
    total = rows[rows.index(header) + 1 + len(report.figures["satisfaction"]["by_centre"])]
    assert total[0] == "合计"
    figures = dict(zip(header[1:], total[1:], strict=False))
    assert (figures["二次派单量"], figures["应回访量"], figures["回访应答量"], figures["拒绝回访量"],
            figures["联系不上量"], figures["服务质量满意度"]) == (2, 7, 4, 1, 1, 0.5)
    assert ("5 非常满意", 1) in [r[:2] for r in rows] and ("勿扰号码", 1) in [r[:2] for r in rows]
    assert exports.pdf(report, "en").startswith(b"%PDF")


def test_a_report_frozen_before_the_surveys_reads_as_it_was() -> None:
    """A version-1 snapshot (tests/fixtures/stats/snapshot_v1.json, made by the code of
    then) has no survey figures: its charts, XLSX and PDF are drawn from what it holds,
    and it says which figures were not recorded yet, never zeros."""
    frozen = json.loads(SNAPSHOT_V1.read_text(encoding="utf-8"))
    before = json.dumps(frozen, sort_keys=True)
    report = _report(frozen)
    assert frozen["version"] == 1 and "surveys" not in frozen["satisfaction"]
    svgs = charts.all_svgs(report.figures, "en")
    assert set(svgs) == set(charts.CHARTS) - set(charts.SURVEY_CHARTS)
    rows = [tuple(r) for r in load_workbook(io.BytesIO(exports.xlsx(report, "zh")))["满意度（T4）"]
            .iter_rows(values_only=True)]
    assert any(r[0] == "尚未记录" and "服务态度满意度" in r for r in rows)
    assert not any(r[0] == "回访（U3–U5）" for r in rows)
    assert exports.pdf(report, "zh").startswith(b"%PDF")
    assert json.dumps(report.figures, sort_keys=True) == before  # reading it changed nothing
