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
    # "no complaints" is a good rating, not a complaint (U3)
    ("rate_satisfied", r"(?i)\bno complaints?\b|没(有|什么|啥)(可|好)?(投诉|抱怨)的?"),
    ("complain", "|".join([
        r"投诉", r"干什么吃的", r"破服务", r"什么破", r"垃圾", r"他妈", r"妈的", r"tmd", r"操你",
        r"找你们的?(领导|经理|负责人|主管|上级)", r"叫你们的?(领导|经理|负责人|主管)",
        r"我要找(领导|经理|负责人|主管)", r"工信部", r"消协", r"消费者协会", r"向上级反映",
        r"怎么(还|到现在)(都|也)?(没|不)(修|来)", r"太不负责", r"不想干了",
        # anger idioms, and a bad verdict addressed at the company rather than a survey score
        r"气死(我|人)", r"搞什么(鬼|名堂)?", r"有没有搞错", r"岂有此理", r"像话吗", r"什么玩意",
        r"报了(好|两|三|四|五|几|多|N)(次|回|遍)", r"(你们|贵公司|电信|公司)(的|这|这个)?(服务|处理|态度|效率|师傅)?.{0,4}(太差|很差|真差|差劲|不满意|不行|烂)",
    ])),
    ("complain", r"(?i)" + "|".join([
        r"\bcomplain", r"\bcomplaint", r"\bmanager\b", r"\bsupervisor\b", r"\bdamn",
        r"\bthe hell\b", r"fuck", r"shit", r"ridiculous", r"outrageous", r"unacceptable", r"\buseless\b", r"disgrace",
        r"fed up", r"sick of", r"\bwhy (hasn'?t|has not|isn'?t|is it still not|is it not)\b.{0,30}\b(fixed|repaired)",
        r"never (showed|turned) up",
        r"\b(unhappy|dissatisfied|disappointed|not happy|not satisfied) with (your|the) (service|company|engineers?|staff|people|handling)",
        r"\byour (service|company|engineers?|staff) (is|are) (terrible|awful|bad|the worst|rubbish|hopeless)",
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
# U3 survey ratings, deterministic and negation-aware: 非常满意 / 满意 / 一般 / 不满意 /
# 非常不满意 share almost every character, which DIET cannot tell apart from few examples.
# Checked strongest negation first ("很不满意" before "不满意" before "满意"); a complaint
# (above) still wins. A bare score ("给五分", "four stars") counts only as the whole answer.
_ZH_VERY = r"(非常|很|特别|十分|极其|极|太|相当|超级|超|真的很|实在)"
_ZH_SCORE = r"^\s*(我)?(就|给|打|评|你们|他们|他|她|它|个)*\s*{n}\s*(分|颗星|星)\s*(吧|啦|了|呗)?[\s。.！!]*$"
_EN_VERY = r"(very|extremely|really|totally|completely|highly|so|super|absolutely|thoroughly)"
_EN_SCORE = (r"^\s*(i'?d |i would |i will |i'?ll )?(give (it |you |them )?|rate (it |you )?)(a )?{n}( out of (5|five))?"
             r"( stars?)?[\s.!]*$|^\s*{n}( stars?| out of (5|five))[\s.!]*$")
_EN_NOT = r"(\bnot|n[’']t|\b(dont|wasnt|isnt|arent|werent|didnt|never))"
RATING_RULES: List[Tuple[Text, Text]] = [
    ("rate_satisfied", r"没(有|什么|啥)(不满意|可不满意)"),
    ("rate_neutral", r"(说|谈)不上(满意|不满意)|不好不坏|一般般|马马虎虎|^\s*(还|就|感觉|觉得|总的来说)?(算)?一般(吧|啦|了)?[\s。.！!]*$"),
    ("rate_very_dissatisfied", _ZH_VERY + r"(的)?不满(意)?|(一点|一点儿|一丁点)(也|都)不满意|"
        r"(?<!不是)(?<!不算)(非常|很|特别|极其|太)差(劲)?|差劲透|糟糕透|" + _ZH_SCORE.format(n="(一|1|零|0)")),
    ("rate_dissatisfied", r"(不太|不是很|不怎么|不够|不大|有点|有些|有一点|不是太|不是特别|不是非常|不)满意|"
        + _ZH_SCORE.format(n="(二|两|2)")),
    ("rate_very_satisfied", _ZH_VERY + r"满意|满意极了|满意得很|" + _ZH_SCORE.format(n="(五|5)")),
    ("rate_neutral", _ZH_SCORE.format(n="(三|3)")),
    ("rate_satisfied", r"满意|" + _ZH_SCORE.format(n="(四|4)")),
    ("rate_satisfied", r"(?i)\bnot (\w+ )?dissatisfied\b|\bno complaints\b"),
    ("rate_very_dissatisfied", r"(?i)\b" + _EN_VERY + r" (dissatisfied|unsatisfied|unhappy|disappointed)\b|"
        r"\bnot (satisfied|happy) at all\b|\bnot at all (satisfied|happy)\b|" + _EN_SCORE.format(n="(one|1|zero|0)")),
    ("rate_dissatisfied", r"(?i)\b(dissatisfied|unsatisfied|disappointed)\b|" + _EN_NOT
        + r"( \w+){0,2} (satisfied|happy with|pleased with)\b|\bnot (very |really |too |that |so )?(happy|pleased)\b|"
        + _EN_SCORE.format(n="(two|2)")),
    ("rate_very_satisfied", r"(?i)\b" + _EN_VERY + r" (satisfied|happy|pleased)\b|" + _EN_SCORE.format(n="(five|5)")),
    ("rate_neutral", r"(?i)^\s*(it was |it's |it is |i'd say |i would say |just |kind of |kinda |um |uh )*"
        r"(so-? ?so|average|neutral|mediocre|middling|meh|neither good nor bad|not good not bad)[\s.!]*$|"
        r"\bneither satisfied nor dissatisfied\b|" + _EN_SCORE.format(n="(three|3)")),
    ("rate_satisfied", r"(?i)\bsatisfied\b|\b(happy|pleased) with\b|" + _EN_SCORE.format(n="(four|4)")),
]
RULES += RATING_RULES

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
