"""U1–U2 at the desk in headless Chromium: the satisfaction surveyor signs in, lands on
the live deadline board (a running, a warned and an overdue dispatch, overdue first),
records how the delay was explained to the customer with the page's form, and sees it
among the explained; the centre's page shows the same dispatches warned and overdue.

The bot's own app (store, desk, static files) runs in a thread on a temporary SQLite
database with the demo world; the deadline watch is run on it directly. No Rasa.
Category: browser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from bot import desk
from bot.settings import Settings
from bot.sla import watch
from bot.store import service, workflow
from bot.store.db import Database
from bot.store.models import DeskTask, DeskUser, utcnow
from bot.store.workflow import Actor
from bot.world.loader import load_world
from bot.world.parse import parse_world_file
from tests.browser.conftest import STATIC_DIR, _ServerThread
from tests.conftest import DEMO_WORLD, make_test_app

pytestmark = pytest.mark.browser

expect: Any
try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the chromium fixture skips first
    expect = None

PASSWORD = "desk-password-1"


def dispatched(db: Database, conversation: str, hours_ago: float) -> str:
    data = service.ReportData(conversation_id=conversation, channel="webchat", language="zh", kind="new",
                              fault_number="057187650001", contact_number="13800138000",
                              symptom_category="no_dial_tone")
    tid = db.call(service.create_report, data).ticket_id
    db.call(workflow.perform, tid, "approve_dispatch", Actor("sen", "senior"), reason="ok",
            params={"fault_class": "其他"}, now=utcnow() - timedelta(hours=hours_ago))
    return tid


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Database, dict[str, str]]]:
    from bot.desk.users import hash_password

    tmp = tmp_path_factory.mktemp("surveyor")
    db = Database(f"sqlite:///{tmp / 'hotline.db'}")
    db.upgrade()
    load_world(db, parse_world_file(DEMO_WORLD), current_file=tmp / "world.yml")
    hashed = hash_password(PASSWORD)

    def accounts(s: Session) -> None:
        s.add(DeskUser(username="sur", display_name="李调查", role="surveyor", password_hash=hashed))
        s.add(DeskUser(username="cen", display_name="西湖中心", role="centre", branch="西湖分公司",
                       password_hash=hashed))

    db.call(accounts)
    tickets = {"running": dispatched(db, "b-run", 3), "warned": dispatched(db, "b-warn", 21),
               "overdue": dispatched(db, "b-late", 26)}
    settings = Settings(database_url=f"sqlite:///{tmp / 'unused.db'}", timezone="Asia/Shanghai",
                        desk_language="en")  # a test about something else reads the desk in English
    cfg = watch.WatchConfig.from_settings(settings)
    for tid in db.call(watch.tickets_to_watch):
        db.call(watch.watch_ticket, tid, cfg)
    app = make_test_app(db, settings)
    desk.setup_routes(app)
    app.router.add_static("/static/", STATIC_DIR)
    thread = _ServerThread(app)
    thread.start()
    thread.ready.wait(10)
    if thread.error is not None:
        raise thread.error
    try:
        yield f"http://127.0.0.1:{thread.port}", db, tickets
    finally:
        thread.stop()
        db.dispose()


def sign_in(chromium: Any, url: str, username: str) -> tuple[Any, Any, list[str]]:
    context = chromium.new_context(base_url=url, locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
            and not msg.text.startswith("Failed to load resource") else None)  # answers: below
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
            and not r.url.endswith("/favicon.ico")
            and not (r.status == 403 and r.url.endswith("/desk/surveyor")) else None)  # the centre's refusal
    page.goto("/desk/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").first.click()
    expect(page.locator("header .who")).to_contain_text(username)
    return context, page, errors


def test_the_surveyor_watches_the_board_and_explains_a_delay(chromium: Any,
                                                             site: tuple[str, Database, dict[str, str]]) -> None:
    url, db, tickets = site
    context, page, errors = sign_in(chromium, url, "sur")
    try:
        expect(page).to_have_url(f"{url}/desk/surveyor")  # the post's home
        board = page.locator("#board")
        expect(board.locator(f"#board-{tickets['overdue']}")).to_contain_text("overdue")
        expect(board.locator(f"#board-{tickets['warned']}")).to_contain_text("warned")
        expect(board.locator(f"#board-{tickets['warned']}")).to_contain_text("87%")
        expect(board.locator(f"#board-{tickets['running']}")).to_contain_text("12%")
        ids = board.locator("tr[id^=board-]").evaluate_all("rows => rows.map(r => r.id)")
        assert ids.index(f"board-{tickets['overdue']}") < ids.index(f"board-{tickets['warned']}") \
            < ids.index(f"board-{tickets['running']}")  # overdue first, then by share used

        task = db.call(lambda s: s.exec(select(DeskTask).where(DeskTask.kind == "explain_delay",
                                                               DeskTask.ticket_id == tickets["overdue"])).one())
        form = page.locator(f"#explain-{task.id}")
        expect(form).to_contain_text("13800138000")  # whom to call
        form.locator("select[name=how]").select_option("phone")
        form.locator("input[name=when]").fill("2026-12-07T09:30")
        form.locator("textarea[name=what]").fill("配件明早到货，届时上门修复，已致歉")
        form.get_by_role("button", name="Record the explanation").click()
        expect(page.locator(f"#explain-{task.id}")).to_have_count(0)
        explained = page.locator("#explained")
        expect(explained).to_contain_text("配件明早到货")
        expect(explained).to_contain_text("2026-12-07 09:30:00")
        expect(explained).to_contain_text("by phone")
        expect(page.locator("#violations-by-centre")).to_contain_text("西湖测量管理中心")
        done = db.call(lambda s: s.get(DeskTask, task.id))
        assert done is not None and done.state == "done" and done.outcome["when"] == "2026-12-07T01:30:00+00:00"
        assert not errors, errors
    finally:
        context.close()

    context, page, errors = sign_in(chromium, url, "cen")
    try:
        page.goto("/desk/centre")
        expect(page.locator(f"#dispatched-{tickets['overdue']} td.sla")).to_contain_text("overdue")
        expect(page.locator(f"#dispatched-{tickets['warned']} td.sla")).to_contain_text("warned")
        expect(page.locator("#centre-violations")).to_contain_text("西湖测量管理中心")
        page.goto("/desk/surveyor")
        expect(page.locator("h1")).to_contain_text("Not for your post")
        assert not errors, errors
    finally:
        context.close()
