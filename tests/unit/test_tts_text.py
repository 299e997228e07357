"""spoken_form (digit readback, 幺, # and *) and split_sentences (pipelining pieces).
Category: unit (pure functions)."""

from __future__ import annotations

import pytest

from voice.tts.text import (
    FIRST_PIECE_CHARS,
    MAX_PIECE_CHARS,
    split_sentences,
    spoken_form,
    zh_cardinal,
)

# --- spoken_form: Chinese -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("0571", "零五七幺"),
        ("请拨打0571 8765 4321。", "请拨打零五七幺，八七六五，四三二幺。"),
        ("0571-8765-4321", "零五七幺，八七六五，四三二幺"),
        ("0571 - 8765", "零五七幺，八七六五"),
        ("0571－87654321", "零五七幺，八七六五四三二幺"),  # full-width dash
        ("０５７１", "零五七幺"),  # full-width digits
        ("您的号码是13812345678吗？", "您的号码是幺三八，幺二三四，五六七八吗？"),  # mobile 3-4-4
        ("87654321", "八七六五，四三二幺"),  # local 4-4
        ("1234567", "幺二三，四五六七"),  # 3-4
        ("110", "幺幺零"),
        ("100", "幺零零"),
        ("057187654321", "零五七幺，八七六五，四三二幺"),  # no separators: groups of 4
        ("123456", "幺二三四五六"),  # <= 6 digits: one group
        ("按1查询", "按一查询"),  # a key is a cardinal: 一, never 幺
        ("请按1", "请按一"),
        ("按2报修，按9转人工", "按二报修，按九转人工"),
        ("按0", "按零"),
        ("第10项", "第十项"),
        ("24小时内", "二十四小时内"),
        ("2小时内回电", "两小时内回电"),
        ("2个工作日", "两个工作日"),
        ("预计120分钟", "预计一百二十分钟"),  # a quantity with a unit: cardinal
        ("费用1005元", "费用一千零五元"),
        ("3.5元", "三点五元"),
        ("2021年", "二零二一年"),  # a year: 一, not 幺
        ("05号", "零五号"),
        ("按#结束", "按井号结束"),
        ("以#号键结束", "以井号键结束"),
        ("按*号键", "按星号键"),
        ("按*返回", "按星号返回"),
        ("123#", "幺二三井号"),
        ("＃", "井号"),
        ("您好", "您好"),
        ("", ""),
        ("  您好  ", "您好"),
    ],
)
def test_spoken_form_zh(text: str, spoken: str) -> None:
    assert spoken_form(text, "zh") == spoken


def test_zh_readback_uses_yao_only_for_phone_digits() -> None:
    spoken = spoken_form("按1确认，号码0571 1111 1111", "zh")
    assert spoken == "按一确认，号码零五七幺，幺幺幺幺，幺幺幺幺"


def test_zh_two_short_numbers_stay_apart() -> None:
    assert spoken_form("1 2", "zh") == "一 二"


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "零"), (1, "一"), (10, "十"), (11, "十一"), (19, "十九"), (20, "二十"), (24, "二十四"),
     (100, "一百"), (101, "一百零一"), (110, "一百一十"), (1000, "一千"), (1005, "一千零五"),
     (1010, "一千零一十"), (9999, "九千九百九十九"), (10000, "一零零零零")],
)
def test_zh_cardinal(n: int, text: str) -> None:
    assert zh_cardinal(n) == text


# --- spoken_form: English -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Call 0571 8765 4321.", "Call zero five seven one, eight seven six five, four three two one."),
        ("0571-8765", "zero five seven one, eight seven six five"),
        ("Your number 13812345678?", "Your number one three eight, one two three four, five six seven eight?"),
        ("Ticket 123", "Ticket one two three"),
        ("ext123", "ext one two three"),
        ("Press 1 for billing.", "Press 1 for billing."),  # short numbers stay: Piper reads them
        ("within 24 hours", "within 24 hours"),
        ("version 3.5", "version 3.5"),
        ("Press # to end.", "Press hash to end."),
        ("Press * to go back", "Press star to go back"),
        ("Enter 123#", "Enter one two three hash"),
        ("#", "hash"),
        ("", ""),
    ],
)
def test_spoken_form_en(text: str, spoken: str) -> None:
    assert spoken_form(text, "en") == spoken


def test_en_digits_are_separate_words() -> None:
    spoken = spoken_form("0000", "en")
    assert spoken.split() == ["zero"] * 4


def test_spoken_form_is_idempotent_on_spoken_text() -> None:
    for lang, text in (("zh", "请拨打0571 8765 4321，按#结束"), ("en", "Call 0571 8765 4321, then #")):
        once = spoken_form(text, lang)  # type: ignore[arg-type]
        assert spoken_form(once, lang) == once  # type: ignore[arg-type]


