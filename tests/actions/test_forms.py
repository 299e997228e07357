"""Form validation: tracker in, slot events out (A1–A3, A8–A11)."""

from conftest import keys, make_tracker

from actions.forms import (
    ValidateFaultNumberForm,
    ValidateMainMenuForm,
    ValidateReportDetailsForm,
    ValidateVoiceMessageForm,
)


def test_a2_keypad_number_is_normalised_and_grouped_for_readback(dispatcher):
    t = keys("87654321#", slots={"fault_number": "x", "requested_slot": "fault_number"}, active_loop="fault_number_form")
    out = ValidateFaultNumberForm().validate_fault_number("x", dispatcher, t, {})
    assert out == {"fault_number": "057187654321", "fault_number_display": "0571 8765 4321"}


def test_a2_too_short_is_rejected_with_a_reason_and_counted(dispatcher):
    t = keys("1234#", slots={"failure_count": 0})
    out = ValidateFaultNumberForm().validate_fault_number("x", dispatcher, t, {})
    assert out == {"fault_number": None, "failure_count": 1}
    assert dispatcher.messages[-1]["response"] == "utter_number_too_short"


def test_a3_third_failure_ends_the_form_with_gave_up(dispatcher):
    t = make_tracker("/no_input", "no_input", slots={"failure_count": 2})
    out = ValidateFaultNumberForm().validate_fault_number("/no_input", dispatcher, t, {})
    assert out["form_result"] == "gave_up" and out["requested_slot"] is None and out["failure_count"] == 0
    assert dispatcher.messages == []  # the limit action speaks, not the re-prompt


def test_a3_limit_is_a_dialogue_setting(dispatcher):
    t = make_tracker("/no_input", "no_input", slots={"failure_count": 2, "max_failures": 5})
    out = ValidateFaultNumberForm().validate_fault_number("/no_input", dispatcher, t, {})
    assert out == {"fault_number": None, "failure_count": 3}


def test_a2_confirm_and_re_enter(dispatcher):
    form = ValidateFaultNumberForm()
    assert form.validate_fault_number_confirmed("x", dispatcher, keys("1"), {}) == {
        "fault_number_confirmed": True, "form_result": "done"}
    assert form.validate_fault_number_confirmed("x", dispatcher, keys("2"), {}) == {
        "fault_number": None, "fault_number_confirmed": None}


def test_nonsense_is_not_yes(dispatcher):
    out = ValidateFaultNumberForm().validate_fault_number_confirmed(
        "x", dispatcher, make_tracker("今天天气怎么样", "out_of_scope"), {})
    assert out["fault_number_confirmed"] is None
    assert dispatcher.messages[-1]["response"] == "utter_not_understood"


def test_a1_english_switches_language_without_counting(dispatcher):
    out = ValidateMainMenuForm().validate_menu_choice("x", dispatcher, keys("9"), {})
    assert out == {"menu_choice": None, "language": "en"}


def test_a8_contact_number_and_symptom_in_one_sentence(dispatcher):
    t = make_tracker("我的电话13912345678，家里电话没有拨号音", "symptom_no_dial_tone")
    out = ValidateReportDetailsForm().validate_contact_number("x", dispatcher, t, {})
    assert out["contact_number"] == "13912345678"
    assert out["symptom_category"] == "no_dial_tone"
    assert "没有拨号音" in out["symptom_label"] and out["symptom_text"].startswith("我的电话")


def test_a10_re_enter_clears_the_details(dispatcher):
    out = ValidateReportDetailsForm().validate_details_confirmed("x", dispatcher, keys("2"), {})
    assert out["contact_number"] is None and out["symptom_category"] is None and out["details_confirmed"] is None


def test_a11_typed_message_then_record_again(dispatcher):
    form = ValidateVoiceMessageForm()
    assert form.validate_voice_message("x", dispatcher, make_tracker("请上午来", "nlu_fallback"), {}) == {"voice_message": "请上午来"}
    assert form.validate_voice_message_decision("x", dispatcher, keys("2"), {}) == {
        "voice_message": None, "voice_message_decision": None}
    assert form.validate_voice_message_decision("x", dispatcher, keys("3"), {}) == {
        "voice_message_decision": "quit", "form_result": "quit", "failure_count": 0}


def test_the_sdk_runs_a_form_validation_end_to_end(dispatcher):
    """Through rasa_sdk's own run(): extraction, validation and the slot events it returns."""
    import asyncio

    domain = {"forms": {"main_menu_form": {"required_slots": ["menu_choice"]}},
              "slots": {"menu_choice": {"type": "text", "mappings": [{"type": "from_text"}]}}}
    t = keys("1", slots={"menu_choice": '/dtmf{"digits":"1"}', "requested_slot": "menu_choice"},
             active_loop="main_menu_form")
    t.events.append({"event": "slot", "name": "menu_choice", "value": '/dtmf{"digits":"1"}'})
    events = asyncio.run(ValidateMainMenuForm().run(dispatcher, t, domain))
    values = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert values["menu_choice"] == "fault" and values["form_result"] == "fault"


def test_v3_a_number_no_line_can_have_is_refused_with_its_reason(dispatcher):
    # issue 13 item 6: "12…" is no mobile, "0571 0…" no local number: V3 says why.
    t = make_tracker("我的电话是12345678901", "inform_number", slots={"failure_count": 0})
    out = ValidateFaultNumberForm().validate_fault_number("x", dispatcher, t, {})
    assert out == {"fault_number": None, "failure_count": 1}
    assert dispatcher.messages[-1]["response"] == "utter_number_bad_prefix"


def test_a2_number_said_the_way_people_say_it(dispatcher):
    t = make_tracker("区号零五七幺，号码八七六五 三个零幺", "inform_number")
    out = ValidateFaultNumberForm().validate_fault_number("x", dispatcher, t, {})
    assert out == {"fault_number": "057187650001", "fault_number_display": "0571 8765 0001"}
