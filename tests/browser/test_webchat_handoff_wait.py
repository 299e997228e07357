"""J1 in the web-chat page (bot/web/static) in headless Chromium against the fake chat
API: the place in the queue while waiting, the offer to go back to the automated
service after the interval (short here), back at V1 on the button, and the live chat
once an operator took it — the operator's lines appear, the user's own lines (markup
included) are shown as text, and the end of the chat ends the page's conversation.

Category: browser. Each test gets a fresh page and a reset fake.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_webchat import last_bot, last_user_text, open_chat, wait_for_body

pytestmark = pytest.mark.browser

expect: Any
try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the chromium fixture skips first
    expect = None

MARKUP = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><b>bold</b>'


def hand_off(page: Any) -> str:
    open_chat(page)
    page.get_by_test_id("choice-0").click()
    expect(page.get_by_test_id("handoff-banner")).to_be_visible()
    cid: str = page.evaluate("window.hotlineChat.conversationId")
    return cid


def test_waiting_shows_the_place_then_the_offer_back_to_the_bot(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    fake_chat.state.handoff_offer_s = 1.5
    hand_off(page)
    expect(page.get_by_test_id("handoff-position")).to_have_text("第 2 位")
    expect(page.get_by_test_id("text-form")).to_be_hidden()  # nobody to talk to yet
    expect(page.get_by_test_id("ended-panel")).to_be_hidden()
    fake_chat.state.handoff_position = 1  # someone ahead was served: the place refreshes
    expect(page.get_by_test_id("handoff-position")).to_have_text("第 1 位", timeout=6000)
    offer = page.get_by_test_id("handoff-offer")
    expect(offer).to_be_visible(timeout=8000)
    expect(page.get_by_test_id("return-button")).to_have_text("返回自动服务")
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("return-button")).to_have_text("Back to the automated service")
    page.get_by_test_id("lang-toggle").click()

    page.get_by_test_id("return-button").click()
    wait_for_body(fake_chat.state, {"handoff": "return"})
    expect(page.locator("[data-prompt=utter_back_to_bot]")).to_contain_text("已为您返回自动服务")
    expect(last_bot(page)).to_have_attribute("data-spec", "V1")  # A2: the fault number again
    expect(page.get_by_test_id("handoff-banner")).to_be_hidden()
    expect(page.get_by_test_id("digit-entry")).to_be_visible()
    for key in "87650001":
        page.get_by_test_id(f"key-{key}").click()
    page.get_by_test_id("key-hash").click()
    expect(last_bot(page)).to_have_attribute("data-spec", "V2")
    assert page.js_errors == []


def test_no_offer_before_the_interval(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    fake_chat.state.handoff_offer_s = 600
    hand_off(page)
    page.wait_for_timeout(2500)  # more than one poll
    expect(page.get_by_test_id("handoff-offer")).to_be_hidden()
    expect(page.get_by_test_id("handoff-position")).to_have_text("第 2 位")


def test_live_chat_with_the_operator_in_the_same_window(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    cid = hand_off(page)
    fake_chat.state.take(cid, "王小明")
    who = page.get_by_test_id("handoff-operator")
    expect(who).to_contain_text("王小明", timeout=6000)
    expect(page.get_by_test_id("handoff-waiting")).to_be_hidden()
    fake_chat.state.operator_says(cid, "您好，我是王小明，请问有什么可以帮您？")
    operator_line = page.locator("[data-testid=operator-message]").last
    expect(operator_line.locator(".msg-text")).to_have_text("您好，我是王小明，请问有什么可以帮您？", timeout=6000)
    expect(operator_line.locator(".msg-name")).to_have_text("王小明")

    page.get_by_test_id("text-input").fill(MARKUP)
    page.get_by_test_id("send-button").click()
    wait_for_body(fake_chat.state, {"handoff_message": MARKUP})
    expect(last_user_text(page)).to_have_text(MARKUP)  # shown as typed, not as markup
    assert page.locator("#messages b, #messages img, #messages script").count() == 0
    assert page.evaluate("window.pwned") is None

    fake_chat.state.operator_says(cid, "<b>请稍等</b>")
    expect(page.locator("[data-testid=operator-message] .msg-text").last).to_have_text("<b>请稍等</b>", timeout=6000)
    assert page.locator("#messages b").count() == 0

    fake_chat.state.finish(cid)
    expect(last_bot(page)).to_contain_text("人工服务已结束", timeout=6000)
    expect(page.get_by_test_id("ended-panel")).to_be_visible()
    expect(page.get_by_test_id("handoff-banner")).to_be_hidden()
    assert page.js_errors == []


def test_a_reload_while_waiting_keeps_the_place(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    cid = hand_off(page)
    page.reload()
    expect(page.get_by_test_id("handoff-banner")).to_be_visible()
    expect(page.get_by_test_id("handoff-position")).to_have_text("第 2 位")
    wait_for_body(fake_chat.state, {"handoff": "leave"})  # the page said it went away …
    page.wait_for_timeout(2500)
    assert fake_chat.state.handoffs[cid].left is False  # … and came back by polling
    assert fake_chat.state.handoffs[cid].state == "queued"
