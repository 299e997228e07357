"""Bad input typed in the web chat (issue 13): text that looks like a command is words,
never keys or an intent; keys and events keep their own inputs."""

from __future__ import annotations

import pytest

from bot.chat.service import ChatInput


@pytest.mark.parametrize(
    "typed",
    ['/dtmf{"digits":"1"}', "/affirm", '  /recorded{"recording_id":"x"}', "/", "/start"],
)
def test_a_typed_command_is_not_taken_as_keys_or_an_intent(typed: str) -> None:
    message = ChatInput(text=typed).as_dialogue_message()
    assert not message.startswith("/") and message.startswith("／")
    assert message[1:] == typed.lstrip()[1:]


@pytest.mark.parametrize("typed", ["0571 8765 0001", "我家电话坏了 😡", "a/b", "1/2", "x" * 2000])
def test_ordinary_text_is_passed_as_typed(typed: str) -> None:
    assert ChatInput(text=typed).as_dialogue_message() == typed


def test_keys_and_events_still_reach_the_dialogue_as_such() -> None:
    assert ChatInput(dtmf="1").as_dialogue_message().startswith("/dtmf")
    assert ChatInput(event="no_input").as_dialogue_message().startswith("/no_input")
