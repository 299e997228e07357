"""voice.asr.grammar.needs_more_digits (issue 13 item 2): when a digits prompt keeps
listening after a pause because only part of a number was said."""

from __future__ import annotations

import pytest

from voice.asr.grammar import needs_more_digits

DIGITS = {"kind": "digits", "min_digits": 7}


@pytest.mark.parametrize(
    ("text", "language", "more"),
    [
        ("零 五 七 一", "zh", True),  # an area code: the rest follows
        ("零 五 七 一 八 七 六 五", "zh", True),  # 8 digits from 0: not a whole number yet
        ("零 五 七 一 八 七 六 五 零 零 零 一", "zh", False),
        ("幺 三 九 幺 二 三 四", "zh", True),  # a mobile cut short
        ("八 七 六 五", "zh", True),
        ("八 七 六 五 零 零 零 一", "zh", False),  # a local number: whole
        ("零 五 七 一 井号", "zh", False),  # the caller ended it
        ("我 的 电话", "zh", False),  # words: the dialogue answers them
        ("oh five seven one", "en", True),
        ("oh five seven one eight seven six five double oh oh one", "en", False),
    ],
)
def test_a_part_of_a_number_waits_for_the_rest(text: str, language: str, more: bool) -> None:
    assert needs_more_digits(text, DIGITS, language) is more  # type: ignore[arg-type]


def test_only_digit_prompts_wait() -> None:
    assert not needs_more_digits("零 五 七 一", {"kind": "choice"}, "zh")
    assert not needs_more_digits("零 五 七 一", {"kind": "text"}, "zh")
