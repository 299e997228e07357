"""The desk's words in the operators' language: one catalogue, read from
``bot/desk/texts/*.yml`` (each file maps an English text, the key, to its Mandarin).

Templates write ``{{ t("Waiting since") }}``; codes a person sees go through
``{{ code("state", value) }}`` (the catalogue key is ``state:value``). A text missing
from the catalogue is shown in English, never as nothing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import pass_context

TEXTS_DIR = Path(__file__).parent / "texts"
LANGUAGES = ("zh", "en")


@cache
def catalogue() -> dict[str, str]:
    """English text → Mandarin, over every file in TEXTS_DIR (a key twice is an error)."""
    merged: dict[str, str] = {}
    for path in sorted(TEXTS_DIR.glob("*.yml")):
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key, zh in entries.items():
            if key in merged and merged[key] != zh:
                raise ValueError(f"{path.name}: {key!r} is translated twice, differently")
            merged[str(key)] = str(zh)
    return merged


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
    english = catalogue().get(f"en.{key}")
    return english if english is not None else str(value)


@pass_context
def t(context: Any, text: str) -> str:
    return translate(text, context.get("lang", "en"))


@pass_context
def code(context: Any, kind: str, value: Any) -> str:
    return code_text(kind, value, context.get("lang", "en"))


def install(env: Any) -> None:
    env.globals["t"] = t
    env.globals["code"] = code
