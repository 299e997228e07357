"""Text as it should be spoken on a phone line, and cut into sentences for pipelining.

Both functions are pure (no I/O, no state) so they are unit-tested exhaustively.

- ``spoken_form``: phone numbers (runs of >= 3 digits, spaces or dashes allowed between
  digits) are read digit by digit, grouped with a pause; in Chinese 1 is 幺 and 0 is 零
  in such readback only. Short numbers are cardinals in Chinese (按1 → 按一) and left
  alone in English (Piper reads "press 1" well). ``#``/``*`` become words.
- ``split_sentences``: cut after 。！？；!?. and, for long pieces, at commas, never
  inside a digit run, so the first piece is short and plays while the rest is made.
"""

from __future__ import annotations

import re

from bot.chat.prompts import Language

# Full-width forms typed by Chinese users or designers are read like ASCII ones.
_FULLWIDTH = str.maketrans("０１２３４５６７８９＃＊－", "0123456789#*-")

_ZH_READBACK = "零幺二三四五六七八九"  # 幺: unambiguous 1 on a noisy phone line
_ZH_PLAIN = "零一二三四五六七八九"
_EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

_SPACE = "[ \u00a0\u3000]"
# Between two digits of one number: one space, or a dash with optional spaces around it.
_DIGIT_SEP = rf"(?:{_SPACE}?[-\u2010-\u2014]{_SPACE}?|{_SPACE})"
# A decimal ("3.5") or a digit run; the decimal alternative wins where both match.
_NUMBER = re.compile(rf"(?P<dec>[0-9]+\.[0-9]+(?![0-9]))|(?P<run>[0-9](?:{_DIGIT_SEP}?[0-9])*)")
_GROUP_SPLIT = re.compile(_DIGIT_SEP)
_SYMBOL_ZH = re.compile(r"([#*])号?")
_SYMBOL_EN = re.compile(r"[#*]")

# Chinese units after which a short number (<= 4 digits, no separators) is a quantity,
# read as a cardinal ("120分钟" → 一百二十分钟), not digit by digit.
_ZH_UNIT = re.compile(r"(?:元|块|分钟|小时|天|秒|个|次|位|条|米|公里|岁|%|％)")
# Measure words before which 2 is 两 ("2小时" → 两小时).
_ZH_LIANG = re.compile(r"(?:个|次|天|小时|分钟|位|条|种|秒)")

MIN_READBACK_DIGITS = 3


def zh_cardinal(n: int) -> str:
    """0–9999 as a Chinese cardinal (一千零五, 一百一十, 十二); larger read digit by digit."""
    if n < 0 or n > 9999:
        return "".join(_ZH_PLAIN[int(d)] for d in str(abs(n)))
    if n == 0:
        return "零"
    units = ((1000, "千"), (100, "百"), (10, "十"), (1, ""))
    out: list[str] = []
    zero_pending = False
    for value, name in units:
        d = n // value % 10
        if d == 0:
            if out:
                zero_pending = True
            continue
        if zero_pending:
            out.append("零")
            zero_pending = False
        out.append(_ZH_PLAIN[d] + name)
    text = "".join(out)
    # 10–19 are 十, 十一 … (not 一十一) when they stand alone.
    return text[1:] if 10 <= n <= 19 else text


def _groups(digits_with_seps: str) -> list[str]:
    groups = [g for g in _GROUP_SPLIT.split(digits_with_seps) if g]
    if len(groups) > 1:
        return groups
    d = groups[0]
    n = len(d)
    # No separators typed: group as a Chinese listener expects (mobile 3-4-4, local 4-4).
    if n == 11 and d.startswith("1"):
        return [d[:3], d[3:7], d[7:]]
    if n == 8:
        return [d[:4], d[4:]]
    if n == 7:
        return [d[:3], d[3:]]
    if n <= 6:
        return [d]
    return [d[i : i + 4] for i in range(0, n, 4)]


def _readback(run: str, language: Language) -> str:
    groups = _groups(run)
    if language == "zh":
        return "，".join("".join(_ZH_READBACK[int(c)] for c in g) for g in groups)
    return ", ".join(" ".join(_EN_DIGITS[int(c)] for c in g) for g in groups)


def _zh_number(m: re.Match[str], text: str) -> str:
    after = text[m.end() :]
    if m.group("dec") is not None:
        whole, frac = m.group("dec").split(".")
        head = zh_cardinal(int(whole)) if len(whole) <= 4 else _plain_zh(whole)
        return head + "点" + _plain_zh(frac)
    run = m.group("run")
    digits = re.sub(r"[^0-9]", "", run)
    plain = digits == run
    if plain and len(digits) == 4 and after.startswith("年"):
        return _plain_zh(digits)  # a year: 二零二一年, with 一, not 幺
    if plain and len(digits) <= 4 and _ZH_UNIT.match(after):
        if digits == "2" and _ZH_LIANG.match(after):
            return "两"
        return zh_cardinal(int(digits))
    if len(digits) >= MIN_READBACK_DIGITS:
        return _readback(run, "zh")
    if len(digits) > 1 and digits.startswith("0"):
        return _plain_zh(digits)  # "05" → 零五
    if not plain:  # "1 2": two short numbers, keep them apart
        return " ".join(zh_cardinal(int(d)) for d in digits)
    return zh_cardinal(int(digits))


def _plain_zh(digits: str) -> str:
    return "".join(_ZH_PLAIN[int(c)] for c in digits)


