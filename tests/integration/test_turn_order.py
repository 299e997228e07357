"""One turn at a time per conversation (issue 14, item 3): concurrent inputs to one
conversation reach the dialogue one after the other, or get 409 "a reply is still on
its way" past the turn wait, never a 5xx; other conversations are not held up; on
PostgreSQL the order holds across bot processes (advisory locks), and a process that
dies frees its conversations at once. Category: integration (in process, Rasa double,
real SQLite/PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

import pytest

from bot.chat.turns import (
    TURN_IN_PROGRESS_REASON,
    PostgresTurnLocks,
    TurnInProgress,
    TurnLocks,
    advisory_key,
)
from bot.settings import Settings
from bot.store.db import Database
from tests.fakes.rasa_double import RasaDouble, turn_count
from tests.integration.served import ServedApp


async def turn(client: Any, cid: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await client.post(f"/api/chat/{cid}", json=body)
    return resp.status, await resp.json()


async def test_concurrent_inputs_take_turns(app_client: Any, rasa_double: RasaDouble) -> None:
    rasa_double.delay_s = 0.2
    results = await asyncio.gather(*(turn(app_client, "one", {"dtmf": str(i % 10)}) for i in range(8)))
    assert [status for status, _ in results] == [200] * 8, results
    assert rasa_double.overlaps == 0 and turn_count(rasa_double, "one") == 8


async def test_past_the_wait_a_second_input_is_409_and_never_reaches_the_dialogue(
        aiohttp_client: Any, demo_db: Database, app_settings: Settings, rasa_double: RasaDouble) -> None:
    from bot.app import create_app

    client = await aiohttp_client(create_app(app_settings.model_copy(update={"chat_turn_wait_s": 0.1}), db=demo_db))
    rasa_double.delay_s = 1.0
    results = await asyncio.gather(*(turn(client, "busy", {"dtmf": "1"}) for _ in range(4)))
    statuses = sorted(status for status, _ in results)
    assert statuses[0] == 200 and set(statuses[1:]) == {409}, results
    refused = next(body for status, body in results if status == 409)
    assert refused == {"error": "turn_in_progress", "reason": TURN_IN_PROGRESS_REASON, "language": "zh"}
    assert turn_count(rasa_double, "busy") == 1 and rasa_double.overlaps == 0


async def test_other_conversations_are_not_held_up(app_client: Any, rasa_double: RasaDouble) -> None:
    rasa_double.delay_s = 0.3
    results = await asyncio.gather(*(turn(app_client, f"c{i}", {"event": "start"}) for i in range(6)))
    assert all(status == 200 for status, _ in results)
    assert rasa_double.max_running > 1, "different conversations' turns run side by side"


async def test_more_inputs_than_the_dialogue_takes_wait_then_get_429(
        aiohttp_client: Any, demo_db: Database, app_settings: Settings, rasa_double: RasaDouble) -> None:
    """Overload: at most HOTLINE_DIALOGUE_MAX_TURNS inputs in the dialogue at once; one
    that finds no slot within the turn wait is refused at once, never queued into a timeout."""
    from bot.app import create_app

    s = app_settings.model_copy(update={"dialogue_max_turns": 2, "chat_turn_wait_s": 0.3})
    client = await aiohttp_client(create_app(s, db=demo_db))
    rasa_double.delay_s = 1.0
    resps = await asyncio.gather(*(client.post(f"/api/chat/load-{i}", json={"event": "start"}) for i in range(4)))
    statuses = sorted(r.status for r in resps)
    assert statuses == [200, 200, 429, 429], statuses
    refused = next(r for r in resps if r.status == 429)
    assert refused.headers["Retry-After"] == "2" and (await refused.json())["error"] == "busy"
    assert rasa_double.max_running == 2


async def test_a_turn_that_fails_frees_the_conversation(app_client: Any, rasa_double: RasaDouble) -> None:
    status, _ = await turn(app_client, "fails", {"text": "x" * 2001})
    assert status == 400
    status, body = await turn(app_client, "fails", {"event": "start"})
    assert status == 200 and body["messages"]


async def test_local_locks_are_forgotten_after_the_turn() -> None:
    locks = TurnLocks(wait_s=0.1)
    async with locks.turn("a"):
        assert locks.busy("a")
        with pytest.raises(TurnInProgress):
            async with locks.turn("a"):
                pass
    assert not locks.busy("a") and not locks._local


# ------------------------------------------------------------------ several processes (PostgreSQL)


def _conninfo(pg_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.postgres
async def test_two_processes_take_turns_through_postgres(pg_url: str) -> None:
    """Two lock owners on two PostgreSQL sessions, as two bot processes have: while one
    holds a conversation, the other waits and then is refused; other conversations pass."""
    first = TurnLocks(wait_s=0.3, shared=PostgresTurnLocks(_conninfo(pg_url)))
    second = TurnLocks(wait_s=0.3, shared=PostgresTurnLocks(_conninfo(pg_url)))
    try:
        async with first.turn("shared-conv"):
            with pytest.raises(TurnInProgress):
                async with second.turn("shared-conv"):
                    pass
            async with second.turn("another-conv"):
                pass
        async with second.turn("shared-conv"):  # free again once the first's turn ended
            pass
    finally:
        await first.close()
        await second.close()


@pytest.mark.postgres
async def test_a_killed_process_frees_its_conversations(pg_url: str) -> None:
    """A real process takes a conversation's lock and is SIGKILLed mid-turn: PostgreSQL
    ends its session, and the next turn (another process) gets the conversation at once."""
    script = (
        "import psycopg, sys\n"
        f"c = psycopg.connect({_conninfo(pg_url)!r}, autocommit=True)\n"
        f"print(c.execute('SELECT pg_try_advisory_lock(%s)', ({advisory_key('killed-conv')},)).fetchone()[0], flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdin=asyncio.subprocess.PIPE,
                                                  stdout=asyncio.subprocess.PIPE)
    try:
        assert holder.stdout is not None and (await holder.stdout.readline()).strip() == b"True"
        other = TurnLocks(wait_s=0.2, shared=PostgresTurnLocks(_conninfo(pg_url)))
        with pytest.raises(TurnInProgress):
            async with other.turn("killed-conv"):
                pass
        holder.kill()
        await asyncio.wait_for(holder.wait(), 10)
        other.wait_s = 5.0
        async with other.turn("killed-conv"):  # the dead process's lock went with its session
            pass
        await other.close()
    finally:
        if holder.returncode is None:
            holder.kill()


@pytest.mark.postgres
def test_two_bot_apps_on_one_postgres_never_overlap_a_conversation(pg_url: str, settings: Settings,
                                                                   tmp_path: Any) -> None:
    """Two whole bot apps (each its own event loop, HTTP server and PostgreSQL session:
    two processes as far as the locks can tell) share one dialogue; inputs for one
    conversation sent to both at once reach it one at a time."""
    db = Database(pg_url)
    s = settings.model_copy(update={"database_url": pg_url})
    with ServedApp(s, db) as one, ServedApp(s, db, rasa=one.rasa) as two:
        rasa = one.rasa
        rasa.delay_s = 0.15
        results: list[int] = []

        def hammer(app: ServedApp, n: int) -> None:
            for i in range(n):
                answer = app.request("POST", "/api/chat/shared", json.dumps({"dtmf": str(i)}).encode(),
                                     {"Content-Type": "application/json"})
                results.append(answer.status)

        threads = [threading.Thread(target=hammer, args=(app, 5)) for app in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    db.dispose()
    assert results == [200] * 10, results
    assert rasa.overlaps == 0 and turn_count(rasa, "shared") == 10
