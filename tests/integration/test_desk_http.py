"""The operator desk over HTTP (issue 4, first slice): sign-in, sessions and cookies,
CSRF, the sign-in throttle, what each role may see and do (enforced on the server),
taking a waiting caller once, and callers' words shown inert. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlmodel import func, select

from bot import desk
from bot.desk import auth
from bot.settings import Settings
from bot.store import service
from bot.store.db import Database
from bot.store.models import DeskLoginThrottle, DeskSession, DeskUser, Handoff, utcnow
from tests.conftest import DESK_TEST_PASSWORD, AClient, make_test_app
from tests.integration.desk_client import (
    CSRF_FIELD,
    XSS,
    XSS_ESCAPED,
    Client,
    login,
    sign_in,
)

PASSWORD = DESK_TEST_PASSWORD
ACCOUNTS = {  # username: (role, branch)
    "jun": ("junior", None), "jun2": ("junior", None), "sen": ("senior", None),
    "cen": ("centre", "西湖分公司"), "man": ("manager", None), "adm": ("admin", None),
}
_CSRF = CSRF_FIELD


def _make_accounts(db: Database, password_hash: str) -> None:
    def add(s: Any) -> None:
        for name, (role, branch) in ACCOUNTS.items():
            s.add(DeskUser(username=name, display_name=f"{name} display", role=role, branch=branch,
                           password_hash=password_hash))

    db.call(add)


def _app(db: Database, settings: Settings) -> web.Application:
    app = make_test_app(db, settings)
    desk.setup_routes(app)
    return app


@pytest.fixture
async def desk_client(aiohttp_client: AClient, demo_db: Database, settings: Settings, password_hash: str) -> Any:
    _make_accounts(demo_db, password_hash)
    return await aiohttp_client(_app(demo_db, settings))


def queue(db: Database, conversation_id: str, *, fault_number: str | None = None, queue: str | None = None,
          reason: str = "caller_request", transcript: list[dict[str, Any]] | None = None,
          line_test: dict[str, Any] | None = None) -> int:
    return db.call(service.queue_handoff, service.HandoffData(
        conversation_id=conversation_id, channel="webchat", language="zh", reason=reason,
        fault_number=fault_number, line_test=line_test, queue=queue,
        transcript=transcript if transcript is not None else [{"role": "user", "text": "我要人工"}],
    )).handoff_id


def handoff_row(db: Database, hid: int) -> Handoff:
    row = db.call(lambda s: s.get(Handoff, hid))
    assert row is not None
    return row


# ------------------------------------------------------------------ sign-in


async def test_login_sets_a_strict_httponly_session_cookie(desk_client: Client) -> None:
    page = await desk_client.get("/desk/login")
    login_cookie = page.headers.getall("Set-Cookie")
    assert any(c.startswith(f"{auth.LOGIN_COOKIE}=") and "HttpOnly" in c and "SameSite=Strict" in c
               for c in login_cookie)
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"

    r = await login(desk_client, "JUN")
    assert r.status == 303 and r.headers["Location"] == "/desk/"
    cookie = next(c for c in r.headers.getall("Set-Cookie") if c.startswith(f"{auth.SESSION_COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/desk" in cookie
    assert "Secure" not in cookie and "expires" not in cookie.lower()  # localhost default; ends with the browser
    assert len(r.cookies[auth.SESSION_COOKIE].value) >= 43  # 32 random bytes
    home = await desk_client.get("/desk/")
    assert home.status == 200 and "jun display" in await home.text()
    again = await desk_client.get("/desk/login", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == "/desk/"


async def test_secure_cookies_when_configured(aiohttp_client: AClient, db: Database, settings: Settings,
                                              password_hash: str) -> None:
    _make_accounts(db, password_hash)
    settings.desk_secure_cookies = True
    client = await aiohttp_client(_app(db, settings))
    page = await client.get("/desk/login")
    login_cookie = next(c for c in page.headers.getall("Set-Cookie") if c.startswith(f"{auth.LOGIN_COOKIE}="))
    assert "Secure" in login_cookie
    # Over plain http the client rightly keeps Secure cookies to itself: send it by hand.
    token = page.cookies[auth.LOGIN_COOKIE].value
    match = _CSRF.search(await page.text())
    assert match is not None and match.group(1) == token
    r = await client.post("/desk/login", data={"csrf": token, "username": "sen", "password": PASSWORD},
                          headers={"Cookie": f"{auth.LOGIN_COOKIE}={token}"}, allow_redirects=False)
    assert r.status == 303
    cookie = next(c for c in r.headers.getall("Set-Cookie") if c.startswith(f"{auth.SESSION_COOKIE}="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


@pytest.mark.parametrize("username,password", [("jun", "wrong-password"), ("nobody", PASSWORD), ("<b>x", PASSWORD)])
async def test_wrong_credentials_are_refused_alike(desk_client: Client, username: str, password: str) -> None:
    r = await login(desk_client, username, password)
    assert r.status == 401
    body = await r.text()
    assert "Wrong username or password." in body
    assert auth.SESSION_COOKIE not in r.cookies
    assert "<b>x" not in body  # the username typed is echoed escaped
    assert (await desk_client.get("/desk/", allow_redirects=False)).status == 303


async def test_disabled_account_cannot_sign_in_and_its_sessions_end(desk_client: Client, demo_db: Database) -> None:
    from bot.desk.users import disable_user

    op = await sign_in(desk_client, "jun")
    demo_db.call(disable_user, "jun")
    assert (await op.get("/desk/"))[0] == 303
    r = await login(desk_client, "jun")
    assert r.status == 403 and "disabled" in await r.text()
    assert auth.SESSION_COOKIE not in r.cookies


async def test_five_failures_lock_the_username_for_15_minutes(desk_client: Client, demo_db: Database) -> None:
    for _ in range(5):
        assert (await login(desk_client, "sen", "wrong-password")).status == 401
    locked = await login(desk_client, "sen")  # the right password, but locked
    assert locked.status == 429 and "Too many failed sign-ins" in await locked.text()
    assert auth.SESSION_COOKIE not in locked.cookies
    assert (await login(desk_client, "jun")).status == 303  # other usernames are not affected
    desk_client.session.cookie_jar.clear()

    def age(s: Any, minutes: int) -> None:
        row = s.get(DeskLoginThrottle, "sen")
        row.locked_until = utcnow() + timedelta(minutes=minutes)
        s.add(row)

    demo_db.call(age, 14)
    assert (await login(desk_client, "sen")).status == 429
    demo_db.call(age, -1)  # the 15 minutes are over
    assert (await login(desk_client, "sen")).status == 303
    assert demo_db.call(lambda s: s.get(DeskLoginThrottle, "sen")) is None


async def test_login_form_needs_its_csrf_token(desk_client: Client) -> None:
    no_form_token = await desk_client.post("/desk/login", data={"username": "jun", "password": PASSWORD},
                                           allow_redirects=False)
    assert no_form_token.status == 403 and "security token" in await no_form_token.text()
    await desk_client.get("/desk/login")
    wrong = await desk_client.post("/desk/login", data={"csrf": "x" * 43, "username": "jun", "password": PASSWORD},
                                   allow_redirects=False)
    assert wrong.status == 403
    desk_client.session.cookie_jar.clear()  # a forged cross-site post has the form token but not the cookie
    forged = await desk_client.post("/desk/login", data={"csrf": "y" * 43, "username": "jun", "password": PASSWORD},
                                    allow_redirects=False)
    assert forged.status == 403


async def test_logout_ends_the_session(desk_client: Client, demo_db: Database) -> None:
    op = await sign_in(desk_client, "man")
    status, _, _ = await op.post("/desk/logout", csrf=None)
    assert status == 403 and (await op.get("/desk/escalations"))[0] == 200  # no token: still signed in
    r = await desk_client.post("/desk/logout", data={"csrf": op.csrf}, headers=op.cookie, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/desk/login"
    cleared = next(c for c in r.headers.getall("Set-Cookie") if c.startswith(f"{auth.SESSION_COOKIE}="))
    assert "Max-Age=0" in cleared or "expires=Thu, 01 Jan 1970" in cleared
    status, _ = await op.get("/desk/escalations")
    assert status == 303  # back to the sign-in
    assert demo_db.call(lambda s: s.exec(select(DeskSession)).all()) == []


async def test_expired_session_goes_back_to_sign_in(desk_client: Client, demo_db: Database) -> None:
    op = await sign_in(desk_client, "jun")
    demo_db.call(lambda s: s.execute(sa.update(DeskSession).values(expires=utcnow() - timedelta(seconds=1))))
    status, _ = await op.get("/desk/")
    assert status == 303
    assert (await op.post(f"/desk/handoffs/{queue(demo_db, 'c-exp')}/take"))[0] == 401


async def test_session_lasts_the_configured_hours(desk_client: Client, demo_db: Database, settings: Settings) -> None:
    before = utcnow()
    await sign_in(desk_client, "jun")
    row = demo_db.call(lambda s: s.exec(select(DeskSession)).one())
    assert before + timedelta(hours=settings.desk_session_hours) <= row.expires <= utcnow() + timedelta(
        hours=settings.desk_session_hours)


async def test_signed_out_visitors_see_nothing(desk_client: Client, demo_db: Database) -> None:
    hid = queue(demo_db, "c-anon")
    for path in ("/desk/", f"/desk/handoffs/{hid}"):
        r = await desk_client.get(path, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/desk/login"
    r = await desk_client.post(f"/desk/handoffs/{hid}/take", data={"csrf": "x"}, allow_redirects=False)
    assert r.status == 401
    assert (await desk_client.get("/desk", allow_redirects=False)).headers["Location"] == "/desk/"
    assert handoff_row(demo_db, hid).state == "queued"


# ------------------------------------------------------------------ roles


async def test_each_role_sees_its_queue_or_its_own_page(desk_client: Client, demo_db: Database) -> None:
    junior_item = queue(demo_db, "c-junior", fault_number="057187650001")
    senior_item = queue(demo_db, "c-senior", fault_number="057188880001")  # J3: a big customer
    assert handoff_row(demo_db, senior_item).queue == "senior"

    jun = await sign_in(desk_client, "jun")
    status, body = await jun.get("/desk/")
    assert status == 200 and f"Handoff {junior_item}" in body and f"Handoff {senior_item}" not in body

    sen = await sign_in(desk_client, "sen")
    status, body = await sen.get("/desk/")
    assert status == 200 and f"Handoff {junior_item}" in body and f"Handoff {senior_item}" in body

    for name, home in (("cen", "/desk/centre"), ("man", "/desk/escalations"), ("adm", "/desk/admin")):
        op = await sign_in(desk_client, name)
        r = await desk_client.get("/desk/", headers=op.cookie, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == home
        status, body = await op.get(home)
        assert status == 200 and "我要人工" not in body


async def test_a_junior_reads_the_seniors_notes_on_their_transfers(desk_client: Client, demo_db: Database) -> None:
    from bot.store import workflow

    task = demo_db.call(workflow.open_senior_transfer, handoff_id=1, ticket_id=None, junior="jun", reason="不会处理")
    demo_db.call(workflow.grade_transfer, task, workflow.Actor("sen", "senior"), "incorrect", "这是普通新申告，应自己派单")
    status, body = await (await sign_in(desk_client, "jun")).get("/desk/")
    assert status == 200 and 'id="assessment"' in body and "这是普通新申告，应自己派单" in body
    status, body = await (await sign_in(desk_client, "jun2")).get("/desk/")
    assert status == 200 and 'id="assessment"' not in body


@pytest.mark.parametrize("name", ["cen", "man", "adm"])
async def test_non_operators_cannot_take_or_open_a_handoff(desk_client: Client, demo_db: Database, name: str) -> None:
    hid = queue(demo_db, f"c-{name}", fault_number="057187650001")
    op = await sign_in(desk_client, name)
    status, body, _ = await op.post(f"/desk/handoffs/{hid}/take")
    # The manager hotline serves its own queue only (complaints, issue 13 item 5).
    refusal = "does not serve" if name == "man" else "role cannot"
    assert status == 403 and refusal in body
    status, body = await op.get(f"/desk/handoffs/{hid}")
    assert status == 403 and "王建国" not in body and "我要人工" not in body
    assert handoff_row(demo_db, hid).state == "queued"


async def test_the_manager_hotline_takes_complaints_from_its_home(desk_client: Client, demo_db: Database) -> None:
    """Issue 13 item 5 (M2): the bot hands a complaint to the manager queue; the manager
    sees it on /desk/escalations and takes it; juniors and seniors do not serve that queue."""
    hid = queue(demo_db, "angry", fault_number="057187650001", queue="manager", reason="complaint",
                transcript=[{"role": "user", "text": "你们怎么还没修好 我要投诉"}])
    senior = await sign_in(desk_client, "sen")
    assert (await senior.post(f"/desk/handoffs/{hid}/take"))[0] == 403
    op = await sign_in(desk_client, "man")
    status, body = await op.get("/desk/escalations")
    assert status == 200 and f'id="handoff-{hid}"' in body and "我要投诉" in body
    status, _, location = await op.post(f"/desk/handoffs/{hid}/take")
    assert status == 303 and location == f"/desk/handoffs/{hid}"
    assert handoff_row(demo_db, hid).taken_by == "man"
    assert (await op.get(f"/desk/handoffs/{hid}"))[0] == 200


async def test_a_junior_cannot_reach_the_senior_queue(desk_client: Client, demo_db: Database) -> None:
    hid = queue(demo_db, "c-big", fault_number="057188880001")
    jun = await sign_in(desk_client, "jun")
    status, body, _ = await jun.post(f"/desk/handoffs/{hid}/take")
    assert status == 403 and "senior queue" in body
    status, body = await jun.get(f"/desk/handoffs/{hid}")
    assert status == 403 and "杭州天衡科技有限公司" not in body
    assert handoff_row(demo_db, hid).state == "queued"


# ------------------------------------------------------------------ CSRF on signed-in forms


@pytest.mark.parametrize("csrf", [None, "", "wrong-token-" + "x" * 32])
async def test_take_needs_the_sessions_csrf_token(desk_client: Client, demo_db: Database, csrf: str | None) -> None:
    hid = queue(demo_db, "c-csrf")
    jun = await sign_in(desk_client, "jun")
    status, body, _ = await jun.post(f"/desk/handoffs/{hid}/take", csrf=csrf)
    assert status == 403 and "security token is missing or out of date" in body
    assert handoff_row(demo_db, hid).state == "queued"


async def test_another_sessions_csrf_token_does_not_do(desk_client: Client, demo_db: Database) -> None:
    hid = queue(demo_db, "c-csrf2")
    jun, jun2 = await sign_in(desk_client, "jun"), await sign_in(desk_client, "jun2")
    status, _, _ = await jun.post(f"/desk/handoffs/{hid}/take", csrf=jun2.csrf)
    assert status == 403 and handoff_row(demo_db, hid).state == "queued"


# ------------------------------------------------------------------ take and the caller's context


async def test_junior_takes_a_caller_and_sees_the_full_context(desk_client: Client, demo_db: Database) -> None:
    hid = queue(demo_db, "c-ctx", fault_number="057187650008", reason="repeat_limit",
                line_test={"result": "short_circuit", "summary": "线路短路"},
                transcript=[{"role": "bot", "text": "请输入故障号码", "at": 1717200000.0},
                            {"role": "user", "text": "[keys 057187650008#]", "at": 1717200005.5}])
    jun = await sign_in(desk_client, "jun")
    status, _, location = await jun.post(f"/desk/handoffs/{hid}/take")
    assert status == 303 and location == f"/desk/handoffs/{hid}"
    row = handoff_row(demo_db, hid)
    assert row.state == "taken" and row.taken_by == "jun" and row.taken_at is not None

    status, body = await jun.get(location)
    assert status == 200
    for expected in ("repeat_limit", "webchat", "057187650008", "short_circuit", "线路短路",
                     "请输入故障号码", "[keys 057187650008#]", "2024-06-01 08:00:05",  # Asia/Shanghai
                     "周杰", "residential", "TT-W0003", "打不出去", "by jun at"):
        assert expected in body, expected
    open_part, past_part = body.split("Open tickets on the line")[1].split('<h2 id="seat">')[0].split(
        "Past tickets on the line")
    assert "TT-W0003" in open_part and "TT-W0003" not in past_part and "None." in past_part
    assert "Take</button>" not in body  # taken already

    status, home = await jun.get("/desk/")
    assert f'href="/desk/handoffs/{hid}"' in home and f"Handoff {hid}</h2>" not in home  # mine, no longer waiting


async def test_senior_takes_a_big_customer(desk_client: Client, demo_db: Database) -> None:
    hid = queue(demo_db, "c-vip", fault_number="057188880001")
    sen = await sign_in(desk_client, "sen")
    status, _, location = await sen.post(f"/desk/handoffs/{hid}/take")
    assert status == 303 and location is not None
    status, body = await sen.get(location)
    assert status == 200 and "杭州天衡科技有限公司" in body and "big customer" in body and "business" in body


async def test_handoff_without_a_number_and_unknown_ids(desk_client: Client, demo_db: Database) -> None:
    hid = queue(demo_db, "c-nonum")
    sen = await sign_in(desk_client, "sen")
    status, body = await sen.get(f"/desk/handoffs/{hid}")
    assert status == 200 and "The caller gave no fault number." in body and "Take</button>" in body
    status, body = await sen.get("/desk/handoffs/999999")
    assert status == 404 and "There is no handoff 999999" in body
    status, body, _ = await sen.post("/desk/handoffs/999999/take")
    assert status == 404
    assert (await sen.get("/desk/handoffs/99999999999"))[0] == 404  # beyond an integer: simply not found


async def test_taking_a_taken_caller_says_who_has_it(desk_client: Client, demo_db: Database) -> None:
    hid = queue(demo_db, "c-twice")
    jun, sen = await sign_in(desk_client, "jun"), await sign_in(desk_client, "sen")
    assert (await jun.post(f"/desk/handoffs/{hid}/take"))[0] == 303
    status, body, _ = await sen.post(f"/desk/handoffs/{hid}/take")
    assert status == 409 and "already taken by jun" in body
    row = handoff_row(demo_db, hid)
    assert row.taken_by == "jun" and row.state == "taken"


async def test_concurrent_takes_one_wins_nothing_lost(desk_client: Client, demo_db: Database) -> None:
    transcript = [{"role": "user", "text": f"line {i}"} for i in range(30)]
    hid = queue(demo_db, "c-race", fault_number="057187650001", transcript=transcript)
    ops = [await sign_in(desk_client, n) for n in ("jun", "jun2", "sen")]
    results = await asyncio.gather(*(op.post(f"/desk/handoffs/{hid}/take") for op in ops))
    statuses = sorted(r[0] for r in results)
    assert statuses == [303, 409, 409]
    winner = ("jun", "jun2", "sen")[[r[0] for r in results].index(303)]
    assert all(f"already taken by {winner}" in body for status, body, _ in results if status == 409)
    row = handoff_row(demo_db, hid)
    assert row.state == "taken" and row.taken_by == winner
    assert row.transcript == transcript and row.fault_number == "057187650001" and row.reason == "caller_request"
    assert demo_db.call(lambda s: s.exec(select(func.count()).select_from(Handoff)).one()) == 1


# ------------------------------------------------------------------ callers' words are inert


async def test_callers_text_is_escaped_everywhere(desk_client: Client, demo_db: Database) -> None:
    demo_db.call(service.create_report, service.ReportData(
        conversation_id="c-xss-report", channel="webchat", language="en", kind="new",
        fault_number="057187650002", symptom_category="other", symptom_text=XSS))
    hid = queue(demo_db, XSS, fault_number="057187650002", reason=XSS,
                line_test={"result": XSS, "summary": XSS},
                transcript=[{"role": "user", "text": XSS, "at": XSS}, {"role": XSS, "text": "ok"}])
    jun = await sign_in(desk_client, "jun")
    _, home = await jun.get("/desk/")
    assert XSS not in home and XSS_ESCAPED in home
    assert (await jun.post(f"/desk/handoffs/{hid}/take"))[0] == 303
    _, page = await jun.get(f"/desk/handoffs/{hid}")
    # The one script is the desk's own file (J1 live chat); callers' words never become markup.
    assert XSS not in page and "<script" not in page.replace('<script src="/static/desk-live.js" defer></script>', "")
    assert page.count(XSS_ESCAPED) >= 5  # reason, line test (2), transcript text and time, the ticket's symptom


async def test_the_app_factory_serves_the_desk(settings: Settings, db: Database) -> None:
    from bot.app import create_app

    app = create_app(settings, db)
    paths = {r.canonical for r in app.router.resources()}
    assert {"/desk/", "/desk/login", "/desk/logout"} <= paths
