"""Issue 13, as it will be checked: multi-turn conversations written as people have them
(tests/fixtures/conversations/natural.yml), typed through /api/chat on the real stack
(Rasa with the keyword layer and the number component, the action server, the store).
After each turn the bot's next prompt is compared with what the process says comes next;
at the end, the stored ticket's fault number, contact number and symptom with what the
user meant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Client, Conversation

pytestmark = pytest.mark.stack

CORPUS = yaml.safe_load((Path(__file__).resolve().parents[1] / "fixtures" / "conversations" / "natural.yml")
                        .read_text(encoding="utf-8"))["conversations"]


@pytest.mark.parametrize("script", CORPUS, ids=[c["name"] for c in CORPUS])
def test_a_natural_conversation_ends_with_what_the_user_meant(client: Client, script: dict[str, Any]) -> None:
    c = Conversation(client, script["language"])
    for number, turn in enumerate(script["turns"], start=1):
        assert isinstance(turn.get("say", ""), str), f"turn {number}: quote the text (YAML reads yes/no as true/false)"
        r = c.keys(turn["keys"]) if "keys" in turn else c.say(turn["say"])
        said = turn.get("say") or f"key {turn['keys']}"
        expect = turn["expect"] if isinstance(turn["expect"], list) else [turn["expect"]]
        assert r.prompts[-len(expect):] == expect, f"turn {number} ({said}): {r.prompts}: {r.text}"
        for words in turn.get("says") or []:
            assert words in r.text, f"turn {number} ({said}): {words!r} not in {r.text!r}"
    stored = script["stored"]
    tickets = client.tickets(relatedEntity_id=stored["fault"])
    assert len(tickets) == 1, tickets
    chars = {ch["name"]: ch["value"] for ch in tickets[0]["troubleTicketCharacteristic"]}
    assert (chars["contactNumber"], chars["symptomCategory"]) == (stored["contact"], stored["symptom"])
