"""Flow actions against a local double of the bot's API and the line-test unit (real HTTP)."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from aiohttp import web
from conftest import DOMAIN, make_tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.flow import (
    ActionCheckLine,
    ActionFailureLimit,
    ActionHandoff,
    ActionPollLineTest,
    ActionStartLineTest,
    ActionSubmitReport,
)

LINES: dict[str, dict[str, Any]] = {
    "057199990001": {"number": "057199990001", "state": "unknown_prefix"},
    "057187650010": {"number": "057187650010", "state": "repaired"},
    "057187650001": {"number": "057187650001", "state": "normal"},
    "057187650020": {"number": "057187650020", "state": "open_fault", "open_fault": {
        "ticket_id": "TT-1", "report_count": 1, "repairman_message": {"zh": "明天上午上门", "en": "Tomorrow morning"}}},
    "057187650023": {"number": "057187650023", "state": "open_fault", "open_fault": {"ticket_id": "TT-3", "report_count": 3}},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BOT_TOKEN = "actions-test-token"


def run_with_api(coro_factory, fail_reports: bool = False, open_hours: bool = True):
    seen: list[dict[str, Any]] = []

    async def line(request: web.Request) -> web.Response:
        return web.json_response(LINES[request.match_info["n"]])

    async def reports(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        if fail_reports:
            return web.json_response({"error": "db"}, status=500)
        count = LINES.get(body["fault_number"], {}).get("open_fault", {}).get("report_count", 0) + 1
        return web.json_response({"ticket_id": "TT-9", "created": True, "report_count": count}, status=201)

    async def record(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response({"handoff_id": 7, "queue": "junior", "position": 1}, status=201)

    async def status(_: web.Request) -> web.Response:
        return web.json_response({"operators_open": open_hours})

    async def start_test(_: web.Request) -> web.Response:
        return web.json_response({"id": "lt1", "state": "running"}, status=202)

    async def get_test(_: web.Request) -> web.Response:
        return web.json_response({"id": "lt1", "state": "done", "result": "open_circuit",
                                  "summary": {"zh": "线路断线", "en": "a break in the line"}})

    @web.middleware
    async def internal_token(request: web.Request, handler: Any) -> web.StreamResponse:
        # As the bot does (bot/api/auth.py): records and lines only with the internal token.
        if request.path.startswith("/api/") and request.path != "/api/service/status" and \
                request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return await handler(request)

    async def main():
        app = web.Application(middlewares=[internal_token])
        app.router.add_get("/api/inventory/lines/{n}", line)
        app.router.add_post("/api/reports", reports)
        app.router.add_post("/api/outcomes", record)
        app.router.add_post("/api/handoffs", record)
        app.router.add_get("/api/service/status", status)
        app.router.add_post("/v1/tests", start_test)
        app.router.add_get("/v1/tests/{id}", get_test)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        os.environ["HOTLINE_BOT_URL"] = os.environ["HOTLINE_LINETEST_URL"] = f"http://127.0.0.1:{port}"
        os.environ["HOTLINE_INTERNAL_API_TOKEN"] = BOT_TOKEN
        try:
            return await coro_factory()
        finally:
            await runner.cleanup()

    return asyncio.run(main()), seen


def slots(events) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def check(number: str, **slot_values):
    d = CollectingDispatcher()
    t = make_tracker(slots={"fault_number": number, **slot_values})
    events, seen = run_with_api(lambda: ActionCheckLine().run(d, t, DOMAIN))
    return slots(events), seen


def test_a4_unknown_prefix_counts_and_clears_the_number():
    out, _ = check("057199990001", failure_count=0)
    assert out["line_status"] == "unknown_prefix" and out["failure_count"] == 1 and out["fault_number"] is None
    out, _ = check("057199990001", failure_count=2)
    assert out["line_status"] == "unknown_prefix_limit"


def test_a5_repaired_records_the_outcome():
    out, seen = check("057187650010")
    assert out["line_status"] == "repaired"
    assert seen[0]["outcome"] == "informed_repaired" and seen[0]["step"] == "A5"


def test_a6_repeat_counts_the_report_and_gives_the_repairman_message():
    out, seen = check("057187650020")
    assert out["line_status"] == "repeat_with_message" and out["repeat_info"] == "明天上午上门"
    assert seen[0]["kind"] == "repeat"


def test_a6_the_fourth_report_goes_to_a_human():
    out, _ = check("057187650023")
    assert out["line_status"] == "repeat_over_limit"


def test_inventory_down_becomes_a_dialogue_event_not_a_crash():
    os.environ["HOTLINE_BOT_URL"] = f"http://127.0.0.1:{free_port()}"
    d = CollectingDispatcher()
    events = asyncio.run(ActionCheckLine().run(d, make_tracker(slots={"fault_number": "057187650001"}), DOMAIN))
    assert slots(events)["line_status"] == "service_error"


def test_a8_start_and_poll_line_test():
    d = CollectingDispatcher()
    t = make_tracker(slots={"fault_number": "057187650001"})
    events, _ = run_with_api(lambda: ActionStartLineTest().run(d, t, DOMAIN))
    assert slots(events)["line_test_state"] == "running"
    t = make_tracker(slots={"line_test_id": "lt1", "line_test_started_at": 0.0, "language": "en"})
    events, _ = run_with_api(lambda: ActionPollLineTest().run(d, t, DOMAIN))
    assert slots(events)["line_test_state"] == "done"
    assert slots(events)["line_test_summary"] == "a break in the line"


def test_a10_store_failure_is_not_reported_as_accepted():
    d = CollectingDispatcher()
    t = make_tracker(slots={"fault_number": "057187650001", "contact_number": "13912345678"})
    events, _ = run_with_api(lambda: ActionSubmitReport().run(d, t, DOMAIN), fail_reports=True)
    assert slots(events)["report_stored"] is False
    events, seen = run_with_api(lambda: ActionSubmitReport().run(d, t, DOMAIN))
    assert slots(events)["report_stored"] is True and slots(events)["ticket_id"] == "TT-9"
    assert seen[0]["kind"] == "new" and seen[0]["conversation_id"] == "conv-test-1"


def test_handoff_carries_the_context_and_ends_the_loop():
    d = CollectingDispatcher()
    t = make_tracker("转人工", "request_human", slots={"fault_number": "057187650001"},
                     events=[{"event": "bot", "text": "您好，请输入您的故障电话号码"}])
    events, seen = run_with_api(lambda: ActionHandoff().run(d, t, DOMAIN))
    handoff = d.messages[-1]["custom"]["handoff"]
    assert handoff["reason"] == "caller_request" and handoff["fault_number"] == "057187650001"
    assert handoff["handoff_id"] == 7 and handoff["transcript"][0]["role"] == "bot"
    assert {"event": "active_loop", "name": None} in [{k: e.get(k) for k in ("event", "name")} for e in events]


def test_a3_limit_outside_opening_hours_says_goodbye():
    d = CollectingDispatcher()
    t = make_tracker("/no_input", "no_input")
    _, seen = run_with_api(lambda: ActionFailureLimit().run(d, t, DOMAIN), open_hours=False)
    assert [m["response"] for m in d.messages] == ["utter_too_many_failures", "utter_centre_closed", "utter_goodbye"]
    assert seen[-1]["outcome"] == "no_input"
