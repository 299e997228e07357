"""The dialogue client: one Rasa turn through the hotline channel (nlu/channels/hotline.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

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


def dtmf_message(digits: str) -> str:
    """Keypad input as a Rasa intent message; bypasses NLU (design.md §3.2)."""
    return "/dtmf" + json.dumps({"digits": digits})


def event_message(intent: str, **entities: str) -> str:
    return f"/{intent}" + (json.dumps(entities) if entities else "")


class RasaDialogue:
    def __init__(self, session: aiohttp.ClientSession, rasa_url: str, timeout_s: float) -> None:
        self._session = session
        self._url = rasa_url.rstrip("/") + "/webhooks/hotline/webhook"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, conversation_id: str, message: str, metadata: dict[str, Any]) -> DialogueTurn:
        body = {"sender": conversation_id, "message": message, "metadata": metadata}
        try:
            async with self._session.post(self._url, json=body, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise DialogueUnavailable(f"rasa answered {resp.status}")
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DialogueUnavailable(f"rasa unreachable: {type(exc).__name__}") from exc
        utterances = [
            BotUtterance(m.get("prompt"), m.get("text"), m.get("custom"))
            for m in data.get("messages", [])
        ]
        return DialogueTurn(utterances, data.get("language"), data)

    async def ready(self) -> bool:
        try:
            async with self._session.get(self._url.rsplit("/", 1)[0] + "/", timeout=self._timeout) as r:
                return r.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False
