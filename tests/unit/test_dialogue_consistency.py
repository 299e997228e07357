"""The dialogue's files agree with each other (what `rasa data validate` cannot see):
every response has a prompt entry (its input expectation), every prompt entry is a
response, every form slot has an ask-response, every response the actions speak exists,
and every intent is used somewhere. Runs without Rasa."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.chat.prompts import PromptCatalogue

NLU = Path(__file__).resolve().parents[2] / "nlu"
ACTIONS = Path(__file__).resolve().parents[2] / "actions"
PHONE = Path(__file__).resolve().parents[2] / "voice"


def _load_dir(path: Path) -> list[dict]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(path.rglob("*.yml"))]


@pytest.fixture(scope="module")
def domain() -> dict:
    merged: dict = {"intents": [], "responses": {}, "slots": {}, "forms": {}, "actions": []}
    for part in _load_dir(NLU / "domain"):
        for key in merged:
            value = part.get(key)
            if isinstance(merged[key], list) and value:
                merged[key] += value
            elif isinstance(merged[key], dict) and value:
                merged[key].update(value)
    return merged


@pytest.fixture(scope="module")
def phone_code() -> str:
    """The phone channel says a few designers' responses itself (the recording notice)."""
    return "\n".join(p.read_text(encoding="utf-8") for p in PHONE.rglob("*.py"))


@pytest.fixture(scope="module")
def rules_and_stories() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (NLU / "data").rglob("*.yml"))


@pytest.fixture(scope="module")
def action_code() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in ACTIONS.glob("*.py"))


def test_every_response_has_a_prompt_entry_and_back(domain: dict) -> None:
    catalogue = PromptCatalogue.load(NLU / "prompts.yml")
    responses = set(domain["responses"])
    assert responses - catalogue.names() == set(), "responses without an input expectation in prompts.yml"
    assert catalogue.names() - responses == set(), "prompts.yml names responses that do not exist"


# Words that invite speech. A keypad-only call must never hear them (issue 3 §5): the
# phone's own variant of a response leaves them out, and the call adds the prompt's
# speech hint (prompts.yml) only when it can understand speech.
SPEECH_INVITES = ("说", "say", "describe")


def test_phone_prompts_never_invite_speech_themselves(domain: dict) -> None:
    for name, variants in domain["responses"].items():
        if all("custom" in v and "text" not in v for v in variants):
            continue
        phone = [v for v in variants if v.get("channel") == "voice"] or [v for v in variants if "channel" not in v]
        for v in phone:
            text = str(v.get("text", "")).lower()
            spoken = [w for w in SPEECH_INVITES if w in text and not _in_quoted_example(text, w)]
            assert not spoken, f"{name} invites speech on the phone ({spoken}): add a `channel: voice` variant"


def _in_quoted_example(text: str, word: str) -> bool:
    """"说" inside a readback of what the caller said is not an invitation."""
    return word == "说" and ("您说" in text or "说的" in text)


def test_speech_hints_name_the_choices() -> None:
    catalogue = PromptCatalogue.load(NLU / "prompts.yml")
    menu = catalogue.expectation("utter_ask_menu_choice", "zh")["speech_hint"]
    assert menu == "您也可以直接说：障碍申告、其他服务、English、普通话。"
    assert catalogue.expectation("utter_ask_fault_number", "en")["speech_hint"] == "You can also say the number."
    assert catalogue.expectation("utter_ask_symptom_category", "zh")["speech_hint"] == "您也可以直接说出故障现象。"
    assert catalogue.expectation("utter_repaired", "zh")["speech_hint"] is None  # an announcement


def test_every_response_has_both_languages(domain: dict) -> None:
    for name, variants in domain["responses"].items():
        if all("custom" in v and "text" not in v for v in variants):
            continue
        english = [v for v in variants if v.get("condition") == [{"type": "slot", "name": "language", "value": "en"}]]
        default = [v for v in variants if not v.get("condition")]
        assert english and default, f"{name} needs a Mandarin default and an English variant"


def test_every_form_slot_is_asked(domain: dict) -> None:
    for form in domain["forms"].values():
        for slot in form["required_slots"]:
            assert f"utter_ask_{slot}" in domain["responses"], f"no utter_ask_{slot}"
            assert slot in domain["slots"]


def test_every_response_is_spoken_somewhere(domain: dict, rules_and_stories: str, action_code: str,
                                            phone_code: str) -> None:
    asked = {f"utter_ask_{s}" for f in domain["forms"].values() for s in f["required_slots"]}
    for name in domain["responses"]:
        used = (name in asked or re.search(rf"\b{name}\b", rules_and_stories) or f'"{name}"' in action_code
                or f'"{name}"' in phone_code)
        assert used, f"{name} is never said"


def test_responses_the_actions_speak_exist(domain: dict, action_code: str) -> None:
    for name in re.findall(r'response="(utter_\w+)"', action_code) + re.findall(r'Rejection\("(utter_\w+)"', action_code):
        assert name in domain["responses"], name


def test_every_intent_is_used(domain: dict, rules_and_stories: str, action_code: str) -> None:
    for intent in domain["intents"]:
        assert re.search(rf"\b{intent}\b", rules_and_stories) or f'"{intent}"' in action_code, intent


def test_nlu_intents_are_in_the_domain_and_have_enough_examples(domain: dict) -> None:
    events = {"start", "dtmf", "no_input", "line_test_poll", "recorded", "return_to_bot", "start_survey"}
    counts: dict[str, int] = {}
    for part in _load_dir(NLU / "data" / "nlu"):
        for item in part.get("nlu", []):
            if "intent" in item:
                examples = [e for e in item["examples"].splitlines() if e.strip().startswith("- ")]
                counts[item["intent"]] = counts.get(item["intent"], 0) + len(examples)
    assert set(counts) <= set(domain["intents"])
    for intent in set(domain["intents"]) - events:
        assert counts.get(intent, 0) >= 15, f"{intent}: {counts.get(intent, 0)} examples"


def test_keyword_rules_name_intents_of_the_domain(domain: dict) -> None:
    # nlu/keywords.yml is edited by designers: a misspelt intent there would set an intent
    # no rule or story knows (the bot would answer with the main menu).
    rules = yaml.safe_load((NLU / "keywords.yml").read_text(encoding="utf-8"))["rules"]
    unknown = {r["intent"] for r in rules} - set(domain["intents"])
    assert not unknown, f"nlu/keywords.yml names intents the domain does not have: {sorted(unknown)}"