# --- split_sentences ---------------------------------------------------------------


def test_split_on_sentence_ends_zh() -> None:
    assert split_sentences("您好。请输入号码！可以吗？好；再见", "zh") == [
        "您好。", "请输入号码！", "可以吗？", "好；", "再见",
    ]


def test_split_on_sentence_ends_en() -> None:
    assert split_sentences("Hello. Please enter your number! Ready? Bye", "en") == [
        "Hello.", "Please enter your number!", "Ready?", "Bye",
    ]


def test_no_split_inside_decimal_or_version() -> None:
    assert split_sentences("It costs 3.5 dollars. Version v1.2 is out.", "en") == [
        "It costs 3.5 dollars.", "Version v1.2 is out.",
    ]


def test_repeated_terminators_and_quotes_stay_with_their_sentence() -> None:
    assert split_sentences("真的吗？！他说：“好。”然后走了……", "zh") == [
        "真的吗？！", "他说：“好。”", "然后走了……",
    ]
    assert split_sentences("Really?! Yes...", "en") == ["Really?!", "Yes..."]


def test_no_empty_or_punctuation_only_pieces() -> None:
    assert split_sentences("。。！  ？", "zh") == []
    assert split_sentences("", "en") == []
    assert split_sentences("   ", "en") == []
    assert split_sentences("您好。。。\n\n再见", "zh") == ["您好。。。", "再见"]
    for piece in split_sentences("a. . ! ? b", "en"):
        assert piece.strip() == piece and any(c.isalnum() for c in piece)


def test_newline_splits() -> None:
    assert split_sentences("第一行\n第二行", "zh") == ["第一行", "第二行"]


def test_short_sentence_is_not_cut_at_commas() -> None:
    assert split_sentences("您好，请讲。", "zh") == ["您好，请讲。"]
    assert split_sentences("Hello, go on.", "en") == ["Hello, go on."]


def test_long_sentence_is_cut_at_commas_zh() -> None:
    text = "您好，这里是电信故障报修热线，请输入您的电话号码，以井号键结束，如需人工服务请按零。"
    pieces = split_sentences(text, "zh")
    assert "".join(pieces) == text
    assert len(pieces) >= 3
    assert all(p.endswith(("，", "。")) for p in pieces)
    assert len(pieces[0]) <= FIRST_PIECE_CHARS["zh"] + 4
    assert all(len(p) <= MAX_PIECE_CHARS["zh"] for p in pieces)


def test_long_sentence_is_cut_at_commas_en() -> None:
    text = ("Hello, this is the fault line, please enter your phone number followed by "
            "the hash key, or press zero at any time to speak to an operator.")
    pieces = split_sentences(text, "en")
    assert " ".join(pieces) == text
    assert pieces[0] == "Hello, this is the fault line,"
    assert len(pieces) >= 3


def test_first_piece_is_short_for_fast_first_audio() -> None:
    pieces = split_sentences(
        "Hello, please enter your number zero five seven one, eight seven six five, "
        "four three two one followed by hash.", "en")
    assert pieces[0] == "Hello,"
    assert pieces[1].startswith("please enter your number zero five seven one, eight seven six five, four")


def test_short_tail_joins_the_piece_before() -> None:
    pieces = split_sentences("您登记的号码是零五七幺，八七六五，四三二幺，对吗？", "zh")
    assert pieces == ["您登记的号码是零五七幺，八七六五，四三二幺，对吗？"]


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("zh", "您好，您要报修的号码是零五七幺，八七六五，四三二幺，请确认。"),
        ("zh", "您好，您要报修的号码是0571,8765,4321，请确认。"),
        ("en", "Hello there, the number you gave is zero five seven one, eight seven six five, four three two one, is that right?"),
        ("en", "Hello there, the number you gave us a moment ago is 0571,8765,4321, is that right?"),
    ],
)
def test_never_split_inside_a_digit_run(lang: str, text: str) -> None:
    pieces = split_sentences(text, lang, max_chars=10, first_max_chars=5)  # type: ignore[arg-type]
    runs = {"zh": ("零五七幺，八七六五，四三二幺", "0571,8765,4321"),
            "en": ("zero five seven one, eight seven six five, four three two one", "0571,8765,4321")}
    hit = [p for p in pieces if any(r in p for r in runs[lang])]
    assert len(hit) == 1, pieces


def test_full_pipeline_zh_phone_prompt() -> None:
    spoken = spoken_form("您登记的号码是0571 8765 4321。如果正确请按1，错误请按2。", "zh")
    assert split_sentences(spoken, "zh") == [
        "您登记的号码是零五七幺，八七六五，四三二幺。",
        "如果正确请按一，错误请按二。",
    ]
