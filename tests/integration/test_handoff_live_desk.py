"""J1, the operator's side of the live chat over HTTP (bot/desk/live.py): the taker
(or an admin) reads and writes, nobody else; every POST needs the session's CSRF token;
ending the chat; the page's live-chat box and its script policy."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session

from bot.settings import Settings
from bot.store import handoffs
from bot.store.db import Database
from bot.store.models import Handoff
from tests.conftest import AClient
from tests.integration.desk_client import Client, Operator, sign_in
from tests.integration.test_desk_http import PASSWORD, _app, _make_accounts, queue


@pytest.fixture(scope="module")
def accounts_hash() -> str:
    from bot.desk.users import hash_password

    return hash_password(PASSWORD)  # argon2 is slow on purpose: once for the module


@pytest.fixture
async def desk(aiohttp_client: AClient, demo_db: Database, settings: Settings, accounts_hash: str) -> Client:
    _make_accounts(demo_db, accounts_hash)
    return await aiohttp_client(_app(demo_db, settings))


def live_queue(db: Database, conversation_id: str = "web-1", channel: str = "webchat") -> int:
    hid = queue(db, conversation_id)

    def set_channel(s: Session) -> None:
        row = s.get(Handoff, hid)
        assert row is not None
        row.channel = channel

    db.call(set_channel)
    return hid


async def taken_by(desk: Client, db: Database, username: str = "jun", channel: str = "webchat") -> tuple[int, Operator]:
    hid = live_queue(db, channel=channel)
    op = await sign_in(desk, username)
    status, _text, _where = await op.post(f"/desk/handoffs/{hid}/take")
    assert status == 303
    return hid, op


async def messages_json(op: Operator, hid: int, since: int = 0) -> tuple[int, Any]:
    r = await op.client.get(f"/desk/handoffs/{hid}/messages.json?since={since}", headers=op.cookie,
                            allow_redirects=False)
    return r.status, (await r.json()) if r.content_type == "application/json" else await r.text()


async def test_the_taker_chats_with_the_caller(desk: Client, demo_db: Database) -> None:
    hid, op = await taken_by(desk, demo_db)
    page_status, page = await op.get(f"/desk/handoffs/{hid}")
    assert page_status == 200
    assert 'id="live-chat-box"' in page and '<script src="/static/desk-live.js" defer></script>' in page
    r = await op.client.get(f"/desk/handoffs/{hid}", headers=op.cookie)
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]

    status, _body, where = await op.post(f"/desk/handoffs/{hid}/messages", text="您好，我是值班员")
    assert status == 303 and where == f"/desk/handoffs/{hid}#live-chat"
    demo_db.call(handoffs.add_message, hid, "caller", "<script>alert(1)</script>")
    status, body = await messages_json(op, hid)
    assert status == 200 and body["state"] == "taken"
    assert [(m["sender"], m["name"], m["text"]) for m in body["messages"]] == [
        ("operator", "jun display", "您好，我是值班员"), ("caller", None, "<script>alert(1)</script>")]
    status, later = await messages_json(op, hid, since=body["messages"][0]["id"])
    assert [m["sender"] for m in later["messages"]] == ["caller"]


async def test_script_asks_for_json(desk: Client, demo_db: Database) -> None:
    hid, op = await taken_by(desk, demo_db)
    headers = {**op.cookie, "Accept": "application/json"}
    r = await op.client.post(f"/desk/handoffs/{hid}/messages", data={"csrf": op.csrf, "text": "hello"},
                             headers=headers)
    assert r.status == 201 and (await r.json())["message"]["text"] == "hello"
    r = await op.client.post(f"/desk/handoffs/{hid}/messages", data={"csrf": op.csrf, "text": "   "},
                             headers=headers)
    assert r.status == 400
    body = await r.json()
    assert body["error"] == "empty_message" and body["reason"]


@pytest.mark.parametrize("csrf", [None, "wrong-token"])
async def test_posts_without_the_csrf_token_are_refused(desk: Client, demo_db: Database,
                                                         csrf: str | None) -> None:
    hid, op = await taken_by(desk, demo_db)
    for path in (f"/desk/handoffs/{hid}/messages", f"/desk/handoffs/{hid}/finish"):
        status, body, _ = await op.post(path, csrf=csrf, text="forged")
        assert status == 403 and "security token" in body
    assert demo_db.call(handoffs.status, hid, since_id=0).messages == []
    assert demo_db.call(handoffs.status, hid).state == "taken"


async def test_only_the_taker_or_an_admin(desk: Client, demo_db: Database) -> None:
    hid, _taker = await taken_by(desk, demo_db)
    for name in ("jun2", "sen"):
        other = await sign_in(desk, name)
        status, body, _ = await other.post(f"/desk/handoffs/{hid}/messages", text="not mine")
        assert status == 403 and "Only the operator who took" in body
        assert (await messages_json(other, hid))[0] == 403
        assert (await other.post(f"/desk/handoffs/{hid}/finish"))[0] == 403
        page_status, page = await other.get(f"/desk/handoffs/{hid}")
        if page_status == 200:
            assert "live-messages" not in page and "only they can chat" in page
    for name in ("cen", "man"):  # posts without a live chat
        other = await sign_in(desk, name)
        assert (await other.post(f"/desk/handoffs/{hid}/messages", text="x"))[0] == 403
    assert demo_db.call(handoffs.status, hid, since_id=0).messages == []
    admin = await sign_in(desk, "adm")
    status, _, _ = await admin.post(f"/desk/handoffs/{hid}/messages", text="admin here")
    assert status == 303
    assert (await messages_json(admin, hid))[1]["messages"][0]["text"] == "admin here"


async def test_a_waiting_caller_has_no_live_chat_yet(desk: Client, demo_db: Database) -> None:
    hid = live_queue(demo_db)
    op = await sign_in(desk, "jun")
    status, body, _ = await op.post(f"/desk/handoffs/{hid}/messages", text="hello?")
    assert status == 403  # nobody took it: not this operator's conversation
    page_status, page = await op.get(f"/desk/handoffs/{hid}")
    assert page_status == 200 and "live-chat-box" not in page


async def test_finishing_ends_the_chat(desk: Client, demo_db: Database) -> None:
    hid, op = await taken_by(desk, demo_db)
    status, _, where = await op.post(f"/desk/handoffs/{hid}/finish")
    assert status == 303 and where == f"/desk/handoffs/{hid}"
    assert demo_db.call(handoffs.status, hid).state == "done"
    status, body, _ = await op.post(f"/desk/handoffs/{hid}/messages", text="one more thing")
    assert status == 409 and "no live chat now" in body
    _, page = await op.get(f"/desk/handoffs/{hid}")
    assert "This conversation has ended." in page and 'id="live-form"' not in page
    status, data = await messages_json(op, hid)
    assert data["state"] == "done" and data["messages"][-1]["sender"] == "system"


async def test_a_call_has_no_text_chat(desk: Client, demo_db: Database) -> None:
    hid, op = await taken_by(desk, demo_db, channel="voice")
    _, page = await op.get(f"/desk/handoffs/{hid}")
    assert "live-chat-box" not in page


async def test_bad_since_and_unknown_handoff(desk: Client, demo_db: Database) -> None:
    hid, op = await taken_by(desk, demo_db)
    r = await op.client.get(f"/desk/handoffs/{hid}/messages.json?since=-1", headers=op.cookie)
    assert r.status == 400
    assert (await messages_json(op, 999999))[0] == 404
