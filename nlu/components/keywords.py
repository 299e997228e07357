"""A high-precision keyword layer after DIET (issue 13 items 4, 5 and 7).

Some intents are carried by a few unmistakable words: 投诉 / swearing is a complaint (item
5), 进度 / "status of my repair" a progress question (item 4), 打不出去 / "can't receive
calls" a symptom and its direction (A8), "还是不行" a repair that did not help (U3), "对对对"
a yes; and text with no letter, digit or key at all (emoji, "？？", "……") is never yes, a
number or a symptom. The rules are data, for conversation designers: ``nlu/keywords.yml``
(its header says how to write one). When a rule matches, this component sets the intent
with confidence 1.0 (DIET's ranking follows, halved, so the FallbackClassifier after it does
not see an ambiguity); otherwise DIET's prediction stands.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Pattern, Text, Tuple

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.training_data.message import Message

RULES_FILE = Path(__file__).resolve().parents[1] / "keywords.yml"
_FILLERS = r"(?:(?:oh|ah|um+|uh+|er+m?|well|so|那|呃|额|哦|噢|啊)[\W_]*)*"


def whole(words: Text, particles: Text = "") -> Text:
    """The whole utterance is one to four of ``words`` (each with an optional particle),
    fillers, punctuation and spaces aside: "对对对", "是的 没错", "yes yes right"."""
    one = r"(?:" + words + r")" + (r"(?:" + particles + r")?" if particles else "")
    return r"^[\W_]*" + _FILLERS + one + r"(?:[\W_]*" + one + r"){0,3}[\W_]*$"  # "ok ok ok ok ok" is no answer


def load_rules(path: Path = RULES_FILE) -> List[Tuple[Text, Text]]:
    """(intent, pattern) in the file's order; a rule that is not well formed is an error here,
    at start-up, with its number, never a wrong guess at run time."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    rules = []
    for number, rule in enumerate(data.get("rules") or [], start=1):
        intent = rule.get("intent") if isinstance(rule, dict) else None
        if not intent or ("any" in rule) == ("whole" in rule):
            raise ValueError(f"{path.name} rule {number}: needs an intent and either any: or whole:")
        if "any" in rule:
            pattern = "|".join(str(p) for p in rule["any"])
            if rule.get("unless"):
                pattern = r"^(?!.*(?:" + "|".join(str(p) for p in rule["unless"]) + r")).*?(?:" + pattern + ")"
        else:
            pattern = whole("|".join(str(w) for w in rule["whole"]), "|".join(str(p) for p in rule.get("particles") or []))
        try:
            re.compile(pattern, re.IGNORECASE | re.DOTALL)
        except re.error as error:
            raise ValueError(f"{path.name} rule {number} ({intent}): {error}") from error
        rules.append((str(intent), pattern))
    return rules


# Spaces between Chinese characters are how a recogniser or a slow typist splits words.
_CJK_SPACE = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
# Hesitation alone is never an answer (never "yes"): 呃, 额, uh, um, erm, hmm.
HESITATION = re.compile(r"(?i)^\s*(呃+|额+|uh+|um+|erm*|hmm+|mm+)[\s.…。,，!?？！]*$")
# No letter, digit, CJK character or key (# *): emoji, punctuation, nothing.
NOTHING_SAID = re.compile(r"[\w#*]")


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class KeywordIntentClassifier(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"enabled": True, "rules_file": None}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.enabled = bool(config.get("enabled", True))
        path = Path(config["rules_file"]) if config.get("rules_file") else RULES_FILE
        self.rules: List[Tuple[Text, Pattern[Text]]] = [(i, re.compile(p, re.IGNORECASE | re.DOTALL)) for i, p in load_rules(path)]

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "KeywordIntentClassifier":
        return cls(config)

    def match(self, text: Text) -> Optional[Text]:
        if not text or text.startswith("/"):
            return None
        if not NOTHING_SAID.search(text) or HESITATION.match(text):
            return "out_of_scope"
        text = _CJK_SPACE.sub("", text)
        for intent, pattern in self.rules:
            if pattern.search(text):
                return intent
        return None

    def process(self, messages: List[Message]) -> List[Message]:
        if not self.enabled:
            return messages
        for message in messages:
            intent = self.match(message.get("text") or "")
            if intent is None:
                continue
            ranking = [
                {**r, "confidence": float(r.get("confidence") or 0.0) / 2}
                for r in message.get("intent_ranking") or []
                if r.get("name") != intent
            ]
            message.set("intent", {"name": intent, "confidence": 1.0}, add_to_output=True)
            message.set("intent_ranking", [{"name": intent, "confidence": 1.0}, *ranking], add_to_output=True)
        return messages
