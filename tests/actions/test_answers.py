"""Several answers at once, corrections and hesitation (issue 13 items 1, 2 and bad input).

The trackers carry the entities the NLU's number component gives (nlu/components/numbers.py);
without them the forms read the text with telnum themselves (both are tested)."""

import sys
from pathlib import Path

import pytest
from conftest import keys, make_tracker

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "nlu"))

from components.numbers import PhoneNumberExtractor  # noqa: E402

from actions.answers import hesitation_phrases, is_hesitation, numbers_said
from actions.forms import ValidateFaultNumberForm, ValidateMainMenuForm, ValidateReportDetailsForm
from actions.interpret import UserInput

EXTRACTOR = PhoneNumberExtractor({"local_area_code": "0571"})


def said(text, intent="inform_number", slots=None, with_entities=True, **kw):
    entities = EXTRACTOR.entities_in(text) if with_entities else []
    return make_tracker(text, intent, entities, slots=slots, **kw)


@pytest.mark.parametrize("with_entities", [True, False])
def test_a1_a_number_at_the_main_menu_starts_a_report_with_it(dispatcher, with_entities):
    t = said("我家电话0571 8765 0001坏了", "report_fault", with_entities=with_entities)
    out = ValidateMainMenuForm().validate_menu_choice("x", dispatcher, t, {})
    assert out["form_result"] == "fault" and out["menu_choice"] == "fault"
    assert out["fault_number"] == "057187650001" and out["fault_number_display"] == "0571 8765 0001"
    assert dispatcher.messages == []


def test_a1_everything_at_once_fills_every_step(dispatcher):
    t = said("0571 8765 0001 没有拨号音，联系电话 139 1234 5678", "symptom_no_dial_tone")
    out = ValidateMainMenuForm().validate_menu_choice("x", dispatcher, t, {})
    assert out["fault_number"] == "057187650001"
    assert out["contact_number"] == "13912345678" and out["contact_number_display"] == "139 1234 5678"
    assert out["symptom_category"] == "no_dial_tone" and out["symptom_label"] == "没有拨号音"


def test_a1_a_symptom_at_the_main_menu_is_not_asked_again(dispatcher):
    out = ValidateMainMenuForm().validate_menu_choice("x", dispatcher, said("电话没声音了", "symptom_no_dial_tone"), {})
    assert out["form_result"] == "fault" and out["symptom_category"] == "no_dial_tone"


def test_a2_a_number_given_ahead_is_kept_when_the_form_starts_and_read_back(dispatcher):
    # Rasa validates the slots it finds filled when fault_number_form starts: the number
    # said at the main menu stays (V2 then reads it back), the latest input is not re-read.
    t = keys("1", slots={"fault_number": "057187650001", "fault_number_display": "0571 8765 0001"})
    assert ValidateFaultNumberForm().validate_fault_number("057187650001", dispatcher, t, {}) == {}
    t = keys("1", slots={"contact_number": "13912345678", "contact_number_display": "139 1234 5678"})
    assert ValidateReportDetailsForm().validate_contact_number("13912345678", dispatcher, t, {}) == {}


def test_a2_the_contact_number_said_with_the_fault_number_is_kept(dispatcher):
    t = said("故障电话0571 8765 0001，有事打我手机139 1234 5678", slots={"requested_slot": "fault_number"})
    out = ValidateFaultNumberForm().validate_fault_number("x", dispatcher, t, {})
    assert out["fault_number"] == "057187650001" and out["contact_number"] == "13912345678"


def test_a2_only_a_contact_number_at_v1_is_kept_and_v1_asked_again(dispatcher):
    t = said("联系电话139 1234 5678", slots={"failure_count": 0})
    out = ValidateFaultNumberForm().validate_fault_number("x", dispatcher, t, {})
    assert out["fault_number"] is None and out["contact_number"] == "13912345678"
    assert "failure_count" not in out


def test_a2_two_numbers_without_cues_ask_which_is_which_once(dispatcher):
    form = ValidateFaultNumberForm()
    out = form.validate_fault_number("x", dispatcher, said("0571 8765 0001 139 1234 5678"), {})
    assert out["fault_number"] is None and out["unclear_numbers"] == "057187650001 13912345678"
    assert out["unclear_numbers_display"] == "第一个 0571 8765 0001，第二个 139 1234 5678"
    assert out["number_roles"] is None  # fault_number_form's first required slot: asked next
    pending = {"unclear_numbers": out["unclear_numbers"], "requested_slot": "number_roles"}
    answer = form.validate_number_roles("x", dispatcher, said("第二个", "deny", slots=pending), {})
    assert answer["fault_number"] == "13912345678" and answer["contact_number"] == "057187650001"
    assert answer["unclear_numbers"] is None
    by_key = form.validate_number_roles("x", dispatcher, keys("1", slots=pending), {})
    assert by_key["fault_number"] == "057187650001"
    # Asked once: two unclear numbers again → the first is the faulty line.
    again = form.validate_fault_number("x", dispatcher, said("0571 8765 0001 139 1234 5678",
                                                            slots={"number_roles": "second"}), {})
    assert again["fault_number"] == "057187650001" and again["contact_number"] == "13912345678"


