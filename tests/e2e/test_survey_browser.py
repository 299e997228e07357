"""U3–U5 in a real browser against the real stack: the web-chat reporter who comes back
in the same browser gets the survey (and "not fixed" is dispatched again); the
surveyor's survey pages — the due list, a signed link opened by the customer in another
browser (and only once), the results, the dissatisfaction queue with a cause recorded,
and the CSV download — each post in its own browser context."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from bot.desk.users import UserError, add_user
from bot.stack import Stack
from bot.store import surveys
from bot.store.db import Database
from bot.store.models import Ticket
from tests.browser.conftest import chromium  # noqa: F401  (fixture)
from tests.e2e.test_survey_calls import repaired

pytestmark = [pytest.mark.stack, pytest.mark.browser]

PASSWORD = "surveyor-e2e-password"
RULES = surveys.SurveyRules()


@pytest.fixture(scope="module")
def stack_db(stack: Stack) -> Iterator[Database]:
    db = Database(stack.settings.database_url)
    try:
        db.call(add_user, "u-e2e", "surveyor", PASSWORD)
    except UserError:
        pass  # made by an earlier run against this stack
    yield db
    db.dispose()


@pytest.fixture
def contexts(chromium: Any, stack: Stack) -> Iterator[Any]:  # noqa: F811
    """contexts() → a new browser (its own storage), on the stack."""
    made: list[Any] = []

    def new(**kw: Any) -> Any:
        context = chromium.new_context(base_url=stack.settings.bot_url, locale="zh-CN",
                                       viewport=kw.pop("viewport", {"width": 1100, "height": 900}), **kw)
        context.set_default_timeout(20_000)
        made.append(context)
        return context

    yield new
    for context in made:
        context.close()


def answer_in_chat(page: Any, choices: list[str], comment: str | None = None, *, ends: bool = True) -> None:
    """Press the choice buttons one answer at a time (each waits for the bot's next
    question), then type the comment; the survey ends."""
    from playwright.sync_api import expect

    bot = page.get_by_test_id("bot-message")
    mine = page.get_by_test_id("user-message")
    for key in choices:
        answered = mine.count()
        page.get_by_test_id(f"choice-{key}").click()
        expect(mine).to_have_count(answered + 1)
        expect(page.get_by_test_id("typing")).to_be_hidden()
    if comment is not None:
        expect(bot.last).to_contain_text("请输入您的意见")
        page.get_by_test_id("text-input").fill(comment)
        page.get_by_test_id("send-button").click()
    if ends:
        expect(page.get_by_test_id("ended-panel")).to_be_visible(timeout=30_000)


def test_the_chat_reporter_who_comes_back_gets_the_survey(contexts: Any, stack_db: Database) -> None:
    from playwright.sync_api import expect

    browser = contexts(viewport={"width": 420, "height": 860})
    first = browser.new_page()
    first.goto("/")
    expect(first.get_by_test_id("bot-message").last).to_contain_text("障碍申告请按1")
    conversation = first.evaluate("window.hotlineChat.conversationId")
    first.close()  # the report made in that conversation, repaired since
    tid, sid = repaired(stack_db, "057160009801", "13900980001", channel="webchat", conversation=conversation)
    assert stack_db.call(surveys.get, sid).state == "due"

    other = contexts().new_page()  # another browser: no survey, the main menu
    other.goto("/")
    expect(other.get_by_test_id("bot-message").last).to_contain_text("障碍申告请按1")

    again = browser.new_page()  # the same browser, another day: the survey
    again.goto("/")
    bot = again.get_by_test_id("bot-message")
    expect(bot.first).to_contain_text("回访")
    expect(bot.last).to_contain_text("修好了吗")
    answer_in_chat(again, ["2"], ends=False)  # not fixed
    expect(bot.filter(has_text="重新派单")).to_have_count(1)
    answer_in_chat(again, ["2", "1", "1"], comment="修了两次还是有杂音")
    expect(bot.last).to_contain_text("感谢您的配合")

    survey = stack_db.call(surveys.get, sid)
    assert (survey.state, survey.result, survey.attitude, survey.quality, survey.asked_by) == (
        "completed", "not_fixed", 2, 1, "bot (web chat)")
    assert survey.comment_text == "修了两次还是有杂音"
    second = stack_db.call(lambda s: s.get(Ticket, survey.second_ticket_id))
    assert second is not None and second.sub_step == "awaiting_review" and tid in second.description


def dissatisfied_on_phone(db: Database) -> tuple[str, int]:
    """A phone survey answered (by the dialogue's API calls, as the call would) dissatisfied."""
    n = random.randrange(10, 99)
    tid, sid = repaired(db, f"0571600098{n}", f"139009800{n}", channel="voice", conversation=f"sv-browser-{n}")
    db.call(surveys.claim_attempt, sid, 1, channel="phone", asked_by="bot (phone)")
    db.call(surveys.attach_call, sid, 1, 0, f"call-browser-{n}")
    db.call(surveys.start_conversation, sid, f"call-browser-{n}")
    for question, value in (("fixed", True), ("attitude", 1), ("quality", 3), ("wants_comment", False)):
        db.call(surveys.record_answer, sid, f"call-browser-{n}", surveys.Answer(question, value), RULES)
    db.call(surveys.finish, sid, f"call-browser-{n}", RULES)
    return tid, sid


def test_the_surveyors_pages(contexts: Any, stack_db: Database) -> None:
    from playwright.sync_api import expect

    _tid, due = repaired(stack_db, "057160009802", "13900980002", channel="voice", conversation="sv-due-1")
    _tid2, unhappy = dissatisfied_on_phone(stack_db)

    desk = contexts().new_page()
    desk.goto("/desk/login")
    desk.fill("input[name=username]", "u-e2e")
    desk.fill("input[name=password]", PASSWORD)
    desk.click("button[type=submit]")
    desk.goto("/desk/surveyor/surveys")
    expect(desk.locator("header .who")).to_contain_text("u-e2e")
    expect(desk.locator(f"#surveys-due #survey-{due}")).to_be_visible()

    # A signed link for the due survey, opened by the customer in their own browser.
    desk.click(f"#surveys-due #survey-{due} a[href='/desk/surveys/{due}']")
    desk.click("#link-form button")
    url = desk.locator("#survey-link-url").input_value()
    assert "/survey/" in url
    customer = contexts(viewport={"width": 420, "height": 860}).new_page()
    customer.goto(url)
    expect(customer.get_by_test_id("bot-message").last).to_contain_text("修好了吗")
    answer_in_chat(customer, ["1", "5", "4", "2"])
    expect(customer.get_by_test_id("bot-message").last).to_contain_text("感谢您的配合")
    used = contexts(viewport={"width": 420, "height": 860}).new_page()  # forwarded: it works once
    used.goto(url)
    expect(used.get_by_test_id("bot-message").last).to_contain_text("已经完成或已结束")
    assert stack_db.call(surveys.get, due).result == "satisfied"

    desk.goto("/desk/surveyor/surveys")
    expect(desk.locator(f"#surveys-results #survey-{due}")).to_contain_text("satisfied")

    # The dissatisfaction queue: the whole history, then the cause (the telecom side's).
    desk.goto("/desk/surveyor/dissatisfied")
    desk.click(f"#dissatisfied-{unhappy} a[href='/desk/surveys/{unhappy}']")
    expect(desk.locator("#history")).to_contain_text("receipt")
    form = desk.locator("#cause-form")
    form.locator("input[name=cause][value=telecom]").check()
    form.locator("textarea[name=note]").fill("线路老化，需更换入户线")
    form.locator("button[type=submit]").click()
    expect(desk.locator("#survey-cause")).to_contain_text("线路老化")
    second = desk.locator("#survey-second a")
    expect(second).to_be_visible()
    assert stack_db.call(surveys.get, unhappy).second_ticket_id == second.inner_text()
    desk.goto("/desk/surveyor/dissatisfied")
    expect(desk.locator(f"#dissatisfied-{unhappy}")).to_have_count(0)

    # The results as CSV, for Excel.
    desk.goto("/desk/surveyor/surveys")
    with desk.expect_download() as download:
        desk.click("#csv-form button")
    data = open(download.value.path(), "rb").read()
    assert data.startswith("\ufeffsurvey,".encode()) and "线路老化".encode() in data
