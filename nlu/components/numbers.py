"""The phone numbers in what the user said or typed, as entities (issue 13 item 1).

DIET does not extract entities here (nlu/config.yml); this component runs telnum over the
text and adds ``fault_number`` and ``contact_number`` entities where the words around a
number say which it is (故障电话 … / 联系电话 …, "my line is …" / "call me on …"), and
``phone_number`` where they do not. The value is the digits as said ("+" kept): the
actions make them canonical with their own local area code, or refuse them with the
reason (V3). The forms
(actions/forms.py, actions/answers.py) fill their slots from these entities at any step.
"""

from __future__ import annotations

import os
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from telnum import CONTACT, FAULT, numbers_with_roles

ENTITY_FOR_ROLE = {FAULT: "fault_number", CONTACT: "contact_number", None: "phone_number"}
MAX_TEXT = 2000  # longer text is not looked at (the chat API refuses it anyway)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class PhoneNumberExtractor(GraphComponent, EntityExtractorMixin):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # The area code a local 7–8 digit number gets (the action server's setting too).
        return {"local_area_code": None}

    def __init__(self, config: dict[str, Any]) -> None:
        self.local_area_code = (
            config.get("local_area_code") or os.environ.get("HOTLINE_LOCAL_AREA_CODE") or "0571"
        )

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PhoneNumberExtractor:
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            found = self.entities_in(message.get(TEXT) or "")
            if found:
                message.set(
                    ENTITIES, message.get(ENTITIES, []) + self.add_extractor_name(found), add_to_output=True
                )
        return messages

    def entities_in(self, text: str) -> list[dict[str, Any]]:
        if not text or text.startswith("/") or len(text) > MAX_TEXT:
            return []
        return [
            {
                "entity": ENTITY_FOR_ROLE[r.role],
                "value": r.number.digits,  # as said; the actions canonicalise with their area code
                "start": r.number.start,
                "end": r.number.end,
                "confidence": 1.0,
            }
            for r in numbers_with_roles(text, self.local_area_code)
        ]