def test_a2_correction_at_the_readback_replaces_the_number_and_reads_it_again(dispatcher):
    current = {"fault_number": "057187650001", "fault_number_display": "0571 8765 0001"}
    for text, intent in [("不对，是0571 8765 0002", "deny"), ("no, it's oh five seven one eight seven six five oh oh oh two", "deny")]:
        out = ValidateFaultNumberForm().validate_fault_number_confirmed(
            "x", dispatcher, said(text, intent, slots=current), {})
        assert out == {"fault_number": "057187650002", "fault_number_display": "0571 8765 0002",
                       "fault_number_confirmed": None}
    same = ValidateFaultNumberForm().validate_fault_number_confirmed(
        "x", dispatcher, said("对，0571 8765 0001", "affirm", slots=current), {})
    assert same["fault_number_confirmed"] is True


def test_a2_a_correction_that_cannot_be_a_number_says_why(dispatcher):
    current = {"fault_number": "057187650001", "fault_number_display": "0571 8765 0001", "failure_count": 0}
    out = ValidateFaultNumberForm().validate_fault_number_confirmed(
        "x", dispatcher, said("不对，是" + "1" * 30, "deny", slots=current), {})
    assert out["fault_number"] is None and out["fault_number_confirmed"] is None
    assert dispatcher.messages[-1]["response"] == "utter_number_too_long"


def test_a9_correction_at_v6_replaces_contact_or_symptom(dispatcher):
    current = {"contact_number": "13912345678", "contact_number_display": "139 1234 5678",
               "symptom_category": "noise", "symptom_label": "有杂音"}
    form = ValidateReportDetailsForm()
    out = form.validate_details_confirmed("x", dispatcher, said("不对，联系电话是139 1234 0000", "deny", slots=current), {})
    assert out["contact_number"] == "13912340000" and out["details_confirmed"] is None
    out = form.validate_details_confirmed("x", dispatcher, said("不对，是没有拨号音", "symptom_no_dial_tone",
                                                                 slots=current), {})
    assert out["symptom_category"] == "no_dial_tone" and out["details_confirmed"] is None


def test_contact_number_the_same_as_the_faulty_line_is_allowed(dispatcher):
    # Bad input: allowed, and V6 says it back like any contact number.
    t = said("就打这个 0571 8765 0001", slots={"fault_number": "057187650001"})
    out = ValidateReportDetailsForm().validate_contact_number("x", dispatcher, t, {})
    assert out["contact_number"] == "057187650001" and out["contact_number_display"] == "0571 8765 0001"


def test_the_contact_number_from_a_sentence_with_both(dispatcher):
    t = said("故障电话0571 8765 0001，联系电话139 1234 5678")
    out = ValidateReportDetailsForm().validate_contact_number("x", dispatcher, t, {})
    assert out["contact_number"] == "13912345678"


@pytest.mark.parametrize("text", ["喂？", "你好", "等一下", "嗯", "hello?", "Wait", "hold on…", "喂喂", "hang on a sec",
                                  "give me a minute", "one moment please", "稍等片刻", "让我想一下"])
def test_a3_hesitation_repeats_the_prompt_without_counting(dispatcher, text):
    t = said(text, "greet", slots={"failure_count": 2})
    out = ValidateFaultNumberForm().validate_fault_number("x", dispatcher, t, {})
    assert out == {"fault_number": None}
    assert dispatcher.messages[-1]["response"] == "utter_hesitation"
    menu = ValidateMainMenuForm().validate_menu_choice("x", dispatcher, said(text, "greet", slots={"failure_count": 2}), {})
    assert menu == {"menu_choice": None}


def test_a3_silence_still_counts(dispatcher):
    t = make_tracker("/no_input", "no_input", slots={"failure_count": 0})
    assert ValidateFaultNumberForm().validate_fault_number("x", dispatcher, t, {})["failure_count"] == 1


@pytest.mark.parametrize("text", ["你好，我家电话坏了", "等一下我要报障", "嗯嗯好的谢谢你们", "hang on, my line is dead",
                                  "one two three"])
def test_sentences_with_more_than_hesitation_are_not_hesitation(text):
    assert not is_hesitation(UserInput("greet", text, "", False))


@pytest.mark.parametrize("text", ["one", "two please", "just", "a"])
def test_a_key_said_as_a_word_is_no_hesitation(text):
    assert not is_hesitation(UserInput("dtmf", text, "", False))


