"""The web-chat page (bot/web/static) in headless Chromium against the fake chat API.

Category: browser. Each test gets a fresh page and a reset fake (tests/fakes/fake_chat_api.py).
"""

from __future__ import annotations

import time
from typing import Any
from unittest.mock import ANY

import pytest

from tests.fakes.fake_chat_api import FakeChatState

pytestmark = pytest.mark.browser

expect: Any
try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the chromium fixture skips first
    expect = None


def bodies(state: FakeChatState) -> list[dict[str, Any]]:
    return state.bodies()


def wait_for_body(state: FakeChatState, body: dict[str, Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if body in state.bodies():
            return
        time.sleep(0.05)
    raise AssertionError(f"the fake never received {body}; it got {state.bodies()}")


def open_chat(page: Any) -> None:
    page.goto("/")
    expect(page.locator("[data-testid=bot-message]").first).to_be_visible()


def last_bot(page: Any) -> Any:
    return page.locator("[data-testid=bot-message]").last


def last_user_text(page: Any) -> Any:
    """The text of the user's last bubble (the bubble also holds a screen-reader prefix)."""
    return page.locator("[data-testid=user-message] .msg-text").last


def test_page_loads_and_shows_the_menu(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    open_chat(page)
    menu = last_bot(page)
    expect(menu).to_have_attribute("data-prompt", "utter_main_menu")
    expect(menu).to_have_attribute("data-step", "A1")
    expect(menu).to_contain_text("故障申告请按1")
    expect(page.get_by_test_id("choice-1")).to_contain_text("故障申告")
    expect(page.get_by_test_id("choice-0")).to_be_visible()
    expect(page.get_by_test_id("expect-hint")).to_have_attribute("data-kind", "choice")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert bodies(fake_chat.state) == [{"event": "start", "language": "zh", "browser": ANY}]
    # U3: the start names this browser (kept in localStorage, the same on every visit)
    browser = page.evaluate("localStorage.getItem('hotline.browser')")
    assert bodies(fake_chat.state)[0]["browser"] == browser and len(browser) == 36
    # no user bubble for the start event
    expect(page.get_by_test_id("user-message")).to_have_count(0)
    assert page.js_errors == []


def test_choice_button_sends_the_key(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    open_chat(page)
    page.get_by_test_id("choice-1").click()
    expect(last_bot(page)).to_have_attribute("data-spec", "V1")
    assert bodies(fake_chat.state)[-1] == {"dtmf": "1"}
    expect(page.get_by_test_id("user-message").last).to_contain_text("按键 1（故障申告）")
    # a digits expectation opens the keypad and the number display
    expect(page.get_by_test_id("keypad")).to_be_visible()
    expect(page.get_by_test_id("digit-entry")).to_be_visible()
    expect(page.get_by_test_id("choices")).to_be_hidden()


def test_keypad_digits_and_hash_send_dtmf_and_show_the_readback(
    browser_page: Any, fake_chat: Any
) -> None:
    page = browser_page
    open_chat(page)
    page.get_by_test_id("choice-1").click()
    expect(last_bot(page)).to_have_attribute("data-spec", "V1")
    for key in "057188123456":
        page.get_by_test_id(f"key-{key}").click()
    expect(page.get_by_test_id("digit-display")).to_have_text("057188123456")
    page.get_by_test_id("digit-backspace").click()
    page.get_by_test_id("key-6").click()
    page.get_by_test_id("key-hash").click()
    readback = last_bot(page)
    expect(readback).to_have_attribute("data-spec", "V2")
    expect(readback).to_contain_text("057188123456")
    assert bodies(fake_chat.state)[-1] == {"dtmf": "057188123456#"}
    expect(last_user_text(page)).to_have_text("057188123456#")
    expect(page.get_by_test_id("choice-1")).to_contain_text("确认")
    expect(page.get_by_test_id("choice-2")).to_contain_text("重新输入")
    expect(page.get_by_test_id("digit-display")).to_be_hidden()

    page.screenshot(path="/tmp/webchat.png", full_page=True)

    # in a choice, a keypad key is sent at once
    page.get_by_test_id("keypad-toggle").click()
    page.get_by_test_id("key-1").click()
    expect(page.get_by_test_id("ended-panel")).to_be_visible()
    assert bodies(fake_chat.state)[-1] == {"dtmf": "1"}
    expect(page.locator("[data-prompt=utter_report_accepted]")).to_contain_text("已被受理")
    expect(page.get_by_test_id("text-input")).to_be_disabled()
    expect(page.get_by_test_id("keypad")).to_be_hidden()

    old_id = page.evaluate("window.hotlineChat.conversationId")
    page.get_by_test_id("restart-button").click()
    expect(page.get_by_test_id("bot-message")).to_have_count(1)
    expect(last_bot(page)).to_have_attribute("data-prompt", "utter_main_menu")
    new_id = page.evaluate("window.hotlineChat.conversationId")
    assert new_id != old_id
    assert fake_chat.state.bodies(new_id) == [{"event": "start", "language": "zh", "browser": ANY}]
    assert fake_chat.state.bodies(new_id)[0]["browser"] == fake_chat.state.bodies(old_id)[0]["browser"]
    assert page.js_errors == []


def test_typed_text_is_sent_as_text_and_typed_digits_as_dtmf(
    browser_page: Any, fake_chat: Any
) -> None:
    page = browser_page
    open_chat(page)
    page.get_by_test_id("text-input").fill("我要报修")
    page.get_by_test_id("text-input").press("Enter")
    expect(last_bot(page)).to_have_attribute("data-spec", "V1")
    assert bodies(fake_chat.state)[-1] == {"text": "我要报修"}
    expect(last_user_text(page)).to_have_text("我要报修")

    page.get_by_test_id("text-input").fill("8812 3456")
    page.get_by_test_id("send-button").click()
    expect(last_bot(page)).to_have_attribute("data-spec", "V2")
    assert bodies(fake_chat.state)[-1] == {"dtmf": "88123456#"}

    # Two numbers typed in one line are words for the dialogue to sort out (issue 13), not 23 keys.
    page.get_by_test_id("text-input").fill("0571 8765 0001 139 1234 5678")
    page.get_by_test_id("send-button").click()
    expect(last_user_text(page)).to_have_text("0571 8765 0001 139 1234 5678")
    for _ in range(200):  # the request reaches the fake server
        if bodies(fake_chat.state)[-1] != {"dtmf": "88123456#"}:
            break
        page.wait_for_timeout(50)
    assert bodies(fake_chat.state)[-1] == {"text": "0571 8765 0001 139 1234 5678"}


def test_outage_shows_the_banner_and_retry_recovers(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    fake_chat.state.outage = True
    page.goto("/")
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("服务暂时不可用")
    expect(banner).to_contain_text("temporarily unavailable")
    expect(page.get_by_test_id("error-reason")).to_contain_text("not reachable")
    expect(page.get_by_test_id("bot-message")).to_have_count(0)

    fake_chat.state.outage = False
    page.get_by_test_id("retry-button").click()
    expect(banner).to_be_hidden()
    expect(last_bot(page)).to_have_attribute("data-prompt", "utter_main_menu")

    # an outage in the middle: the user's bubble stays, retry resends the same request
    fake_chat.state.outage = True
    page.get_by_test_id("choice-1").click()
    expect(banner).to_be_visible()
    fake_chat.state.outage = False
    page.get_by_test_id("retry-button").click()
    expect(last_bot(page)).to_have_attribute("data-spec", "V1")
    assert bodies(fake_chat.state)[-2:] == [{"dtmf": "1"}, {"dtmf": "1"}]
    expect(page.get_by_test_id("user-message")).to_have_count(1)


def test_bad_request_reason_is_shown_inline(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    open_chat(page)
    fake_chat.state.reject_next = "dtmf may contain only 0-9, * and #."
    page.get_by_test_id("choice-1").click()
    error = page.get_by_test_id("input-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("dtmf may contain only")
    expect(page.get_by_test_id("error-banner")).to_be_hidden()
    page.get_by_test_id("choice-1").click()
    expect(error).to_be_hidden()
    expect(last_bot(page)).to_have_attribute("data-spec", "V1")


def test_no_input_timer_sends_no_input(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    fake_chat.state.no_input_timeout_ms = 600
    open_chat(page)
    wait_for_body(fake_chat.state, {"event": "no_input"})
    expect(page.locator("[data-prompt=utter_no_input]").first).to_be_visible()
    expect(page.get_by_test_id("user-message")).to_have_count(0)
    # the page re-arms after the re-prompt; the fake hands off after three silences
    expect(page.get_by_test_id("handoff-banner")).to_be_visible(timeout=8000)
    assert bodies(fake_chat.state).count({"event": "no_input"}) == 3


def test_activity_postpones_no_input_and_half_typed_digits_are_sent(
    browser_page: Any, fake_chat: Any
) -> None:
    page = browser_page
    open_chat(page)
    page.get_by_test_id("choice-1").click()
    expect(last_bot(page)).to_have_attribute("data-spec", "V1")
    fake_chat.state.no_input_timeout_ms = 800  # applies to the next prompt
    page.get_by_test_id("key-hash").click()  # nothing typed: the bot re-prompts V1
    expect(page.locator("[data-prompt=utter_not_understood]")).to_have_count(1)
    for key in "8812345":
        page.get_by_test_id(f"key-{key}").click()
        page.wait_for_timeout(300)
    assert {"event": "no_input"} not in bodies(fake_chat.state)
    wait_for_body(fake_chat.state, {"dtmf": "8812345"})
    expect(last_bot(page)).to_have_attribute("data-spec", "V2")


def test_handoff_shows_connecting_and_queue_position(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    open_chat(page)
    page.get_by_test_id("choice-0").click()
    banner = page.get_by_test_id("handoff-banner")
    expect(banner).to_contain_text("正在为您转接人工服务")
    expect(page.get_by_test_id("handoff-position")).to_have_text("第 2 位")
    expect(page.get_by_test_id("ended-panel")).to_be_hidden()
    page.get_by_test_id("lang-toggle").click()
    expect(banner).to_contain_text("Connecting you to an operator")
    expect(page.get_by_test_id("handoff-position")).to_have_text("2")


def test_typing_indicator_while_the_bot_works(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    open_chat(page)
    fake_chat.state.delay_s = 1.5
    page.get_by_test_id("choice-1").click()
    typing = page.get_by_test_id("typing")
    expect(typing).to_be_visible()
    expect(page.get_by_test_id("send-button")).to_be_disabled()
    expect(typing).to_be_hidden(timeout=5000)
    expect(last_bot(page)).to_have_attribute("data-spec", "V1")


def test_english_labels_after_toggling(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    open_chat(page)
    toggle = page.get_by_test_id("lang-toggle")
    expect(toggle).to_have_text("English")
    toggle.click()
    expect(toggle).to_have_text("中文")
    expect(page.get_by_test_id("send-button")).to_have_text("Send")
    expect(page.get_by_test_id("text-input")).to_have_attribute("placeholder", "Type a message…")
    expect(page.get_by_test_id("expect-hint")).to_contain_text("Tap a button")
    assert page.evaluate("document.documentElement.lang") == "en"
    # the dialogue keeps its language; only the page's labels changed
    assert fake_chat.state.bodies()[-1] == {"event": "start", "language": "zh", "browser": ANY}
    # the choice is remembered: a new page starts the dialogue in English
    page.reload()
    expect(page.get_by_test_id("send-button")).to_have_text("Send")
    page.evaluate("sessionStorage.clear()")
    page.reload()
    expect(last_bot(page)).to_contain_text("Welcome")
    assert fake_chat.state.bodies()[-1] == {"event": "start", "language": "en", "browser": ANY}


def test_key_9_switches_the_dialogue_and_the_labels_follow(
    browser_page: Any, fake_chat: Any
) -> None:
    page = browser_page
    open_chat(page)
    page.get_by_test_id("choice-9").click()
    expect(last_bot(page)).to_contain_text("Welcome")
    expect(page.get_by_test_id("send-button")).to_have_text("Send")
    expect(page.get_by_test_id("choice-1")).to_contain_text("Report a fault")


def test_reload_continues_the_conversation(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    open_chat(page)
    page.get_by_test_id("choice-1").click()
    expect(last_bot(page)).to_have_attribute("data-spec", "V1")
    cid = page.evaluate("window.hotlineChat.conversationId")
    page.reload()
    expect(page.get_by_test_id("bot-message")).to_have_count(2)
    expect(page.get_by_test_id("user-message")).to_have_count(1)
    assert page.evaluate("window.hotlineChat.conversationId") == cid
    wait_for_body(fake_chat.state, {"event": "end"})  # the beacon on pagehide
    expect(page.get_by_test_id("keypad")).to_be_visible()
    for key in "88123456#":
        page.get_by_test_id("key-hash" if key == "#" else f"key-{key}").click()
    expect(last_bot(page)).to_have_attribute("data-spec", "V2")
    assert fake_chat.state.bodies(cid).count({"event": "start", "language": "zh", "browser": ANY}) == 1


def test_the_page_never_sends_two_inputs_at_once(browser_page: Any, fake_chat: Any) -> None:
    """Issue 14: while a reply is on its way the keys, choices, text box and keyboard send
    nothing; the one input is answered and the next goes out after it."""
    page = browser_page
    open_chat(page)
    fake_chat.state.delay_s = 5.0  # long enough that every attempt below falls inside the wait
    page.get_by_test_id("choice-1").click()
    typing = page.get_by_test_id("typing")
    expect(typing).to_be_visible()
    page.get_by_test_id("choice-0").click(force=True)
    page.keyboard.press("2")
    page.get_by_test_id("text-input").fill("人工")
    page.keyboard.press("Enter")
    page.get_by_test_id("send-button").click(force=True)
    assert sum(fake_chat.state.in_flight.values()) == 1, \
        "the attempts above were made while the first input was still on its way"
    expect(typing).to_be_hidden(timeout=10000)
    expect(last_bot(page)).to_have_attribute("data-spec", "V1")
    # This page's conversation only: a previous test's page may still say goodbye ('end').
    sent = fake_chat.state.bodies(page.evaluate("window.hotlineChat.conversationId"))
    assert sent[1:] == [{"dtmf": "1"}], sent
    assert fake_chat.state.max_in_flight == 1


def test_a_turn_still_in_progress_keeps_the_input_for_retry(browser_page: Any, fake_chat: Any) -> None:
    page = browser_page
    open_chat(page)
    fake_chat.state.busy_next = True
    page.get_by_test_id("choice-1").click()
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_be_visible()
    expect(page.get_by_test_id("error-reason")).to_contain_text("a reply is still on its way")
    page.get_by_test_id("retry-button").click()
    expect(banner).to_be_hidden()
    expect(last_bot(page)).to_have_attribute("data-spec", "V1")
    assert bodies(fake_chat.state)[-2:] == [{"dtmf": "1"}, {"dtmf": "1"}]
