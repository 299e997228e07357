"""Prometheus metrics, served on /metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

CHAT_TURNS = Counter("hotline_chat_turns_total", "Chat turns", ["channel", "result"])
CHAT_TURN_SECONDS = Histogram(
    "hotline_chat_turn_seconds",
    "Time from a chat input to the bot's reply (includes A8 waits)",
    buckets=(0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2, 5, 10, 30),
)
CONVERSATIONS_ABANDONED = Counter("hotline_conversations_abandoned_total", "Chats left mid-flow", ["step"])

# The job scheduler (bot/jobs/): only the leading process runs jobs, so sum over processes.
JOBS_TOTAL = Counter("hotline_jobs_total", "Job runs by kind and result (succeeded, retrying, failed)",
                     ["kind", "result"])
JOB_LAST_SUCCESS = Gauge("hotline_job_last_success_timestamp_seconds",
                         "When a run of this kind last succeeded (Unix time)", ["kind"])
JOBS_LEADER = Gauge("hotline_jobs_leader", "1 while this process leads (runs the scheduler)")


async def metrics_handler(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
