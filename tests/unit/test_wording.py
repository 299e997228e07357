"""Designers' test over every response in nlu/domain/*.yml (issue 13 item 8): read as the
caller hears it, with realistic slot values filled in —

* no word or phrase said twice in a row ("测试结果：测试结果：…", A6's repeat report once did);
* no "#" / "hash" in a prompt answered by a choice or free speech (only digit entry, A2 V1
  and A8 V5, and recordings, A11 V8, end with the # key);
* numbers read back as the readback rule groups them (V2, V6): the *_display slots, and
  any literal phone-length number grouped like telnum.group_digits.
Runs without Rasa."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.linetest.results import RESULT_SUMMARIES, summary_for
from telnum import group_digits
from voice.tts.text import spoken_form

NLU = Path(__file__).resolve().parents[2] / "nlu"

# What a slot holds when the caller hears it; several values where the words come from
# elsewhere (the line-test summaries are in bot/linetest/results.py).
_SUMMARIES = [s[lang] for s in [*RESULT_SUMMARIES.values(), summary_for("?")] for lang in ("zh", "en")]
SAMPLES: dict[str, list[str]] = {
    "repeat_info": [*_SUMMARIES, "明天上午师傅上门。", "The repairman comes tomorrow morning."],
    "line_test_summary": _SUMMARIES,
    "fault_number_display": ["0571 8765 0001"],
    "contact_number_display": ["139 1234 5678"],
    "symptom_label": ["没有拨号音", "no dial tone", "其他故障（电话响一声就断）"],
}
_SLOT = re.compile(r"\{(\w+)\}")


def _responses() -> list[tuple[str, dict[str, str]]]:
    out = []
    for path in sorted((NLU / "domain").glob("*.yml")):
        for name, variants in (yaml.safe_load(path.read_text("utf-8")).get("responses") or {}).items():
            out += [(name, v) for v in variants if v.get("text")]
    return out


RESPONSES = _responses()
PROMPTS = yaml.safe_load((NLU / "prompts.yml").read_text("utf-8"))["prompts"]


def _heard(text: str) -> list[str]:
    """Every way the text is heard: each sample value of each slot it names."""
    texts = [text]
    for slot in set(_SLOT.findall(text)):
        texts = [t.replace("{" + slot + "}", v) for t in texts for v in SAMPLES.get(slot, ["某某"])]
    return texts


_DOUBLED_ZH = re.compile(r"([\u4e00-\u9fff]{2,})[\s：:，,、。]*\1")
_DOUBLED_EN = re.compile(r"\b([A-Za-z]+(?:\s+[A-Za-z]+)*)[\s:,;.]+\1\b", re.IGNORECASE)


# The seed's own words (spec/process.md: the seed wins): V8 "请留言，留言完毕按“#”号键确认".
SEED_WORDING = {"留言，留言"}


_DIGIT_WORDS = re.compile(r"^(?:(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|[零幺一二两三四五六七八九])[\s,]*)+$", re.I)


def doubled(text: str) -> list[str]:
    found = [m.group(0) for m in (*_DOUBLED_ZH.finditer(text), *_DOUBLED_EN.finditer(text))]
    # Digits read out one by one ("zero zero zero one") are a number, not a doubled word.
    return [f for f in found if f not in SEED_WORDING and not _DIGIT_WORDS.match(f)]


def test_the_checker_finds_what_it_should() -> None:
    assert doubled("上次线路测试结果：测试结果：线路接触不良") == ["测试结果：测试结果"]
    assert doubled("The test found: the test found a break") == ["The test found: the test found"]
    assert doubled("确认请按1，重新输入请按2。") == []


@pytest.mark.parametrize(("name", "variant"), RESPONSES, ids=[n for n, _ in RESPONSES])
def test_no_word_said_twice(name: str, variant: dict[str, str]) -> None:
    for heard in _heard(variant["text"]):
        assert not doubled(heard), f"{name} says {doubled(heard)} twice: {heard!r}"


@pytest.mark.parametrize(("name", "variant"), RESPONSES, ids=[n for n, _ in RESPONSES])
def test_no_word_said_twice_as_the_voice_reads_it(name: str, variant: dict[str, str]) -> None:
    # What the TTS voice says (digits read out, "#号" → 井号): no "井号号", no doubled words.
    lang = "en" if variant.get("condition") else "zh"
    for heard in _heard(variant["text"]):
        spoken = spoken_form(heard, lang)  # type: ignore[arg-type]
        assert not doubled(spoken), f"{name} is read as {doubled(spoken)} twice: {spoken!r}"


@pytest.mark.parametrize(("name", "variant"), RESPONSES, ids=[n for n, _ in RESPONSES])
def test_hash_only_where_the_hash_key_ends_the_input(name: str, variant: dict[str, str]) -> None:
    kind = ((PROMPTS.get(name) or {}).get("expect") or {}).get("kind")
    if kind in ("digits", "recording"):
        return
    text = variant["text"]
    assert "#" not in text and "井号" not in text and not re.search(r"\bhash\b", text, re.I), (
        f"{name} ({kind}) asks for # although nothing there ends with it")


@pytest.mark.parametrize(("name", "variant"), RESPONSES, ids=[n for n, _ in RESPONSES])
def test_numbers_are_grouped_as_read_back(name: str, variant: dict[str, str]) -> None:
    text = variant["text"]
    for slot in _SLOT.findall(text):
        if slot.endswith("number"):
            pytest.fail(f"{name} says {{{slot}}} ungrouped: use {slot}_display (V2/V6)")
    for run in re.findall(r"\d[\d ]{6,}\d", text):
        digits = run.replace(" ", "")
        assert run == group_digits(digits), f"{name}: {run!r} should read {group_digits(digits)!r}"
