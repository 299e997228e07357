"""Q1–Q8 in headless Chromium: the inspector opens a sample of the day before from their
home, scores it on the scorecard with an instant fail and its evidence, submits, and
records a violation by hand; the junior whose work it was sees both on their own QA
page, and another junior is refused it.

The bot's own app (store, desk) runs in a thread on a temporary SQLite database; no Rasa.
Category: browser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot import desk
from bot.quality import sampler
from bot.settings import Settings
from bot.store.db import Database
from bot.store.quality import QaSample
from tests.browser.conftest import desk_page, serving
from tests.conftest import make_test_app
from tests.quality_world import DAY, NOON, world

pytestmark = pytest.mark.browser
PASSWORD = "desk-password-1"

expect: Any
try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the chromium fixture skips first
    expect = None


@pytest.fixture(scope="module")
def qa_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The site, and the person whose contact is the junior sample listed first (newest first)."""
    from bot.desk.users import hash_password

    tmp = tmp_path_factory.mktemp("qa-site")
    db = Database(f"sqlite:///{tmp / 'hotline.db'}")
    db.upgrade()
    db.call(world, password_hash=hash_password(PASSWORD))
    db.call(sampler.daily, DAY, ZoneInfo("Asia/Shanghai"), 0.05, "browser", now=NOON + timedelta(days=1))
    first = db.call(lambda s: s.exec(select(QaSample).where(QaSample.post == "junior", QaSample.kind == "contact")
                                     .order_by(QaSample.id.desc())).first())  # type: ignore[union-attr]
    app = make_test_app(db, Settings(database_url=f"sqlite:///{tmp / 'unused.db'}", timezone="Asia/Shanghai"))
    desk.setup_routes(app)
    try:
        with serving(app) as url:
            yield url, first.person
    finally:
        db.dispose()


def test_a_sample_scored_and_a_violation_recorded_the_person_sees_it(chromium: Any, qa_site: tuple[str, str]) -> None:
    url, person = qa_site
    insp, _ = desk_page(chromium, url, "insp", PASSWORD)
    expect(insp.locator("#to-score")).to_be_visible()  # the inspector's home: the samples to score
    insp.locator('#to-score tr[data-post="junior"][data-kind="contact"] a').first.click()
    form = insp.locator("#score-form")
    for item, points in (("prompt", "20"), ("accurate", "25"), ("courteous", "5"), ("ticket_complete", "20"),
                         ("owner_check", "15")):
        form.locator(f'input[name="{item}.points"]').fill(points)
    form.locator('input[name="rude.found"]').check()
    form.locator('input[name="rude.comment"]').fill("对用户态度生硬")
    form.locator('input[name="rude.recording_at"]').fill("01:42")
    form.locator('button[name="submit"][value="1"]').click()
    expect(insp.locator("#score-result")).to_have_attribute("data-passed", "no")
    violation = insp.locator("#violation-form")
    violation.locator('input[name="description"]').fill("未回读故障号码")
    violation.locator('input[name="evidence"]').fill("对话第 2 行")
    violation.locator("button[type=submit]").click()
    expect(insp.locator("#violations tr[data-counted=yes]")).to_have_count(2)

    mine, _ = desk_page(chromium, url, person, PASSWORD)
    mine.locator('header a[href="/desk/quality/people"]').click()  # 质检评分: the desk speaks Mandarin
    expect(mine.locator("#summary")).to_have_attribute("data-counted", "2")
    expect(mine.locator("#violations")).to_contain_text("未回读故障号码")
    other, _ = desk_page(chromium, url, "jun2" if person == "jun1" else "jun1", PASSWORD)
    response = other.goto(f"/desk/quality/people/{person}")
    assert response is not None and response.status == 403
    assert not insp.js_errors and not mine.js_errors