@pytest.mark.parametrize(
    "text",
    ["我" * 2000, "😡😡😡😡", "123456789012345678901234567890", "/dtmf{\"digits\":\"1\"}", "asdfghjkl;'", "ｆｕｌｌ　ｗｉｄｔｈ"],
)
def test_bad_input_at_v1_is_a_clear_re_prompt_and_nothing_is_stored(dispatcher, text):
    t = said(text, "nlu_fallback", slots={"failure_count": 0})
    out = ValidateFaultNumberForm().validate_fault_number("x", dispatcher, t, {})
    assert out.get("fault_number") is None and out.get("contact_number") is None
    assert out["failure_count"] == 1 and dispatcher.messages[-1]["response"].startswith("utter_")


def test_two_identical_numbers_are_one(dispatcher):
    t = said("13912345678 13912345678")
    out = ValidateFaultNumberForm().validate_fault_number("x", dispatcher, t, {})
    assert out["fault_number"] == "13912345678" and "unclear_numbers" not in out


def test_keys_are_never_read_as_a_sentence():
    ui = UserInput("dtmf", "", "057187650001", False)
    assert not numbers_said({"entities": [{"entity": "phone_number", "value": "1"}]}, ui, "0571").any


def test_the_pipeline_component_adds_number_entities_to_parsed_messages():
    from rasa.shared.nlu.training_data.message import Message

    message = Message(data={"text": "0571 8765 0001 没有拨号音，联系电话 139 1234 5678"})
    EXTRACTOR.process([message])
    entities = [(e["entity"], e["value"], e["extractor"]) for e in message.get("entities")]
    assert entities == [("fault_number", "057187650001", "PhoneNumberExtractor"),
                        ("contact_number", "13912345678", "PhoneNumberExtractor")]
    event = Message(data={"text": '/dtmf{"digits":"057187650001"}'})
    EXTRACTOR.process([event])
    assert not event.get("entities")


def test_a1_a_number_that_cannot_be_starts_the_report_and_says_why(dispatcher):
    t = said("我家电话12345678901坏了", "report_fault", slots={"failure_count": 0})
    out = ValidateMainMenuForm().validate_menu_choice("x", dispatcher, t, {})
    assert out["form_result"] == "fault" and "fault_number" not in out
    assert dispatcher.messages[-1]["response"] == "utter_number_bad_prefix"  # V3, then V1 asks


@pytest.mark.parametrize(("text", "intent"), [("嗯", "affirm"), ("等一下", "rate_neutral"), ("hmm", "affirm"),
                                            ("hang on a sec", "goodbye")])
def test_v2_hesitation_is_no_yes_whatever_the_nlu_saw(dispatcher, text, intent):
    current = {"fault_number": "057187650001", "fault_number_display": "0571 8765 0001", "failure_count": 0}
    out = ValidateFaultNumberForm().validate_fault_number_confirmed("x", dispatcher, said(text, intent, slots=current), {})
    assert out == {"fault_number_confirmed": None}
    assert dispatcher.messages[-1]["response"] == "utter_hesitation"


def test_a1_a_whole_number_keyed_at_the_menu_is_the_fault_number(dispatcher):
    out = ValidateMainMenuForm().validate_menu_choice("x", dispatcher, keys("057187650001#"), {})
    assert out["form_result"] == "fault" and out["fault_number"] == "057187650001"
    assert ValidateMainMenuForm().validate_menu_choice("x", dispatcher, keys("7"), {})["menu_choice"] is None


def test_a_local_number_gets_the_action_servers_area_code(dispatcher, monkeypatch):
    # The entity carries the digits as said; the actions add their own area code (A2).
    monkeypatch.setenv("HOTLINE_LOCAL_AREA_CODE", "010")
    t = said("我家电话87650001坏了", "report_fault")
    assert t.latest_message["entities"][0]["value"] == "87650001"
    out = ValidateMainMenuForm().validate_menu_choice("x", dispatcher, t, {})
    assert out["fault_number"] == "01087650001"


def test_a11_hesitation_is_no_message_for_the_repairman(dispatcher):
    from actions.forms import ValidateVoiceMessageForm

    out = ValidateVoiceMessageForm().validate_voice_message("x", dispatcher, said("等一下", "rate_neutral"), {})
    assert out == {"voice_message": None} and dispatcher.messages[-1]["response"] == "utter_hesitation"
    out = ValidateVoiceMessageForm().validate_voice_message("x", dispatcher, said("请下午来", "nlu_fallback"), {})
    assert out["voice_message"] == "请下午来"


def test_hesitation_phrases_are_the_keyword_rules_marked_so(tmp_path):
    # One list for the NLU and the forms: nlu/keywords.yml's rules with `hesitation: true`.
    path = tmp_path / "keywords.yml"
    path.write_text("rules:\n  - intent: out_of_scope\n    hesitation: true\n    any: ['^wait up$']\n"
                    "  - intent: greet\n    any: ['^hello$']\n", encoding="utf-8")
    phrases = hesitation_phrases(path)
    assert phrases.search("wait up") and not phrases.search("hello")
