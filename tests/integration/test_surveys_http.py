"""The survey over HTTP, in-process (SQLite and PostgreSQL): the dialogue's survey API
(internal token, the asking conversation only, bad answers refused with a reason), what
the web chat opens (the same browser, a signed link once), and the surveyor's desk
pages (roles on the server, the cause form, the link, the CSV, the do-not-call list,
the team leader's task on the review page)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from bot import desk
from bot.api import surveys as api_surveys
from bot.settings import Settings
from bot.store import surveys
from bot.store.db import Database
from bot.store.models import DeskTask, DeskUser
from bot.survey import chat as survey_chat
from bot.survey import links
from tests.conftest import INTERNAL_AUTH, AClient, make_test_app
from tests.integration.desk_client import (
    XSS,
    XSS_ESCAPED,
    Client,
    Operator,
    sign_in,
)
from tests.unit.test_surveys import CONTACT, RULES, answer, on_the_phone, resolved, survey_of

ACCOUNTS = {"sur": "surveyor", "sen": "senior", "jun": "junior", "adm": "admin"}
# The desk's pages over SQLite only: the store underneath runs on both in tests/unit/test_surveys.py.
SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


@pytest.fixture
def accounts(demo_db: Database, password_hash: str) -> Database:
    def add(s: Session) -> None:
        for name, role in ACCOUNTS.items():
            s.add(DeskUser(username=name, display_name=f"{name} display", role=role, password_hash=password_hash))

    demo_db.call(add)
    return demo_db


@pytest.fixture
async def web_client(aiohttp_client: AClient, accounts: Database, settings: Settings) -> Client:
    app = make_test_app(accounts, settings)
    api_surveys.setup_routes(app)
    desk.setup_routes(app)
    return await aiohttp_client(app)


# ------------------------------------------------------------------ the dialogue's API


async def test_the_dialogue_records_the_survey_through_the_api(web_client: Client, accounts: Database) -> None:
    tid = resolved(accounts)
    sid = int(survey_of(accounts, tid).id or 0)
    accounts.call(surveys.claim_attempt, sid, 1, channel="phone", asked_by="bot (phone)")
    accounts.call(surveys.attach_call, sid, 1, 5, "call-uuid-1")
    base, conv = f"/api/surveys/{sid}", {"conversation_id": "call-uuid-1"}

    r = await web_client.post(f"{base}/start", json=conv)
    assert r.status == 401  # the internal token only
    r = await web_client.post(f"{base}/start", json=conv, headers=INTERNAL_AUTH)
    body = await r.json()
    assert r.status == 200 and body["language"] == "zh" and body["ticket_id"] == tid
    assert body["fault_number"] == "057187650001" and re.fullmatch(r"\d{4}-\d\d-\d\d", body["reported_on"])
    assert body["number"] == "138****8000"  # masked: the dialogue needs no callee number

    r = await web_client.post(f"{base}/start", json={"conversation_id": "someone-else"}, headers=INTERNAL_AUTH)
    assert r.status == 409 and (await r.json())["error"] == "survey_not_open"
    r = await web_client.post(f"{base}/answers", json={**conv, "question": "attitude", "value": 9},
                              headers=INTERNAL_AUTH)
    assert r.status == 400 and "1 to 5" in (await r.json())["reason"]
    r = await web_client.post(f"{base}/answers", json={**conv, "question": "mood", "value": 3},
                              headers=INTERNAL_AUTH)
    assert r.status == 400
    for question, value in (("fixed", True), ("attitude", 5), ("quality", 5), ("wants_comment", False)):
        r = await web_client.post(f"{base}/answers", json={**conv, "question": question, "value": value},
                                  headers=INTERNAL_AUTH)
        assert r.status == 200, await r.text()
    r = await web_client.post(f"{base}/finish", json=conv, headers=INTERNAL_AUTH)
    assert (await r.json())["state"] == "completed"
    assert (await r.json())["result"] == "satisfied"
    r = await web_client.get(base, headers=INTERNAL_AUTH)
    assert (await r.json())["answers"]["attitude"] == 5
    r = await web_client.post("/api/surveys/999999/start", json=conv, headers=INTERNAL_AUTH)
    assert r.status == 404
    # U4: satisfied is recorded and found again (the data manager's archive reads it).
    r = await web_client.get("/api/surveys?result=satisfied&since=2020-01-01", headers=INTERNAL_AUTH)
    assert [x["id"] for x in await r.json()] == [sid]
    assert (await web_client.get("/api/surveys?result=happy", headers=INTERNAL_AUTH)).status == 400
    assert (await web_client.get("/api/surveys?since=yesterday", headers=INTERNAL_AUTH)).status == 400
    assert (await web_client.get("/api/surveys")).status == 401


async def test_a_recorded_comment_must_exist(web_client: Client, accounts: Database, settings: Settings) -> None:
    sid = on_the_phone(accounts, resolved(accounts))
    body = {"conversation_id": "call-1", "question": "comment", "recording_id": "nope-1"}
    r = await web_client.post(f"/api/surveys/{sid}/answers", json=body, headers=INTERNAL_AUTH)
    assert r.status == 422
    settings.recordings_dir.mkdir(parents=True, exist_ok=True)
    (settings.recordings_dir / "call-1-1-abc.wav").write_bytes(b"RIFF")
    r = await web_client.post(f"/api/surveys/{sid}/answers", json={**body, "recording_id": "call-1-1-abc"},
                              headers=INTERNAL_AUTH)
    assert r.status == 200 and (await r.json())["answers"]["comment_recording"] is True


# ------------------------------------------------------------------ what the web chat opens


async def test_the_same_browser_gets_its_survey_and_a_signed_link_works_once(
        accounts: Database, settings: Settings) -> None:
    await survey_chat.survey_to_open(settings, accounts, "c1", browser="browser-1111", token=None)  # the report
    tid = resolved(accounts, channel="webchat")
    sid = int(survey_of(accounts, tid).id or 0)
    assert await survey_chat.survey_to_open(settings, accounts, "c-other", browser="browser-2222", token=None) is None
    assert await survey_chat.survey_to_open(settings, accounts, "c2", browser="browser-1111", token=None) == sid
    assert accounts.call(surveys.get, sid).conversation_id == "c2"
    assert await survey_chat.survey_to_open(settings, accounts, "c3", browser="browser-1111", token=None) is None

    phone_sid = int(survey_of(accounts, resolved(accounts, conversation="c9", number="057187650002")).id or 0)
    expires = datetime.now(UTC) + timedelta(days=1)
    accounts.call(surveys.issue_link, phone_sid, "n" * 24, expires)
    key = await links.link_key(settings, accounts)
    token = links.make_token(key, phone_sid, "n" * 24, expires)
    assert await survey_chat.survey_to_open(settings, accounts, "l1", browser=None, token=token) == phone_sid
    assert accounts.call(surveys.get, phone_sid).conversation_id == "l1"
    # Used: the dialogue is told the survey (and says it is not open there any more).
    assert await survey_chat.survey_to_open(settings, accounts, "l2", browser=None, token=token) == phone_sid
    assert accounts.call(surveys.get, phone_sid).conversation_id == "l1"
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert await survey_chat.survey_to_open(settings, accounts, "l3", browser=None, token=forged) == 0
    assert links.read_token(key, token, expires + timedelta(seconds=1)) is None  # expired


# ------------------------------------------------------------------ the surveyor's desk


async def signed(web_client: Client) -> dict[str, Operator]:
    return {name: await sign_in(web_client, name) for name in ACCOUNTS}


def dissatisfied(db: Database, text: str = XSS) -> tuple[str, int]:
    tid = resolved(db)
    sid = on_the_phone(db, tid)
    answer(db, sid, "call-1", "fixed", True)
    answer(db, sid, "call-1", "attitude", 1)
    answer(db, sid, "call-1", "quality", 2)
    answer(db, sid, "call-1", "comment", text=text)
    db.call(surveys.finish, sid, "call-1", RULES)
    return tid, sid


@SQLITE_ONLY
async def test_the_survey_pages_are_the_surveyors(web_client: Client, accounts: Database) -> None:
    who = await signed(web_client)
    _tid, sid = dissatisfied(accounts)
    for path in ("/desk/surveyor/surveys", "/desk/surveyor/dissatisfied", "/desk/surveyor/surveys.csv"):
        assert (await who["jun"].get(path))[0] == 403
        assert (await who["sen"].get(path))[0] == 403
        assert (await who["sur"].get(path))[0] == 200
    status, page = await who["sur"].get("/desk/surveyor/dissatisfied")
    assert f'id="dissatisfied-{sid}"' in page and XSS_ESCAPED in page and XSS not in page
    status, page = await who["sur"].get("/desk/surveyor/surveys")
    assert f'id="survey-{sid}"' in page and 'id="surveys-results"' in page
    assert (await who["jun"].get(f"/desk/surveys/{sid}"))[0] == 403
    assert (await who["sen"].get(f"/desk/surveys/{sid}"))[0] == 200  # reads it: no forms
    assert 'id="cause-form"' not in (await who["sen"].get(f"/desk/surveys/{sid}"))[1]
    status, _text, _loc = await who["sen"].post(f"/desk/surveys/{sid}/cause", cause="telecom", note="x")
    assert status == 403


@SQLITE_ONLY
async def test_the_cause_form_and_its_refusals(web_client: Client, accounts: Database) -> None:
    who = await signed(web_client)
    tid, sid = dissatisfied(accounts)
    status, page = await who["sur"].get(f"/desk/surveys/{sid}")
    assert 'id="cause-form"' in page and 'id="history"' in page and "receipt" in page
    status, page, _ = await who["sur"].post(f"/desk/surveys/{sid}/cause", cause="not_ours", note="用户话机坏了",
                                            explained_how="phone", explained_at="", accepted="no")
    assert status == 400 and "when it was explained" in page
    status, page, _ = await who["sur"].post(f"/desk/surveys/{sid}/cause", cause="centre", note="态度差")
    assert status == 400 and "staff member" in page and "态度差" in page  # what was typed is kept
    status, _page, loc = await who["sur"].post(f"/desk/surveys/{sid}/cause", cause="centre", note="态度差",
                                               staff_member="jun")
    assert status == 303 and loc == f"/desk/surveys/{sid}"
    status, page = await who["sur"].get(f"/desk/surveys/{sid}")
    assert 'id="survey-cause"' in page and "jun" in page
    status, _page, _ = await who["sur"].post(f"/desk/surveys/{sid}/cause", cause="telecom", note="again")
    assert status == 409
    # The team leader (a senior) sees the task on the review page and closes it.
    status, page = await who["sen"].get("/desk/review")
    (task_id,) = [int(m) for m in re.findall(r'id="team-task-(\d+)"', page)]
    status, _p, loc = await who["jun"].post(f"/desk/surveys/tasks/{task_id}/done", note="x")
    assert status == 403
    status, _p, loc = await who["sen"].post(f"/desk/surveys/tasks/{task_id}/done", note="已谈话")
    assert status == 303 and loc == "/desk/review"
    task = accounts.call(lambda s: s.get(DeskTask, task_id))
    assert task is not None and task.state == "done" and task.done_by == "sen"
    status, page = await who["sur"].get(f"/desk/tickets/{tid}")
    assert f'href="/desk/surveys/{sid}"' in page


@SQLITE_ONLY
async def test_a_signed_link_is_shown_once_and_opens_the_survey(web_client: Client, accounts: Database,
                                                                 settings: Settings) -> None:
    who = await signed(web_client)
    sid = int(survey_of(accounts, resolved(accounts)).id or 0)
    status, page, _ = await who["sur"].post(f"/desk/surveys/{sid}/link")
    assert status == 200
    m = re.search(r'value="http://bot\.test/survey/([^"]+)" id="survey-link-url"', page)
    assert m is not None
    token = m.group(1)
    assert await survey_chat.survey_to_open(settings, accounts, "w1", browser=None, token=token) == sid
    assert accounts.call(surveys.get, sid).state == "in_progress"
    status, page, _ = await who["sur"].post(f"/desk/surveys/{sid}/link")
    assert status == 409  # being answered: no new link


@SQLITE_ONLY
async def test_the_csv_opens_in_excel(web_client: Client, accounts: Database) -> None:
    who = await signed(web_client)
    _tid, sid = dissatisfied(accounts, text="师傅来得太晚")
    r = await web_client.get("/desk/surveyor/surveys.csv", headers=who["sur"].cookie)
    data = await r.read()
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    text = data.decode("utf-8")
    assert text.startswith("\ufeffsurvey,ticket,") and "师傅来得太晚" in text and f"\r\n{sid}," in text
    status, page = await who["sur"].get("/desk/surveyor/surveys.csv?from=2026-13-01")
    assert status == 400 and "YYYY-MM-DD" in page
    status, _ = await who["sur"].get("/desk/surveyor/surveys.csv?from=2026-12-09&to=2026-12-01")
    assert status == 400


@SQLITE_ONLY
async def test_the_do_not_call_list_and_quiet_days_from_the_desk(web_client: Client, accounts: Database) -> None:
    who = await signed(web_client)
    sid = int(survey_of(accounts, resolved(accounts)).id or 0)
    status, _p, loc = await who["sur"].post(f"/desk/surveys/{sid}/preference", do_not_call="yes")
    assert status == 303
    pref = accounts.call(surveys.preference, CONTACT)
    assert pref is not None and pref.do_not_call and pref.updated_by == "sur"
    # Quiet days, several values of one field.
    r = await web_client.post(f"/desk/surveys/{sid}/preference", headers=who["sur"].cookie, allow_redirects=False,
                              data=[("csrf", who["sur"].csrf), ("quiet_day", "6"), ("quiet_day", "7")])
    assert r.status == 303
    pref = accounts.call(surveys.preference, CONTACT)
    assert pref is not None and not pref.do_not_call and pref.quiet_days == "6,7"
    status, page = await who["sur"].get(f"/desk/surveys/{sid}")
    assert 'name="quiet_day" value="6" checked' in page
