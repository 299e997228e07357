"""Chat turn latency through the bot (/api/chat) and through Rasa's own REST webhook,
in the same run, on the same stack: the bot's overhead over Rasa (target ≤ 15 %).

`make bench` (or `python -m bench.chat_latency --conversations 25`). Prints a table and
writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from datetime import UTC, datetime

import aiohttp

from bench.common import RESULTS, bench_stack, percentile
from bot.chat.dialogue import dtmf_message, event_message
from bot.settings import REPO_ROOT, Settings

# One conversation: A1, A2, A5 (repaired, back to the menu), A4 (unknown prefix, V3),
# A2 in words, A6–A7 (repeat). No line test, so no deliberate waiting in either path.
SCRIPT: list[dict[str, str]] = [
    {"event": "start"},
    {"dtmf": "1"},
    {"dtmf": "60000004#"},
    {"dtmf": "1"},
    {"dtmf": "1"},
    {"dtmf": "69990001#"},
    {"dtmf": "1"},
    {"text": "我的电话是0571 6000 0006"},
    {"text": "对"},
    {"dtmf": "2"},
]


def as_rasa_message(body: dict[str, str]) -> str:
    if "dtmf" in body:
        return dtmf_message(body["dtmf"])
    if "event" in body:
        return event_message(body["event"])
    return body["text"]


async def run(settings: Settings, conversations: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"bot": [], "rasa": []}
    async with aiohttp.ClientSession() as session:
        for i in range(conversations):
            for path in ("bot", "rasa") if i % 2 == 0 else ("rasa", "bot"):
                cid = f"bench-{path}-{i}"
                for body in SCRIPT:
                    started = time.perf_counter()
                    if path == "bot":
                        url = f"{settings.bot_url}/api/chat/{cid}"
                        async with session.post(url, json=body) as resp:
                            assert resp.status == 200, await resp.text()
                            await resp.read()
                    else:
                        url = f"{settings.rasa_url}/webhooks/rest/webhook"
                        payload = {"sender": cid, "message": as_rasa_message(body),
                                   "metadata": {"channel": "api"}}
                        async with session.post(url, json=payload) as resp:
                            assert resp.status == 200, await resp.text()
                            await resp.read()
                    timings[path].append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=25, help="per path; 10 turns each")
    args = parser.parse_args()
    with bench_stack("hotline-bench-") as settings:
        asyncio.run(run(settings, 2))  # warm-up: model graphs, connections, caches
        timings = asyncio.run(run(settings, args.conversations))
    rows = {}
    for path, values in timings.items():
        rows[path] = {
            "turns": len(values),
            "p50_ms": round(statistics.median(values), 1),
            "p95_ms": round(percentile(values, 95), 1),
            "mean_ms": round(statistics.fmean(values), 1),
        }
    ratio_p50 = rows["bot"]["p50_ms"] / rows["rasa"]["p50_ms"]
    ratio_p95 = rows["bot"]["p95_ms"] / rows["rasa"]["p95_ms"]
    print(f"\n{'path':28} {'turns':>6} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    names = {"bot": "bot /api/chat", "rasa": "Rasa REST webhook alone"}
    for path, row in rows.items():
        print(f"{names[path]:28} {row['turns']:6} {row['p50_ms']:8} {row['p95_ms']:8} {row['mean_ms']:8}")
    print(f"bot / Rasa: p50 ×{ratio_p50:.3f} ({(ratio_p50 - 1) * 100:+.1f} %), "
          f"p95 ×{ratio_p95:.3f} ({(ratio_p95 - 1) * 100:+.1f} %)   target: ≤ +15 %")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"chat-latency-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({
        "benchmark": "chat_turn_latency", "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "script_turns_per_conversation": len(SCRIPT), "paths": rows,
        "ratio_p50": round(ratio_p50, 4), "ratio_p95": round(ratio_p95, 4), "target_ratio": 1.15,
        "met": ratio_p50 <= 1.15 and ratio_p95 <= 1.15,
    }, indent=2))
    print(f"written: {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
