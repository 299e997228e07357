"""Outages: the chat API answers 503 with a sentence a person can read, and nothing the
user already confirmed is lost. Runs last: it stops parts of the stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.stack import Stack
from tests.e2e.conftest import Client, Conversation, SwitchHost
from tests.fakes.voice_doubles import until
from tests.switch.sipp import AwaitBye, Keys, SippCaller

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


@pytest.mark.switch
async def test_rasa_down_mid_call_on_the_switch_apologises_and_transfers(
        stack: Stack, switch_host: SwitchHost, tmp_path: Path) -> None:
    """Rasa stops while a caller is at the main menu: their next key gets the apology and
    the switch's handoff extension (the operator queue), with the reason on the channel.
    Rasa stays down: the next test needs it down too."""
    call = SippCaller(tmp_path / "caller", switch_host.sip_port, [Keys("1"), AwaitBye()], caller="13700008888")
    try:
        await call.dial()
        await until(lambda: any("障碍申告请按1" in t for t in switch_host.speech.texts), 30, "the main menu")
        stack.stop({"rasa"})
        await call.act()
        await until(lambda: any("对不起" in t for t in switch_host.speech.texts), 30,
                    f"the apology; the bot said {switch_host.speech.texts[-3:]}")
        assert await call.wait_closed(60) == 0, call.errors()  # the queue had nobody: the switch ends it
    finally:
        await call.close()
    transfers = switch_host.events.executed(call.call_id or "", "transfer")
    assert transfers and transfers[0].headers.get("Application-Data") == "handoff XML default"
    assert transfers[0].headers.get("variable_hotline_handoff_reason") == "system_unavailable"
    assert switch_host.events.executed(call.call_id or "", "bridge"), "the operator queue rang"


def test_rasa_down_is_a_503_and_tickets_stay(stack: Stack, client: Client) -> None:
    before = client.request("GET", "/tmf-api/troubleTicket/v5/troubleTicket").body
    stack.stop({"rasa"})
    r = client.request("POST", "/api/chat/e2e-outage", {"event": "start"})
    assert r.status == 503 and r.body["reason"]
    after = client.request("GET", "/tmf-api/troubleTicket/v5/troubleTicket").body
    assert after == before
