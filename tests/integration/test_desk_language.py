"""The desk in Mandarin by default, English by the account's switch (issue 14 item 5): one
catalogue (bot/desk/i18n.py, texts/*.yml) without conflicts; every desk page, for every
post, rendered in Mandarin shows no raw code and no untranslated English label. The pages
are found by walking the app's registered desk routes, so pages added later are covered
too. Rendered through the aiohttp test client (no browser). SQLite."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bot.desk import auth, i18n
from bot.desk.work import TASK_KIND_NAMES
from bot.settings import SETTINGS_KEY
from bot.stats import reports as stats_reports
from bot.store import knowledge, service, workflow
from bot.store.db import Database
from bot.store.models import DeskRole, DeskUser
from tests.integration.test_surveys_http import dissatisfied

XH = "西湖分公司"
LINE = "057187650008"  # demo world: TT-W0003 open on it, overdue
# Words allowed in a Mandarin page: names of things, not labels (the zone, the switch back
# to English, a command line, units and standards).
ALLOWED = {"Asia", "Shanghai", "English", "python", "bot", "users", "add", "list", "disable", "IVR", "TMF",
           "CSV", "Excel", "XLSX", "PDF", "xlsx", "json", "SIP", "API", "URL", "CPU",
           "senior", "centre"}  # (the last two: usernames in tests/unit/test_surveys.py's seeded survey)
CODE = re.compile(r"\b[a-z]+_[a-z_]+\b|\b[a-z]+[A-Z][A-Za-z]+\b")  # repeat_over_limit, inProgress
WORD = re.compile(r"[A-Za-z]{3,}")
# Rendering is the same on either store; the store's part runs on both in the other tests.
SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


class _Visible(HTMLParser):
    """The text a person reads: text nodes, button and placeholder words; not scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code", "audio", "svg"):
            self._skip += 1
        for name, value in attrs:
            if name in ("placeholder", "title", "aria-label") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code", "audio", "svg") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    return parser.parts


def untranslated(html: str) -> list[str]:
    """Text nodes with a raw code or English words (beyond the allowed names)."""
    bad = []
    for text in visible_text(html):
        if text.startswith("<"):
            continue
        if CODE.search(text) or any(w not in ALLOWED for w in WORD.findall(text)):
            bad.append(text)
    return bad


# ------------------------------------------------------------------ the catalogue


def test_the_catalogue_has_no_conflicts() -> None:
    """Two texts/*.yml files translating one key differently fail here, at build time."""
    assert i18n.conflicts() == []
    assert len(i18n.catalogue()) > 500


def test_a_conflict_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("Open: 打开\nSame: 相同\n", encoding="utf-8")
    (tmp_path / "b.yml").write_text("Open: 未处理\nSame: 相同\n", encoding="utf-8")
    merged, problems = i18n.load(tmp_path)
    assert merged == {"Open": "打开", "Same": "相同"}  # the first file wins; a request never fails
    assert problems == ["b.yml: 'Open' is '未处理' here but '打开' in a.yml"]


def test_codes_people_see_have_words_in_both_languages() -> None:
    for kind, values in {
        "status": ["acknowledged", "inProgress", "pending", "held", "resolved", "closed", "rejected", "cancelled"],
        "sub_step": list(workflow.STATUS_OF),
        "handoff_reason": ["repeat_over_limit", "open_fault", "caller_request", "failure_limit"],
        "line_test": ["ok", "open_circuit", "short_circuit", "earth_fault", "high_resistance", "foreign_voltage",
                      "cpe_fault", "cannot_test"],
        "channel": ["voice", "webchat"],
        "role": [r.value for r in DeskRole],
        "task_kind": list(TASK_KIND_NAMES),
        "handoff_state": ["queued", "taken", "abandoned", "returned", "done"],
        "customer_type": ["residential", "business", "government"],
    }.items():
        for value in values:
            zh, en = i18n.code_text(kind, value, "zh"), i18n.code_text(kind, value, "en")
            assert zh != value and not WORD.search(zh), (kind, value, zh)
            assert en != value or " " not in value, (kind, value)
            assert not CODE.search(en), (kind, value, en)


def test_times_in_the_centres_zone_in_chinese_format() -> None:
    moment = datetime(2026, 12, 7, 8, 5, 9, tzinfo=UTC)
    assert i18n.local_time(moment, "Asia/Shanghai", "zh") == "2026年12月7日 16:05:09"
    assert i18n.local_time(moment, "Asia/Shanghai", "en") == "2026-12-07 16:05:09"
    left = {"overdue": True, "days": 1, "hours": 2, "minutes": 5}
    assert i18n.span_text(left, "zh") == "已超时1天2小时05分"
    assert i18n.span_text(left, "en") == "overdue by 1 d 2 h 05 min"


