"""The keyword layer after DIET (nlu/components/keywords.py, issue 13 item 7): unmistakable
complaints (item 5, M2) and progress questions (item 4, J4), and nothing-said text that must
never become yes, a number or a symptom."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "nlu"))

from components.keywords import KeywordIntentClassifier  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402

LAYER = KeywordIntentClassifier({})


@pytest.mark.parametrize(("text", "intent"), [
    ("我要投诉", "complain"), ("你们怎么还没修好", "complain"), ("什么破服务", "complain"),
    ("妈的到底修不修", "complain"), ("我要找你们领导", "complain"),
    ("i want to make a complaint", "complain"), ("get me your manager", "complain"),
    ("why hasn't my line been fixed yet", "complain"),
    ("查一下维修进度", "ask_progress"), ("我家电话修好了吗", "ask_progress"), ("师傅什么时候来", "ask_progress"),
    ("什么时候能修好", "ask_progress"), ("has my fault been fixed", "ask_progress"),
    ("what's the status of my repair", "ask_progress"),
    ("😂😂", "out_of_scope"), ("？？", "out_of_scope"), ("……", "out_of_scope"), ("uh", "out_of_scope"), ("呃", "out_of_scope"),
])
def test_unmistakable_phrases(text: str, intent: str) -> None:
    assert LAYER.match(text) == intent


@pytest.mark.parametrize(("text", "intent"), [
    # U3 ratings: negation-aware, strongest first (they share almost every character)
    ("非常满意", "rate_very_satisfied"), ("很满意", "rate_very_satisfied"), ("给五分", "rate_very_satisfied"),
    ("满意", "rate_satisfied"), ("比较满意", "rate_satisfied"), ("没什么不满意的", "rate_satisfied"),
    ("一般", "rate_neutral"), ("一般般吧", "rate_neutral"), ("说不上满意", "rate_neutral"), ("我给他打三分", "rate_neutral"),
    ("不满意", "rate_dissatisfied"), ("不太满意", "rate_dissatisfied"), ("不是很满意", "rate_dissatisfied"),
    ("非常不满意", "rate_very_dissatisfied"), ("很不满意", "rate_very_dissatisfied"), ("太差了", "rate_very_dissatisfied"),
    ("一分", "rate_very_dissatisfied"),
    ("very satisfied", "rate_very_satisfied"), ("five stars", "rate_very_satisfied"), ("satisfied", "rate_satisfied"),
    ("no complaints", "rate_satisfied"), ("so-so", "rate_neutral"), ("average", "rate_neutral"),
    ("not satisfied", "rate_dissatisfied"), ("not very satisfied", "rate_dissatisfied"), ("i wasn't satisfied", "rate_dissatisfied"),
    ("very dissatisfied", "rate_very_dissatisfied"), ("not satisfied at all", "rate_very_dissatisfied"),
    ("one star", "rate_very_dissatisfied"),
    # a complaint still wins, and a verdict addressed at the company is one (M2)
    ("我要投诉 很不满意", "complain"), ("你们的服务很差", "complain"), ("气死我了", "complain"),
    ("i'm not happy with your service", "complain"),
])
def test_survey_ratings(text: str, intent: str) -> None:
    assert LAYER.match(text) == intent


@pytest.mark.parametrize("text", [
    "1", "5", "one", "okay", "yes", "五分钟", "一般几点来修", "不是很差", "asdf", "等一分钟", "i want to rate my line",
])
def test_no_rating_from_keys_or_nonsense(text: str) -> None:
    # a bare key stays a key (dtmf), "okay" stays affirm: the survey's keys 1-5 are handled by the dialogue
    assert LAYER.match(text) is None


@pytest.mark.parametrize("text", [
    "还没修好", "修好了", "hell yes", "uh huh", "嗯", "#", "1", "没有拨号音", "我要报修", "hello",
    '/dtmf{"digits":"1"}', "电话打不出去",
])
def test_everything_else_is_left_to_diet(text: str) -> None:
    # 还没修好 / 修好了 answer the survey (U3): not complaints, not progress questions.
    assert LAYER.match(text) is None


def test_a_match_sets_the_intent_with_full_confidence_and_keeps_diets_ranking_below() -> None:
    message = Message(data={"text": "我要投诉", "intent": {"name": "report_fault", "confidence": 0.9},
                            "intent_ranking": [{"name": "report_fault", "confidence": 0.9},
                                               {"name": "complain", "confidence": 0.05}]})
    LAYER.process([message])
    assert message.get("intent") == {"name": "complain", "confidence": 1.0}
    assert [r["name"] for r in message.get("intent_ranking")] == ["complain", "report_fault"]
    assert message.get("intent_ranking")[1]["confidence"] == pytest.approx(0.45)  # no ambiguity for the fallback
    other = Message(data={"text": "没有拨号音", "intent": {"name": "symptom_no_dial_tone", "confidence": 0.8}})
    LAYER.process([other])
    assert other.get("intent")["name"] == "symptom_no_dial_tone"


def test_designers_can_switch_it_off() -> None:
    message = Message(data={"text": "我要投诉", "intent": {"name": "report_fault", "confidence": 0.9}})
    KeywordIntentClassifier({"enabled": False}).process([message])
    assert message.get("intent")["name"] == "report_fault"