def _en_number(m: re.Match[str]) -> str:
    if m.group("dec") is not None:
        return m.group("dec")
    run = m.group("run")
    digits = re.sub(r"[^0-9]", "", run)
    if len(digits) >= MIN_READBACK_DIGITS:
        return f" {_readback(run, 'en')} "
    return run


def spoken_form(text: str, language: Language) -> str:
    """``text`` as the TTS voice should read it on a phone line (see the module doc)."""
    text = text.translate(_FULLWIDTH)
    if language == "zh":
        text = _NUMBER.sub(lambda m: _zh_number(m, text), text)
        text = _SYMBOL_ZH.sub(lambda m: "井号" if m.group(1) == "#" else "星号", text)
        return text.strip()
    text = _NUMBER.sub(_en_number, text)
    text = _SYMBOL_EN.sub(lambda m: " hash " if m.group(0) == "#" else " star ", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r" +([,.;:!?])", r"\1", text)
    return text.strip()


# --- sentence splitting ------------------------------------------------------------

_HARD = frozenset("。！？；!?;…\n")
_SOFT = frozenset("，,、：:")
_CLOSERS = frozenset("”’」』）)]\"'")
# Piper here: ~50 ms + ~3 ms per character, so 40 English characters (or a dozen Chinese
# ones) keep the first piece, which is all a caller waits for, under ~200 ms.
MAX_PIECE_CHARS: dict[Language, int] = {"zh": 20, "en": 60}
FIRST_PIECE_CHARS: dict[Language, int] = {"zh": 12, "en": 40}
MIN_PIECE_CHARS: dict[Language, int] = {"zh": 4, "en": 6}

_ZH_DIGIT_CHARS = "零幺一二三四五六七八九"
_EN_DIGIT_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
# Digit runs in raw or spoken form; a cut inside one would break a number's readback.
_PROTECTED = re.compile(
    rf"[0-9](?:[ \-.,:/]?[0-9])+"
    rf"|[{_ZH_DIGIT_CHARS}](?:[，,、 ]?[{_ZH_DIGIT_CHARS}]){{2,}}"
    rf"|\b{_EN_DIGIT_WORD}(?:[ ,]+{_EN_DIGIT_WORD}\b){{2,}}",
    re.IGNORECASE,
)


def _protected_mask(text: str) -> list[bool]:
    mask = [False] * len(text)
    for m in _PROTECTED.finditer(text):
        for i in range(m.start(), m.end()):
            mask[i] = True
    return mask


def _is_hard_cut(text: str, i: int, mask: list[bool]) -> bool:
    ch = text[i]
    if ch in _HARD:
        return not mask[i]
    if ch == ".":
        # An English full stop: followed by a space or the end ("3.5", "v1.2" stay).
        nxt = text[i + 1] if i + 1 < len(text) else " "
        return not mask[i] and (nxt.isspace() or nxt in _CLOSERS)
    return False


def _has_words(piece: str) -> bool:
    return any(ch.isalnum() for ch in piece)


def _cut_long(piece: str, language: Language, max_chars: int, first_max: int) -> list[str]:
    """Cut at commas so each part is at most ``max_chars`` (``first_max`` for the first
    part) where commas allow, no part shorter than the language's minimum."""
    if len(piece) <= first_max:
        return [piece]
    mask = _protected_mask(piece)
    min_chars = MIN_PIECE_CHARS[language]
    clauses: list[str] = []
    start = 0
    for i, ch in enumerate(piece):
        if ch in _SOFT and not mask[i]:
            clauses.append(piece[start : i + 1])
            start = i + 1
    clauses.append(piece[start:])
    out: list[str] = []
    current = ""
    for clause in clauses:
        limit = max_chars if out else first_max
        if current and len(current) + len(clause) > limit and len(current.strip()) >= min_chars:
            out.append(current)
            current = clause
        else:
            current += clause
    if current:
        # A tail too short to stand alone (e.g. "好的。") joins the piece before it.
        if out and len(current.strip()) < min_chars:
            out[-1] += current
        else:
            out.append(current)
    return out


def split_sentences(
    text: str,
    language: Language,
    *,
    max_chars: int | None = None,
    first_max_chars: int | None = None,
) -> list[str]:
    """Cut ``text`` into pieces to synthesise one by one (punctuation kept, pieces
    stripped, none empty or punctuation-only). Long sentences are cut further at commas
    so that each piece is at most ``max_chars`` where a comma allows it, the very first
    piece at most ``first_max_chars`` (it alone decides the time to first audio)."""
    limit = max_chars if max_chars is not None else MAX_PIECE_CHARS[language]
    first_limit = min(limit, first_max_chars if first_max_chars is not None else FIRST_PIECE_CHARS[language])
    mask = _protected_mask(text)
    sentences: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        if _is_hard_cut(text, i, mask):
            j = i + 1
            # Keep "？！", "……" and closing quotes with the sentence they end.
            while j < n and (text[j] in _HARD or text[j] in _CLOSERS or text[j] == ".") and text[j] != "\n":
                j += 1
            sentences.append(text[start:j])
            start = i = j
            continue
        i += 1
    sentences.append(text[start:])
    pieces: list[str] = []
    for sentence in sentences:
        for piece in _cut_long(sentence.strip(), language, limit, first_limit if not pieces else limit):
            piece = piece.strip()
            if _has_words(piece):
                pieces.append(piece)
    return pieces
