"""Several answers in one sentence, at any step (issue 13 items 1 and 2).

The NLU pipeline's number component (nlu/components/numbers.py) marks the numbers in what
the user said: ``fault_number`` and ``contact_number`` where the words around a number say
which it is, ``phone_number`` where they do not. This module turns them, with the symptom
the intent names, into the slots of the steps ahead (A2 fault number, A8 contact number
and symptom), so no step asks again for what it already has; the readbacks (V2, V6)
still happen. Pure functions: the forms call them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from actions.interpret import SYMPTOM_INTENTS, SYMPTOM_LABELS, UserInput
from telnum import CONTACT, FAULT, check_number, group_digits, numbers_with_roles

SlotDict = dict[str, Any]

ENTITY_ROLES = {"fault_number": FAULT, "contact_number": CONTACT, "phone_number": None}


@dataclass
class Said:
    """The numbers in one input, by role (values as the NLU gave them: canonical digits,
    or the digits said when the number cannot be valid)."""

    fault: str | None = None
    contact: str | None = None
    unclear: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.fault or self.contact or self.unclear)

    def any_valid(self, area: str) -> bool:
        return any(check_number(v, area).ok for v in [self.fault, self.contact, *self.unclear] if v)


def numbers_said(latest_message: Mapping[str, Any], user_input: UserInput, area: str) -> Said:
    """The numbers in the latest input: the NLU's entities, or (a model without the number
    component, a test) telnum over the text itself. Keypad keys are never sentences; typed
    digits are read like any text ("0571 8765 0001 139 1234 5678" is two numbers)."""
    said = Said()
    if user_input.silent or not user_input.text:  # keypad events carry no text (read_input)
        return said
    entities = [e for e in latest_message.get("entities") or [] if e.get("entity") in ENTITY_ROLES]
    if entities:
        pairs = [(ENTITY_ROLES[str(e["entity"])], str(e.get("value") or "")) for e in entities]
    else:
        pairs = [(r.role, r.number.canonical or r.number.digits) for r in numbers_with_roles(user_input.text, area)]
    for role, said_digits in pairs:
        if not said_digits:
            continue
        value = check_number(said_digits, area).canonical or said_digits
        if role == FAULT and said.fault is None:
            said.fault = value
        elif role == CONTACT and said.contact is None:
            said.contact = value
        elif role is None and value not in said.unclear:
            said.unclear.append(value)
    return said


def number_slots(slot: str, value: str, area: str) -> SlotDict | None:
    """``{slot: canonical, slot_display: grouped}`` for a valid number, else None."""
    checked = check_number(value, area)
    if not checked.canonical:
        return None
    return {slot: checked.canonical, f"{slot}_display": group_digits(checked.canonical)}


def already_valid(tracker_slots: Mapping[str, Any], slot: str, value: Any) -> bool:
    """A number slot filled earlier by a validator (an answer given ahead, then the form
    starts and Rasa validates what it finds filled): canonical digits with their readback."""
    return (
        isinstance(value, str)
        and value.isdigit()
        and tracker_slots.get(f"{slot}_display") == group_digits(value)
    )


def symptom_said(user_input: UserInput, lang: str) -> SlotDict:
    """A8 symptom named along the way ("0571 8765 0001 没有拨号音"): the category the intent
    names; "other" is not taken ahead (it would keep the whole sentence as the symptom)."""
    category = SYMPTOM_INTENTS.get(user_input.intent)
    if user_input.keys or not isinstance(category, str) or category == "other":
        return {}
    return {
        "symptom_category": category,
        "symptom_text": user_input.text,
        "symptom_label": SYMPTOM_LABELS[category][lang],
    }


def answers_ahead(said: Said, user_input: UserInput, lang: str, area: str, *, skip: set[str]) -> SlotDict:
    """The slots of later steps the input already answers (not those in ``skip``)."""
    values: SlotDict = {}
    if said.fault and "fault_number" not in skip:
        values.update(number_slots("fault_number", said.fault, area) or {})
    if said.contact and "contact_number" not in skip:
        values.update(number_slots("contact_number", said.contact, area) or {})
    if "symptom_category" not in skip:
        values.update(symptom_said(user_input, lang))
    return values


# Hesitation (item 2): said while thinking or checking the line is there. The prompt is
# said again (clarified); it is no failure toward A3's limit. Silence still is.
_HESITATIONS = {
    "喂", "喂喂", "喂喂喂", "你好", "您好", "喂你好", "喂您好", "在吗", "有人吗", "等一下", "等等",
    "等一等", "稍等", "稍等一下", "等一会", "等会", "等一会儿", "嗯", "恩", "呃", "额", "啊", "哦", "这个",
    "那个", "让我想想", "我想想", "我找一下", "我查一下", "什么", "啥",
    "hello", "hi", "hey", "wait", "hold on", "one moment", "just a moment", "a moment",
    "one second", "just a second", "hang on", "um", "uh", "er", "erm", "hmm", "what", "sorry",
    "pardon", "let me think", "let me check", "hello hello", "are you there",
}
# ... and the same said at more length ("hang on a sec", "稍等片刻", "让我想一下"): the keyword
# layer's rules marked `hesitation: true` in nlu/keywords.yml, one list for the NLU and the forms.
KEYWORDS_FILE = Path(__file__).resolve().parents[1] / "nlu" / "keywords.yml"


def hesitation_phrases(path: Path = KEYWORDS_FILE) -> re.Pattern[str]:
    rules = yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]
    patterns = [str(p) for rule in rules if rule.get("hesitation") for p in rule["any"]]
    return re.compile("|".join(patterns) or r"(?!)", re.IGNORECASE)


_HESITATION_PHRASE = hesitation_phrases()
_HESITATION_INTENTS = {"greet", "hesitate"}
_NOT_WORDS = re.compile(r"[\s，。,.!！?？~～、…]+")


def is_hesitation(user_input: UserInput) -> bool:
    """"喂？", "你好", "等一下", "嗯", "hello?", "wait" — and nothing else in the input."""
    if user_input.silent or user_input.keys:
        return False
    words = _NOT_WORDS.sub(" ", user_input.text.lower()).strip()
    if words in _HESITATIONS or words.replace(" ", "") in _HESITATIONS or _HESITATION_PHRASE.search(words):
        return True
    squashed = words.replace(" ", "")
    return user_input.intent in _HESITATION_INTENTS and len(squashed) <= 4 and not any(c.isdigit() for c in squashed)


def sort_out(said: Said, expected: str) -> tuple[str | None, str | None, list[str]]:
    """(fault, contact, unclear pair): a number without a cue is what the prompt asks for
    (``expected``); two without cues are unclear, and the dialogue asks which is which."""
    fault, contact = said.fault, said.contact
    unclear = list(said.unclear)
    if len(unclear) >= 2 and fault is None and contact is None:
        return None, None, unclear[:2]
    for value in unclear:
        if expected == CONTACT and contact is None:
            contact = value
        elif fault is None:
            fault = value
        elif contact is None:
            contact = value
    return fault, contact, []


def roles_question(pair: list[str], lang: str) -> SlotDict:
    """The slots for "which is which" (utter_ask_number_roles), asked once."""
    first, second = (group_digits(v) for v in pair)
    display = f"第一个 {first}，第二个 {second}" if lang == "zh" else f"first {first}, second {second}"
    # number_roles empty: fault_number_form asks it first (its first required slot).
    return {"unclear_numbers": " ".join(pair), "unclear_numbers_display": display, "number_roles": None}


_FIRST = re.compile(r"第一|头一|前一|前面|first", re.IGNORECASE)
_SECOND = re.compile(r"第二|后一|后面|second|last|other", re.IGNORECASE)


def which_of(user_input: UserInput, pair: list[str], said: Said) -> int | None:
    """Which of the two numbers the answer names as the faulty line: 1/2, "第一个", "the
    second", or one of the numbers said again."""
    if user_input.keys:
        key = user_input.keys.rstrip("#")
        return {"1": 0, "2": 1}.get(key)
    for value in [said.fault, *said.unclear]:
        if value in pair:
            return pair.index(value)
    if said.contact in pair:
        return 1 - pair.index(said.contact)
    if _FIRST.search(user_input.text):
        return 0
    if _SECOND.search(user_input.text):
        return 1
    return None
