"""The world file parser: valid worlds, and errors that name the file, line and field.
Category: unit (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.world.parse import WorldFileError, parse_world_file, parse_world_text
from bot.world.schema import LineTestResultCode

REPO_ROOT = Path(__file__).resolve().parents[2]
WORLDS = REPO_ROOT / "tests" / "fixtures" / "worlds"
DEMO = REPO_ROOT / "bot" / "world" / "demo.yml"


def errors_of(name: str) -> list[str]:
    with pytest.raises(WorldFileError) as info:
        parse_world_file(WORLDS / name)
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


def test_demo_world_parses_and_covers_every_branch() -> None:
    world = parse_world_file(DEMO)
    lines = {line.number: line for line in world.lines}
    assert len(world.measurement_centres) == 2 and world.fault_classes
    assert any(line.line_test.result is LineTestResultCode.open_circuit for line in lines.values())
    assert any(line.line_test.result is LineTestResultCode.ok for line in lines.values())
    assert any(line.line_test.busy_s >= 4 for line in lines.values())  # A8: unit busy
    assert any(line.repaired for line in lines.values())  # A5
    assert any(w.lines for w in world.engineering_works) and any(w.prefixes for w in world.engineering_works)
    reports = sorted(f.reports for f in world.open_faults)
    assert reports == [1, 2, 3]  # A6: 3 → the next report is the 4th
    assert any(f.repairman_message for f in world.open_faults)
    assert any(f.repairman_message is None and f.last_test for f in world.open_faults)
    assert any(line.big_customer for line in lines.values())  # J3
    assert {"138", "139"} <= {e.prefix for e in world.exchanges}
    assert "13800138000" in lines
    assert world.exchange_for("057189990001") is None  # A4: an unknown prefix
    assert world.exchange_for("057187659999") is not None and "057187659999" not in lines


def test_small_world() -> None:
    world = parse_world_file(WORLDS / "small.yml")
    assert [e.prefix for e in world.exchanges] == ["05718765", "138"]
    assert world.open_faults[0].reports == 2


def test_field_errors_give_line_and_path() -> None:
    assert errors_of("broken_fields.yml") == [
        "broken_fields.yml:9: lines[1].number: must be digits only (canonical form, e.g. 057187654321)",
        "broken_fields.yml:13: lines[2].colour: unknown field (check the spelling)",
        "broken_fields.yml:14: lines[3].owner: Field required",
        "broken_fields.yml:15: lines[3].line_test.result: Input should be 'ok', 'open_circuit', "
        "'short_circuit', 'earth_fault', 'high_resistance', 'foreign_voltage', 'cpe_fault' or 'cannot_test'",
    ]


def test_yaml_syntax_error_gives_line() -> None:
    (error,) = errors_of("broken_syntax.yml")
    assert error.startswith("broken_syntax.yml:6: YAML syntax:")
    assert "started on line 5" in error


def test_cross_checks() -> None:
    assert errors_of("broken_consistency.yml") == [
        "broken_consistency.yml:6: lines[1].number: no exchange prefix serves 057199990001; "
        "add its exchange under exchanges",
        "broken_consistency.yml:7: lines[2].number: 87650003 is not a canonical number (use 057187650003); "
        "fixed lines with area code (057187654321), mobiles as 11 digits",
        "broken_consistency.yml:10: open_faults[1].line: 057187650001 already has an open fault (open_faults[0])",
    ]


def test_duplicate_lines_point_at_the_second() -> None:
    assert errors_of("broken_duplicates.yml") == [
        "broken_duplicates.yml:7: lines[2].number: 057187650001 is listed twice (first at lines[0])"
    ]


def test_duplicate_key() -> None:
    assert errors_of("broken_duplicate_key.yml") == ["broken_duplicate_key.yml:4: name: duplicate key"]


def test_root_must_be_a_mapping() -> None:
    (error,) = errors_of("broken_not_mapping.yml")
    assert error.startswith("broken_not_mapping.yml:1: the world file must be a mapping")


def test_missing_section_points_at_the_file() -> None:
    with pytest.raises(WorldFileError) as info:
        parse_world_text("name: x\nlines: []\n", "w.yml")
    assert info.value.errors == ["w.yml:1: exchanges: Field required"]


def test_model_validator_error_points_at_the_item() -> None:
    text = (
        "exchanges:\n"
        "  - {prefix: '05718765', name: a, branch: b}\n"
        "engineering_works:\n"
        "  - id: EW\n"
        "    description: {zh: 施工, en: works}\n"
    )
    with pytest.raises(WorldFileError) as info:
        parse_world_text(text, "w.yml")
    assert info.value.errors == ["w.yml:4: engineering_works[0]: an engineering work needs prefixes or lines"]


def test_empty_and_unreadable() -> None:
    with pytest.raises(WorldFileError, match="w.yml:1: the world file must be a mapping"):
        parse_world_text("", "w.yml")
    with pytest.raises(WorldFileError, match="cannot read the file"):
        parse_world_file(WORLDS / "does-not-exist.yml")


# Issue 14 item 6: times relative to loading keep the demo world fresh.

def test_relative_times_are_anchored_at_loading() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    world = parse_world_file(DEMO, now=now)
    faults = {f.id: f for f in world.open_faults}
    assert faults["TT-W0001"].opened == now - timedelta(hours=5)
    assert faults["TT-W0001"].last_test is not None
    assert faults["TT-W0001"].last_test.at == now - timedelta(hours=4, minutes=59)
    overdue = faults["TT-W0003"]
    assert overdue.deadline is not None and timedelta(hours=20) < now - overdue.deadline < timedelta(hours=30)
    assert overdue.opened < overdue.deadline
    assert world.engineering_works[0].until == now + timedelta(days=30)


def test_relative_and_absolute_times_side_by_side() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    text = (WORLDS / "small.yml").read_text(encoding="utf-8")
    world = parse_world_text(text, now=now)
    absolute = world.open_faults[0].opened  # small.yml keeps an absolute time
    assert absolute.tzinfo is not None and absolute != now
    for spec, expected in (("-1w2d3h4m5s", -timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
                           ("+30d", timedelta(days=30)), ("+1.5h", timedelta(minutes=90)), ("now", timedelta())):
        fault = world.open_faults[0].model_validate(
            {**world.open_faults[0].model_dump(), "opened": spec}, context={"now": now})
        assert fault.opened == now + expected, spec


@pytest.mark.parametrize("bad", ["-5x", "+", "-h", "5h", "-5h ago", "--5h"])
def test_a_bad_relative_time_names_its_line(bad: str) -> None:
    text = (WORLDS / "small.yml").read_text(encoding="utf-8")
    line_no, old = next((i + 1, line) for i, line in enumerate(text.splitlines()) if "opened:" in line)
    broken = text.replace(old, old.split("opened:")[0] + f"opened: {bad!r}")
    with pytest.raises(WorldFileError) as info:
        parse_world_text(broken, "w.yml")
    [error] = info.value.errors
    assert error.startswith(f"w.yml:{line_no}: open_faults[0].opened:"), error
