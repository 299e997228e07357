"""A centre's working calendar in the world file (U1–U2): validated with errors that
name the line and field, loaded with its time zone fixed, used for the deadline."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.store.db import Database
from bot.store.models import MeasurementCentreRow
from bot.world.loader import load_world
from bot.world.parse import WorldFileError, parse_world_text

HEAD = """exchanges: [{prefix: "0571", name: 杭州, branch: 西湖分公司}]
measurement_centres:
  - id: MC-XH
    name: 西湖测量管理中心
    branch: 西湖分公司
    completion_deadline_hours: 16
"""


def test_a_calendar_is_loaded_with_its_zone(db: Database, tmp_path: object) -> None:
    world = parse_world_text(HEAD + """    working_hours:
      days:
        mon: ["08:30-12:00", "13:30-17:30"]
        tue: ["08:30-12:00", "13:30-17:30"]
        wed: ["08:30-12:00", "13:30-17:30"]
        thu: ["08:30-12:00", "13:30-17:30"]
        fri: ["08:30-12:00", "13:30-17:30"]
      holidays: [2026-10-01]
      workdays: [2026-10-10]
""")
    load_world(db, world, current_file=tmp_path / "w.yml")  # type: ignore[operator]
    centre = db.call(lambda s: s.get(MeasurementCentreRow, "MC-XH"))
    assert centre is not None and centre.working_hours == {
        "days": {d: ["08:30-12:00", "13:30-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-10-01"], "workdays": ["2026-10-10"], "timezone": "Asia/Shanghai"}
    from bot.sla.clock import WorkCalendar, moment_reaching

    calendar = WorkCalendar.from_dict(centre.working_hours, "UTC")
    # Wednesday 2026-09-30 17:00 local: 0.5 h that day, Thursday a holiday, Friday 7.5 h,
    # the weekend off, Monday 7.5 h, Tuesday the last half hour: 09:00 local.
    start = datetime(2026, 9, 30, 9, 0, tzinfo=UTC)
    assert moment_reaching(start, [], calendar, 16 * 3600) == datetime(2026, 10, 6, 1, 0, tzinfo=UTC)
    # The make-up Saturday counts: from Friday 10-09 17:00, half an hour that day and half
    # an hour on Saturday: 09:00 local.
    assert moment_reaching(datetime(2026, 10, 9, 9, 0, tzinfo=UTC), [], calendar, 3600) == datetime(
        2026, 10, 10, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(("calendar", "message"), [
    ("      days: {funday: [\"08:00-12:00\"]}\n",
     "world.yml:8: measurement_centres[0].working_hours.days: 'funday' is not a weekday"),
    ('      days: {mon: ["17:30-08:30"]}\n', "ends before it starts"),
    ('      days: {mon: ["8-12"]}\n', "is not a period HH:MM-HH:MM"),
    ('      days: {mon: ["08:00-12:00", "11:00-13:00"]}\n', "mon: periods overlap"),
    ("      days: {mon: []}\n", "no working period on any weekday"),
    ('      days: {mon: ["08:00-12:00"]}\n      holidays: [someday]\n',
     "world.yml:9: measurement_centres[0].working_hours.holidays[0]"),
    ('      days: {mon: ["08:00-12:00"]}\n      weekends: [sat]\n', "unknown field"),
])
def test_calendar_mistakes_are_named(calendar: str, message: str) -> None:
    with pytest.raises(WorldFileError) as e:
        parse_world_text(HEAD + "    working_hours:\n" + calendar)
    assert message in str(e.value)
