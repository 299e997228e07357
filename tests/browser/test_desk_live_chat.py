"""J1 at the desk in headless Chromium: the operator who took a web-chat user sees the
user's lines appear (markup shown as text, nothing run) and sends lines with the form;
the page's script runs under the desk's CSP (scripts from our origin only).

The bot's own app (store, desk and static files) runs in a thread on a temporary
SQLite database; no Rasa. Category: browser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session

from bot import desk
from bot.settings import Settings
from bot.store import handoffs, service
from bot.store.db import Database
from bot.store.models import DeskUser
from tests.browser.conftest import STATIC_DIR, serving
from tests.conftest import make_test_app

pytestmark = pytest.mark.browser

expect: Any
try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the chromium fixture skips first
    expect = None

PASSWORD = "desk-password-1"
MARKUP = '<img src=x onerror="window.pwned=1"><b>bold</b>'


@pytest.fixture(scope="module")
def desk_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Database]]:
    from bot.desk.users import hash_password

    tmp = tmp_path_factory.mktemp("desk-live")
    db = Database(f"sqlite:///{tmp / 'hotline.db'}")
    db.upgrade()
    hashed = hash_password(PASSWORD)

    def accounts(s: Session) -> None:
        s.add(DeskUser(username="jun", display_name="王小明", role="junior", password_hash=hashed))

    db.call(accounts)
    settings = Settings(database_url=f"sqlite:///{tmp / 'unused.db'}", timezone="Asia/Shanghai",
                        desk_language="en")  # a test about something else reads the desk in English
    app = make_test_app(db, settings)
    desk.setup_routes(app)
    app.router.add_static("/static/", STATIC_DIR)
    try:
        with serving(app) as url:
            yield url, db
    finally:
        db.dispose()


def test_operator_chats_and_callers_markup_stays_text(chromium: Any, desk_site: tuple[str, Database]) -> None:
    url, db = desk_site
    hid = db.call(service.queue_handoff, service.HandoffData(
        conversation_id="web-live-1", channel="webchat", language="zh", reason="caller_request")).handoff_id
    context = chromium.new_context(base_url=url, locale="zh-CN")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto("/desk/login")
        page.fill("input[name=username]", "jun")
        page.fill("input[name=password]", PASSWORD)
        page.locator("form button[type=submit]").first.click()
        page.goto(f"/desk/handoffs/{hid}")
        page.locator(f"form[action='/desk/handoffs/{hid}/take'] button").click()
        expect(page.locator("#live-chat-box")).to_be_visible()

        db.call(handoffs.add_message, hid, "caller", MARKUP)
        caller_line = page.locator("#live-messages li[data-sender=caller]")
        expect(caller_line).to_have_text(f"Caller: {MARKUP}", timeout=6000)  # polled, shown as text
        assert page.locator("#live-messages b, #live-messages img").count() == 0
        assert page.evaluate("window.pwned") is None

        page.fill("#live-text", "您好，我是王小明")
        page.locator("#live-form button[type=submit]").click()
        expect(page.locator("#live-messages li[data-sender=operator]")).to_have_text("王小明: 您好，我是王小明")
        sent = db.call(handoffs.status, hid, since_id=0).messages
        assert [(m["sender"], m["text"]) for m in sent][-1] == ("operator", "您好，我是王小明")

        page.locator("#live-finish button").click()
        expect(page.locator("#live-status")).to_have_text("This conversation has ended.")
        assert db.call(handoffs.status, hid).state == "done"
        assert not [e for e in errors if "Content Security Policy" in e], errors
        assert not [e for e in errors if "pwned" in e]
    finally:
        context.close()
