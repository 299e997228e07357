"""Checking the action server's answers without re-checking the schema each time.

Rasa 3.6 checks every action server response with ``jsonschema.validate(result,
spec)``, which first validates the (constant) spec against the JSON Schema meta-schema:
about 28 ms of one core per remote action on our 2-core machine, 1-3 remote actions per
turn, most of a keypad turn's time. Here the same spec is compiled once and every
response is checked against it; a response that fails goes to Rasa's own check, so the
error and its message are exactly Rasa's.

Installed when the Rasa server loads the hotline channel (credentials.yml).
"""

from typing import Any, Callable, Dict, Text

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction

_MARK = "_hotline_compiled_check"


def install() -> None:
    original: Callable[[RemoteAction, Dict[Text, Any]], bool] = RemoteAction._validate_action_result
    if getattr(original, _MARK, False):
        return
    spec = RemoteAction.action_response_format_spec()
    checker_class = validator_for(spec)
    checker_class.check_schema(spec)
    checker = checker_class(spec)

    def _validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
        if best_match(checker.iter_errors(result)) is None:
            return True
        return original(self, result)  # raises Rasa's own ValidationError, message and all

    setattr(_validate_action_result, _MARK, True)
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
