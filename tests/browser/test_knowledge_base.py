"""D2 in a real browser (Chromium through Playwright): a junior transfers a caller to a
senior, the senior judges the transfer correct (S3: a hard case), the data manager finds
the task on their page and writes the article, a senior approves it, and the next caller
with that symptom sees it suggested on the junior's page — highlighted, one click from
the article. Each post signs in in its own browser context.

The bot runs in-process (bot/app.py's whole app, without the phone, the dialogue or the
job scheduler: none of them is on this path) on a SQLite store with the demo world."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.desk.users import add_user
from bot.settings import Settings
from bot.store import service
from bot.store.db import Database
from bot.store.models import Handoff
from bot.world.loader import load_world
from bot.world.parse import parse_world_file
from tests.browser.conftest import _ServerThread, chromium, desk_page  # noqa: F401  (fixture)
from tests.conftest import DEMO_WORLD

pytestmark = pytest.mark.browser

PASSWORD = "kb-browser-password"
POSTS = {"kb-jun": "junior", "kb-sen": "senior", "kb-dm": "datamanager"}
LINE = "057187650001"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Database]]:
    tmp: Path = tmp_path_factory.mktemp("kb-browser")
    settings = Settings(database_url=f"sqlite:///{tmp / 'hotline.db'}", current_world_file=tmp / "world.yml",
                        desk_language="en",  # a test about something else reads the desk in English
                        voice_enabled=False, jobs_enabled=False, recordings_dir=tmp / "rec",
                        call_recordings_dir=tmp / "call-rec", timezone="Asia/Shanghai")
    db = Database(settings.database_url)
    db.upgrade()
    load_world(db, parse_world_file(DEMO_WORLD), current_file=settings.current_world_file)
    for name, role in POSTS.items():
        db.call(add_user, name, role, PASSWORD)
    server = _ServerThread(create_app(settings, db))
    server.start()
    server.ready.wait(30)
    if server.error is not None:
        raise server.error
    try:
        yield f"http://127.0.0.1:{server.port}", db
    finally:
        server.stop()
        db.dispose()


@pytest.fixture
def desk(chromium: Any, site: tuple[str, Database]) -> Iterator[Any]:  # noqa: F811
    """desk(username) → a page signed in as that post, in its own browser context."""
    contexts: list[Any] = []

    def sign_in(username: str) -> Any:
        page, context = desk_page(chromium, site[0], username, PASSWORD)
        contexts.append(context)
        return page

    yield sign_in
    for context in contexts:
        context.close()


def a_caller(db: Database, conversation: str, words: str) -> int:
    """A web-chat caller the bot handed over: their report (A10) and their place in the queue."""
    report = service.ReportData(conversation_id=conversation, channel="webchat", language="zh", kind="new",
                                fault_number=LINE, symptom_category="no_dial_tone", symptom_text=words)
    ticket_id = db.call(service.create_report, report).ticket_id
    return db.call(service.queue_handoff, service.HandoffData(
        conversation_id=conversation, channel="webchat", language="zh", reason="caller_request",
        fault_number=LINE, ticket_id=ticket_id,
        transcript=[{"role": "user", "text": words}])).handoff_id


def take(junior: Any, handoff_id: int) -> None:
    from playwright.sync_api import expect

    junior.goto("/desk/")
    junior.locator(f"#handoff-{handoff_id}").get_by_role("button", name="Take").click()
    expect(junior.locator("h1")).to_contain_text(f"Handoff {handoff_id}")


def test_a_hard_case_becomes_an_article_suggested_to_a_junior(desk: Any, site: tuple[str, Database]) -> None:
    from playwright.sync_api import expect

    _url, db = site
    first = a_caller(db, "kb-c1", "家里电话没有拨号音，换了话机也不行")
    junior = desk("kb-jun")
    take(junior, first)
    expect(junior.locator("#kb-suggestions")).to_have_count(0)  # nothing in the knowledge base yet
    j3 = junior.locator("#j3")
    j3.locator("input[name=reason]").fill("换了话机还是没有拨号音，我判断不了")
    j3.get_by_role("button", name="Transfer to a senior").click()

    senior = desk("kb-sen")
    senior.goto("/desk/review")
    transfer = senior.locator("section[id^=transfer-]").filter(has_text="我判断不了")
    transfer.locator("input[value=correct]").check()
    transfer.locator("textarea[name=note]").fill("线路测试断线：派单查修；换话机无效就是线路问题")
    transfer.get_by_role("button", name="Grade").click()
    expect(senior.locator("#hard-cases")).to_contain_text("我判断不了")

    dm = desk("kb-dm")
    expect(dm).to_have_url(re.compile(r"/desk/datamanager$"))  # the data manager's home
    row = dm.locator("#kb-tasks tr").filter(has_text="我判断不了")
    expect(row).to_contain_text("kb-sen")
    row.get_by_role("link").first.click()
    expect(dm.locator("#kb-task")).to_contain_text("换话机无效就是线路问题")
    dm.locator("#write-article").click()
    form = dm.locator("#article-form")
    expect(form.locator("textarea[name=answer]")).to_have_value("线路测试断线：派单查修；换话机无效就是线路问题")
    form.locator("textarea[name=question]").fill("电话没有拨号音，换了话机也不行")
    form.locator("textarea[name=answer]").fill("换话机仍无拨号音是线路问题：做线路测试，断线或短路就派单给查修员。")
    form.locator("select[name=fault_class]").select_option("用户线路故障")
    form.locator("input[name=symptoms][value=no_dial_tone]").check()
    form.locator("input[name=keywords]").fill("拨号音，话机，断线")
    form.locator("input[name=submit]").check()
    form.get_by_role("button", name="Save").click()
    expect(dm).to_have_url(re.compile(r"/desk/kb/articles/\d+$"))
    article_url = dm.url
    expect(dm.locator("h1")).to_contain_text("waiting for a senior")
    dm.goto("/desk/datamanager")
    expect(dm.locator("#kb-tasks")).to_have_count(0)  # the task is done
    expect(dm.locator("#kb-done")).to_contain_text("article written")

    senior.goto("/desk/kb/approvals")
    card = senior.locator("section[id^=approval-]").filter(has_text="换了话机也不行")
    card.get_by_role("button", name="Approve").click()
    expect(senior.locator("body")).to_contain_text("Nothing to approve.")

    # The next caller with no dial tone: the junior sees the article beside the caller's context.
    second = a_caller(db, "kb-c2", "座机没拨号音了")
    take(junior, second)
    suggestion = junior.locator("#kb-suggestions li").first
    expect(suggestion).to_contain_text("换了话机也不行")
    expect(suggestion.locator("mark").first).to_have_text("没有拨号音")  # the caller said 没拨号音: synonyms
    suggestion.get_by_role("link").click()
    expect(junior).to_have_url(article_url)
    expect(junior.locator("#article-answer")).to_contain_text("断线或短路就派单给查修员")
    for page in (junior, senior, dm):
        assert page.js_errors == []
    assert db.call(lambda s: s.get(Handoff, second)).taken_by == "kb-jun"  # type: ignore[union-attr]
