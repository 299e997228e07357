"""One turn at a time per conversation, under load (issue 14): 20 clients hammering one
conversation, and 100 clients on 100 conversations, through the bot's chat API on a real
stack (Rasa, the action server, the bot; SQLite store).

Each answer is counted by status: 200, 409 (``turn_in_progress``: the conversation was
busy longer than ``HOTLINE_CHAT_TURN_WAIT_S``; expected when 20 clients share one), 429
(``busy``: more inputs at once than ``HOTLINE_DIALOGUE_MAX_TURNS`` for the whole turn
wait; what the machine cannot answer in time), 5xx and transport errors (must be 0), and
turns slower than 10 s (stalls: must be 0). The
inputs keep the conversation at the main menu (keys 9 and 8 switch the language), so
every turn is a real Rasa turn with a custom action and none ends the conversation.

`make bench` (or `python -m bench.turn_order_bench`). Prints a table and writes JSON under
bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench.common import RESULTS, bench_stack, percentile
from bot.settings import REPO_ROOT, Settings

STALL_S = 10.0


async def client(session: aiohttp.ClientSession, url: str, inputs: int, timings: list[float],
                 statuses: Counter[str]) -> None:
    for i in range(inputs):
        body = {"dtmf": "9" if i % 2 == 0 else "8"}
        started = time.perf_counter()
        try:
            async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                await resp.read()
                statuses[str(resp.status)] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            statuses[f"error:{type(exc).__name__}"] += 1
        timings.append(time.perf_counter() - started)


async def scenario(settings: Settings, clients: int, conversations: int, inputs: int) -> dict[str, Any]:
    timings: list[float] = []
    statuses: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        ids = [f"bench-turns-{uuid.uuid4().hex[:8]}" for _ in range(conversations)]
        for cid in ids:  # every conversation opened first: the load is its turns
            async with session.post(f"{settings.bot_url}/api/chat/{cid}", json={"event": "start"}) as resp:
                assert resp.status == 200, await resp.text()
        started = time.perf_counter()
        await asyncio.gather(*(client(session, f"{settings.bot_url}/api/chat/{ids[i % conversations]}", inputs,
                                      timings, statuses) for i in range(clients)))
        wall = time.perf_counter() - started
    ms = [t * 1000 for t in timings]
    server_errors = sum(n for s, n in statuses.items() if s.startswith("5") or s.startswith("error"))
    return {
        "clients": clients, "conversations": conversations, "inputs_per_client": inputs, "requests": len(ms),
        "statuses": dict(sorted(statuses.items())), "ok": statuses.get("200", 0), "busy_409": statuses.get("409", 0),
        "busy_429": statuses.get("429", 0),
        "errors_5xx_or_transport": server_errors, "stalls_over_10s": sum(1 for t in timings if t > STALL_S),
        "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(percentile(ms, 95), 1),
        "max_ms": round(max(ms), 1), "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=10, help="inputs per client")
    args = parser.parse_args()
    with bench_stack("hotline-bench-turns-") as settings:
        asyncio.run(scenario(settings, 2, 2, 2))  # warm-up
        rows = {
            "20 clients, 1 conversation": asyncio.run(scenario(settings, 20, 1, args.inputs)),
            "100 clients, 100 conversations": asyncio.run(scenario(settings, 100, 100, args.inputs)),
        }
    print(f"\n{'scenario':32} {'requests':>8} {'200':>6} {'409':>6} {'429':>6} {'5xx/err':>8} {'>10s':>5} "
          f"{'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, row in rows.items():
        print(f"{name:32} {row['requests']:8} {row['ok']:6} {row['busy_409']:6} {row['busy_429']:6} "
              f"{row['errors_5xx_or_transport']:8} {row['stalls_over_10s']:5} {row['p50_ms']:8} {row['p95_ms']:8} "
              f"{row['max_ms']:8}")
    print(f"turn wait (HOTLINE_CHAT_TURN_WAIT_S): {settings.chat_turn_wait_s} s; "
          "targets: 0 5xx/transport errors, 0 turns over 10 s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"turn-order-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    met = all(r["errors_5xx_or_transport"] == 0 and r["stalls_over_10s"] == 0 for r in rows.values())
    out.write_text(json.dumps({
        "benchmark": "chat_turn_order", "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "turn_wait_s": settings.chat_turn_wait_s, "scenarios": rows, "met": met,
    }, indent=2, ensure_ascii=False))
    print(f"written: {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
