"""One chat turn: the user's input becomes a dialogue message, the bot's utterances come
back as prompts with their expectations. Shared by the web chat, the console and (later)
the phone: channels decide nothing about the flow."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp
import structlog

from bot.chat.dialogue import (
    BotUtterance,
    DialogueTurn,
    DialogueUnavailable,
    RasaDialogue,
    dtmf_message,
    event_message,
)
from bot.chat.prompts import Language, PromptCatalogue
from bot.chat.turns import DialogueCapacity, TurnInProgress, TurnLocks
from bot.store.chat_delivery import Delivered

log = structlog.get_logger()

# return_to_bot: J1; start_survey: U3, the survey ``survey_id`` opens the conversation
Event = Literal["start", "no_input", "end", "recorded", "return_to_bot", "start_survey"]
# Safety net for A8: the dialogue decides when to stop waiting; this only bounds a turn.
MAX_WAIT_POLLS = 120
DEFAULT_TURN_WAIT_S = 5.0  # HOTLINE_CHAT_TURN_WAIT_S


@dataclass(frozen=True)
class ChatInput:
    text: str | None = None
    dtmf: str | None = None
    event: Event | None = None
    language: Language | None = None
    recording_id: str | None = None  # with event "recorded" (A11 on the phone)
    metadata: dict[str, str] | None = None  # e.g. the caller's number (ANI) on a call
    survey_id: int | None = None  # with event "start_survey"

    def as_dialogue_message(self) -> str:
        if self.dtmf is not None:
            return dtmf_message(self.dtmf)
        if self.event == "recorded" and self.recording_id:
            return event_message("recorded", recording_id=self.recording_id)
        if self.event == "start_survey":
            return event_message("start_survey", survey_id=str(self.survey_id or 0))
        if self.event is not None:
            return event_message(self.event)
        return neutral_text(self.text or "")

    def describe(self) -> str:
        return f"dtmf:{len(self.dtmf)}" if self.dtmf is not None else (self.event or "text")


def neutral_text(text: str) -> str:
    """What a user typed or said, never read as a command (issue 13, bad input): Rasa takes
    a message starting with "/" as an intent with entities ("/dtmf{\"digits\":\"1\"}",
    "/affirm"), so a leading "/" becomes the full-width "／" and the NLU reads it as words.
    Keys and events reach the dialogue only as dtmf and event inputs."""
    stripped = text.lstrip()
    return "／" + stripped[1:] if stripped.startswith("/") else text


@dataclass
class ConversationState:
    """What the bot remembers of a chat between turns (for abandonment, A-step outcomes)."""

    language: Language = "zh"
    last_step: str | None = None
    last_input_at: float = field(default_factory=time.time)
    ended: bool = False
    metadata: dict[str, str] = field(default_factory=dict)  # sent with every turn
    # Issue 14: the input whose reply is not known to have reached the user, the last
    # one whose reply did, and the tickets the user was told of.
    pending_message_id: str | None = None
    delivered_message_id: str | None = None
    announced: set[str] = field(default_factory=set)


@dataclass
class ChatReply:
    conversation_id: str
    messages: list[dict[str, Any]]
    expect: dict[str, Any]
    ended: bool
    handoff: dict[str, Any] | None
    language: Language
    reported: int = 0  # leading messages already handed to ``on_progress``

    def as_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "messages": self.messages,
            "expect": self.expect,
            "ended": self.ended,
            "handoff": self.handoff,
            "language": self.language,
        }


ProgressHook = Callable[[list[dict[str, Any]]], Awaitable[None]]
Deliver = Callable[["ChatReply"], Awaitable[bool]]
ANNOUNCEMENT = "utter_report_recorded"  # A10: the report is stored, with its ticket id


class DeliveryLog(Protocol):
    """What each conversation was last given (bot/store/chat_delivery.py, through the store)."""

    async def get(self, conversation_id: str) -> Delivered | None: ...

    async def record(self, conversation_id: str, channel: str, *, message_id: str | None, language: str | None,
                     last_step: str | None, announced: list[str]) -> None: ...

    async def new_tickets(self, conversation_id: str) -> list[str]: ...


class ActionServerDown(DialogueUnavailable):
    pass


class AbandonRecorder(Protocol):
    """Stores "abandoned at step X" unless the conversation already has a later outcome."""

    async def __call__(self, conversation_id: str, state: ConversationState, channel: str, reason: str) -> None: ...


class ChatService:
    def __init__(
        self,
        dialogue: RasaDialogue,
        prompts: PromptCatalogue,
        channel: str,
        action_health_url: str,
        session: aiohttp.ClientSession,
        record_abandoned: AbandonRecorder | None = None,
        turn_locks: TurnLocks | None = None,
        deliveries: DeliveryLog | None = None,
        capacity: DialogueCapacity | None = None,
    ) -> None:
        self._dialogue = dialogue
        self._prompts = prompts
        self._channel = channel
        self._action_health_url = action_health_url
        self._session = session
        self._record_abandoned = record_abandoned
        # Shared by the app's channels; a service of its own (console, tests) gets its own.
        self.turn_locks = turn_locks or TurnLocks(DEFAULT_TURN_WAIT_S)
        self.conversations: dict[str, ConversationState] = {}
        self._deliveries = deliveries  # None: a channel that cannot resume (a call ends with the bot)
        self._capacity = capacity  # None: no limit (calls: their media ports limit them)

    async def dialogue_ready(self) -> bool:
        return await self._dialogue.ready()

    def language_of(self, conversation_id: str) -> Language:
        state = self.conversations.get(conversation_id)
        return state.language if state else "zh"

    async def end(self, conversation_id: str, reason: str) -> None:
        """The user left (closed the page, hung up) or went silent for good. Waits for a
        turn still running (TurnInProgress past the wait)."""
        async with self.turn_locks.turn(conversation_id):
            await self._end(conversation_id, reason)

    async def _end(self, conversation_id: str, reason: str) -> None:
        state = self.conversations.pop(conversation_id, None)
        if state is None or state.ended or self._record_abandoned is None:
            return
        await self._record_abandoned(conversation_id, state, self._channel, reason)

    async def end_idle(self, idle_s: float) -> int:
        cutoff = time.time() - idle_s
        idle = [cid for cid, st in self.conversations.items() if st.last_input_at < cutoff]
        for cid in idle:
            if self.turn_locks.busy(cid):
                continue  # a turn is running: not idle after all
            with contextlib.suppress(TurnInProgress):
                await self.end(cid, reason="idle")
        return len(idle)

    async def turn(
        self, conversation_id: str, chat_input: ChatInput, on_progress: ProgressHook | None = None,
        deliver: Deliver | None = None,
    ) -> ChatReply:
        """One input → the bot's reply. ``on_progress`` gets messages said before an A8
        wait, as soon as they are known (a phone plays "please wait" while the line test
        runs); the reply still lists them, ``reported`` says how many went out early.

        One turn at a time per conversation: a second input waits for the first (at most
        the turn wait), else :class:`TurnInProgress`. ``deliver`` writes the reply out
        (True when it did), inside the turn, so what reached the user is known exactly;
        without it the reply counts as delivered when returned."""
        async with self.turn_locks.turn(conversation_id):
            reply = await self._turn(conversation_id, chat_input, on_progress)
            if deliver is None or await deliver(reply):
                await self._delivered(conversation_id, reply)
            return reply

    async def _turn(
        self, conversation_id: str, chat_input: ChatInput, on_progress: ProgressHook | None
    ) -> ChatReply:
        fresh = conversation_id not in self.conversations
        state = self.conversations.setdefault(conversation_id, ConversationState())
        if chat_input.event in ("start", "start_survey"):
            state.ended = False
            state.pending_message_id = None
            if chat_input.language:
                state.language = chat_input.language
        state.last_input_at = time.time()
        metadata = {"channel": self._channel, "language": state.language}
        if chat_input.metadata:
            state.metadata.update(chat_input.metadata)
        metadata.update(state.metadata)
        log.info("chat.turn", conversation_id=conversation_id, input=chat_input.describe())
        unannounced: list[str] = []
        turn: DialogueTurn | None = None
        if self._deliveries is not None and chat_input.event != "start" and (fresh or state.pending_message_id):
            # After a restart (or a turn whose reply never came back): what did the user miss?
            turn, unannounced = await self._resume(conversation_id, state, fresh)
            if turn is not None:
                log.info("chat.resumed", conversation_id=conversation_id, message_id=state.pending_message_id)
        if turn is None:
            async with self._slot():
                state.pending_message_id = uuid.uuid4().hex
                turn = await self._dialogue.send(conversation_id, chat_input.as_dialogue_message(), metadata,
                                                 message_id=state.pending_message_id)
        utterances = list(turn.utterances)
        if not utterances and chat_input.event != "end":
            await self._check_action_server()
        # A8: while the line test runs the dialogue says "please wait"; ask again until it moves on.
        polls = 0
        reported = 0
        while utterances and self._is_wait(utterances[-1].prompt) and polls < MAX_WAIT_POLLS:
            if on_progress is not None:
                so_far = self._reply(conversation_id, state, utterances, turn).messages
                await on_progress(so_far[reported:])
                reported = len(so_far)
            wait_ms = self._prompts.get(utterances[-1].prompt).expect.poll_after_ms or 1000
            await asyncio.sleep(wait_ms / 1000)
            async with self._slot(bounded=False):
                turn = await self._dialogue.send(conversation_id, event_message("line_test_poll"), metadata)
            utterances += turn.utterances
            polls += 1
        if turn.language in ("zh", "en"):
            state.language = turn.language  # type: ignore[assignment]
        if unannounced and not any(u.prompt == ANNOUNCEMENT for u in utterances):
            announcement = await self._announcement(conversation_id, unannounced[0])
            if announcement is not None:
                utterances.insert(0, announcement)
        reply = self._reply(conversation_id, state, utterances, turn)
        reply.reported = reported
        return reply

    def _slot(self, *, bounded: bool = True) -> contextlib.AbstractAsyncContextManager[None]:
        if self._capacity is None:
            return contextlib.nullcontext()
        return self._capacity.slot(bounded=bounded)

    async def _resume(
        self, conversation_id: str, state: ConversationState, fresh: bool
    ) -> tuple[DialogueTurn | None, list[str]]:
        """The reply to the last input Rasa saved, when the user never got it (then it is
        given instead of taking the new input), and the tickets they were never told of."""
        assert self._deliveries is not None
        saved = await self._deliveries.get(conversation_id) if fresh else None
        if fresh:
            if saved is None:
                return None, []  # nothing was ever delivered here: a new conversation
            state.delivered_message_id = saved.delivered_message_id
            state.last_step = saved.last_step
            if saved.language in ("zh", "en"):
                state.language = saved.language  # type: ignore[assignment]
            announced = saved.announced
        else:
            announced = frozenset(state.announced)
        unannounced = [t for t in await self._deliveries.new_tickets(conversation_id) if t not in announced]
        async with self._slot():
            resumed = await self._dialogue.resume(conversation_id, channel=self._channel)
        if resumed.message_id is None or resumed.message_id == state.delivered_message_id or not resumed.utterances:
            return None, unannounced
        state.pending_message_id = resumed.message_id
        return DialogueTurn(resumed.utterances, resumed.language), unannounced

    async def _announcement(self, conversation_id: str, ticket_id: str) -> BotUtterance | None:
        """A10 said again for a stored report the user was never told of (V9 with its id)."""
        try:
            resumed = await self._dialogue.resume(conversation_id, announce=ticket_id, channel=self._channel)
        except DialogueUnavailable:
            return None
        return resumed.announcement

    async def _delivered(self, conversation_id: str, reply: ChatReply) -> None:
        state = self.conversations.get(conversation_id)
        if state is None:
            return
        if state.pending_message_id is not None:
            state.delivered_message_id, state.pending_message_id = state.pending_message_id, None
        if self._deliveries is None:
            return
        told = []
        if any(m["prompt"] == ANNOUNCEMENT for m in reply.messages):
            text = "\n".join(m["text"] for m in reply.messages)
            told = [t for t in await self._deliveries.new_tickets(conversation_id) if t in text]
            state.announced.update(told)
        try:
            await self._deliveries.record(conversation_id, self._channel, message_id=state.delivered_message_id,
                                          language=state.language, last_step=state.last_step, announced=told)
        except Exception as exc:  # noqa: BLE001 - the reply is out; a lost record only costs a replay
            log.warning("chat.delivery_not_recorded", conversation_id=conversation_id, error=str(exc)[:200])

    def _is_wait(self, prompt: str | None) -> bool:
        return self._prompts.get(prompt).expect.kind == "wait"

    async def _check_action_server(self) -> None:
        try:
            async with self._session.get(self._action_health_url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                if r.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        raise ActionServerDown("the action server does not answer")

    def _reply(
        self, conversation_id: str, state: ConversationState, utterances: list[Any], turn: DialogueTurn
    ) -> ChatReply:
        messages: list[dict[str, Any]] = []
        handoff: dict[str, Any] | None = None
        ended = False
        for u in utterances:
            if u.custom and isinstance(u.custom.get("handoff"), dict):
                handoff = u.custom["handoff"]
                continue
            spec = self._prompts.get(u.prompt)
            ended = ended or spec.ends
            if not u.text:
                continue  # e.g. the silent A8 wait
            messages.append(
                {
                    "prompt": u.prompt,
                    "spec": spec.spec,
                    "step": spec.step,
                    "text": u.text,
                    "expect": self._prompts.expectation(u.prompt, state.language),
                }
            )
            if spec.step:
                state.last_step = spec.step
        ended = ended or handoff is not None
        state.ended = ended
        expect = messages[-1]["expect"] if messages and not ended else self._prompts.expectation(None, state.language)
        return ChatReply(conversation_id, messages, expect, ended, handoff, state.language)
