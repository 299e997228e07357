"""Phone-number handling shared by the actions (Python 3.10, Rasa's venv) and the bot.

Pure standard library on purpose: the action server and the bot run in different
virtualenvs and both import this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Spoken or typed digit words: 幺 (yāo) is how 1 is read in phone numbers, 两 is 2.
_DIGIT_CHARS = {
    **{str(d): str(d) for d in range(10)},
    **{chr(0xFF10 + d): str(d) for d in range(10)},  # full-width ０-９
    "零": "0", "〇": "0", "○": "0", "洞": "0",
    "一": "1", "幺": "1", "壹": "1",
    "二": "2", "两": "2", "贰": "2",
    "三": "3", "叁": "3",
    "四": "4", "肆": "4",
    "五": "5", "伍": "5",
    "六": "6", "陆": "6",
    "七": "7", "柒": "7", "拐": "7",
    "八": "8", "捌": "8",
    "九": "9", "玖": "9", "勾": "9",
}
_ENGLISH_DIGITS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_DIGIT_CLASS = "".join(sorted(_DIGIT_CHARS))
# Separators people put inside numbers: spaces, dashes, dots, brackets, commas.
_RUN = re.compile(rf"[{_DIGIT_CLASS}](?:[\s\-‐—–.,，、()（）]*[{_DIGIT_CLASS}])*")
_ENGLISH_WORD = re.compile(r"\b(?:{})\b".format("|".join(_ENGLISH_DIGITS)), re.IGNORECASE)


def extract_digits(text: str) -> str:
    """The longest run of digits in ``text``, as ASCII digits.

    Takes the longest run so that words like 一下 (“a moment”) next to a number do not
    leak a digit into it: "帮我查一下，电话是0571 8765 4321" → "057187654321".
    """
    text = _ENGLISH_WORD.sub(lambda m: _ENGLISH_DIGITS[m.group(0).lower()], text)
    runs = [_to_ascii(m.group(0)) for m in _RUN.finditer(text)]
    return max(runs, key=len, default="")


_KEY_WORDS = re.compile(r"^\s*(?:按键|按|press|key)?\s*(.*?)\s*(?:号键|键)?\s*$", re.IGNORECASE)


def keys_in(text: str) -> str:
    """The keys a typed message stands for when it is nothing but keys: "1", "按一",
    "幺", "１", "one", "0571 8765 4321#" → digits (and a trailing #); otherwise ""."""
    match = _KEY_WORDS.match(text)
    body = match.group(1) if match else text
    if not body:
        return ""
    spelled = _ENGLISH_WORD.sub(lambda m: _ENGLISH_DIGITS[m.group(0).lower()], body)
    if re.sub(rf"[{_DIGIT_CLASS}\s\-#*]", "", spelled):
        return ""  # other words around the digits: not a bare key press
    keys = "".join(_DIGIT_CHARS.get(c, c) for c in spelled if c in _DIGIT_CHARS or c in "#*")
    return keys


def _to_ascii(run: str) -> str:
    return "".join(_DIGIT_CHARS[c] for c in run if c in _DIGIT_CHARS)


@dataclass(frozen=True)
class NumberCheck:
    """The result of checking digits as a phone number.

    ``error`` is a reason code the dialogue can speak (``too_short``, ``too_long``,
    ``invalid``); ``canonical`` is set when there is no error.
    """

    digits: str
    canonical: str | None = None
    kind: str | None = None  # "mobile" | "fixed"
    error: str | None = None


def check_number(digits: str, local_area_code: str = "0571") -> NumberCheck:
    """A2: fixed lines with or without area code, and mobiles.

    - 11 digits starting with 1: a mobile number (an optional 86 / 0086 country code is dropped);
    - starting with 0: area code (3 or 4 digits with the 0) and a 7–8 digit local number;
    - 7–8 digits not starting with 0 or 1: a local fixed-line number, the local area code is added.
    """
    d = digits
    for country in ("0086", "86"):
        if d.startswith(country) and len(d) - len(country) == 11 and d[len(country)] == "1":
            d = d[len(country):]
    if not d:
        return NumberCheck(digits, error="empty")
    if d[0] == "1":
        if len(d) == 11:
            return NumberCheck(digits, canonical=d, kind="mobile")
        return NumberCheck(digits, error="too_short" if len(d) < 11 else "too_long")
    if d[0] == "0":
        if len(d) < 10:
            return NumberCheck(digits, error="too_short")
        if len(d) > 12:
            return NumberCheck(digits, error="too_long")
        return NumberCheck(digits, canonical=d, kind="fixed")
    if len(d) < 7:
        return NumberCheck(digits, error="too_short")
    if len(d) > 8:
        return NumberCheck(digits, error="too_long")
    return NumberCheck(digits, canonical=local_area_code + d, kind="fixed")


def group_digits(number: str) -> str:
    """For display and readback: 057187654321 → "0571 8765 4321", 13800138000 → "138 0013 8000"."""
    if number.startswith("1") and len(number) == 11:
        parts = [number[:3], number[3:7], number[7:]]
    elif number.startswith("0") and len(number) > 8:
        area = 3 if number[1] in "12" else 4  # 010, 02x are 3-digit area codes
        rest = number[area:]
        parts = [number[:area], rest[:-4], rest[-4:]] if len(rest) > 4 else [number[:area], rest]
    else:
        parts = [number[i:i + 4] for i in range(0, len(number), 4)]
    return " ".join(p for p in parts if p)


def mask_number(number: str) -> str:
    """For logs: never a full phone number. 13800138000 → 138****8000."""
    if len(number) <= 4:
        return "*" * len(number)
    keep_head = 3 if len(number) >= 9 else 1
    return number[:keep_head] + "*" * (len(number) - keep_head - 4) + number[-4:]
