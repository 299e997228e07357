"""Keypad collection for one prompt, as a pure state machine (no clock, no I/O).

The call session feeds it key presses and asks it when its next deadline is; the
dialogue's expectation (nlu/prompts.yml, design.md §3.3) sets the rules:

- ``digits``: up to ``max_digits``; ``#`` (the terminator) ends early; ``*`` deletes the
  last digit; after ``inter_digit_timeout_ms`` without a key what was typed is sent (the
  dialogue judges "too short", A2/A4); no key at all within the no-input timeout → none.
- ``choice``: the first key ends it (the dialogue decides whether it is a valid choice).
- ``recording``: ``#`` ends the recording; other keys are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

DTMF_KEYS = frozenset("0123456789*#ABCD")
EndReason = Literal["terminator", "max_digits", "choice", "inter_digit_timeout", "no_input"]


@dataclass(frozen=True)
class KeyRules:
    kind: str  # digits | choice | recording | text | none | wait
    max_digits: int | None = None
    terminator: str | None = "#"
    inter_digit_timeout_ms: int = 5000

    @classmethod
    def from_expect(cls, expect: Mapping[str, Any]) -> KeyRules:
        return cls(
            kind=str(expect.get("kind") or "none"),
            max_digits=expect.get("max_digits"),
            terminator=expect.get("terminator") or "#",
            inter_digit_timeout_ms=int(expect.get("inter_digit_timeout_ms") or 5000),
        )

    @property
    def accepts_keys(self) -> bool:
        # Free text/speech prompts still take a key: an answer by keypad is always allowed.
        return self.kind not in ("none", "wait")


@dataclass(frozen=True)
class KeyInput:
    """What the caller typed for this prompt: the digits as the dialogue gets them."""

    digits: str
    reason: EndReason


class DigitCollector:
    def __init__(self, rules: KeyRules) -> None:
        self.rules = rules
        self._digits: list[str] = []
        self._last_key_at_ms: float | None = None
        self.result: KeyInput | None = None

    @property
    def started(self) -> bool:
        return self._last_key_at_ms is not None

    @property
    def digits(self) -> str:
        return "".join(self._digits)

    def press(self, key: str, at_ms: float) -> KeyInput | None:
        """Feed one key; returns the result once the input is complete."""
        if self.result is not None or key not in DTMF_KEYS or not self.rules.accepts_keys:
            return self.result
        self._last_key_at_ms = at_ms
        kind = self.rules.kind
        if kind == "recording":
            if key == self.rules.terminator:
                self.result = KeyInput("#", "terminator")
            return self.result
        if kind != "digits":
            # A key choice, or a key pressed at a free-speech prompt: one key is the answer.
            self.result = KeyInput(key, "choice")
            return self.result
        if key == self.rules.terminator:
            self.result = KeyInput(self.digits + key, "terminator")
        elif key == "*":
            if self._digits:
                self._digits.pop()
        else:
            self._digits.append(key)
            if self.rules.max_digits is not None and len(self._digits) >= self.rules.max_digits:
                self.result = KeyInput(self.digits, "max_digits")
        return self.result

    def deadline_ms(self) -> float | None:
        """When, with no further key, the input ends by itself (None: the prompt's
        no-input timeout governs, the session owns that one)."""
        if self.result is not None or self._last_key_at_ms is None or self.rules.kind != "digits":
            return None
        return self._last_key_at_ms + self.rules.inter_digit_timeout_ms

    def expire(self, now_ms: float) -> KeyInput | None:
        deadline = self.deadline_ms()
        if deadline is not None and now_ms >= deadline:
            # "*" may have deleted everything: nothing typed counts as no input.
            self.result = KeyInput(self.digits, "inter_digit_timeout" if self._digits else "no_input")
        return self.result
