"""The records API the dialogue's actions call: reports (A6, A10), messages for the
repairman (A11), outcomes, handoffs (J1, J3), service status (A3 note 1).
Category: integration (HTTP in process, real database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.api.records import operators_open
from bot.desk.auth import open_session
from bot.desk.users import add_user
from bot.settings import Settings
from bot.store.db import Database
from tests.conftest import make_test_app


def report(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "conversation_id": "conv-1", "channel": "webchat", "language": "zh", "kind": "new",
        "fault_number": "0571 8765 0001", "contact_number": "13800138000", "symptom_category": "noise",
        "symptom_text": "有杂音", "line_test": {
            "test_id": "LT-9", "result": "open_circuit", "summary": {"zh": "断线", "en": "broken"},
            "measurements": {"r_ab_ohm": 12000000}, "started_at": "2024-06-03T10:00:00+08:00",
            "finished_at": "2024-06-03T10:00:03+08:00"},
    }
    body.update(kw)
    return body


async def test_new_report_and_retry(client: Any) -> None:
    resp = await client.post("/api/reports", json=report())
    assert resp.status == 201
    first = await resp.json()
    assert first["created"] is True and first["report_count"] == 1 and first["ticket_id"].startswith("TT-")
    resp = await client.post("/api/reports", json=report(fault_number="87650001"))  # same line, other spelling
    assert resp.status == 200
    assert await resp.json() == {**first, "created": False}
    tickets = await (await client.get("/tmf-api/troubleTicket/v5/troubleTicket",
                                      params={"relatedEntity.id": "057187650001"})).json()
    assert [t["id"] for t in tickets] == [first["ticket_id"]]
    test = next(c["value"] for c in tickets[0]["troubleTicketCharacteristic"] if c["name"] == "lineTestResult")
    assert test["summary"] == {"zh": "断线", "en": "broken"} and test["at"].startswith("2024-06-03T02:00:03")


async def test_repeat_report(client: Any) -> None:
    repeat = {"conversation_id": "conv-2", "channel": "voice", "language": "en", "kind": "repeat",
              "fault_number": "057187650008", "line_test": None}
    resp = await client.post("/api/reports", json=repeat)
    assert resp.status == 200
    assert await resp.json() == {"ticket_id": "TT-W0003", "created": False, "report_count": 4}
    assert (await (await client.post("/api/reports", json=repeat)).json())["report_count"] == 4  # retry


async def test_repeat_without_open_ticket_is_404(client: Any) -> None:
    resp = await client.post("/api/reports", json={"conversation_id": "c", "channel": "voice", "language": "zh",
                                                   "kind": "repeat", "fault_number": "057187650002"})
    assert resp.status == 404
    assert (await resp.json())["error"] == "no_open_ticket"


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (report(colour="red"), "invalid_request", "colour: unknown field"),
        (report(kind="maybe"), "invalid_request", "kind"),
        (report(language="fr"), "invalid_request", "language"),
        (report(symptom_text="x" * 2001), "invalid_request", "symptom_text"),
        (report(symptom_category="fire"), "invalid_request", "symptom_category"),
        (report(contact_number=None), "invalid_request", "a new report needs contact_number"),
        (report(fault_number="0571abc"), "invalid_number", "not a phone number"),
        (report(fault_number="12"), "invalid_number", "too short"),
        (report(contact_number="call me"), "invalid_number", "contact_number"),
        (report(fault_number=57187650001), "invalid_request", "fault_number"),
        (report(line_test={"test_id": "x", "result": "melted"}), "invalid_request", "line_test.result"),
        (report(channel="Web Chat!"), "invalid_request", "channel"),
    ],
)
async def test_report_bad_input(client: Any, body: dict[str, Any], code: str, needle: str) -> None:
    resp = await client.post("/api/reports", json=body)
    assert resp.status == 400
    out = await resp.json()
    assert out["error"] == code and needle in out["reason"]


async def test_malformed_json_everywhere(client: Any) -> None:
    for path in ("/api/reports", "/api/outcomes", "/api/handoffs", "/api/tickets/TT-W0001/voice-messages"):
        resp = await client.post(path, data="{oops", headers={"Content-Type": "application/json"})
        assert resp.status == 400, path
        assert (await resp.json())["error"] == "malformed_json"


async def test_voice_messages(client: Any) -> None:
    tid = (await (await client.post("/api/reports", json=report())).json())["ticket_id"]
    url = f"/api/tickets/{tid}/voice-messages"
    resp = await client.post(url, json={"conversation_id": "conv-1", "text": "我下午在家"})
    assert resp.status == 201
    first = await resp.json()
    again = await client.post(url, json={"conversation_id": "conv-1", "text": "我下午在家"})
    assert again.status == 200 and (await again.json())["attachment_id"] == first["attachment_id"]
    resp = await client.post(url, json={"conversation_id": "conv-1", "text": "x" * 2001})
    assert resp.status == 400 and "text" in (await resp.json())["reason"]
    resp = await client.post(url, json={"conversation_id": "conv-1", "text": ""})
    assert resp.status == 400
    resp = await client.post("/api/tickets/TT-NOPE/voice-messages", json={"conversation_id": "c", "text": "hi"})
    assert resp.status == 404 and (await resp.json())["error"] == "ticket_not_found"


async def test_recorded_voice_message_is_attached_and_only_staff_may_download_it(
    client: Any, settings: Settings
) -> None:
    import asyncio

    from voice.recording import RecordingStore

    tid = (await (await client.post("/api/reports", json=report())).json())["ticket_id"]
    url = f"/api/tickets/{tid}/voice-messages"
    missing = await client.post(url, json={"conversation_id": "call-1", "recording_id": "call-1-1-abc"})
    assert missing.status == 422 and (await missing.json())["error"] == "recording_not_found"
    for bad in ({"conversation_id": "c", "recording_id": "../../etc/passwd"},
                {"conversation_id": "c", "text": "hi", "recording_id": "x-1"},
                {"conversation_id": "c"}):
        assert (await client.post(url, json=bad)).status == 400, bad
    await RecordingStore(settings.recordings_dir).save("call-1-1-abc", b"\x01\x00" * 8000, 8000)
    resp = await client.post(url, json={"conversation_id": "call-1", "recording_id": "call-1-1-abc"})
    assert resp.status == 201
    again = await client.post(url, json={"conversation_id": "call-1", "recording_id": "call-1-1-abc"})
    assert again.status == 200  # a retried action stores it once
    ticket = await (await client.get(f"/tmf-api/troubleTicket/v5/troubleTicket/{tid}")).json()
    (att,) = ticket["attachment"]
    assert att["mimeType"] == "audio/wav" and att["url"].startswith("/api/attachments/")
    assert (await client.get(att["url"])).status == 401
    assert (await client.get(att["url"], headers={"Authorization": "Bearer wrong"})).status == 401
    ok = await client.get(att["url"], headers={"Authorization": "Bearer staff-secret"})
    assert ok.status == 200 and ok.headers["Content-Type"] == "audio/wav"
    body = await ok.read()
    assert body[:4] == b"RIFF" and len(body) == 44 + 16000
    await asyncio.to_thread((settings.recordings_dir / "call-1-1-abc.wav").unlink)
    gone = await client.get(att["url"], headers={"Authorization": "Bearer staff-secret"})
    assert gone.status == 410


async def test_outcomes(client: Any) -> None:
    for outcome, step in (("informed_repaired", "A5"), ("accepted", "A10")):
        resp = await client.post("/api/outcomes", json={
            "conversation_id": "conv-7", "channel": "voice", "language": "zh", "outcome": outcome, "step": step,
            "fault_number": "0571 8765 0004"})
        assert resp.status == 201 and isinstance((await resp.json())["outcome_id"], int)
    rows = await (await client.get("/api/outcomes", params={"conversation_id": "conv-7"})).json()
    assert [r["outcome"] for r in rows] == ["informed_repaired", "accepted"]  # latest last
    assert rows[0]["fault_number"] == "057187650004"
    assert await (await client.get("/api/outcomes", params={"conversation_id": "nobody"})).json() == []
    for bad in ({"outcome": "happy"}, {"step": "A12"}, {"step": "B1"}, {"extra": 1}):
        body = {"conversation_id": "c", "channel": "voice", "language": "zh", "outcome": "ended", "step": "A1"}
        resp = await client.post("/api/outcomes", json={**body, **bad})
        assert resp.status == 400, bad
    resp = await client.get("/api/outcomes", params={"who": "x"})
    assert resp.status == 400


async def test_handoffs(client: Any) -> None:
    def body(cid: str, **kw: Any) -> dict[str, Any]:
        return {"conversation_id": cid, "channel": "voice", "language": "zh", "reason": "A6: fourth report",
                "transcript": [{"role": "bot", "text": "请输入故障号码"}, {"role": "user", "text": "87650008",
                                                                         "at": "2024-06-03T10:00:00+08:00"}],
                **kw}

    resp = await client.post("/api/handoffs", json=body("h1", fault_number="87650008", ticket_id="TT-W0003"))
    assert resp.status == 201
    first = await resp.json()
    assert first["queue"] == "junior" and first["position"] == 1
    second = await (await client.post("/api/handoffs", json=body("h2"))).json()
    assert second["position"] == 2
    big = await (await client.post("/api/handoffs", json=body("h3", fault_number="057188880001"))).json()
    assert big["queue"] == "senior" and big["position"] == 1  # J3
    retry = await client.post("/api/handoffs", json=body("h1"))
    assert retry.status == 200 and (await retry.json())["handoff_id"] == first["handoff_id"]
    queued = await (await client.get("/api/handoffs", params={"state": "queued"})).json()
    assert [h["conversation_id"] for h in queued] == ["h1", "h2", "h3"]
    assert queued[0]["fault_number"] == "057187650008" and queued[0]["transcript"][1]["text"] == "87650008"
    assert queued[0]["taken_by"] is None and queued[0]["taken_at"] is None
    assert (await client.get("/api/handoffs", params={"state": "asleep"})).status == 400
    for bad in ({"queue": "vip"}, {"transcript": [{"role": "alien", "text": "x"}]}, {"reason": ""},
                {"fault_number": "abc"}):
        resp = await client.post("/api/handoffs", json=body("h9", **bad))
        assert resp.status == 400, bad


async def test_a_taken_handoff_says_who_took_it(client: Any, demo_db: Any) -> None:
    from bot.store import service

    made = await (await client.post("/api/handoffs", json={
        "conversation_id": "t1", "channel": "webchat", "language": "zh", "reason": "caller_asked"})).json()
    demo_db.call(service.take_handoff, made["handoff_id"], "junior")
    (taken,) = await (await client.get("/api/handoffs", params={"state": "taken"})).json()
    assert taken["taken_by"] == "junior" and taken["taken_at"].endswith("+00:00")


async def test_service_status(client: Any) -> None:
    resp = await client.get("/api/service/status")
    assert resp.status == 200
    assert (await resp.json())["operators_open"] is True


@pytest.mark.parametrize(
    ("hours", "clock", "expected"),
    [
        ("00:00-24:00", "03:00", True),
        ("08:00-18:00", "07:59", False),
        ("08:00-18:00", "08:00", True),
        ("08:00-18:00", "18:00", False),
        ("22:00-06:00", "23:30", True),
        ("22:00-06:00", "05:59", True),
        ("22:00-06:00", "12:00", False),
        ("08:00-12:00,13:00-17:00", "12:30", False),
        ("08:00-12:00,13:00-17:00", "13:30", True),
        ("18:00-24:00", "23:59", True),
    ],
)
def test_operators_open(hours: str, clock: str, expected: bool) -> None:
    settings = Settings(centre_open_hours=hours, timezone="Asia/Shanghai")
    h, m = map(int, clock.split(":"))
    now = datetime(2024, 6, 3, h, m, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert operators_open(settings, now) is expected
    # The same instant seen from UTC gives the same answer: the setting is local time.
    assert operators_open(settings, now.astimezone(ZoneInfo("UTC"))) is expected


def test_operators_open_bad_setting() -> None:
    with pytest.raises(ValueError):
        operators_open(Settings(centre_open_hours="always"))


# ---- who may call (bot/api/auth.py) ----

TT = "/tmf-api/troubleTicket/v5/troubleTicket"
NOBODY = {"Authorization": ""}  # the client calls as the action server unless told otherwise


async def test_personal_data_is_read_only_by_services_and_staff(client: Any, demo_db: Database) -> None:
    tid = (await (await client.post("/api/reports", json=report())).json())["ticket_id"]
    reads = [f"{TT}/{tid}", TT, "/api/outcomes", "/api/handoffs", "/api/inventory/lines/057187650001"]
    for path in reads:
        resp = await client.get(path, headers=NOBODY)
        assert resp.status == 401 and (await resp.json())["error"] == "unauthorized", path
        assert (await client.get(path, headers={"Authorization": "Bearer guess"})).status == 401, path
    user = demo_db.call(add_user, "reader1", "junior", "a long enough password")
    desk = {"Authorization": f"Bearer {demo_db.call(open_session, user.id, 1)}"}
    for who in (desk, {"Authorization": "Bearer staff-secret"}, {}):  # {}: the internal token
        for path in reads:
            assert (await client.get(path, headers=who)).status == 200, (path, who)
    # What is not personal stays open: the service hours, a prefix's exchange.
    assert (await client.get("/api/service/status", headers=NOBODY)).status == 200
    assert (await client.get("/api/inventory/prefixes/0571", headers=NOBODY)).status == 200


async def test_only_the_bots_services_write_records(client: Any, demo_db: Database) -> None:
    user = demo_db.call(add_user, "writer1", "senior", "a long enough password")
    desk = {"Authorization": f"Bearer {demo_db.call(open_session, user.id, 1)}"}
    outcome = {"conversation_id": "c-auth", "channel": "webchat", "language": "zh", "outcome": "abandoned",
               "step": "A2"}
    for who in (NOBODY, desk, {"Authorization": "Bearer guess"}):
        for path, body in (("/api/reports", report()), ("/api/outcomes", outcome),
                           ("/api/handoffs", {"conversation_id": "c-auth", "channel": "webchat",
                                              "language": "zh", "reason": "caller_asked"})):
            resp = await client.post(path, json=body, headers=who)
            assert resp.status == 401 and "HOTLINE_INTERNAL_API_TOKEN" in (await resp.json())["reason"], path
    assert await (await client.get("/api/outcomes", params={"conversation_id": "c-auth"})).json() == []
    # Another system with the staff token may record, as the action server does.
    resp = await client.post("/api/outcomes", json=outcome, headers={"Authorization": "Bearer staff-secret"})
    assert resp.status == 201


async def test_without_any_token_configured_records_are_closed(
    aiohttp_client: Any, demo_db: Database, settings: Settings
) -> None:
    open_app = make_test_app(demo_db, settings.model_copy(update={"internal_api_token": None,
                                                                  "staff_api_token": None}))
    api = await aiohttp_client(open_app)
    resp = await api.post("/api/reports", json=report())
    assert resp.status == 403 and (await resp.json())["error"] == "internal_api_closed"
    assert (await api.get(TT)).status == 401
