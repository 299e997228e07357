"""A high-precision keyword layer after DIET (issue 13 item 7).

Some intents are carried by a few unmistakable words: 投诉 / complaint / swearing is a
complaint (item 5), 进度 / "status of my repair" is a progress question (item 4), and text
with no letter, digit or key at all (emoji, "？？", "……") is never yes, a number or a
symptom. When such a pattern matches, this component sets the intent with confidence 1.0
(DIET's ranking follows, halved, so the FallbackClassifier after it does not see an
ambiguity); otherwise DIET's prediction stands. Patterns are plain regexes; a complaint
wins over a progress question ("都一个礼拜了 什么时候修好 我要投诉").
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Pattern, Text, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.training_data.message import Message

# (intent, pattern), in order: the first match wins.
RULES: List[Tuple[Text, Text]] = [
    ("complain", "|".join([
        r"投诉", r"干什么吃的", r"破服务", r"什么破", r"垃圾", r"他妈", r"妈的", r"tmd", r"操你",
        r"找你们的?(领导|经理|负责人|主管|上级)", r"叫你们的?(领导|经理|负责人|主管)",
        r"我要找(领导|经理|负责人|主管)", r"工信部", r"消协", r"消费者协会", r"向上级反映",
        r"怎么(还|到现在)(都|也)?(没|不)(修|来)", r"太不负责", r"不想干了",
    ])),
    ("complain", r"(?i)" + "|".join([
        r"\bcomplain", r"\bcomplaint", r"\bmanager\b", r"\bsupervisor\b", r"\bdamn",
        r"\bthe hell\b", r"fuck", r"shit", r"ridiculous", r"outrageous", r"unacceptable", r"\buseless\b", r"disgrace",
        r"fed up", r"sick of", r"\bwhy (hasn'?t|has not|isn'?t|is it still not|is it not)\b.{0,30}\b(fixed|repaired)",
        r"never (showed|turned) up",
    ])),
    ("ask_progress", "|".join([
        r"进度", r"进展", r"修到哪", r"修(好|完)(了)?(没|吗|么)", r"什么时候(能|才能)?(修好|来修|上门|过来|能好)",
        r"(几时|哪天|啥时候)(上门|来|能好|修好|到)",
        r"(师傅|维修的?人|修理工|工程师|查修员).{0,4}(什么时候|几时|啥时候|哪天)(来|到|上门|过来)", r"派(人|单)了(没|吗)", r"工单", r"申告单",
        r"报(的|了)?(修|障碍|故障).{0,10}(情况|消息|结果|怎么样|有人)",
    ])),
    ("ask_progress", r"(?i)" + "|".join([
        r"\bprogress\b", r"\bstatus\b", r"\bany (update|news)\b", r"\bupdate on\b", r"\btrack my\b",
        r"\b(is|has) (my|the) (fault|line|phone|repair|broadband|internet)\b.{0,20}\b(fixed|repaired)",
        r"\bwhen (will|is) (the|my) (engineer|technician|repairman|line|phone|broadband|repair)\b",
    ])),
]
# Hesitation alone is never an answer (never "yes"): 呃, 额, uh, um, erm, hmm.
HESITATION = re.compile(r"(?i)^\s*(呃+|额+|uh+|um+|erm*|hmm+|mm+)[\s.…。,，!?？！]*$")
# No letter, digit, CJK character or key (# *): emoji, punctuation, nothing.
NOTHING_SAID = re.compile(r"[\w#*]")


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class KeywordIntentClassifier(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"enabled": True}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.enabled = bool(config.get("enabled", True))
        self.rules: List[Tuple[Text, Pattern[Text]]] = [(i, re.compile(p)) for i, p in RULES]

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
