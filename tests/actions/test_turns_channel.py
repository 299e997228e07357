"""nlu/channels/turns.py (Rasa's venv): a custom action that cannot run aborts the whole
message (nothing saved half-done), a rejection stays Rasa's own flow, and the saved
conversation says its last input and what was said since (issue 14)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "nlu"))

from channels import turns  # noqa: E402
from rasa.core.actions.action import ActionExecutionRejection  # noqa: E402


def user(text: str, message_id: str, intent: str) -> dict[str, Any]:
    return {"event": "user", "text": text, "message_id": message_id, "parse_data": {"intent": {"name": intent}}}


def bot(prompt: str, text: str) -> dict[str, Any]:
    return {"event": "bot", "text": text, "metadata": {"utter_action": prompt}, "data": {"custom": None}}


def test_the_last_input_and_what_was_said_since() -> None:
    events = [user("/start", "m1", "start"), bot("utter_ask_menu_choice", "menu"),
              {"event": "action", "name": "action_listen"},
              user('/dtmf{"digits": "1"}', "m2", "dtmf"), {"event": "slot", "name": "x", "value": 1},
              bot("utter_ask_fault_number", "number?")]
    state = turns.resume_state(events)
    assert state["message_id"] == "m2"
    assert state["messages"] == [{"prompt": "utter_ask_fault_number", "text": "number?", "custom": None,
                                  "buttons": None}]


def test_the_channels_own_polls_are_not_inputs() -> None:
    events = [user('/dtmf{"digits": "1"}', "m3", "dtmf"), bot("utter_line_test_wait", "wait"),
              user("/line_test_poll", "p1", "line_test_poll"), bot("utter_ask_contact_number", "V5")]
    state = turns.resume_state(events)
    assert state["message_id"] == "m3" and [m["prompt"] for m in state["messages"]] == [
        "utter_line_test_wait", "utter_ask_contact_number"]
    assert turns.resume_state([]) == {"message_id": None, "messages": []}


class FakeAction:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def name(self) -> str:
        return "action_submit_report"

    async def run(self, *args: Any) -> list[Any]:
        if self.error is not None:
            raise self.error
        return ["event"]


def test_an_action_that_cannot_run_aborts_the_message_and_a_rejection_does_not() -> None:
    turns.install(FakeAction)
    turns.install(FakeAction)  # once only

    async def run(error: BaseException | None) -> Any:
        return await FakeAction(error).run()

    assert asyncio.run(run(None)) == ["event"]
    for failure in (aiohttp.ClientConnectionError("reset"), asyncio.TimeoutError(), RuntimeError("500")):
        with pytest.raises(turns.TurnAborted):
            asyncio.run(run(failure))
    with pytest.raises(ActionExecutionRejection):
        asyncio.run(run(ActionExecutionRejection("validate_x")))
    assert not issubclass(turns.TurnAborted, Exception), "Rasa's processor must not swallow it"
