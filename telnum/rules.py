"""What a valid Chinese phone number is (A2, A4 V3), how it is grouped for a readback and
masked for a log.

Pure standard library, Python 3.10+: the action server (Rasa's venv), the Rasa server's
NLU component, the bot and the voice gateway all import it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Reasons a number is refused; each has a response the dialogue speaks (nlu/domain).
EMPTY = "empty"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
BAD_PREFIX = "bad_prefix"  # V3: no number starts like that


@dataclass(frozen=True)
class NumberCheck:
    """The result of checking digits as a phone number.

    ``error`` is a reason code the dialogue can speak (``empty``, ``too_short``,
    ``too_long``, ``bad_prefix``); ``canonical`` is set when there is no error.
    """

    digits: str
    canonical: str | None = None
    kind: str | None = None  # "mobile" | "fixed"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.canonical is not None


def _country_stripped(d: str, plus: bool) -> str:
    """Drop the country code 86 (+86, 0086, or a bare 86 in front of a whole number).

    What follows it is a mobile (11 digits from 1) or a fixed line whose area code lost
    its 0 (+86 571 …, +86 10 …), or kept it (+86 0571 …)."""
    for country in ("0086", "86"):
        if not d.startswith(country):
            continue
        rest = d[len(country):]
        explicit = plus or country == "0086"
        if len(rest) == 11 and rest[0] == "1" and rest[1] in "3456789":
            return rest
        if explicit and rest[:1] == "0":
            return rest
        if explicit and rest[:1] in "123456789" and len(rest) >= 9:
            return "0" + rest
        if len(rest) in (10, 11) and rest[0] in "23456789":
            return "0" + rest  # 86 571 8765 0001 without the +
    return d


def check_number(digits: str, local_area_code: str = "0571") -> NumberCheck:
    """A2: fixed lines with or without area code, and mobiles; A4/V3: prefixes that cannot be.

    - 11 digits starting with 13–19: a mobile number (+86 / 0086 / 86 in front is dropped);
    - starting with 0: a 3-digit area code (010, 02x) and an 8-digit local number, or a
      4-digit area code (03xx–09xx) and a 7–8 digit local number; a local number never
      starts with 0 or 1;
    - 7–8 digits starting with 2–9: a local fixed-line number, the local area code is added.
    """
    plus = digits.startswith("+")
    raw = digits[1:] if plus else digits
    d = _country_stripped(raw, plus)
    if not d:
        return NumberCheck(digits, error=EMPTY)
    if d[0] == "1":
        if len(d) < 11:
            return NumberCheck(digits, error=TOO_SHORT)
        if len(d) > 11:
            return NumberCheck(digits, error=TOO_LONG)
        if d[1] not in "3456789":
            return NumberCheck(digits, error=BAD_PREFIX)
        return NumberCheck(digits, canonical=d, kind="mobile")
    if d[0] == "0":
        if len(d) > 1 and d[1] == "0":
            return NumberCheck(digits, error=BAD_PREFIX)  # 00…: an international call
        three = len(d) > 1 and d[1] in "12"
        if three and len(d) > 2 and d[:3] not in ("010",) and d[1] == "1":
            return NumberCheck(digits, error=BAD_PREFIX)  # 011–019 are no area codes
        low, high = (11, 11) if three else (11, 12)
        if len(d) < low:
            return NumberCheck(digits, error=TOO_SHORT)
        if len(d) > high:
            return NumberCheck(digits, error=TOO_LONG)
        local = d[3:] if three else d[4:]
        if local[0] in "01":
            return NumberCheck(digits, error=BAD_PREFIX)
        return NumberCheck(digits, canonical=d, kind="fixed")
    if len(d) < 7:
        return NumberCheck(digits, error=TOO_SHORT)
    if len(d) > 8:
        return NumberCheck(digits, error=TOO_LONG)
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
