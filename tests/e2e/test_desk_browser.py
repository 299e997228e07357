"""The people behind the bot, in a real browser against the real stack (issue 4 §9):
a web-chat handoff taken by a junior, recorded as a new report, dispatched, approved by
a senior and closed by the measurement centre's receipt; a big customer going straight
to a senior; a repeat report on an overdue fault taken to the manager hotline, who
grants compensation. Every step is then read back from the ticket API's history.

Each post signs in in its own browser context, as different people at different desks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import col, func, select

from bot.desk.users import UserError, add_user
from bot.stack import Stack
from bot.store.db import Database
from bot.store.models import Handoff
from tests.browser.conftest import browser_page, chromium, desk_page  # noqa: F401  (fixtures)
from tests.e2e.conftest import Client

pytestmark = [pytest.mark.stack, pytest.mark.browser]

PASSWORD = "desk-e2e-password"
POSTS = {"j-e2e": ("junior", None), "s-e2e": ("senior", None), "c-e2e": ("centre", "测试分公司"),
         "m-e2e": ("manager", None)}
XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture(scope="module")
def stack_db(stack: Stack) -> Iterator[Database]:
    db = Database(stack.settings.database_url)
    for name, (role, branch) in POSTS.items():
        try:
            db.call(add_user, name, role, PASSWORD, branch=branch)
        except UserError:
            pass  # made by an earlier module run against this stack
    yield db
    db.dispose()


@pytest.fixture
def webchat_base_url(stack: Stack) -> str:
    return stack.settings.bot_url


@pytest.fixture
def desk(chromium: Any, stack: Stack, stack_db: Database) -> Iterator[Any]:  # noqa: F811
    """desk(username) → a page signed in as that post, in its own browser context."""
    contexts: list[Any] = []

    def sign_in(username: str) -> Any:
        page, context = desk_page(chromium, stack.settings.bot_url, username, PASSWORD)
        contexts.append(context)
        return page

    yield sign_in
    for context in contexts:
        context.close()


def newest_handoff(db: Database) -> Handoff:
    row = db.call(lambda s: s.exec(select(Handoff).order_by(col(Handoff.id).desc())).first())
    assert row is not None
    return row


def handoff_count(db: Database) -> int:
    return int(db.call(lambda s: s.exec(select(func.count()).select_from(Handoff)).one()))


def chat_until_handoff(page: Any, db: Database, steps: list[tuple[str, str]]) -> Handoff:
    """Drive the web chat (("choice"|"keys"|"text"|"expect_spec", value) steps) until the
    bot hands off; returns the handoff it queued."""
    from playwright.sync_api import expect

    before = handoff_count(db)
    page.goto("/")
    bot = page.locator("[data-testid=bot-message]")
    expect(bot.last).to_contain_text("障碍申告请按1")
    for kind, value in steps:
        if kind == "choice":
            page.get_by_test_id(f"choice-{value}").click()
        elif kind == "keys":
            for key in value:
                page.get_by_test_id("key-hash" if key == "#" else f"key-{key}").click()
        elif kind == "text":
            page.get_by_test_id("text-input").fill(value)
            page.get_by_test_id("send-button").click()
        elif kind == "expect_spec":
            expect(bot.last).to_have_attribute("data-spec", value, timeout=30_000)
    expect(page.get_by_test_id("handoff-banner")).to_be_visible(timeout=30_000)
    assert handoff_count(db) == before + 1
    return newest_handoff(db)


def act(page: Any, action: str, reason: str, **selects: str) -> None:
    from playwright.sync_api import expect

    form = page.locator(f"#action-{action}")
    for name, value in selects.items():
        form.locator(f"select[name={name}]").select_option(value)
    form.locator("textarea[name=reason]").fill(reason)
    form.locator("button[type=submit]").click()
    expect(page.locator("h1")).to_be_visible()


def history(client: Client, ticket_id: str) -> list[tuple[str, str, str]]:
    t = client.request("GET", f"/tmf-api/troubleTicket/v5/troubleTicket/{ticket_id}").body
    assert isinstance(t, dict)
    return [(h["action"], h["changedBy"], h["status"]) for h in t["statusChangeHistory"]]


def test_chat_handoff_new_report_dispatch_review_receipt(browser_page: Any, desk: Any, stack_db: Database,  # noqa: F811
                                                         client: Client) -> None:
    from playwright.sync_api import expect

    chat = browser_page
    # The chat user first types something hostile, then asks for other services (A1 → J1).
    handoff = chat_until_handoff(chat, stack_db, [("text", XSS), ("choice", "2")])
    assert handoff.queue == "junior" and handoff.state == "queued"

    junior = desk("j-e2e")
    card = junior.locator(f"#handoff-{handoff.id}")
    expect(card).to_be_visible()
    card.get_by_role("button", name="Take").click()
    expect(junior.locator("h1")).to_contain_text(f"Handoff {handoff.id}")
    expect(junior.locator("details .transcript")).to_contain_text(XSS)  # shown as text ...
    assert junior.evaluate("window.__xss") is None  # ... and never run

    j6 = junior.locator("#j6")
    j6.locator("input[name=fault_number]").fill("0571 6000 0002")
    j6.locator("select[name=symptom_category]").select_option("noise")
    j6.locator("textarea[name=symptom_text]").fill("通话时有杂音 " + XSS)
    j6.locator("input[name=contact_number]").fill("13912345678")
    j6.get_by_role("button", name="Record and test").click()
    expect(junior).to_have_url(re.compile(r"/desk/tickets/TT-\d+$"))
    ticket_id = junior.url.rsplit("/", 1)[1]
    expect(junior.locator("body")).to_contain_text("通话时有杂音 " + XSS)
    assert junior.evaluate("window.__xss") is None
    act(junior, "request_dispatch", "杂音，需上门检查")

    senior = desk("s-e2e")
    senior.goto("/desk/review")
    senior.locator(f"#review-{ticket_id} a").first.click()
    act(senior, "approve_dispatch", "派测试测量中心", fault_class="用户线路故障")
    expect(senior.locator("body")).to_contain_text("dispatched")

    centre = desk("c-e2e")
    centre.goto("/desk/centre")
    centre.locator(f"#dispatched-{ticket_id} a").first.click()
    act(centre, "receipt", "更换分线盒，杂音消除")
    expect(centre.locator("body")).to_contain_text("resolved")

    assert history(client, ticket_id) == [
        ("create", "j-e2e", "acknowledged"),
        ("request_dispatch", "j-e2e", "acknowledged"),
        ("approve_dispatch", "s-e2e", "inProgress"),
        ("receipt", "c-e2e", "resolved"),
    ]


def test_big_customer_goes_straight_to_a_senior(browser_page: Any, desk: Any, stack_db: Database) -> None:  # noqa: F811
    from playwright.sync_api import expect

    handoff = chat_until_handoff(browser_page, stack_db, [
        ("choice", "1"), ("keys", "60000009#"), ("expect_spec", "V2"), ("choice", "1"),
        ("expect_spec", "V5"), ("text", "我要转人工"),
    ])
    assert handoff.queue == "senior" and handoff.fault_number == "057160000009"

    junior = desk("j-e2e")
    expect(junior.locator("h1")).to_contain_text("Waiting callers")
    expect(junior.locator(f"#handoff-{handoff.id}")).to_have_count(0)  # J3: not the junior's
    junior.goto(f"/desk/handoffs/{handoff.id}")
    expect(junior.locator("h1")).to_contain_text("Not your queue")

    senior = desk("s-e2e")
    card = senior.locator(f"#handoff-{handoff.id}")
    card.get_by_role("button", name="Take").click()
    expect(senior.locator(".flag").first).to_contain_text("big customer")
    expect(senior.locator("#j3")).to_have_count(0)  # already with a senior


def test_repeat_report_on_an_overdue_fault_reaches_the_manager(browser_page: Any, desk: Any,  # noqa: F811
                                                               stack_db: Database, client: Client) -> None:
    from playwright.sync_api import expect

    # A6: the fourth and later report on F-T8 goes to a human; its deadline has passed.
    handoff = chat_until_handoff(browser_page, stack_db, [
        ("choice", "1"), ("keys", "60000008#"), ("expect_spec", "V2"), ("choice", "1"),
    ])
    assert handoff.queue == "junior" and handoff.reason == "repeat_over_limit"

    junior = desk("j-e2e")
    junior.locator(f"#handoff-{handoff.id}").get_by_role("button", name="Take").click()
    row = junior.locator("#ticket-F-T8")
    expect(row).to_contain_text("overdue")  # J4: overdue → manager hotline
    row.locator("a").first.click()
    act(junior, "escalate", "超时未修复，用户第四次来电，要求经理答复")

    manager = desk("m-e2e")
    manager.goto("/desk/escalations")
    escalation = manager.locator("#open-escalations tr", has_text="F-T8").last
    escalation.locator("a", has_text="Escalation").click()
    expect(manager.locator("body")).to_contain_text("20")  # the rules' amount for a residential line
    decision = manager.locator("#decision")
    decision.locator("input[name=finding][value=ours]").check()
    decision.locator("textarea[name=explanation]").fill("维修超时属我方责任，已致歉并按规定补偿")
    decision.locator("input[name=grant_compensation]").check()
    decision.get_by_role("button", name="Record the decision").click()
    manager.goto("/desk/escalations")
    expect(manager.locator("#decided-escalations")).to_contain_text("20")

    t = client.request("GET", "/tmf-api/troubleTicket/v5/troubleTicket/F-T8").body
    assert isinstance(t, dict)
    actions = [(h["action"], h["changedBy"]) for h in t["statusChangeHistory"]]
    assert ("escalate", "j-e2e") in actions and ("note", "m-e2e") in actions
    assert any("compensation 20 CNY granted" in n["text"] for n in t["note"])

    centre = desk("c-e2e")  # the branch is told (M3)
    centre.goto("/desk/centre")
    expect(centre.locator("body")).to_contain_text("20")
