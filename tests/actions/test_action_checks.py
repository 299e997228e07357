"""The Rasa server's check of action server answers (nlu/channels/action_checks.py):
the same verdicts and errors as Rasa's own, with the schema compiled once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "nlu"))

from channels import action_checks  # noqa: E402
from jsonschema import ValidationError  # noqa: E402
from rasa.core.actions.action import RemoteAction  # noqa: E402

GOOD = {"events": [{"event": "slot", "name": "fault_number", "value": "057187650001"}],
        "responses": [{"response": "utter_ask_fault_number"}]}
BAD = [{"events": "not a list"}, {"events": [{"event": "slot", "timestamp": "noon"}]}, {"events": [{"no": "event"}]}]


@pytest.fixture
def action() -> RemoteAction:
    return RemoteAction("action_check_line", None)


def rasa_verdict(action: RemoteAction, result: dict) -> str:
    try:
        return "ok" if action._validate_action_result(result) else "false"
    except ValidationError as e:
        return e.message


def test_the_compiled_check_agrees_with_rasas_own(action: RemoteAction) -> None:
    before = {i: rasa_verdict(action, r) for i, r in enumerate([GOOD, *BAD])}
    assert before[0] == "ok" and all("Failed to validate Action server response" in m for m in
                                     list(before.values())[1:])
    action_checks.install()
    action_checks.install()  # once is enough: a second call changes nothing
    assert getattr(RemoteAction._validate_action_result, action_checks._MARK)
    after = {i: rasa_verdict(action, r) for i, r in enumerate([GOOD, *BAD])}
    assert after == before
