"""The keyword layer after DIET (nlu/components/keywords.py, issue 13 item 7): unmistakable
complaints (item 5, M2), progress questions (item 4, J4), repair outcomes (U3), symptoms and
the direction of a call (A8), the prompts' other choices and short answers; nothing-said text
never becomes yes, a number or a symptom; anything else is left to DIET."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "nlu"))

from components.keywords import KeywordIntentClassifier, load_rules  # noqa: E402
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
    assert not (LAYER.match(text) or "").startswith("rate_")


@pytest.mark.parametrize(("text", "intent"), [
    # U3: "still …" is a repair that did not help; a restoration word one that did; a question is J4
    ("还没修好", "fault_not_fixed"), ("还是打不通", "fault_not_fixed"), ("it's still broken", "fault_not_fixed"),
    ("hasn't been fixed", "fault_not_fixed"), ("修好了", "fault_fixed"), ("宽带已经好了", "fault_fixed"),
    ("杂音没有了", "fault_fixed"), ("the noise has stopped", "fault_fixed"), ("my broadband is working again", "fault_fixed"),
    ("现在好了吗", None), ("has it been fixed", "ask_progress"), ("老伴出去买菜还没回来", "out_of_scope"), ("还不错", None),
    ("the phone at home stopped working again", None),
    # A8 symptoms, and the direction of a call (who calls whom)
    ("没有拨号音", "symptom_no_dial_tone"), ("没 有 拨 号 音", "symptom_no_dial_tone"), ("拿起来不响", "symptom_no_dial_tone"),
    ("电话打不出去", "symptom_cannot_call_out"), ("我打别人打不通", "symptom_cannot_call_out"),
    ("打给我儿子打不通", "symptom_cannot_call_out"), ("别人打我家打不通", "symptom_cannot_receive"),
    ("能打出去不能接", "symptom_cannot_receive"), ("只能接不能打", "symptom_cannot_call_out"),
    ("现在能打了但是接不了", "symptom_cannot_receive"),
    ("i can make calls but i never receive any", "symptom_cannot_receive"),
    ("people can't get through to me", "symptom_cannot_receive"), ("i can't make any calls", "symptom_cannot_call_out"),
    ("callers hear nothing when they ring me", "symptom_cannot_receive"),
    ("the line is dead", "symptom_no_dial_tone"), ("lots of static on the line", "symptom_noise"), ("电话里有杂音", "symptom_noise"),
    ("上不了网", "symptom_broadband_down"), ("光猫亮红灯", "symptom_broadband_down"), ("the internet is down", "symptom_broadband_down"),
    ("来电不显示号码", "symptom_other"), ("the display on my phone is dead", "symptom_other"), ("其他故障", "symptom_other"),
    ("which button do i press", None), ("话机坏了", None), ("其他", None), ("something else", None),
    # the menu's and every prompt's other choices
    ("转人工", "request_human"), ("不要转人工", "deny"), ("i don't need a human", "deny"),
    ("你是真人吗", "out_of_scope"), ("am i talking to a machine", "out_of_scope"),
    ("留言", "leave_message"), ("不用留言了", "deny"), ("i'd like to leave a message", "leave_message"),
    ("英语", "choose_english"), ("我听不懂英语", "choose_chinese"), ("i don't speak chinese", "choose_english"),
    ("重新输入", "retry"), ("start over", "retry"), ("师傅再来一趟", None),
    ("以后别打电话来了", "do_not_call"), ("please stop calling me", "do_not_call"),
    ("我要交话费", "other_services"), ("pay my bill", "other_services"),
    # short answers as a whole; longer text is left to DIET
    ("uh huh", "affirm"), ("嗯", "affirm"), ("对对对", "affirm"), ("是的 没错", "affirm"), ("oh yes please", "affirm"),
    ("不对", "deny"), ("nope", "deny"), ("no that's wrong", "deny"), ("hello", "greet"), ("喂 你好", "greet"),
    ("1", "dtmf"), ("#", "dtmf"), ("按一", "dtmf"), ("井号", "dtmf"), ("press one", "dtmf"), ("option 3", "dtmf"), ("五分", "rate_very_satisfied"),
    ("联系电话13912345678", "inform_number"), ("my mobile is 150 1234 5678", "inform_number"),
    ("call me on 13600001111", "inform_number"), ("号码是对的", "affirm"), ("号码错了", "deny"),
    ("我要报修", "report_fault"), ("please send a repairman", "report_fault"),
    ("我要报修 电话没有拨号音", "symptom_no_dial_tone"), ("报修好几回了都没人管", "complain"),
    ("前几天报的修怎么样了", "ask_progress"),
    ("hang on a sec", "out_of_scope"), ("等一下", "out_of_scope"), ("稍等片刻", "out_of_scope"), ("让我想一下", "out_of_scope"),
    ("再见", "goodbye"), ("see you later", "goodbye"), ("that's all thank you", "goodbye"), ("ok ok ok ok ok", None), ("好热啊", "out_of_scope"), ("x", "out_of_scope"), ("我我我", "out_of_scope"), ("啥", "out_of_scope"),
    ("is this a computer", "out_of_scope"), ("my cat is sleeping on the keyboard", "out_of_scope"),
    ("下雨以后电话就坏了", None), ("my dog chewed the phone line", None), ("联通的 13912345678", None),
])
def test_domain_words_decide(text: str, intent: str | None) -> None:
    assert LAYER.match(text) == intent


@pytest.mark.parametrize("text", [
    "hell yes", '/dtmf{"digits":"1"}', "电话坏了", "i have a problem with my phone",
    "0571 8765 0001",
])
def test_everything_else_is_left_to_diet(text: str) -> None:
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


def test_the_rules_are_data_that_designers_edit(tmp_path: Path) -> None:
    # nlu/keywords.yml: any: regexes, whole: short answers; order kept, first match wins.
    path = tmp_path / "keywords.yml"
    path.write_text("rules:\n  - intent: greet\n    whole: ['喂', 'hello']\n"
                    "  - intent: complain\n    any: ['投诉', '\\bmanager\\b']\n"
                    "  - intent: out_of_scope\n    any: ['天气']\n    unless: ['电话']\n", encoding="utf-8")
    layer = KeywordIntentClassifier({"rules_file": str(path)})
    assert layer.match("喂 喂") == "greet" and layer.match("get me the MANAGER") == "complain"
    assert layer.match("我要报修") is None
    assert layer.match("今天天气不错") == "out_of_scope" and layer.match("天气一冷电话就坏") is None


@pytest.mark.parametrize(("text", "error"), [
    ("rules:\n  - intent: greet\n    any: ['(unclosed']\n", "rule 1 (greet)"),
    ("rules:\n  - intent: greet\n", "rule 1: needs an intent and either any: or whole:"),
    ("rules:\n  - any: ['x']\n", "rule 1: needs an intent"),
])
def test_a_broken_rule_stops_the_start_with_its_number(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "keywords.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(error)):
        load_rules(path)
