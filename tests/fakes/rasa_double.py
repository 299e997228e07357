"""A test double of the Rasa server as the bot reaches it: the hotline channel's webhook
(``POST /webhooks/hotline/webhook`` ``{"sender", "message", "metadata"}`` →
``{"messages": [{"prompt", "text", "custom", "buttons"}], "language"}``, as
nlu/channels/hotline.py answers) and its health route, plus the action server's
``/health`` so one double stands for the dialogue side.

Its dialogue is tiny: ``/start`` → the main menu; ``/dtmf{"digits": "1"}`` → the fault
number; any other input → the main menu again. Enough for the bot's HTTP boundary and
its per-conversation turn order, which happen before the dialogue.

Like Rasa, it takes one message per conversation at a time (Rasa's lock store): a
message that arrives while another of the same conversation is being handled waits for
it, and ``overlaps`` counts how often that happened, the thing the bot must never cause.
``delay_s`` makes every turn slow (a line test, a loaded machine).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MENU = {"prompt": "utter_ask_menu_choice", "text": "障碍申告请按1，其他服务请按2。", "custom": None, "buttons": None}
ASK_NUMBER = {"prompt": "utter_ask_fault_number", "text": "您好，请输入您的故障电话号码，并按#号确认",
              "custom": None, "buttons": None}


@dataclass
class RasaDouble:
    delay_s: float = 0.0
    port: int = 0  # where the test serves it
    overlaps: int = 0
    running: int = 0  # turns being handled now, of any conversation
    max_running: int = 0
    messages: list[tuple[str, str]] = field(default_factory=list)
    # Per conversation, as Rasa's tracker keeps it: (message_id, message, what was said).
    saved: dict[str, list[tuple[str | None, str, list[dict[str, Any]]]]] = field(
        default_factory=lambda: defaultdict(list))
    _busy: dict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        sender, message = body.get("sender"), body.get("message")
        if not isinstance(sender, str) or not sender or not isinstance(message, str):
            return web.json_response({"error": "sender and message are required"}, status=400)
        lock = self._busy[sender]
        if lock.locked():
            self.overlaps += 1
        async with lock:
            self.messages.append((sender, message))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            try:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
            finally:
                self.running -= 1
            reply = ASK_NUMBER if message.startswith("/dtmf") and json.loads(message[5:] or "{}").get(
                "digits") == "1" else MENU
            message_id = body.get("message_id")
            self.saved[sender].append((message_id if isinstance(message_id, str) else None, message, [reply]))
        return web.json_response({"messages": [reply], "language": "zh"})

    async def resume(self, request: web.Request) -> web.Response:
        """nlu/channels/hotline.py's resume route: the last input and what was said since."""
        saved = self.saved.get(request.match_info["sender"]) or []
        inputs = [s for s in saved if s[1] != "/line_test_poll"]
        body: dict[str, Any] = {"message_id": inputs[-1][0] if inputs else None,
                                "messages": inputs[-1][2] if inputs else [], "language": "zh"}
        ticket = request.query.get("announce")
        if ticket:
            body["announcement"] = {"prompt": "utter_report_recorded", "text": f"您的申告已记录，申告单号为{ticket}。",
                                    "custom": None, "buttons": None}
        return web.json_response(body)

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/hotline/webhook", self.webhook)
        app.router.add_get("/webhooks/hotline/conversations/{sender}/resume", self.resume)
        app.router.add_get("/webhooks/hotline/", self.health)
        app.router.add_get("/health", self.health)
        return app


def turn_count(double: RasaDouble, sender: str) -> int:
    return sum(1 for s, _ in double.messages if s == sender)

