"""J1 in the web chat over HTTP (bot/chat/handoff_api.py): the wait and its place, the
offer to go back to the bot after ``handoff_offer_seconds``, going back to the dialogue
at A2, the live chat once an operator took it, and leaving while waiting (abandoned,
with the wait). A scripted dialogue stands in for Rasa; the store is real."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import Session, select

from bot.chat import api as chat_api
from bot.chat.prompts import PromptCatalogue
from bot.chat.service import ChatService
from bot.settings import REPO_ROOT, Settings
from bot.store import handoffs, service
from bot.store.db import Database
from bot.store.models import ConversationOutcome, DeskUser
from tests.conftest import AClient, make_test_app
from tests.fakes.voice_doubles import ScriptedDialogue, until

CID = "chat-0001"
BACK = [("utter_back_to_bot", "好的，已为您返回自动服务。"),
        ("utter_ask_fault_number", "您好，请输入您的故障电话号码，并按#号确认。")]

Client = TestClient[web.Request, web.Application]


def queue(db: Database, conversation_id: str = CID, channel: str = "webchat") -> int:
    return db.call(service.queue_handoff, service.HandoffData(
        conversation_id=conversation_id, channel=channel, language="zh", reason="caller_request")).handoff_id


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
def dialogue() -> ScriptedDialogue:
    return ScriptedDialogue([("/return_to_bot", BACK)])  # type: ignore[list-item]


@pytest.fixture
def make_client(aiohttp_client: AClient, db: Database, settings: Settings, dialogue: ScriptedDialogue,
                http_session: aiohttp.ClientSession) -> Any:
    def add_operator(s: Session) -> None:
        s.add(DeskUser(username="jun", display_name="王小明", role="junior", password_hash="x"))

    db.call(add_operator)

    async def make(**overrides: Any) -> Client:
        tuned = settings.model_copy(update=overrides)
        app = make_test_app(db, tuned)
        app[chat_api.CHAT_SERVICE_KEY] = ChatService(
            dialogue, PromptCatalogue.load(REPO_ROOT / "nlu" / "prompts.yml"), channel="webchat",  # type: ignore[arg-type]
            action_health_url="http://127.0.0.1:9/health", session=http_session)
        chat_api.setup_routes(app)
        return await aiohttp_client(app)

    return make


def url(conversation_id: str = CID, tail: str = "") -> str:
    return f"/api/chat-handoff/{conversation_id}{tail}"


async def get_status(client: Client, since: int | None = None) -> dict[str, Any]:
    r = await client.get(url() + (f"?since={since}" if since is not None else ""))
    assert r.status == 200, await r.text()
    body: dict[str, Any] = await r.json()
    return body


async def test_the_wait_shows_state_and_place(make_client: Any, db: Database) -> None:
    client = await make_client(handoff_offer_seconds=600)
    queue(db, "someone-else")
    hid = queue(db)
    body = await get_status(client)
    assert body["handoff_id"] == hid
    assert (body["state"], body["queue"], body["position"], body["operator"]) == ("queued", "junior", 2, None)
    assert body["offer"] is False and body["offer_after_s"] == 600 and body["return_offers"] == 0
    assert "taken_by" not in body and "operator_username" not in body


async def test_only_web_chat_handoffs_are_reachable(make_client: Any, db: Database) -> None:
    client = await make_client()
    queue(db, "call-uuid-1", channel="voice")
    for path in (url("call-uuid-1"), url("nobody")):
        r = await client.get(path)
        assert r.status == 404 and (await r.json())["error"] == "no_handoff"
    r = await client.post(url("call-uuid-1", "/return"))
    assert r.status == 404
    r = await client.get(url() + "?since=abc")
    assert r.status in (400, 404)


async def test_the_offer_comes_after_the_interval_and_is_counted_once(make_client: Any, db: Database) -> None:
    client = await make_client(handoff_offer_seconds=0.3)
    hid = queue(db)
    seen: list[dict[str, Any]] = []

    async def offered() -> bool:
        seen.append(await get_status(client))
        return bool(seen[-1]["offer"])

    for _ in range(200):
        if await offered():
            break
        await asyncio.sleep(0.05)
    assert seen[-1]["offer"] is True and seen[-1]["waited_s"] >= 0.3
    assert all(not s["offer"] for s in seen if s["waited_s"] < 0.3)
    again = await get_status(client)
    assert again["offer"] is True
    assert db.call(handoffs.status, hid).return_offers == 1


async def test_back_to_the_bot_continues_at_a2(make_client: Any, db: Database, dialogue: ScriptedDialogue) -> None:
    client = await make_client()
    hid = queue(db)
    r = await client.post(url(tail="/return"))
    assert r.status == 200, await r.text()
    reply = await r.json()
    assert [m["prompt"] for m in reply["messages"]] == ["utter_back_to_bot", "utter_ask_fault_number"]
    assert reply["messages"][-1]["step"] == "A2" and reply["expect"]["kind"] == "digits"
    assert reply["ended"] is False and reply["handoff"] is None
    assert dialogue.messages == ["/return_to_bot"]
    assert db.call(handoffs.status, hid).state == "returned"
    r = await client.post(url(tail="/return"))
    assert r.status == 409
    body = await r.json()
    assert body["error"] == "handoff_returned" and body["handoff"]["ended"] is True


async def test_back_to_the_bot_once_taken_is_refused(make_client: Any, db: Database,
                                                     dialogue: ScriptedDialogue) -> None:
    client = await make_client()
    hid = queue(db)
    db.call(service.take_handoff, hid, "jun")
    r = await client.post(url(tail="/return"))
    assert r.status == 409
    body = await r.json()
    assert body["error"] == "already_taken" and body["reason"]
    assert body["handoff"]["state"] == "taken" and body["handoff"]["operator"] == "王小明"
    assert dialogue.messages == []


async def test_live_chat_both_ways(make_client: Any, db: Database) -> None:
    client = await make_client()
    hid = queue(db)
    r = await client.post(url(tail="/messages"), json={"text": "有人吗"})
    assert r.status == 409 and (await r.json())["error"] == "not_taken"
    db.call(service.take_handoff, hid, "jun")
    db.call(handoffs.add_message, hid, "operator", "您好，我是王小明", author="jun")
    r = await client.post(url(tail="/messages"), json={"text": "<script>alert(1)</script>"})
    assert r.status == 201
    mine = (await r.json())["message"]
    body = await get_status(client, since=0)
    assert body["state"] == "taken" and body["operator"] == "王小明" and body["position"] is None
    assert [(m["sender"], m["name"], m["text"]) for m in body["messages"]] == [
        ("operator", "王小明", "您好，我是王小明"), ("caller", None, "<script>alert(1)</script>")]
    assert (await get_status(client, since=mine["id"]))["messages"] == []


@pytest.mark.parametrize("payload,code", [
    ({"text": ""}, "empty_message"), ({"text": "  "}, "empty_message"),
    ({"text": "x" * 2001}, "message_too_long"), ({"text": 5}, "bad_input"),
    ({"text": "hi", "extra": 1}, "bad_input"), ([], "bad_body"),
])
async def test_bad_messages_get_a_reason(make_client: Any, db: Database, payload: Any, code: str) -> None:
    client = await make_client()
    hid = queue(db)
    db.call(service.take_handoff, hid, "jun")
    r = await client.post(url(tail="/messages"), json=payload)
    assert r.status == 400
    body = await r.json()
    assert body["error"] == code and body["reason"]
    r = await client.post(url(tail="/messages"), data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error"] == "malformed_json"


def _outcomes(db: Database, conversation_id: str = CID) -> list[ConversationOutcome]:
    def q(s: Session) -> list[ConversationOutcome]:
        return list(s.exec(select(ConversationOutcome).where(ConversationOutcome.conversation_id == conversation_id)))

    return db.call(q)


async def test_closing_the_chat_while_waiting_is_abandoned_with_the_wait(make_client: Any, db: Database) -> None:
    client = await make_client(handoff_chat_leave_grace_s=0.05)
    hid = queue(db)
    await get_status(client)
    r = await client.post(url(tail="/leave"), data=json.dumps({"event": "end"}))
    assert r.status == 202
    await until(lambda: db.call(handoffs.status, hid).state == "abandoned", 5, "the wait abandoned")
    [outcome] = _outcomes(db)
    assert (outcome.outcome, outcome.step, outcome.channel) == ("abandoned", "J1", "webchat")
    assert "waited" in (outcome.reason or "") and "chat closed" in (outcome.reason or "")


async def test_a_reload_polls_again_and_keeps_the_place(make_client: Any, db: Database) -> None:
    client = await make_client(handoff_chat_leave_grace_s=1.0)
    hid = queue(db)
    r = await client.post(url(tail="/leave"))
    assert r.status == 202
    await get_status(client)  # the reloaded page's first poll
    await asyncio.sleep(1.5)  # past the grace: the leave was cancelled, not merely late
    assert db.call(handoffs.status, hid).state == "queued"
    assert _outcomes(db) == []


async def test_a_page_that_stopped_polling_has_left(make_client: Any, db: Database) -> None:
    client = await make_client(handoff_chat_gone_s=0.05)
    hid = queue(db)
    await get_status(client)
    await asyncio.sleep(0.1)
    waiting = client.app[chat_api.handoff_api.WAITING_CHATS_KEY]
    await waiting.sweep()
    assert db.call(handoffs.status, hid).state == "abandoned"
    assert "stopped polling" in (_outcomes(db)[0].reason or "")
