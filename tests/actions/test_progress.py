"""Issue 13 items 4 and 5: progress questions (J4's answer, automated) and complaints (M2)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp import web
from conftest import DOMAIN, keys, make_tracker
from rasa_sdk.executor import CollectingDispatcher
from test_flow import BOT_TOKEN, free_port, slots

from actions.flow import ActionEndConversation
from actions.progress import (
    ActionComplaint,
    ActionProgressStart,
    ActionTellProgress,
    ValidateProgressForm,
    local_due,
)

LINES: dict[str, dict[str, Any]] = {
    "057187650001": {"number": "057187650001", "state": "normal"},
    "057187650010": {"number": "057187650010", "state": "repaired"},
    "057187650020": {"number": "057187650020", "state": "open_fault", "open_fault": {
        "ticket_id": "TT-1", "status": "acknowledged", "sub_step": "new", "expected_resolution": None}},
    "057187650021": {"number": "057187650021", "state": "open_fault", "open_fault": {
        "ticket_id": "TT-2", "status": "inProgress", "sub_step": "dispatched",
        "expected_resolution": "2026-12-08T09:00:00+00:00",
        "repairman_message": {"zh": "明天上午上门", "en": "Coming tomorrow morning"}}},
}


def run(action: Any, tracker: Any, fail: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]], CollectingDispatcher]:
    seen: list[dict[str, Any]] = []
    dispatcher = CollectingDispatcher()

    async def line(request: web.Request) -> web.Response:
        if fail:
            return web.json_response({"error": "db"}, status=500)
        return web.json_response(LINES[request.match_info["n"]])

    async def record(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        return web.json_response({"handoff_id": 8, "queue": body.get("queue") or "junior", "position": 1}, status=201)

    async def main() -> list[dict[str, Any]]:
        app = web.Application()
        app.router.add_get("/api/inventory/lines/{n}", line)
        app.router.add_post("/api/outcomes", record)
        app.router.add_post("/api/handoffs", record)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        os.environ["HOTLINE_BOT_URL"] = f"http://127.0.0.1:{port}"
        os.environ["HOTLINE_INTERNAL_API_TOKEN"] = BOT_TOKEN
        try:
            return await action.run(dispatcher, tracker, DOMAIN)
        finally:
            await runner.cleanup()

    return asyncio.run(main()), seen, dispatcher


def responses(d: CollectingDispatcher) -> list[str]:
    return [m["response"] for m in d.messages if m.get("response")]


def test_a_complaint_apologises_and_queues_for_the_manager_hotline():
    t = make_tracker("你们怎么还没修好 我要投诉", "complain", slots={"fault_number": "057187650020"})
    events, seen, d = run(ActionComplaint(), t)
    handoff = next(s for s in seen if "transcript" in s)
    assert handoff["reason"] == "complaint" and handoff["queue"] == "manager"
    assert responses(d) == ["utter_complaint"]  # the apology, not utter_handoff, not a re-prompt
    outcome = next(s for s in seen if "outcome" in s)
    assert outcome["outcome"] == "handed_off" and outcome["reason"] == "complaint"
    assert slots(events)["handoff_reason"] == "complaint"


def test_progress_takes_the_number_from_the_sentence_or_asks():
    events, _, _ = run(ActionProgressStart(), make_tracker("查一下维修进度 0571 8765 0021", "ask_progress"))
    assert slots(events)["progress_state"] == "given" and slots(events)["progress_number"] == "057187650021"
    assert slots(events)["progress_number_display"] == "0571 8765 0021"
    events, _, _ = run(ActionProgressStart(), make_tracker("查一下维修进度", "ask_progress"))
    assert slots(events)["progress_state"] == "ask"
    # A number too short to be a line is not taken ("我前3天报的").
    events, _, _ = run(ActionProgressStart(), make_tracker("我前3天报的修好了吗", "ask_progress"))
    assert slots(events)["progress_state"] == "ask"


def test_progress_form_takes_keys_and_refuses_a_bad_number(dispatcher):
    form = ValidateProgressForm()
    out = form.validate_progress_number("87650021", dispatcher, keys("87650021#"), DOMAIN)
    assert out["progress_number"] == "057187650021" and out["form_result"] == "done"
    out = form.validate_progress_number("123", dispatcher, keys("123#"), DOMAIN)
    assert out["progress_number"] is None and out["failure_count"] == 1


def tell(number: str, lang: str = "zh", fail: bool = False):
    t = make_tracker("", "ask_progress", slots={"progress_number": number, "language": lang})
    events, seen, d = run(ActionTellProgress(), t, fail=fail)
    return slots(events), seen, d


def test_j4_received_then_the_offer_of_a_human():
    out, _, d = tell("057187650020")
    assert responses(d) == ["utter_progress_received"] and out["progress_state"] == "open"
    assert d.messages[0]["progress_number_display"] == "0571 8765 0020"


def test_j4_dispatched_with_the_expected_time_and_the_repairmans_message():
    out, _, d = tell("057187650021")
    assert responses(d) == ["utter_progress_dispatched", "utter_progress_message"]
    assert d.messages[0]["progress_due"] == "12月8日17点"  # 09:00 UTC in Asia/Shanghai
    assert d.messages[1]["progress_message"] == "明天上午上门"
    out, _, d = tell("057187650021", lang="en")
    assert d.messages[0]["progress_due"] == "8 December, 17:00" and out["progress_message"] == "Coming tomorrow morning"


def test_j4_repaired_and_no_open_ticket():
    out, _, d = tell("057187650010")
    assert responses(d) == ["utter_progress_repaired"] and out["progress_state"] == "open"
    out, seen, d = tell("057187650001")
    assert responses(d) == ["utter_progress_no_ticket"] and out["progress_state"] == "none"
    assert seen[0]["outcome"] == "progress_informed" and seen[0]["step"] == "J4"


def test_j4_look_up_failure_goes_to_a_human():
    out, _, d = tell("057187650020", fail=True)
    assert out["progress_state"] == "error" and out["handoff_reason"] == "service_unavailable"


def test_the_end_after_a_progress_answer_counts_as_progress_informed():
    t = make_tracker("不用", "deny", slots={"progress_state": "open", "fault_number": "057187650020"})
    _, seen, _ = run(ActionEndConversation(), t)
    assert seen[0]["outcome"] == "progress_informed" and seen[0]["step"] == "J4"


def test_local_due_tolerates_nothing_and_garbage():
    assert local_due(None, "zh") is None and local_due("soon", "en") is None
