"""grammar_for (prompt expectation → Vosk grammar) and normalise_digits.
Category: unit (pure functions, no model)."""

from __future__ import annotations

from typing import Any

import pytest

from telnum import extract_digits, keys_in
from voice.asr import UNK, grammar_for, label_words, normalise_digits

ZH_DIGITS = ["零", "〇", "一", "幺", "二", "两", "三", "四", "五", "六", "七", "八", "九"]
EN_DIGITS = ["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

CONFIRM: dict[str, Any] = {
    "kind": "choice",
    "keys": ["1", "2"],
    "choices": [{"key": "1", "label": "确认"}, {"key": "2", "label": "重新输入"}],
}


# ---- grammar_for ----------------------------------------------------------------------


def test_digits_zh_without_vocabulary() -> None:
    g = grammar_for({"kind": "digits", "min_digits": 7, "max_digits": 12}, "zh", None)
    assert g is not None
    assert g[: len(ZH_DIGITS)] == ZH_DIGITS
    assert "井号" in g
    assert g[-1] == UNK  # unknown vocabulary: Vosk ignores [unk] if the model lacks it


def test_digits_en() -> None:
    g = grammar_for({"kind": "digits"}, "en", None)
    assert g is not None
    assert g[: len(EN_DIGITS)] == EN_DIGITS
    assert {"double", "triple", "hash", "pound"} <= set(g)


def test_only_known_words_and_unk_only_when_the_model_has_it() -> None:
    vocab = {"一", "二", "三", "零", "井号"}
    assert grammar_for({"kind": "digits"}, "zh", vocab) == ["零", "一", "二", "三", "井号"]
    assert grammar_for({"kind": "digits"}, "zh", vocab | {UNK}) == [
        "零",
        "一",
        "二",
        "三",
        "井号",
        UNK,
    ]


def test_nothing_known_means_free_decoding() -> None:
    assert grammar_for({"kind": "digits"}, "zh", {"안녕"}) is None
    assert grammar_for(CONFIRM, "zh", set()) is None


@pytest.mark.parametrize("kind", ["text", "recording", "wait", "none", "something-new", None])
def test_free_kinds(kind: str | None) -> None:
    assert grammar_for({"kind": kind}, "zh", None) is None


def test_choice_zh() -> None:
    vocab = {
        "一",
        "幺",
        "二",
        "两",
        "是",
        "对",
        "好",
        "确认",
        "不",
        "不是",
        "不对",
        "重新",
        "输入",
        UNK,
    }
    g = grammar_for(CONFIRM, "zh", vocab)
    assert g == [
        "一",
        "幺",
        "二",
        "两",
        "是",
        "对",
        "好",
        "确认",
        "不",
        "不是",
        "不对",
        "重新",
        "重新 输入",
        UNK,
    ]


def test_choice_label_without_vocabulary_is_one_phrase() -> None:
    g = grammar_for(CONFIRM, "zh", None)
    assert g is not None and "重新输入" in g and "确认" in g


def test_choice_en_labels_are_lower_case_words() -> None:
    expect = {
        "kind": "choice",
        "keys": ["1", "2"],
        "choices": [{"key": "1", "label": "Correct"}, {"key": "2", "label": "Enter again"}],
    }
    vocab = {"one", "two", "yes", "no", "correct", "again", "enter"}
    assert grammar_for(expect, "en", vocab) == [
        "one",
        "two",
        "yes",
        "no",
        "correct",
        "again",
        "enter again",
    ]


def test_choice_keys_come_from_choices_too_and_unknown_keys_are_skipped() -> None:
    g = grammar_for(
        {"kind": "choice", "choices": [{"key": "9", "label": ""}, {"key": "*"}]}, "zh", None
    )
    assert g is not None and g[:2] == ["九", "星号"]


def test_label_in_english_within_chinese_prompt() -> None:
    # V1's menu offers "English" in the Chinese prompt too.
    assert label_words("English", "zh", {"english"}) == ["english"]
    assert label_words("English", "zh", set()) == []


def test_chinese_label_split_greedily_on_known_words() -> None:
    vocab = {"没有", "拨号", "拨号音", "音", "宽带", "断线"}
    assert label_words("没有拨号音", "zh", vocab) == ["没有", "拨号音"]
    assert label_words("宽带 断线", "zh", vocab) == ["宽带", "断线"]
    assert label_words("打不出去", "zh", vocab) == []  # nothing the model can say


def test_phrase_with_an_unknown_word_is_dropped_whole() -> None:
    expect = {"kind": "choice", "choices": [{"key": "1", "label": "Leave a message"}]}
    g = grammar_for(expect, "en", {"one", "leave", "message", "yes"})
    assert g == ["one", "yes", "leave message"]  # "a" unknown: left out of the label


# ---- normalise_digits -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("幺三八 零五七一", "1380571"),
        ("幺 三 八 零 五 七 一", "1380571"),
        ("两", "2"),
        ("〇 零", "00"),
        ("我的电话是 幺三八 零五七一", "我的电话是 1380571"),
        ("幺三八 井号", "138#"),
        ("帮 我 查 一下", "帮 我 查 一下"),  # 一下 is a word, not a digit
        ("确认", "确认"),
        ("井号", "井号"),  # only a terminator after digits
        ("0571 八七", "057187"),
        ("", ""),
    ],
)
def test_normalise_zh(text: str, expected: str) -> None:
    assert normalise_digits(text, "zh") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one three eight", "138"),
        ("oh five seven one", "0571"),
        ("one oh one", "101"),
        ("double five", "55"),
        ("one double oh seven", "1007"),
        ("triple nine", "999"),
        ("one two hash", "12#"),
        ("press one", "press 1"),
        ("oh no", "oh no"),  # "oh" alone is not zero
        ("i said oh", "i said oh"),
        ("double trouble", "double trouble"),
        ("My number is Eight Seven", "My number is 87"),
    ],
)
def test_normalise_en(text: str, expected: str) -> None:
    assert normalise_digits(text, "en") == expected


def test_normalised_digits_agree_with_the_dialogue() -> None:
    # The dialogue reads recognised text with telnum: same digits either way.
    for text in ["幺三八 零五七一 八七六五", "两 两 零"]:
        assert extract_digits(normalise_digits(text, "zh")) == extract_digits(text.replace(" ", ""))
    assert keys_in(normalise_digits("幺", "zh")) == keys_in("幺") == "1"
