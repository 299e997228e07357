"""Outages: the chat API answers 503 with a sentence a person can read, and nothing the
user already confirmed is lost. Runs last: it stops parts of the stack."""

from __future__ import annotations

import pytest

from bot.stack import Stack
from tests.e2e.conftest import Client, Conversation

pytestmark = pytest.mark.stack


def test_action_server_down_then_back(stack: Stack, client: Client) -> None:
    c = Conversation(client)
    c.keys("1")
    stack.stop({"actions"})
    try:
        r = client.request("POST", f"/api/chat/{c.id}", {"dtmf": "057160000001#"})
        assert r.status == 503 and r.body["error"] == "dialogue_unavailable"
        assert "稍后再试" in r.body["reason"]
    finally:
        stack.start({"actions"})
        stack.wait_ready()
    r = c.keys("057160000001#")
    assert r.prompts[-1] in ("utter_ask_fault_number", "utter_ask_fault_number_confirmed")


def test_rasa_down_is_a_503_and_tickets_stay(stack: Stack, client: Client) -> None:
    before = client.request("GET", "/tmf-api/troubleTicket/v5/troubleTicket").body
    stack.stop({"rasa"})
    r = client.request("POST", "/api/chat/e2e-outage", {"event": "start"})
    assert r.status == 503 and r.body["reason"]
    after = client.request("GET", "/tmf-api/troubleTicket/v5/troubleTicket").body
    assert after == before
