"""The prompt catalogue (nlu/prompts.yml): what each Rasa response expects from the user.

Designers own the file; this module validates it and turns an entry into the ``expect``
object every channel receives (design.md §3.3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

InputKind = Literal["digits", "choice", "text", "recording", "wait", "none"]
Language = Literal["zh", "en"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChoiceSpec(_Strict):
    key: str
    label: dict[Language, str]


class ExpectSpec(_Strict):
    kind: InputKind
    min_digits: int | None = None
    max_digits: int | None = None
    terminator: str | None = None
    choices: list[ChoiceSpec] = []
    poll_after_ms: int | None = None
    max_seconds: int | None = None


class PromptSpec(_Strict):
    spec: str | None = None  # V1–V11
    step: str | None = None  # A1–A11
    expect: ExpectSpec
    no_input_timeout_ms: int | None = None
    inter_digit_timeout_ms: int | None = None
    barge_in: bool | None = None
    ends: bool = False
    # On a call that can hear speech: false = say nothing more; text = this prompt's own
    # invitation instead of the one for its kind (speech_hints).
    speech_hint: Literal[False] | dict[Language, str] | None = None


class Defaults(_Strict):
    no_input_timeout_ms: int = 10000
    inter_digit_timeout_ms: int = 5000
    barge_in: bool = True


class PromptFile(_Strict):
    defaults: Defaults = Defaults()
    # Said after a prompt on calls where speech is understood (a recognition model for the
    # call's language is installed); {labels} is the prompt's choices' labels.
    speech_hints: dict[InputKind, dict[Language, str]] = Field(default_factory=dict)
    prompts: dict[str, PromptSpec] = Field(default_factory=dict)


_ANNOUNCEMENT = PromptSpec(expect=ExpectSpec(kind="none"))


class PromptCatalogue:
    def __init__(self, prompt_file: PromptFile) -> None:
        self._file = prompt_file

    @classmethod
    def load(cls, path: Path) -> PromptCatalogue:
        return cls(PromptFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))))

    def names(self) -> set[str]:
        return set(self._file.prompts)

    def get(self, prompt: str | None) -> PromptSpec:
        """Unknown prompts (e.g. a designer's new response) are announcements."""
        return self._file.prompts.get(prompt or "", _ANNOUNCEMENT)

    def expectation(self, prompt: str | None, language: Language) -> dict[str, Any]:
        spec = self.get(prompt)
        d = self._file.defaults
        expect = spec.expect
        waits_for_input = expect.kind not in ("none", "wait")
        return {
            "kind": expect.kind,
            "min_digits": expect.min_digits,
            "max_digits": expect.max_digits,
            "terminator": expect.terminator,
            "choices": [{"key": c.key, "label": c.label[language]} for c in expect.choices],
            "keys": [c.key for c in expect.choices],
            "no_input_timeout_ms": (spec.no_input_timeout_ms or d.no_input_timeout_ms) if waits_for_input else None,
            "inter_digit_timeout_ms": (spec.inter_digit_timeout_ms or d.inter_digit_timeout_ms)
            if expect.kind == "digits" else None,
            "barge_in": d.barge_in if spec.barge_in is None else spec.barge_in,
            "poll_after_ms": expect.poll_after_ms,
            "max_seconds": expect.max_seconds,
            "speech_hint": self.speech_hint(spec, language),
        }

    def speech_hint(self, spec: PromptSpec, language: Language) -> str | None:
        """What a phone call that understands speech adds to the prompt, if anything."""
        if spec.speech_hint is False:
            return None
        template = (spec.speech_hint or self._file.speech_hints.get(spec.expect.kind) or {}).get(language)
        if not template:
            return None
        separator = "、" if language == "zh" else ", "
        return template.format(labels=separator.join(c.label[language] for c in spec.expect.choices))
