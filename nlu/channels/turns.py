"""A turn is all or nothing, and the bot can ask where a conversation is (issue 14).

**All or nothing.** Rasa 3.6, when a custom action cannot be run (the action server was
killed, restarts, times out, answers 500), logs "Bot will continue, but the actions
events are lost" and goes on predicting: forms and menus then loop on actions without
their effects and the tracker is saved in a state no input gets out of (conversations
stuck after a restart). Here such a failure aborts the whole message instead: nothing of
the turn is saved (Rasa saves the tracker only at the end of a message), the channel
answers 503, and the same input, sent again once the action server is back, is handled
from the state before it. An action that *rejects* (a form's validation) is Rasa's own
flow and untouched. Writes the actions made before the failure are idempotent in the
bot's API (a report per conversation and line), so a retried turn never doubles them.

**Where a conversation is** (:func:`resume_state`): the last input the bot sent (its
``message_id``) and every prompt said since, read off the saved tracker, so a bot that
restarted (or lost a reply in a crash) can give the user what they never received, and
an announcement of a stored report rendered from the designers' own response.

Imports only Rasa and the standard library (Rasa's venv, Python 3.10).
"""

from typing import Any, Dict, List, Optional, Text

from rasa.core.actions.action import ActionExecutionRejection, RemoteAction

_MARK = "_hotline_all_or_nothing"
POLL_INTENT = "line_test_poll"  # the channel's own "ask again" during A8: not a user's input


class TurnAborted(BaseException):
    """A custom action could not run: the message must not be saved half-done.

    A BaseException on purpose: Rasa's processor catches ``Exception`` around every
    action to carry on without its events, which is exactly what must not happen."""


def install(action_class: Any = RemoteAction) -> None:
    original = action_class.run
    if getattr(original, _MARK, False):
        return

    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except ActionExecutionRejection:
            raise
        except Exception as exc:  # connection refused/reset, timeout, the server's 500
            raise TurnAborted(f"custom action {self.name()!r} could not run: {type(exc).__name__}: {exc}") from exc

    setattr(run, _MARK, True)
    action_class.run = run


def _is_input(event: Dict[Text, Any]) -> bool:
    if event.get("event") != "user":
        return False
    intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
    return intent != POLL_INTENT


def resume_state(events: List[Dict[Text, Any]]) -> Dict[Text, Any]:
    """The last input of the saved conversation and the prompts said after it (as the
    channel returns them: prompt, text, custom)."""
    last = None
    for index in range(len(events) - 1, -1, -1):
        if _is_input(events[index]):
            last = index
            break
    if last is None:
        return {"message_id": None, "messages": []}
    messages = []
    for event in events[last + 1:]:
        if event.get("event") != "bot":
            continue
        data = event.get("data") or {}
        messages.append({"prompt": (event.get("metadata") or {}).get("utter_action"), "text": event.get("text"),
                         "custom": data.get("custom"), "buttons": data.get("buttons")})
    return {"message_id": events[last].get("message_id"), "messages": messages}


def render(nlg: Any, response: Text, slots: Dict[Text, Any], channel: Text) -> Optional[Dict[Text, Any]]:
    """One response as the designers wrote it, for these slot values (language included)."""
    generate = getattr(nlg, "generate_from_slots", None)
    if generate is None:
        return None
    message = generate(response, slots, channel)
    if not message:
        return None
    return {"prompt": response, "text": message.get("text"), "custom": message.get("custom"), "buttons": None}
