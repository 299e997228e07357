"""Prometheus metrics, served on /metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

CHAT_TURNS = Counter("hotline_chat_turns_total", "Chat turns", ["channel", "result"])
CHAT_TURN_SECONDS = Histogram(
    "hotline_chat_turn_seconds",
    "Time from a chat input to the bot's reply (includes A8 waits)",
    buckets=(0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2, 5, 10, 30),
)
CONVERSATIONS_ABANDONED = Counter("hotline_conversations_abandoned_total", "Chats left mid-flow", ["step"])


async def metrics_handler(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
