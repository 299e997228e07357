"""Action tests run in Rasa's virtualenv (.venv-rasa, Python 3.10): a tracker in, events out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rasa_sdk import Tracker  # noqa: E402
from rasa_sdk.executor import CollectingDispatcher  # noqa: E402

DOMAIN: dict[str, Any] = {"slots": {}, "forms": {}}
SETTINGS = {"max_failures": 3, "on_max_failures": "handoff_if_open", "repeat_report_limit": 3, "language": "zh"}


def make_tracker(
    text: str = "",
    intent: str = "",
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    active_loop: str | None = None,
    channel: str = "webchat",
) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "entities": entities or [],
        "metadata": {"channel": channel},
    }
    user_event = {"event": "user", "text": text, "parse_data": latest, "input_channel": channel}
    return Tracker(
        sender_id="conv-test-1",
        slots={**SETTINGS, **(slots or {})},
        latest_message=latest,
        events=(events or []) + [user_event],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def keys(digits: str, **kw: Any) -> Tracker:
    return make_tracker(f'/dtmf{{"digits":"{digits}"}}', "dtmf", [{"entity": "digits", "value": digits}], **kw)


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()
