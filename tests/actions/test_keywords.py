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


@pytest.mark.parametrize("text", [
    "还没修好", "修好了", "不满意", "hell yes", "uh huh", "嗯", "#", "1", "没有拨号音", "我要报修", "hello",
    '/dtmf{"digits":"1"}', "电话打不出去",
])
def test_everything_else_is_left_to_diet(text: str) -> None:
    # 还没修好 / 修好了 / 不满意 answer the survey (U3): not complaints, not progress questions.
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
