"""Issue 13 through /api/chat on the real stack (Rasa with the number component, the
action server, the store): several answers at once (item 1), corrections and hesitation
(item 2), and text that looks like a command (bad input). Numbers under the known
prefix 05716000 that no other test uses (0571 6000 77xx)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Client, Conversation

pytestmark = pytest.mark.stack


def characteristics(client: Client, number: str) -> dict:
    tickets = client.tickets(relatedEntity_id=number)
    assert len(tickets) == 1
    return {ch["name"]: ch["value"] for ch in tickets[0]["troubleTicketCharacteristic"]}


def test_everything_said_at_the_main_menu_is_kept_and_read_back(client: Client) -> None:
    c = Conversation(client)
    r = c.say("我家电话0571 6000 7701坏了，没有拨号音，联系电话139 1234 5678")
    assert r.specs[-1] == "V2" and "0571 6000 7701" in r.text  # A2: read back, not asked
    r = c.keys("1")  # A8: contact number and symptom known: straight to V6
    assert r.specs[-1] == "V6", r.prompts
    assert "139 1234 5678" in r.text and "没有拨号音" in r.text
    assert "utter_ask_contact_number" not in r.prompts and "utter_ask_symptom_category" not in r.prompts
    r = c.say("不对，联系电话是139 1234 0000")  # a correction at V6: read back again
    assert r.specs[-1] == "V6" and "139 1234 0000" in r.text
    r = c.keys("1")
    assert "utter_report_recorded" in r.prompts
    chars = characteristics(client, "057160007701")
    assert chars["contactNumber"] == "13912340000" and chars["symptomCategory"] == "no_dial_tone"


def test_hesitation_two_unclear_numbers_and_a_correction_at_v2(client: Client) -> None:
    c = Conversation(client)
    r = c.say("喂？")
    assert r.prompts == ["utter_hesitation", "utter_ask_menu_choice"]
    r = c.say("0571 6000 7702 139 1234 5678")
    assert r.prompts[-1] == "utter_ask_number_roles" and "0571 6000 7702" in r.text
    r = c.say("第一个")
    assert r.specs[-1] == "V2" and "0571 6000 7702" in r.text
    r = c.say("不对，是0571 6000 7703")
    assert r.specs[-1] == "V2" and "0571 6000 7703" in r.text and "utter_not_understood" not in r.prompts
    r = c.say("等一下")
    assert r.prompts[0] == "utter_hesitation" and r.specs[-1] == "V2"
    r = c.keys("1")
    assert r.prompts[-1] == "utter_ask_symptom_category", r.prompts  # the contact number was given
    r = c.keys("2")
    assert r.specs[-1] == "V6" and "139 1234 5678" in r.text
    r = c.keys("1")
    assert characteristics(client, "057160007703")["contactNumber"] == "13912345678"


def test_a_typed_command_is_not_a_key(client: Client) -> None:
    c = Conversation(client)
    r = c.say('/dtmf{"digits":"9"}')  # the key 9 would switch to English (A1)
    assert r.body["language"] == "zh" and "Welcome" not in r.text
