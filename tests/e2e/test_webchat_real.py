"""The web chat page against the real stack in headless Chromium: a report by keypad."""

from __future__ import annotations

from typing import Any

import pytest

from bot.stack import Stack
from tests.browser.conftest import browser_page, chromium  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.stack, pytest.mark.browser]


@pytest.fixture
def webchat_base_url(stack: Stack) -> str:
    return stack.settings.bot_url


def test_report_a_fault_in_the_browser(browser_page: Any, client: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    page.goto("/")
    bot = page.locator("[data-testid=bot-message]")
    expect(bot.last).to_contain_text("障碍申告请按1")
    page.get_by_test_id("choice-1").click()
    expect(bot.last).to_have_attribute("data-spec", "V1")
    for key in "60000010":  # a local number, not reported by other tests; the area code is added
        page.get_by_test_id(f"key-{key}").click()
    page.get_by_test_id("key-hash").click()
    expect(bot.last).to_have_attribute("data-spec", "V2")
    expect(bot.last).to_contain_text("0571 6000 0010")
    page.get_by_test_id("choice-1").click()
    expect(bot.last).to_have_attribute("data-spec", "V5", timeout=30_000)
    page.get_by_test_id("text-input").fill("13912345678 电话打不出去")
    page.get_by_test_id("send-button").click()
    expect(bot.last).to_have_attribute("data-spec", "V6")
    page.get_by_test_id("choice-1").click()
    expect(bot.last).to_have_attribute("data-spec", "V7")
    page.screenshot(path="/tmp/webchat-real.png", full_page=True)