# ------------------------------------------------------------------ every page


@pytest.fixture
async def desk(app_client: Any, demo_db: Database, password_hash: str) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """One account per post (Mandarin, not chosen: the default), a handoff, a ticket, tasks."""

    def setup(s: Session) -> dict[str, str]:
        tokens = {}
        for i, role in enumerate(DeskRole):
            user = DeskUser(username=f"u{i:02d}", display_name=f"用户{i}", role=role.value,
                            branch=XH if role is DeskRole.centre else None, password_hash=password_hash,
                            language=None)
            s.add(user)
            s.flush()
            assert user.id is not None
            tokens[role.value] = auth.open_session(s, user.id, 1)
        return tokens

    app_client.app[SETTINGS_KEY].desk_language = "zh"  # the product's default (tests/conftest.py reads English)
    tokens = demo_db.call(setup)
    hid = demo_db.call(service.queue_handoff, service.HandoffData(
        conversation_id="lang-1", channel="webchat", language="zh", reason="repeat_over_limit",
        fault_number=LINE, line_test={"result": "short_circuit", "summary": "线路短路"},
        transcript=[{"role": "bot", "text": "请输入故障号码", "at": 1717200000.0},
                    {"role": "user", "text": "057187650008", "at": 1717200005.5}])).handoff_id
    more = [demo_db.call(service.queue_handoff, service.HandoffData(
        conversation_id=f"lang-{number}", channel="voice", language="en", reason="caller_request",
        fault_number=number, transcript=[])).handoff_id
        for number in ("057188880001", "057187650005")]  # a big customer (J3); a line under engineering works
    tid = demo_db.call(service.create_report, service.ReportData(
        conversation_id="lang-2", channel="voice", language="zh", kind="new", fault_number="057187650001",
        symptom_category="no_dial_tone")).ticket_id
    demo_db.call(workflow.perform, "TT-W0003", "chase", workflow.Actor("u00", "junior"), reason="客户催修")
    notice = demo_db.call(lambda s: workflow.open_tasks(s, "centre", kind="branch_notice")[0].id)
    # A knowledge-base article in every state a page shows (D2), so its pages are read too.
    for i, (submit, approve) in enumerate([(False, False), (True, False), (True, True)]):
        article = demo_db.call(knowledge.create_article, knowledge.ArticleInput(
            question=f"没有拨号音怎么办{i}", answer="请检查电话线是否插好。", symptoms=("no_dial_tone",)),
            "u07", "datamanager", submit=submit)
        if approve:
            demo_db.call(knowledge.approve_article, article.id, "u01", "senior")
    dissatisfied(demo_db, "修得太慢了")  # a finished, dissatisfied survey (U3–U5): the survey pages
    # A weekly statistics report (T1–T5), so the report pages are read too.
    demo_db.call(stats_reports.generate, "weekly", date(2026, 11, 2),
                 stats_reports.Options(tz=ZoneInfo("Asia/Shanghai")))
    junior = demo_db.call(auth.session_identity, tokens["junior"])
    assert junior is not None  # the junior takes the first caller: the seat's forms (J2–J6) are read too
    taken = await app_client.post(f"/desk/handoffs/{hid}/take", data={"csrf": junior.csrf_token},
                                  headers={"Cookie": f"{auth.SESSION_COOKIE}={tokens['junior']}"},
                                  allow_redirects=False)
    assert taken.status == 303
    return app_client, tokens, {"handoff": hid, "ticket": tid, "notice": notice, "more_handoffs": more}


def _pages(app_client: Any, ids: dict[str, Any]) -> list[str]:
    fixed = sorted({r.canonical for r in app_client.app.router.resources()
                    if r.canonical.startswith("/desk") and "{" not in r.canonical and "GET" in _methods(r)})
    return [*fixed, f"/desk/handoffs/{ids['handoff']}", f"/desk/tickets/{ids['ticket']}",
            "/desk/tickets/TT-W0003", f"/desk/tasks/{ids['notice']}", "/desk/tickets/TT-0000",
            *(f"/desk/handoffs/{h}" for h in ids["more_handoffs"])]


def _methods(resource: Any) -> set[str]:
    return {route.method for route in resource}


LINK = re.compile(r'href="(/desk/[^"#?]*)"')
NOT_PAGES = re.compile(r"(export|audio|\.xlsx|\.pdf|\.csv|\.json|/logout)")


def _pattern(path: str) -> str:
    """Pages of one kind (ticket 1, ticket 2) are one pattern: each is read once per post."""
    return re.sub(r"TT-[A-Za-z0-9]+|\d+", "#", path)


