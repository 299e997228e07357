"""Which number in a sentence is the faulty line and which the contact (issue 13 item 1).

"0571 8765 0001 没有拨号音，联系电话 139 1234 5678": the words around each number say
what it is. A number's cue is in the words just before it (back to the previous number
or the last punctuation) or just after it (up to the next punctuation or number):
contact words (联系电话, 回电, "call me on" …) or fault words (故障电话, 坏了, 没有拨号音,
"broken" …). A number with no cue takes the other role when the other number has one;
two numbers without cues stay unclear, and the dialogue asks which is which (once).
Pure standard library, Python 3.10+.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telnum.spoken import FoundNumber, find_numbers

FAULT = "fault"
CONTACT = "contact"

CONTACT_CUES = (
    "联系电话", "联系号码", "联系方式", "联系我", "联系人", "联络", "回电", "回拨", "打回", "找我",
    "打我", "打这个", "通知我",
    "contact", "call me", "call back", "callback", "reach me", "ring me", "my mobile", "my cell",
    "text me",
)
FAULT_CUES = (
    "故障", "坏了", "坏掉", "坏的", "报修", "报障", "申告", "有问题", "出问题", "不通", "不能用", "用不了", "打不",
    "没有拨号音", "没拨号音", "没声音", "没有声音", "杂音", "断线", "断网", "掉线", "宽带", "座机", "家里电话",
    "家里的电话", "我家电话", "家的电话", "固话", "固定电话",
    "fault", "broken", "not working", "doesn't work", "does not work", "dead", "no dial tone",
    "noise", "out of order", "my line", "the line", "landline", "home phone",
)
# Cues that name the number after them (联系电话 139…, "my line is …"); the others (坏了,
# "broken") say something of the number before them.
LEADING_CUES = CONTACT_CUES + (
    "故障", "报修", "报障", "申告", "座机", "家里电话", "家里的电话", "我家电话", "家的电话", "固话", "固定电话",
    "my line", "the line", "landline", "home phone",
)
_PUNCT = re.compile(r"[，。,.;；!！?？\n]")
# What may stand between a cue and the number it names: "联系电话：", "call me on", "是".
_LEAD_IN = re.compile(r"[\s:：是为号码电话\-(（]*|\s*(is|on|at|number)?\s*:?\s*")


@dataclass(frozen=True)
class NumberRole:
    number: FoundNumber
    role: str | None  # "fault" | "contact" | None (no cue)


def _cue(window: str) -> str | None:
    low = window.lower()
    hits = [(low.rfind(c), CONTACT) for c in CONTACT_CUES if c in low]
    hits += [(low.rfind(c), FAULT) for c in FAULT_CUES if c in low]
    if not hits:
        return None
    return max(hits)[1]  # the nearest word to the number wins


def _cue_before(text: str) -> str | None:
    """The last cue before the number, within its clause."""
    parts = _PUNCT.split(text)
    return _cue(parts[-1]) if parts else None


def _cue_after(text: str) -> str | None:
    """A cue right after the number, within its clause: "0571 8765 0001坏了"."""
    clause = _PUNCT.split(text, maxsplit=1)[0]
    low = clause.lower()
    hits = [(low.find(c), CONTACT) for c in CONTACT_CUES if c in low]
    hits += [(low.find(c), FAULT) for c in FAULT_CUES if c in low]
    return min(hits)[1] if hits else None


def _without_next_cue(between: str) -> str:
    """The words between two numbers, less a cue that leads into the second one:
    in "0571 8765 0001 联系电话 139 1234 5678", 联系电话 names the mobile, not the line."""
    low = between.lower()
    for cue in sorted(LEADING_CUES, key=len, reverse=True):
        at = low.rfind(cue)
        if at >= 0 and _LEAD_IN.fullmatch(low[at + len(cue):]):
            return between[:at]
    return between


def numbers_with_roles(text: str, local_area_code: str = "0571") -> list[NumberRole]:
    """The numbers in ``text`` (telnum.find_numbers), each with the role its words give it.

    The same number said twice counts once."""
    found: list[FoundNumber] = []
    for number in find_numbers(text, local_area_code):
        key = number.canonical or number.digits
        if any((n.canonical or n.digits) == key for n in found):
            continue
        found.append(number)
    roles: list[str | None] = []
    for i, number in enumerate(found):
        start = found[i - 1].end if i else 0
        end = found[i + 1].start if i + 1 < len(found) else len(text)
        before = _cue_before(text[start:number.start])
        after = text[number.end:end]
        if i + 1 < len(found):
            after = _without_next_cue(after)
        roles.append(before if before is not None else _cue_after(after))
    if len(found) == 2:
        a, b = roles
        if a is None and b is not None:
            roles[0] = CONTACT if b == FAULT else FAULT
        elif b is None and a is not None:
            roles[1] = CONTACT if a == FAULT else FAULT
        elif a is not None and a == b:
            roles = [None, None]  # both called the same: unclear
    return [NumberRole(n, r) for n, r in zip(found, roles, strict=True)]
