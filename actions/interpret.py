"""What the caller's latest input means at a prompt. Pure functions: the forms call them.

Inputs arrive as keypad events (``/dtmf{"digits":"1"}``), silence (``/no_input``) or text
(typed, or recognised speech). A typed "1" means the same as pressing 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from telnum import extract_digits, keys_in

# Reasons a prompt is asked again; each is a response the dialogue speaks.
NO_INPUT = "utter_no_input"
NOT_UNDERSTOOD = "utter_not_understood"
INVALID_CHOICE = "utter_invalid_choice"

_UNCLEAR_INTENTS = {"nlu_fallback", "out_of_scope"}
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class UserInput:
    intent: str
    text: str
    keys: str  # keypad keys pressed, or a bare key string typed ("1", "按2", "0571…#")
    silent: bool

    @property
    def digits(self) -> str:
        """Digits carried by keys or text (Chinese numerals, 幺, spaces and dashes allowed)."""
        if self.keys:
            return self.keys.replace("#", "").replace("*", "")
        return extract_digits(self.text)


def read_input(latest_message: Mapping[str, Any]) -> UserInput:
    intent = ((latest_message.get("intent") or {}).get("name")) or ""
    text = latest_message.get("text") or ""
    if intent == "no_input":
        return UserInput(intent, "", "", silent=True)
    keys = ""
    if intent == "dtmf":
        for entity in latest_message.get("entities") or []:
            if entity.get("entity") == "digits":
                keys = str(entity.get("value") or "")
        if not keys and not text.startswith("/"):
            keys = keys_in(text)
        text = "" if text.startswith("/") else text
    else:
        keys = keys_in(text)
    if intent == "dtmf" and not keys and not text:
        return UserInput(intent, "", "", silent=True)  # an empty key event: nothing entered
    return UserInput(intent, text, keys, silent=False)


Choice = str | bool


@dataclass(frozen=True)
class Rejection:
    response: str  # what the dialogue says before asking again
    detail: str = ""


def choose(
    user_input: UserInput,
    keys: Mapping[str, Choice],
    intents: Mapping[str, Choice] | None = None,
) -> Choice | Rejection:
    """A menu choice by key, typed key or intent; otherwise why it was rejected."""
    if user_input.silent:
        return Rejection(NO_INPUT)
    if user_input.keys:
        key = user_input.keys.rstrip("#")
        return keys[key] if key in keys else Rejection(INVALID_CHOICE)
    if intents and user_input.intent in intents:
        return intents[user_input.intent]
    return Rejection(NOT_UNDERSTOOD)


YES_NO_KEYS: dict[str, Choice] = {"1": True, "2": False}
YES_NO_INTENTS: dict[str, Choice] = {"affirm": True, "deny": False, "retry": False}
# For the offers (A7 human, V7 message, V11 more services) "不用了谢谢"/"bye" is a polite no.
OFFER_INTENTS: dict[str, Choice] = {**YES_NO_INTENTS, "goodbye": False}


SYMPTOM_KEYS: dict[str, Choice] = {
    "1": "no_dial_tone",
    "2": "noise",
    "3": "cannot_call_out",
    "4": "cannot_receive",
    "5": "broadband_down",
    "6": "other",
}
SYMPTOM_INTENTS: dict[str, Choice] = {
    "symptom_no_dial_tone": "no_dial_tone",
    "symptom_noise": "noise",
    "symptom_cannot_call_out": "cannot_call_out",
    "symptom_cannot_receive": "cannot_receive",
    "symptom_broadband_down": "broadband_down",
    "symptom_other": "other",
}
SYMPTOM_LABELS = {
    "no_dial_tone": {"zh": "没有拨号音", "en": "no dial tone"},
    "noise": {"zh": "有杂音", "en": "noise on the line"},
    "cannot_call_out": {"zh": "打不出去", "en": "cannot call out"},
    "cannot_receive": {"zh": "打不进来", "en": "cannot receive calls"},
    "broadband_down": {"zh": "宽带断线", "en": "broadband down"},
    "other": {"zh": "其他故障", "en": "another fault"},
}


def symptom_from(user_input: UserInput) -> str | Rejection:
    """A8 symptom: a menu key, a recognised symptom, or a description kept as "other".

    Text the NLU could not place is still a description when it looks like words (process.md
    note 3: kept verbatim); keyboard mash and off-topic talk are asked again.
    """
    choice = choose(user_input, SYMPTOM_KEYS, SYMPTOM_INTENTS)
    if not isinstance(choice, Rejection):
        return str(choice)
    if user_input.silent or user_input.keys:
        return choice
    # Words the NLU placed elsewhere ("电话不太正常" as report_fault, "以上都不是" as deny)
    # still describe a fault: kept verbatim as "other".
    if user_input.intent in ("nlu_fallback", "report_fault", "deny") and _looks_like_words(user_input.text):
        return "other"
    return choice


def _looks_like_words(text: str) -> bool:
    return len(_CJK.findall(text)) >= 3 or len(re.findall(r"[A-Za-z]{3,}", text)) >= 3


def is_unclear(user_input: UserInput) -> bool:
    return user_input.intent in _UNCLEAR_INTENTS
