"""telnum: phone numbers as people say and type them, and what a valid number is.

One place for the number rules that the bot (bot/), the voice gateway (voice/), the
action server (actions/, Rasa's Python 3.10 venv) and the NLU pipeline
(nlu/components/) use. Pure standard library; Python 3.10 and 3.11.
"""

from telnum.roles import CONTACT, FAULT, NumberRole, numbers_with_roles
from telnum.rules import (
    BAD_PREFIX,
    EMPTY,
    TOO_LONG,
    TOO_SHORT,
    NumberCheck,
    check_number,
    group_digits,
    mask_number,
)
from telnum.spoken import (
    DIGIT_CHARS,
    ENGLISH_DIGITS,
    FoundNumber,
    extract_digits,
    find_numbers,
    keys_in,
    normalise,
    parse_number,
)

__all__ = [
    "BAD_PREFIX", "CONTACT", "FAULT", "NumberRole", "numbers_with_roles", "DIGIT_CHARS", "EMPTY", "ENGLISH_DIGITS", "TOO_LONG", "TOO_SHORT",
    "FoundNumber", "NumberCheck", "check_number", "extract_digits", "find_numbers",
    "group_digits", "keys_in", "mask_number", "normalise", "parse_number",
]
