"""Every A-branch through /api/chat, on the real Rasa server, action server, line-test
simulator and store; tickets and outcomes checked through the ticket API (A1–A11)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Client, Conversation

pytestmark = pytest.mark.stack


def last_outcome(client: Client, conversation: Conversation) -> dict:
    outcomes = client.outcomes(conversation.id)
    assert outcomes, "no outcome recorded"
    return outcomes[-1]


def to_fault_number(c: Conversation) -> None:
    assert c.last.prompts[-1] == "utter_ask_menu_choice"
    assert c.keys("1").prompts[-1] == "utter_ask_fault_number"


def test_a1_to_a11_by_keypad_in_mandarin(client: Client) -> None:
    c = Conversation(client)
    assert c.last.body["expect"]["kind"] == "choice"
    assert [ch["key"] for ch in c.last.body["expect"]["choices"]] == ["1", "2", "9", "8"]
    to_fault_number(c)
    assert c.last.specs[-1] == "V1" and c.last.body["expect"]["terminator"] == "#"
    r = c.keys("60000001#")  # a local number: the local area code is added (A2)
    assert r.specs[-1] == "V2" and "0571 6000 0001" in r.text and r.body["expect"]["barge_in"] is False
    r = c.keys("1")  # A4–A8: known prefix, new report, the line test runs while we wait
    assert "utter_line_test_wait" in r.prompts and r.prompts[-1] == "utter_ask_contact_number"
    assert r.specs[-1] == "V5"
    r = c.keys("13912345678#")
    assert r.prompts[-1] == "utter_ask_symptom_category"
    r = c.keys("1")
    assert r.specs[-1] == "V6" and "139 1234 5678" in r.text and "没有拨号音" in r.text
    assert client.tickets(relatedEntity_id="057160000001") == []  # nothing stored before V6 is confirmed
    r = c.keys("1")  # A10: stored first, then the test result in plain words, then V7
    assert r.prompts == ["utter_report_recorded", "utter_ask_wants_message"]
    tickets = client.tickets(relatedEntity_id="057160000001")
    assert len(tickets) == 1
    ticket = tickets[0]
    assert ticket["id"] in r.text and ticket["status"] == "acknowledged"
    chars = {ch["name"]: ch["value"] for ch in ticket["troubleTicketCharacteristic"]}
    assert chars["contactNumber"] == "13912345678" and chars["symptomCategory"] == "no_dial_tone"
    assert chars["lineTestResult"]["result"] == "open_circuit"
    r = c.keys("1")
    assert r.specs[-1] == "V8" and r.body["expect"]["kind"] == "recording"
    r = c.say("白天家里没人，请先打我手机")
    assert r.specs[-1] == "V10" and "白天家里没人" in r.text
    r = c.keys("2")  # record again
    assert r.specs[-1] == "V8"
    c.say("请下午三点以后来")
    r = c.keys("1")
    assert r.specs[-2:] == ["V9", "V11"] and "utter_message_saved" in r.prompts
    r = c.keys("2")
    assert r.body["ended"] is True and r.prompts[-1] == "utter_goodbye"
    ticket = client.request("GET", f"/tmf-api/troubleTicket/v5/troubleTicket/{ticket['id']}").body
    assert [a.get("description") or a.get("content") for a in ticket["attachment"]] == ["请下午三点以后来"]
    outcome = last_outcome(client, c)
    assert outcome["outcome"] == "accepted" and outcome["ticket_id"] == ticket["id"]


def test_english_by_text_with_a_busy_line_test_unit(client: Client) -> None:
    c = Conversation(client)
    r = c.keys("9")
    assert r.prompts[-1] == "utter_ask_menu_choice" and "Welcome" in r.text and r.body["language"] == "en"
    assert r.body["expect"]["choices"][0]["label"] == "Report a fault"
    r = c.say("I want to report a fault on my line")
    assert r.prompts[-1] == "utter_ask_fault_number" and "hash" in r.text
    r = c.say("my number is 0571 6000 0002")
    assert r.specs[-1] == "V2" and "0571 6000 0002" in r.text
    r = c.say("yes")
    assert "We are testing your line" in r.text and r.prompts[-1] == "utter_ask_contact_number"
    r = c.say("13912345678, my broadband is down")
    assert r.specs[-1] == "V6" and "broadband" in r.text  # number and symptom in one sentence
    r = c.say("yes that's right")
    assert r.prompts[-1] == "utter_ask_wants_message" and "The test found the line in good order" in r.text
    r = c.keys("2")
    assert r.specs[-2:] == ["V9", "V11"]
    ticket = client.tickets(relatedEntity_id="057160000002")[0]
    chars = {ch["name"]: ch["value"] for ch in ticket["troubleTicketCharacteristic"]}
    assert chars["symptomCategory"] == "broadband_down" and "broadband" in chars["symptomText"]
    assert ticket["channel"]["name"] == "webchat"


def test_a4_unknown_prefix_then_a_good_number_then_a5_repaired_back_to_menu(client: Client) -> None:
    c = Conversation(client)
    to_fault_number(c)
    c.keys("057169990001#")
    r = c.keys("1")
    assert r.specs == ["V3", "V1"]
    c.keys("057160000004#")
    r = c.keys("1")
    assert r.prompts == ["utter_repaired", "utter_ask_menu_choice"] and r.specs[0] == "V4"
    assert last_outcome(client, c)["outcome"] == "informed_repaired"


def test_a5_engineering_works(client: Client) -> None:
    c = Conversation(client)
    to_fault_number(c)
    c.keys("057160010123#")
    r = c.keys("1")
    assert r.prompts == ["utter_engineering", "utter_ask_menu_choice"]
    assert last_outcome(client, c)["outcome"] == "informed_engineering"


def test_a4_three_unknown_prefixes_reach_the_a3_limit_and_a_human(client: Client) -> None:
    c = Conversation(client)
    to_fault_number(c)
    for _ in range(2):
        c.keys("057169990001#")
        assert c.keys("1").specs == ["V3", "V1"]
    c.keys("057169990001#")
    r = c.keys("1")
    assert "utter_too_many_failures" in r.prompts and r.body["handoff"]["reason"] == "failure_limit"
    assert r.body["ended"] is True
    assert last_outcome(client, c)["outcome"] == "handed_off"


def test_a3_silence_three_times_at_v1(client: Client) -> None:
    c = Conversation(client)
    to_fault_number(c)
    assert c.silence().prompts == ["utter_no_input", "utter_ask_fault_number"]
    c.silence()
    r = c.silence()
    assert r.body["handoff"] is not None and r.body["handoff"]["reason"] == "failure_limit"
    outcome = last_outcome(client, c)
    assert outcome["outcome"] == "handed_off" and outcome["step"] == "A2"


def test_nonsense_is_never_taken_as_yes(client: Client) -> None:
    c = Conversation(client)
    to_fault_number(c)
    c.keys("057160000001#")
    for nonsense in ("今天天气怎么样", "asdfgh"):
        r = c.say(nonsense)
        assert r.prompts[-1] == "utter_ask_fault_number_confirmed", r.prompts
        assert r.prompts[0] in ("utter_not_understood", "utter_invalid_choice")


def test_a6_a7_repeat_with_repairman_message_no_human(client: Client) -> None:
    c = Conversation(client)
    to_fault_number(c)
    c.keys("057160000006#")
    r = c.keys("1")
    assert r.prompts == ["utter_repairman_message", "utter_ask_wants_human"] and "明天上午" in r.text
    r = c.keys("2")
    assert r.body["ended"] is True
    assert last_outcome(client, c)["outcome"] == "repeat_informed"
    ticket = client.tickets(relatedEntity_id="057160000006")[0]
    chars = {ch["name"]: ch["value"] for ch in ticket["troubleTicketCharacteristic"]}
    assert int(chars["reportCount"]) == 2  # the repeat report was counted (A6)


def test_a6_a7_repeat_with_last_test_wants_a_human(client: Client) -> None:
    c = Conversation(client)
    to_fault_number(c)
    c.keys("057160000007#")
    r = c.keys("1")
    assert r.prompts[0] == "utter_last_test_result"
    r = c.keys("1")
    handoff = r.body["handoff"]
    assert handoff["reason"] == "repeat_caller_request" and handoff["fault_number"] == "057160000007"
    assert handoff["ticket_id"] and handoff["transcript"]


def test_a6_fourth_report_goes_to_a_human(client: Client) -> None:
    c = Conversation(client)
    to_fault_number(c)
    c.keys("057160000008#")
    r = c.keys("1")
    assert r.body["handoff"]["reason"] == "repeat_over_limit"


def test_a8_wait_is_capped_then_a9_nothing_entered_ends(client: Client) -> None:
    c = Conversation(client)
    to_fault_number(c)
    c.keys("057160000003#")  # the unit stays busy longer than the dialogue waits
    r = c.keys("1")
    assert "utter_line_test_unavailable" in r.prompts and r.prompts[-1] == "utter_ask_contact_number"
    c.silence()
    c.silence()
    r = c.silence()
    assert r.prompts[-2:] == ["utter_acceptance_ended", "utter_goodbye"] and r.body["ended"]
    assert last_outcome(client, c)["outcome"] == "no_input"
    assert client.tickets(relatedEntity_id="057160000003") == []


def test_other_services_and_asking_for_a_human_mid_prompt(client: Client) -> None:
    c = Conversation(client)
    assert c.keys("2").body["handoff"]["reason"] == "other_services"
    c = Conversation(client)
    to_fault_number(c)
    r = c.say("我要转人工")
    assert r.body["handoff"]["reason"] == "caller_request"


def test_leaving_mid_flow_is_recorded_as_abandoned(client: Client) -> None:
    c = Conversation(client)
    to_fault_number(c)
    c.send({"event": "end"})
    outcome = last_outcome(client, c)
    assert outcome["outcome"] == "abandoned" and outcome["step"] == "A2"


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"text": "hi", "extra": 1}', b'{"dtmf": "12a#"}', b'{"text": "' + b"x" * 2001 + b'"}',
     b'{"text": "a", "dtmf": "1"}', b"[]", b'{"event": "dance"}'],
)
def test_bad_input_gets_a_400_with_a_reason(client: Client, raw: bytes) -> None:
    r = client.request("POST", "/api/chat/e2e-bad", raw=raw)
    assert r.status == 400 and r.body["reason"]


def test_quitting_in_the_middle_of_a_prompt(client: Client) -> None:
    c = Conversation(client)
    to_fault_number(c)
    r = c.say("我不报了，退出")
    assert r.prompts[-1] == "utter_goodbye" and r.body["ended"]
    assert last_outcome(client, c)["outcome"] == "ended"


def test_input_after_the_end_starts_again_at_the_main_menu(client: Client) -> None:
    c = Conversation(client)
    c.keys("2")  # other services: handed over, the bot's part is over
    r = c.keys("1")
    assert r.prompts[-1] == "utter_ask_menu_choice" and not r.body["ended"]


def test_a_complaint_goes_to_the_manager_hotline_and_progress_is_told(client: Client) -> None:
    """Issue 13 item 5 (M2): a complaint at the main menu is an apology and the manager
    hotline's queue, not a re-prompt; item 4 (J4 automated): a progress question asks for
    the number and tells the open ticket's state and the repairman's message."""
    c = Conversation(client)
    r = c.say("你们怎么还没修好 我要投诉")
    assert r.prompts[0] == "utter_complaint"
    assert r.body["handoff"]["reason"] == "complaint" and r.body["handoff"]["queue"] == "manager"
    c = Conversation(client)
    r = c.say("查一下维修进度")
    assert r.prompts[-1] == "utter_ask_progress_number"
    r = c.keys("057160000006#")
    assert r.prompts[0] in ("utter_progress_received", "utter_progress_dispatched", "utter_progress_dispatched_no_due")
    assert r.prompts[1:] == ["utter_progress_message", "utter_ask_wants_human"] and "明天上午" in r.text
    assert c.keys("2").body["ended"] is True
    assert last_outcome(client, c)["outcome"] == "progress_informed"
