"""telnum (issue 13 item 6): numbers as people say and type them, table-driven from
tests/fixtures/numbers/spoken.yml. A2 (fixed lines with or without area code, mobiles),
A4/V3 (a number that cannot be is refused, with the reason)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from telnum import (
    check_number,
    extract_digits,
    find_numbers,
    keys_in,
    normalise,
    numbers_with_roles,
    parse_number,
)

TABLE = yaml.safe_load((Path(__file__).parents[1] / "fixtures" / "numbers" / "spoken.yml").read_text("utf-8"))


def _as_expected(check_canonical: str | None, error: str | None) -> str:
    return check_canonical if check_canonical else f"!{error}"


@pytest.mark.parametrize("case", TABLE["cases"], ids=lambda c: c["text"][:40])
def test_numbers_in_text(case: dict[str, object]) -> None:
    found = find_numbers(str(case["text"]))
    assert [_as_expected(n.canonical, n.check.error) for n in found] == case["numbers"]
    for number in found:  # each number's span is where it was said
        said = str(case["text"])[number.start:number.end]
        assert said and said == said.strip()


@pytest.mark.parametrize(("digits", "expected"), list(TABLE["checks"].items()))
def test_check_number(digits: str, expected: str) -> None:
    check = check_number(digits)
    assert _as_expected(check.canonical, check.error) == expected
    assert (check.kind is not None) == check.ok


def test_spans_point_at_the_words_said() -> None:
    text = "我家电话零五七幺 八七六五 零零零幺坏了，联系电话139 1234 5678"
    fault, contact = find_numbers(text)
    assert text[fault.start:fault.end] == "零五七幺 八七六五 零零零幺"
    assert text[contact.start:contact.end] == "139 1234 5678"


def test_normalise_keeps_other_words() -> None:
    assert normalise("oh, I said double eight")[0] == "oh, I said 88"
    assert normalise("三个八")[0] == "888"


def test_parse_number_takes_the_valid_one_or_the_reason() -> None:
    assert parse_number("是 0571 8765 0001 吧").canonical == "057187650001"
    assert parse_number("1234").error == "too_short"
    assert parse_number("你好").error == "empty"
    assert parse_number("1" * 30).error == "too_long"


def test_old_helpers_still_read_as_before() -> None:
    assert extract_digits("帮我查一下，电话是0571 8765 4321") == "057187654321"
    assert keys_in("按一") == "1" and keys_in("0571 8765 4321#") == "057187654321#"
    assert keys_in("我要报障") == ""


@pytest.mark.parametrize(
    ("text", "roles"),
    [
        ("0571 8765 0001 没有拨号音，联系电话 139 1234 5678", [("057187650001", "fault"), ("13912345678", "contact")]),
        ("我家电话0571 8765 0001坏了", [("057187650001", "fault")]),
        ("联系电话13912345678，故障电话057187650001", [("13912345678", "contact"), ("057187650001", "fault")]),
        ("my line 0571 8765 0001 is dead, call me on 139 1234 5678", [("057187650001", "fault"), ("13912345678", "contact")]),
        ("0571 8765 0001，139 1234 5678 是我的联系电话", [("057187650001", "fault"), ("13912345678", "contact")]),
        ("139 1234 5678 打这个，坏的是0571 8765 0001", [("13912345678", "contact"), ("057187650001", "fault")]),
        ("0571 8765 0001 139 1234 5678", [("057187650001", None), ("13912345678", None)]),
        # a cue that leads into the next number names that one, not the number before it
        ("电话号码0571 8765 0001 联系电话139 1234 5678", [("057187650001", "fault"), ("13912345678", "contact")]),
        ("139 1234 5678 故障电话 0571 8765 0001", [("13912345678", "contact"), ("057187650001", "fault")]),
        ("0571 8765 0001坏了 139 1234 5678", [("057187650001", None), ("13912345678", None)]),
        ("故障电话0571 8765 0001，故障电话139 1234 5678", [("057187650001", None), ("13912345678", None)]),
        ("my number is 139 1234 5678", [("13912345678", None)]),
        ("13912345678 13912345678", [("13912345678", None)]),
    ],
)
def test_roles_by_cue_words(text: str, roles: list[tuple[str, str | None]]) -> None:
    # Issue 13 item 1: the words around a number say which it is; unclear stays None.
    assert [(r.number.canonical, r.role) for r in numbers_with_roles(text)] == roles


@pytest.mark.parametrize("text", ["1 " * 1000, "1" * 2000, "三个八" * 600, "one " * 500])
def test_very_long_input_is_one_number_that_cannot_be(text: str) -> None:
    # Bad input: 2,000 characters of digits are read in one pass (the number rules look at
    # no more than 16 digits from any start) and refused as too long.
    found = find_numbers(text)
    assert [n.check.error for n in found] == ["too_long"]
