"""The dialogue client: one Rasa turn through the hotline channel (nlu/channels/hotline.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp


class DialogueUnavailable(Exception):
    """Rasa (or its action server) cannot take the turn now."""


@dataclass(frozen=True)
class BotUtterance:
    prompt: str | None
    text: str | None
    custom: dict[str, Any] | None


@dataclass(frozen=True)
class DialogueTurn:
    utterances: list[BotUtterance]
    language: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResumeState:
    message_id: str | None  # the last input Rasa saved (None: nothing yet)
    utterances: list[BotUtterance]  # what the bot said after it
    language: str | None
    announcement: BotUtterance | None = None


def _utterances(messages: Any) -> list[BotUtterance]:
    return [BotUtterance(m.get("prompt"), m.get("text"), m.get("custom"))
            for m in messages or [] if isinstance(m, dict)]


def dtmf_message(digits: str) -> str:
    """Keypad input as a Rasa intent message; bypasses NLU (design.md §3.2)."""
    return "/dtmf" + json.dumps({"digits": digits})


def event_message(intent: str, **entities: str) -> str:
    return f"/{intent}" + (json.dumps(entities) if entities else "")


class RasaDialogue:
    def __init__(self, session: aiohttp.ClientSession, rasa_url: str, timeout_s: float) -> None:
        self._session = session
        self._base = rasa_url.rstrip("/") + "/webhooks/hotline"
        self._url = self._base + "/webhook"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, conversation_id: str, message: str, metadata: dict[str, Any],
                   message_id: str | None = None) -> DialogueTurn:
        """One message; ``message_id`` is kept on Rasa's tracker (:meth:`resume` finds it)."""
        body: dict[str, Any] = {"sender": conversation_id, "message": message, "metadata": metadata}
        if message_id is not None:
            body["message_id"] = message_id
        try:
            async with self._session.post(self._url, json=body, timeout=self._timeout) as resp:
                if resp.status != 200:
                    # 503: a custom action could not run; nothing of the message was saved.
                    raise DialogueUnavailable(f"rasa answered {resp.status}")
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DialogueUnavailable(f"rasa unreachable: {type(exc).__name__}") from exc
        return DialogueTurn(_utterances(data.get("messages")), data.get("language"), data)

    async def resume(self, conversation_id: str, *, announce: str | None = None,
                     channel: str = "webchat") -> ResumeState:
        """Where the saved conversation is (nlu/channels/turns.py): its last input's id,
        the prompts said since, and with ``announce`` the A10 announcement of that ticket."""
        params = {"channel": channel, **({"announce": announce} if announce else {})}
        url = f"{self._base}/conversations/{quote(conversation_id, safe='')}/resume"
        try:
            async with self._session.get(url, params=params, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise DialogueUnavailable(f"rasa answered {resp.status}")
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DialogueUnavailable(f"rasa unreachable: {type(exc).__name__}") from exc
        announcement = data.get("announcement")
        return ResumeState(
            message_id=data.get("message_id"), utterances=_utterances(data.get("messages")),
            language=data.get("language"),
            announcement=_utterances([announcement])[0] if isinstance(announcement, dict) else None)

    async def ready(self) -> bool:
        try:
            async with self._session.get(self._url.rsplit("/", 1)[0] + "/", timeout=self._timeout) as r:
                return r.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False
