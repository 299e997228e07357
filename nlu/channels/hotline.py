"""The hotline input/output channel, loaded by the Rasa server (Python 3.10, Rasa's venv).

Why not Rasa's REST channel: its output channel is named ``collector`` (so response
variants with ``channel: voice`` never fire), it drops the response name and splits a
response with ``text`` and ``custom`` into two messages. Here every prompt comes back as
ONE message with its response name (``prompt``), text and custom payload, and the output
channel is named after the caller's channel (``webchat``, ``voice``, ``console``), so
designers can write channel-specific variants.

Imports only Rasa and the standard library: nothing of the bot (Python 3.11) may load here.
"""

from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels import action_checks, turns

action_checks.install()  # a faster check of the action server's answers (see there)
turns.install()  # a turn whose custom action cannot run is not saved half-done (see there)

KNOWN_CHANNELS = {"webchat", "voice", "console", "api"}


class HotlineOutput(OutputChannel):
    """Collects whole prompts (one dict per bot utterance) for one request."""

    def __init__(self, channel_name: Text) -> None:
        self._name = channel_name
        self.messages: List[Dict[Text, Any]] = []

    def name(self) -> Text:  # type: ignore[override]  # per-instance: the caller's channel
        return self._name

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        self.messages.append(
            {
                "prompt": message.get("utter_action"),
                "text": message.get("text"),
                "custom": message.get("custom"),
                "buttons": message.get("buttons"),
            }
        )

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        self.messages.append({"prompt": None, "text": text, "custom": None, "buttons": None})


class _LanguageOnSave:
    """The language slot of each conversation as Rasa last saved its tracker: wraps the
    tracker store's ``save`` (which gets the whole tracker at the end of every turn), so
    the answer needs no second read and replay of the conversation from the store (that
    read cost a fifth of Rasa's time per turn)."""

    MAX_CONVERSATIONS = 10_000

    def __init__(self, store: Any) -> None:
        self.languages: "OrderedDict[Text, Optional[Text]]" = OrderedDict()
        self._store = store
        self._save = store.save
        store.save = self.save  # the one store object the agent and its processor share

    async def save(self, tracker: Any) -> None:
        await self._save(tracker)
        self.languages[tracker.sender_id] = tracker.get_slot("language")
        self.languages.move_to_end(tracker.sender_id)
        while len(self.languages) > self.MAX_CONVERSATIONS:
            self.languages.popitem(last=False)

    async def language(self, sender: Text) -> Optional[Text]:
        if sender in self.languages:
            return self.languages[sender]
        tracker = await self._store.retrieve(sender)  # not saved since we started watching
        return tracker.get_slot("language") if tracker else None


async def _language_of(request: Request, sender: Text) -> Optional[Text]:
    """The conversation's language slot, so channels pick labels and voices without
    guessing."""
    agent = getattr(request.app.ctx, "agent", None)
    if agent is None or agent.tracker_store is None:
        return None
    watcher = getattr(agent.tracker_store, "_hotline_languages", None)
    if watcher is None:
        watcher = _LanguageOnSave(agent.tracker_store)
        agent.tracker_store._hotline_languages = watcher
    return await watcher.language(sender)


class HotlineInput(InputChannel):
    """``POST /webhooks/hotline/webhook`` with ``{"sender", "message", "metadata"}``."""

    @classmethod
    def name(cls) -> Text:
        return "hotline"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        hook = Blueprint("hotline_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.json or {}
            sender = body.get("sender")
            text = body.get("message")
            if not isinstance(sender, str) or not sender or not isinstance(text, str):
                return response.json({"error": "sender and message are required"}, status=400)
            metadata: Dict[Text, Any] = body.get("metadata") or {}
            channel = metadata.get("channel")
            channel = channel if channel in KNOWN_CHANNELS else "api"
            collector = HotlineOutput(channel)
            message_id = body.get("message_id")  # the bot's id of this input: kept on the tracker
            try:
                await on_new_message(
                    UserMessage(text, collector, sender, input_channel=channel, metadata=metadata,
                                message_id=message_id if isinstance(message_id, str) else None)
                )
            except turns.TurnAborted as exc:
                # Nothing of this message was saved: the same input can be sent again.
                return response.json({"error": "action_server_unavailable", "reason": str(exc)[:300]}, status=503)
            return response.json(
                {"messages": collector.messages, "language": await _language_of(request, sender)}
            )

        @hook.route("/conversations/<sender>/resume", methods=["GET"])
        async def resume(request: Request, sender: Text) -> HTTPResponse:
            """Where a conversation is: its last input's id, the prompts said since, and,
            with ``announce=<ticket id>``, the designers' A10 announcement of that ticket."""
            agent = getattr(request.app.ctx, "agent", None)
            if agent is None or agent.tracker_store is None:
                return response.json({"error": "not_ready"}, status=503)
            tracker = await agent.tracker_store.retrieve(sender)
            if tracker is None:
                return response.json({"message_id": None, "messages": [], "language": None})
            state = turns.resume_state([e.as_dict() for e in tracker.events])
            slots = tracker.current_slot_values()
            state["language"] = slots.get("language")
            ticket_id = request.args.get("announce")
            if ticket_id:
                channel = request.args.get("channel") or "webchat"
                filled = {**slots, "ticket_id": ticket_id, "line_test_summary": request.args.get("summary") or ""}
                state["announcement"] = turns.render(agent.nlg, "utter_report_recorded", filled, channel)
            return response.json(state)

        return hook

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        return (request.json or {}).get("metadata")