@SQLITE_ONLY
async def test_every_page_for_every_post_in_mandarin(desk: tuple[Any, dict[str, str], dict[str, Any]]) -> None:
    """Every registered desk page without an id, the seeded ticket, handoff and task pages,
    and every desk page linked from those (one of each kind), for every post."""
    await _walk(desk, "zh")


@SQLITE_ONLY
async def test_no_raw_code_in_english_either(desk: tuple[Any, dict[str, str], dict[str, Any]],
                                             demo_db: Database) -> None:
    """Accounts switched to English: the same pages, with codes as English words."""
    demo_db.call(lambda s: [setattr(u, "language", "en") or s.add(u) for u in s.exec(select(DeskUser))])
    await _walk(desk, "en")


async def _walk(desk: tuple[Any, dict[str, str], dict[str, Any]], lang: str) -> None:
    client, tokens, ids = desk
    pages = _pages(client, ids)
    assert {"/desk/", "/desk/centre", "/desk/review"} <= set(pages)
    problems: dict[str, list[str]] = {}
    shown = 0
    for role, token in tokens.items():
        todo, seen = list(pages), {_pattern(p) for p in pages}
        while todo:
            path = todo.pop(0)
            resp = await client.get(path, headers={"Cookie": f"{auth.SESSION_COOKIE}={token}"},
                                    allow_redirects=False)
            assert resp.status < 500, (role, path, resp.status)
            if "text/html" not in resp.headers.get("Content-Type", ""):
                continue
            html = await resp.text()
            shown += 1
            assert f'<html lang="{"zh-CN" if lang == "zh" else "en"}">' in html, (role, path)
            bad = untranslated(html) if lang == "zh" else [x for x in visible_text(html) if CODE.search(x)]
            if bad:
                problems[f"{role} {path} ({resp.status})"] = bad[:8]
            for link in LINK.findall(html):
                if not NOT_PAGES.search(link) and _pattern(link) not in seen:
                    seen.add(_pattern(link))
                    todo.append(link)
    assert shown > 50
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


@SQLITE_ONLY
async def test_the_switch_turns_an_account_to_english_and_back(
        desk: tuple[Any, dict[str, str], dict[str, Any]], demo_db: Database) -> None:
    client, tokens, ids = desk
    cookie = {"Cookie": f"{auth.SESSION_COOKIE}={tokens['senior']}"}
    page = f"/desk/handoffs/{ids['handoff']}"
    html = await (await client.get(page, headers=cookie)).text()
    assert "等待开始" in html and "重复申告超限" in html and "线路短路" in html and "Waiting since" not in html
    assert "repeat_over_limit" not in "".join(visible_text(html))
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf is not None
    resp = await client.post("/desk/language", data={"csrf": csrf.group(1), "language": "en"},
                             headers={**cookie, "Referer": f"http://x{page}"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == page
    html = await (await client.get(page, headers=cookie)).text()
    assert "Waiting since" in html and "repeat reports over the limit" in html and "等待开始" not in html
    assert "Open tickets on the line" in html and '<html lang="en">' in html
    resp = await client.post("/desk/language", data={"csrf": csrf.group(1), "language": "xx"}, headers=cookie)
    assert resp.status == 400
    await client.post("/desk/language", data={"csrf": csrf.group(1), "language": "zh"}, headers=cookie)
    html = await (await client.get(page, headers=cookie)).text()
    assert "等待开始" in html
    chosen = demo_db.call(lambda s: [u.language for u in s.exec(select(DeskUser)) if u.role == "senior"])
    assert chosen == ["zh"]  # stored on the account


@SQLITE_ONLY
async def test_a_refusal_is_told_in_mandarin(desk: tuple[Any, dict[str, str], dict[str, Any]],
                                              demo_db: Database) -> None:
    """A POST the store refuses comes back with the words for its code, not the store's English."""
    client, tokens, ids = desk
    who = demo_db.call(auth.session_identity, tokens["senior"])
    assert who is not None
    cookie = {"Cookie": f"{auth.SESSION_COOKIE}={tokens['senior']}"}
    path = f"/desk/tickets/{ids['ticket']}/actions/approve_dispatch"
    resp = await client.post(path, data={"csrf": who.csrf_token, "version": "1", "fault_class": "用户线路故障"},
                             headers=cookie)
    html = await resp.text()
    assert resp.status == 400 and "请填写原因。" in html and "needs a reason" not in html
    resp = await client.post(path, data={"csrf": who.csrf_token, "version": "99", "reason": "派单",
                                         "fault_class": "用户线路故障"}, headers=cookie)
    html = await resp.text()
    assert resp.status == 409 and "工单在您打开后已被修改。请刷新页面" in html
    assert untranslated(html) == []
