"""Phone numbers as people say and type them → digits (issue 13 item 6).

Typed: "0571 8765 0001", "0571-87650001", "(0571) 8765.0001", "+86 139 1234 5678",
"区号0571，号码8765 0001", full-width digits. Said (recognised speech, or typed as
words): Chinese digit characters with 幺 (1), 两 (2), 〇, "三个八" (888) / "两个零" (00),
mixes of digits and characters; English "oh five seven one", "double eight", "triple
five". Pure standard library, Python 3.10+.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telnum.rules import NumberCheck, check_number

# Digit characters: 幺 (yāo) is how 1 is read in phone numbers, 两 is 2; 洞/拐/勾 are the
# radio words for 0/7/9.
DIGIT_CHARS = {
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
ENGLISH_DIGITS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_DIGIT_CLASS = "".join(sorted(DIGIT_CHARS))
_EN_WORDS = "|".join(ENGLISH_DIGITS)
_REPEAT_COUNT = {"两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_EN_REPEAT = {"double": 2, "triple": 3}
# Separators people put inside numbers: spaces, dashes, dots, brackets, commas.
SEPARATORS = r"\s\-‐—–－.,，、()（）"
_SEPARATOR_CHARS = " \t\n-‐—–－.,，、()（）"

# One pass over the text: the longest alternatives first.
_TOKEN = re.compile(
    rf"(?P<zrep>[{''.join(_REPEAT_COUNT)}])个(?P<zd>[{_DIGIT_CLASS}])"
    rf"|\b(?P<erep>double|triple)\s+(?P<ed>{_EN_WORDS}|oh|o|\d)\b"
    rf"|\b(?P<ew>{_EN_WORDS})\b"
    rf"|\b(?P<oh>oh|o)\b"
    rf"|(?P<ch>[{_DIGIT_CLASS}])",
    re.IGNORECASE,
)
_DIGIT_AHEAD = re.compile(rf"[{SEPARATORS}]*(?:[{_DIGIT_CLASS}]|(?:{_EN_WORDS}|oh|o|double|triple)\b)", re.IGNORECASE)


def _en_digit(word: str) -> str:
    low = word.lower()
    return "0" if low in ("oh", "o") else ENGLISH_DIGITS.get(low) or DIGIT_CHARS.get(low, "")


def normalise(text: str) -> tuple[str, list[tuple[int, int]]]:
    """The text with every spoken or typed digit as an ASCII digit, and for each character
    of the result the span of ``text`` it came from (for entity positions).

    "oh"/"o" is 0 only next to other digits ("oh, hello" keeps its "oh")."""
    out: list[str] = []
    origin: list[tuple[int, int]] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        for i in range(pos, m.start()):
            out.append(text[i])
            origin.append((i, i + 1))
        if m.group("zrep"):
            digits = DIGIT_CHARS[m.group("zd")] * _REPEAT_COUNT[m.group("zrep")]
        elif m.group("erep"):
            digits = _en_digit(m.group("ed")) * _EN_REPEAT[m.group("erep").lower()]
        elif m.group("ew"):
            digits = ENGLISH_DIGITS[m.group("ew").lower()]
        elif m.group("oh"):
            before = "".join(out).rstrip(_SEPARATOR_CHARS)
            after = _DIGIT_AHEAD.match(text, m.end())
            digits = "0" if (before[-1:].isdigit() or after) else m.group(0)
        else:
            digits = DIGIT_CHARS[m.group("ch")]
        out.append(digits)
        origin.extend([(m.start(), m.end())] * len(digits))
        pos = m.end()
    for i in range(pos, len(text)):
        out.append(text[i])
        origin.append((i, i + 1))
    return "".join(out), origin


_RUN = re.compile(rf"\d+(?:[{SEPARATORS}]*\d+)*")
_DATE = re.compile(r"(?:19|20)\d\d[-.－](?:0?[1-9]|1[0-2])[-.－](?:0?[1-9]|[12]\d|3[01])")
_GROUP = re.compile(r"\d+")


def extract_digits(text: str) -> str:
    """The longest run of digits in ``text`` (separators inside it dropped), as ASCII digits.

    Takes the longest run so that words like 一下 (“a moment”) next to a number do not
    leak a digit into it: "帮我查一下，电话是0571 8765 4321" → "057187654321".
    """
    norm, _ = normalise(text)
    runs = [re.sub(r"\D", "", m.group(0)) for m in _RUN.finditer(norm)]
    return max(runs, key=len, default="")


_KEY_WORDS = re.compile(r"^\s*(?:按键|按|press|key)?\s*(.*?)\s*(?:号键|键)?\s*$", re.IGNORECASE)
_ENGLISH_WORD = re.compile(rf"\b(?:{_EN_WORDS})\b", re.IGNORECASE)


def keys_in(text: str) -> str:
    """The keys a typed message stands for when it is nothing but keys: "1", "按一",
    "幺", "１", "one", "0571 8765 4321#" → digits (and a trailing #); otherwise ""."""
    match = _KEY_WORDS.match(text)
    body = match.group(1) if match else text
    if not body:
        return ""
    spelled = _ENGLISH_WORD.sub(lambda m: ENGLISH_DIGITS[m.group(0).lower()], body)
    if re.sub(rf"[{_DIGIT_CLASS}\s\-#*]", "", spelled):
        return ""  # other words around the digits: not a bare key press
    return "".join(DIGIT_CHARS.get(c, c) for c in spelled if c in DIGIT_CHARS or c in "#*")


@dataclass(frozen=True)
class FoundNumber:
    """A number in a text: where it is (indices into the original text), what digits it
    has, and whether it is a valid number (``check``)."""

    start: int
    end: int
    digits: str  # as said, "+" kept when there was one
    check: NumberCheck

    @property
    def canonical(self) -> str | None:
        return self.check.canonical


# An area code said apart from the number: "区号0571，号码8765 0001", "(0571)电话87650001".
_AREA_GAP = re.compile(r"^[^\d]{0,8}$")
MAX_NUMBER_DIGITS = 16  # 0086 + a 12-digit fixed line
MIN_DIGITS = 5  # shorter runs are words (一下, 一直, 两个人), not numbers


def find_numbers(text: str, local_area_code: str = "0571", min_digits: int = MIN_DIGITS) -> list[FoundNumber]:
    """Every phone number in ``text``, valid or not, in order.

    Digit groups separated only by spaces, dashes, dots, brackets or commas are split into
    numbers by taking, from each group on, the longest run of groups that is a valid
    number: "0571 8765 0001，139 1234 5678" is two numbers. Runs that are no valid number
    are kept (with the reason) when they have at least ``min_digits`` digits."""
    norm, origin = normalise(text)
    found: list[FoundNumber] = []
    for run in _RUN.finditer(norm):
        if _DATE.fullmatch(run.group(0)):
            continue  # 2026-12-07 is a day, not 2026 1207
        groups = [(g.start() + run.start(), g.end() + run.start(), g.group(0)) for g in _GROUP.finditer(run.group(0))]
        plus = norm[: run.start()].rstrip(" ").endswith("+")
        for first, last in _segment_run(run.group(0), [g[2] for g in groups], plus, local_area_code):
            digits = "".join(g[2] for g in groups[first:last])
            if first == 0 and plus:
                digits = "+" + digits
            start, end = groups[first][0], groups[last - 1][1]
            if first == 0 and plus:
                start = norm.rindex("+", 0, run.start())
            found.append(FoundNumber(origin[start][0], origin[end - 1][1], digits,
                                     check_number(digits, local_area_code)))
    found = _join_area_codes(text, found, local_area_code)
    return [n for n in found if n.check.ok or len(n.digits.lstrip("+")) >= min_digits]


_COMMA = re.compile(r"[,，、]")


def _segment_run(run: str, groups: list[str], plus: bool, area: str) -> list[tuple[int, int]]:
    """Commas split numbers ("0571 8765，139 1234 5678") unless a number was said across
    them ("0571，8765，0001"): the split that finds more whole numbers wins."""
    whole = _segment(groups, plus, area)
    parts = [len(_GROUP.findall(p)) for p in _COMMA.split(run)]
    if len(parts) == 1:
        return whole
    split: list[tuple[int, int]] = []
    offset = 0
    for count in parts:
        sub = groups[offset:offset + count]
        split += [(offset + a, offset + b) for a, b in _segment(sub, plus and offset == 0, area)]
        offset += count

    def whole_numbers(pieces: list[tuple[int, int]]) -> int:
        return sum(
            1 for a, b in pieces
            if len("".join(groups[a:b])) >= 10
            and check_number(("+" if plus and a == 0 else "") + "".join(groups[a:b]), area).ok
        )

    return split if whole_numbers(split) >= whole_numbers(whole) else whole


def _segment(groups: list[str], plus: bool, area: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    i, n = 0, len(groups)

    def valid(a: int, b: int) -> bool:
        digits = ("+" if plus and a == 0 else "") + "".join(groups[a:b])
        return check_number(digits, area).ok

    def ends(a: int) -> range:
        """The group ends worth trying from ``a``: no number has more than 16 digits
        (0086 + 12), so long runs (30 digits, "1 2 3 …" typed 1,000 times) stay linear."""
        b, count = a, 0
        while b < n and count + len(groups[b]) <= MAX_NUMBER_DIGITS:
            count += len(groups[b])
            b += 1
        return range(max(b, a + 1), a, -1)

    while i < n:
        best = next((j for j in ends(i) if valid(i, j)), None)
        if best is not None:
            out.append((i, best))
            i = best
            continue
        # No number starts here: skip a stray digit or two ("1 0571 8765 0001"), or what comes
        # before a whole number further on (a too-short number, then a mobile); else all of
        # it is one number that cannot be ("0111 2345 6789" is no 0571 2345 6789).
        later = next(
            (k for k in range(i + 1, n) for j in ends(k)
             if valid(k, j) and (sum(map(len, groups[i:k])) < 3 or sum(map(len, groups[k:j])) >= 10)),
            None,
        )
        out.append((i, later if later is not None else n))
        i = later if later is not None else n
    return out


def _join_area_codes(text: str, found: list[FoundNumber], area: str) -> list[FoundNumber]:
    out: list[FoundNumber] = []
    for number in found:
        prev = out[-1] if out else None
        if (
            prev is not None
            and re.fullmatch(r"0[1-9]\d{1,2}", prev.digits)
            and re.fullmatch(r"[2-9]\d{6,7}", number.digits)
            and _AREA_GAP.match(text[prev.end:number.start])
        ):
            joined = prev.digits + number.digits
            out[-1] = FoundNumber(prev.start, number.end, joined, check_number(joined, area))
            continue
        out.append(number)
    return out


def parse_number(text: str, local_area_code: str = "0571") -> NumberCheck:
    """The one number a text gives (a prompt that expects a number): the first valid one,
    else the longest invalid one with its reason, else ``empty``."""
    found = find_numbers(text, local_area_code, min_digits=1)
    for number in found:
        if number.check.ok:
            return number.check
    if found:
        return max(found, key=lambda n: len(n.digits)).check
    return NumberCheck("", error="empty")
