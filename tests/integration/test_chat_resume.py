"""Resuming a chat after a crash, on the bot's side (issue 14, item 4), with the Rasa
double and a real store: a bot that restarts between an input Rasa saved and the reply
reaching the user gives that reply on the next input (instead of feeding the input to a
prompt the user never saw); a report stored but never told of is announced once.
The same against the real processes: tests/e2e/test_zy_kills.py."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from bot.app import create_app
from bot.settings import Settings
from bot.store import chat_delivery
from bot.store.db import Database
from tests.conftest import INTERNAL_AUTH
from tests.fakes.rasa_double import RasaDouble, turn_count


async def chat(client: Any, cid: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(f"/api/chat/{cid}", json=body)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def recorded(db: Database, cid: str, done: Any) -> chat_delivery.Delivered:
    """The delivery record is written just after the reply went out: wait for it."""
    for _ in range(100):
        row = db.call(chat_delivery.get, cid)
        if row is not None and done(row):
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"no delivery record for {cid} as expected: {db.call(chat_delivery.get, cid)}")


async def restarted(aiohttp_client: Any, settings: Settings, db: Database) -> Any:
    """A new bot process: the same store and dialogue, nothing in memory."""
    return await aiohttp_client(create_app(settings, db=db))


async def test_a_reply_rasa_saved_but_the_user_never_got_is_given_on_the_next_input(
        aiohttp_client: Any, demo_db: Database, app_settings: Settings, rasa_double: RasaDouble) -> None:
    first = await restarted(aiohttp_client, app_settings, demo_db)
    assert (await chat(first, "lost", {"event": "start"}))["messages"][0]["prompt"] == "utter_ask_menu_choice"
    await recorded(demo_db, "lost", lambda row: row.delivered_message_id is not None)
    # The bot sends "1" on and dies before the answer reaches the user: Rasa has it saved.
    async with aiohttp.ClientSession() as session:
        await session.post(f"http://127.0.0.1:{rasa_double.port}/webhooks/hotline/webhook", json={
            "sender": "lost", "message": '/dtmf{"digits": "1"}', "metadata": {}, "message_id": "m-lost"})
    second = await restarted(aiohttp_client, app_settings, demo_db)
    reply = await chat(second, "lost", {"dtmf": "1"})  # the user presses 1 again
    assert [m["prompt"] for m in reply["messages"]] == ["utter_ask_fault_number"]
    assert turn_count(rasa_double, "lost") == 2, "the retried key was not taken as an answer to V1"
    await recorded(demo_db, "lost", lambda row: row.delivered_message_id == "m-lost")
    await chat(second, "lost", {"dtmf": "057187650001#"})
    assert turn_count(rasa_double, "lost") == 3  # and on it goes as usual


async def test_a_restart_between_delivered_turns_changes_nothing(
        aiohttp_client: Any, demo_db: Database, app_settings: Settings, rasa_double: RasaDouble) -> None:
    first = await restarted(aiohttp_client, app_settings, demo_db)
    await chat(first, "calm", {"event": "start"})
    await recorded(demo_db, "calm", lambda row: row.delivered_message_id is not None)
    second = await restarted(aiohttp_client, app_settings, demo_db)
    reply = await chat(second, "calm", {"dtmf": "1"})
    assert reply["messages"][0]["prompt"] == "utter_ask_fault_number" and turn_count(rasa_double, "calm") == 2


async def test_a_stored_report_never_told_of_is_announced_once(
        aiohttp_client: Any, demo_db: Database, app_settings: Settings, rasa_double: RasaDouble) -> None:
    first = await restarted(aiohttp_client, app_settings, demo_db)
    await chat(first, "told", {"event": "start"})
    await recorded(demo_db, "told", lambda row: row.delivered_message_id is not None)
    # A10's action stored the report; Rasa died before the turn was saved or said.
    stored = await first.post("/api/reports", headers=INTERNAL_AUTH, json={
        "conversation_id": "told", "channel": "webchat", "language": "zh", "kind": "new",
        "fault_number": "057187650001", "contact_number": "13800138000", "symptom_category": "no_dial_tone"})
    ticket = (await stored.json())["ticket_id"]
    second = await restarted(aiohttp_client, app_settings, demo_db)
    reply = await chat(second, "told", {"dtmf": "1"})
    assert reply["messages"][0]["prompt"] == "utter_report_recorded" and ticket in reply["messages"][0]["text"]
    assert reply["messages"][-1]["prompt"] == "utter_ask_fault_number"  # and the input was answered
    await recorded(demo_db, "told", lambda row: ticket in row.announced)
    third = await restarted(aiohttp_client, app_settings, demo_db)
    again = await chat(third, "told", {"event": "no_input"})
    assert all(ticket not in m["text"] for m in again["messages"])
