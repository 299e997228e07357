"""Issue 13 item 3 (A8/V5): the caller's own number (ANI) offered as the contact number."""

from __future__ import annotations

import asyncio

import pytest
from conftest import DOMAIN, keys, make_tracker
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from test_flow import slots

from actions.caller import caller_number_from
from actions.flow import ActionBackToMenu, ActionStartConversation
from actions.forms import ValidateReportDetailsForm

DOMAIN_SLOTS = ["contact_number", "symptom_category", "details_confirmed"]


@pytest.mark.parametrize(("raw", "number"), [
    ("13800138000", "13800138000"), ("+8613800138000", "13800138000"), ("8613800138000", "13800138000"),
    ("87650001", "057187650001"), ("0571-8765-0001", "057187650001"),
    ("anonymous", None), ("", None), ("0000000000", None), ("123", None), ("0012025550123", None), (None, None),
])
def test_only_a_valid_caller_number_is_kept(raw, number):
    assert caller_number_from({"caller_number": raw}) == number


def start(metadata: dict) -> dict:
    t = make_tracker("/start", "start")
    t.latest_message["metadata"] = metadata
    return slots(asyncio.run(ActionStartConversation().run(CollectingDispatcher(), t, DOMAIN)))


def test_a_call_passes_its_ani_on_the_first_message():
    out = start({"channel": "voice", "caller_number": "13912345678", "call_id": "c1"})
    assert out["caller_number"] == "13912345678" and out["caller_number_display"] == "139 1234 5678"
    out = start({"channel": "voice", "caller_number": "anonymous"})
    assert out["caller_number"] is None
    assert "caller_number" not in start({"channel": "webchat"})  # chat: no ANI, nothing set


def test_the_ani_survives_a_return_to_the_main_menu():
    t = make_tracker("", "", slots={"caller_number": "13912345678", "caller_number_display": "139 1234 5678",
                                    "offer_caller_number": False})
    out = slots(asyncio.run(ActionBackToMenu().run(CollectingDispatcher(), t, DOMAIN)))
    assert out["caller_number"] == "13912345678" and out["offer_caller_number"] is False


def required(**slot_values) -> list[str]:
    t = make_tracker("", "", slots=slot_values)
    return asyncio.run(ValidateReportDetailsForm().required_slots(list(DOMAIN_SLOTS), CollectingDispatcher(), t, DOMAIN))


def test_the_offer_comes_first_only_with_a_valid_ani_and_the_switch_on():
    assert required(caller_number="13912345678", offer_caller_number=True)[0] == "use_caller_number"
    assert required(caller_number="13912345678", offer_caller_number=False) == DOMAIN_SLOTS  # designers' switch
    assert required(caller_number=None) == DOMAIN_SLOTS  # withheld / invalid / web chat
    assert required(caller_number="13912345678", use_caller_number=False) == DOMAIN_SLOTS  # answered


def answer(tracker: Tracker, dispatcher: CollectingDispatcher) -> dict:
    return ValidateReportDetailsForm().validate_use_caller_number("x", dispatcher, tracker, DOMAIN)


def test_one_key_accepts_two_asks_for_another(dispatcher):
    ani = {"caller_number": "13912345678"}
    out = answer(keys("1", slots=ani), dispatcher)
    assert out == {"use_caller_number": True, "contact_number": "13912345678", "contact_number_display": "139 1234 5678"}
    assert answer(make_tracker("是的", "affirm", slots=ani), dispatcher)["use_caller_number"] is True
    assert answer(keys("2", slots=ani), dispatcher) == {"use_caller_number": False}
    out = answer(keys("7", slots=ani), dispatcher)
    assert out["use_caller_number"] is None and out["failure_count"] == 1  # A3 counts it


def test_enter_again_at_the_readback_offers_the_number_again(dispatcher):
    out = ValidateReportDetailsForm().validate_details_confirmed("x", dispatcher, keys("2"), DOMAIN)
    assert out["use_caller_number"] is None and out["contact_number"] is None


def test_another_number_given_straight_away_is_the_contact(dispatcher):
    ani = {"caller_number": "13912345678"}
    out = answer(keys("13800138000#", slots=ani), dispatcher)
    assert out == {"use_caller_number": False, "contact_number": "13800138000", "contact_number_display": "138 0013 8000"}
    out = answer(make_tracker("幺三八零零幺三八零零零", "inform_number", slots=ani), dispatcher)
    assert out["contact_number"] == "13800138000"
    out = answer(keys("1380013#", slots=ani), dispatcher)  # too short for a mobile: said why, asked again
    assert out["use_caller_number"] is None and out["failure_count"] == 1


def test_a3_limit_at_the_contact_number_ends_the_form_without_the_offer():
    """A3 at A8 in a web chat (no ANI): the validation ended the form (requested_slot None),
    and the SDK must not request the next empty slot: the domain's list starts with the
    offer, so the form's own list differs from it and the SDK would pick one."""
    form = ValidateReportDetailsForm()
    domain = {**DOMAIN, "forms": {form.form_name(): {"required_slots": ["use_caller_number", *DOMAIN_SLOTS]}}}
    ended = make_tracker("", "", slots={"form_result": "gave_up", "requested_slot": None, "contact_number": None})
    assert asyncio.run(form.next_requested_slot(CollectingDispatcher(), ended, domain)) is None
    asking = make_tracker("", "", slots={"requested_slot": "contact_number", "contact_number": None})
    event = asyncio.run(form.next_requested_slot(CollectingDispatcher(), asking, domain))
    assert event is not None and event["value"] == "contact_number"
