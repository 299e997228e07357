"""Keypad collection per prompt (A2 number entry, V-prompt key choices, A11 '#')."""

from __future__ import annotations

from voice.dtmf import DigitCollector, KeyInput, KeyRules

DIGITS = KeyRules(kind="digits", max_digits=12, terminator="#", inter_digit_timeout_ms=5000)


def press_all(c: DigitCollector, keys: str, start_ms: float = 0.0, step_ms: float = 300.0) -> KeyInput | None:
    out = None
    for i, k in enumerate(keys):
        out = c.press(k, start_ms + i * step_ms)
    return out


def test_a2_hash_ends_the_number_and_is_passed_on() -> None:
    c = DigitCollector(DIGITS)
    assert press_all(c, "0571888") is None
    assert c.press("#", 5000) == KeyInput("0571888#", "terminator")


def test_star_deletes_the_last_digit() -> None:
    c = DigitCollector(DIGITS)
    assert press_all(c, "05719*1#") == KeyInput("05711#", "terminator")


def test_star_on_nothing_is_harmless() -> None:
    c = DigitCollector(DIGITS)
    assert press_all(c, "**1#") == KeyInput("1#", "terminator")


def test_max_digits_ends_without_hash() -> None:
    c = DigitCollector(KeyRules(kind="digits", max_digits=4))
    assert press_all(c, "1234") == KeyInput("1234", "max_digits")
    assert c.press("5", 9999) == KeyInput("1234", "max_digits")  # later keys change nothing


def test_inter_digit_timeout_sends_what_was_typed() -> None:
    c = DigitCollector(DIGITS)
    press_all(c, "0571", start_ms=1000, step_ms=200)  # last key at 1600
    assert c.deadline_ms() == 6600
    assert c.expire(6599) is None
    assert c.expire(6600) == KeyInput("0571", "inter_digit_timeout")


def test_everything_deleted_then_timeout_is_no_input() -> None:
    c = DigitCollector(DIGITS)
    press_all(c, "1*")
    assert c.expire(10_000) == KeyInput("", "no_input")


def test_no_key_yet_leaves_the_deadline_to_the_prompt() -> None:
    c = DigitCollector(DIGITS)
    assert c.deadline_ms() is None and c.expire(1e9) is None and not c.started


def test_choice_takes_the_first_key() -> None:
    c = DigitCollector(KeyRules(kind="choice"))
    assert c.press("2", 0) == KeyInput("2", "choice")
    assert c.deadline_ms() is None


def test_a_key_answers_a_free_speech_prompt_too() -> None:
    assert DigitCollector(KeyRules(kind="text")).press("1", 0) == KeyInput("1", "choice")


def test_recording_ends_on_hash_only() -> None:
    c = DigitCollector(KeyRules(kind="recording", terminator="#"))
    assert press_all(c, "123") is None
    assert c.press("#", 1) == KeyInput("#", "terminator")


def test_announcements_take_no_keys() -> None:
    c = DigitCollector(KeyRules(kind="none"))
    assert c.press("1", 0) is None and not c.started


def test_rules_from_the_dialogue_expectation() -> None:
    rules = KeyRules.from_expect({"kind": "digits", "max_digits": 12, "min_digits": 7, "terminator": "#",
                                  "inter_digit_timeout_ms": 4000, "keys": []})
    assert rules == KeyRules("digits", 12, "#", 4000)
    assert KeyRules.from_expect({}).kind == "none"


def test_unknown_keys_are_ignored() -> None:
    c = DigitCollector(DIGITS)
    assert c.press("x", 0) is None and not c.started
