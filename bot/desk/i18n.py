"""The desk's words in the operators' language: one catalogue, read from
``bot/desk/texts/*.yml`` (each file maps an English text, the key, to its Mandarin).

Templates write ``{{ t("Waiting since") }}``; codes a person sees go through
``{{ code("state", value) }}`` (the catalogue key is ``state:value``; ``en.state:value``
gives the code its English words). A text missing from the catalogue is shown in
English, never as nothing. The desk speaks Mandarin unless the account chose English
(``desk_user.language``; the default for accounts that did not choose is
``HOTLINE_DESK_LANGUAGE``, ``zh``). Times are shown in the centre's zone
(``HOTLINE_TIMEZONE``), in Mandarin as 2026年12月7日 16:05:09.

Files may repeat a key with the same words (each post's file is whole on its own); two
files giving one key different words is a conflict: the first file (by name) wins at run
time and :func:`conflicts` lists it — a unit test keeps that list empty, so a conflict
fails the build, never a request.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from jinja2 import pass_context

TEXTS_DIR = Path(__file__).parent / "texts"
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}


def load(directory: Path) -> tuple[dict[str, str], list[str]]:
    """Every file in ``directory`` merged (the first file by name wins a key), and the
    conflicts: ``file: 'key' is 'a' here but 'b' in other.yml``."""
    merged: dict[str, str] = {}
    where: dict[str, str] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.yml")):
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(entries, dict):
            problems.append(f"{path.name}: not a mapping of English text to Mandarin")
            continue
        for raw_key, raw_zh in entries.items():
            key, zh = str(raw_key), str(raw_zh)
            if key in merged:
                if merged[key] != zh:
                    problems.append(f"{path.name}: {key!r} is {zh!r} here but {merged[key]!r} in {where[key]}")
                continue
            merged[key], where[key] = zh, path.name
    return merged, problems


@cache
def _loaded() -> tuple[dict[str, str], list[str]]:
    return load(TEXTS_DIR)


def catalogue() -> dict[str, str]:
    """English text → Mandarin, over every file in TEXTS_DIR."""
    return _loaded()[0]


def conflicts() -> list[str]:
    """Keys two files translate differently (a unit test keeps this empty)."""
    return list(_loaded()[1])


def language_of(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def translate(text: str, lang: str) -> str:
    if lang == "en":
        return text
    return catalogue().get(text, text)


def code_text(kind: str, value: Any, lang: str) -> str:
    """A stored code (a state, a reason) as words; an unknown code is shown as it is."""
    if value is None or value == "":
        return ""
    key = f"{kind}:{value}"
    words = catalogue().get(key) if lang != "en" else None
    if words is not None:
        return words
    if kind == "action":  # the workflow's actions carry their own words (bot/store/workflow.py)
        from bot.store.workflow import ACTIONS

        action = ACTIONS.get(str(value))
        if action is not None:
            return action.label_zh if lang != "en" else action.label_en
    english = catalogue().get(f"en.{key}")
    return english if english is not None else str(value)


def local_time(value: Any, tz: str, lang: str = "en") -> str:
    """A stored time (aware datetime, ISO string or Rasa's epoch seconds) in the
    centre's local time: 2026年12月7日 16:05:09 in Mandarin, 2026-12-07 16:05:09 in English."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    local = moment.astimezone(ZoneInfo(tz))
    if lang == "zh":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M:%S}"
    return local.strftime("%Y-%m-%d %H:%M:%S")


def span_text(left: dict[str, Any] | None, lang: str) -> str:
    """How long until a deadline, or since it passed (work.time_left's shape), in words."""
    if not left:
        return ""
    days, hours, mins, overdue = left["days"], left["hours"], left["minutes"], left["overdue"]
    if lang == "zh":
        span = (f"{days}天" if days else "") + f"{hours}小时{mins:02d}分"
        return f"已超时{span}" if overdue else f"剩余{span}"
    span = (f"{days} d " if days else "") + f"{hours} h {mins:02d} min"
    return f"overdue by {span}" if overdue else f"{span} left"


_BILINGUAL = re.compile(r"^([^/\n:]{1,24}) / ([A-Za-z][A-Za-z ,'-]{0,40}): ")


def stored_text(text: Any, lang: str) -> str:
    """Text the system stored for people (a status change's reason, a note, a task's why):
    a whole catalogue text is translated; a "中文 / english: …" prefix keeps the one
    language; anything else (what a person typed) is shown as it is."""
    if text is None:
        return ""
    value = str(text)
    if value in catalogue():
        return translate(value, lang)
    m = _BILINGUAL.match(value)
    if m is None:
        return value
    rest = value[m.end():]
    return f"{m.group(1)}：{rest}" if lang == "zh" else f"{m.group(2)}: {rest}"


@pass_context
def said(context: Any, text: Any) -> str:
    return stored_text(text, context.get("lang", DEFAULT_LANGUAGE))


@pass_context
def t(context: Any, text: str) -> str:
    return translate(text, context.get("lang", DEFAULT_LANGUAGE))


@pass_context
def code(context: Any, kind: str, value: Any) -> str:
    return code_text(kind, value, context.get("lang", DEFAULT_LANGUAGE))


@pass_context
def when(context: Any, value: Any, tz: str) -> str:
    return local_time(value, tz, context.get("lang", DEFAULT_LANGUAGE))


@pass_context
def span(context: Any, left: dict[str, Any] | None) -> str:
    return span_text(left, context.get("lang", DEFAULT_LANGUAGE))


def install(env: Any) -> None:
    env.globals["t"] = t
    env.globals["code"] = code
    env.globals["span"] = span
    env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    env.filters["when"] = when
    env.filters["said"] = said
