"""U3: the survey's actions against a local double of the bot's survey API (real HTTP):
each answer is stored before the dialogue goes on, "not fixed" is said only once the
second dispatch exists, wrong answers and silence count toward the limit, the ends."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from aiohttp import web
from conftest import keys, make_tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.survey import ActionFinishSurvey, ActionStartSurvey, ValidateSurveyForm

TOKEN = "survey-actions-token"
FORM_DOMAIN: dict[str, Any] = {"slots": {}, "forms": {"survey_form": {"required_slots": [
    "survey_fixed", "survey_attitude", "survey_quality", "survey_wants_comment", "survey_comment"]}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_api(coro_factory: Any, *, status: int = 200) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []

    async def survey(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        seen.append((request.match_info["what"], await request.json()))
        if status != 200:
            return web.json_response({"error": "survey_not_open", "reason": "no"}, status=status)
        return web.json_response({"id": int(request.match_info["id"]), "ticket_id": "TT-1", "language": "en",
                                  "fault_number": "057187650001", "reported_on": "2026-12-01"})

    async def main() -> Any:
        app = web.Application()
        app.router.add_post("/api/surveys/{id}/{what}", survey)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        os.environ["HOTLINE_BOT_URL"] = f"http://127.0.0.1:{port}"
        os.environ["HOTLINE_INTERNAL_API_TOKEN"] = TOKEN
        try:
            return await coro_factory()
        finally:
            await runner.cleanup()

    return asyncio.run(main()), seen


def slots(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def responses(d: CollectingDispatcher) -> list[str]:
    return [m["response"] for m in d.messages]


IN_SURVEY = {"survey_id": "7", "survey_status": "ready"}


def test_the_survey_starts_in_the_reporters_language_with_the_line_and_date() -> None:
    d = CollectingDispatcher()
    t = make_tracker('/start_survey{"survey_id":"7"}', "start_survey", [{"entity": "survey_id", "value": "7"}])
    events, seen = with_api(lambda: ActionStartSurvey().run(d, t, {}))
    out = slots(events)
    assert seen == [("start", {"conversation_id": "conv-test-1"})]
    assert (out["survey_status"], out["language"], out["ticket_id"]) == ("ready", "en", "TT-1")
    assert (out["survey_fault_number_display"], out["survey_reported_on"]) == ("0571 8765 0001", "2026-12-01")


def test_a_survey_not_open_here_is_unavailable() -> None:
    d = CollectingDispatcher()
    t = make_tracker('/start_survey{"survey_id":"7"}', "start_survey", [{"entity": "survey_id", "value": "7"}])
    events, _ = with_api(lambda: ActionStartSurvey().run(d, t, {}), status=409)
    assert slots(events)["survey_status"] == "unavailable"
    bad = make_tracker('/start_survey{"survey_id":"x"}', "start_survey", [{"entity": "survey_id", "value": "x"}])
    assert slots(asyncio.run(ActionStartSurvey().run(d, bad, {})))["survey_status"] == "unavailable"


def validate(slot: str, tracker: Any, **kw: Any) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]],
                                                           CollectingDispatcher]:
    d = CollectingDispatcher()
    form = ValidateSurveyForm()
    method = getattr(form, f"validate_{slot}")
    out, seen = with_api(lambda: method("x", d, tracker, FORM_DOMAIN), **kw)
    return out, seen, d


def test_not_fixed_is_stored_before_the_second_dispatch_is_said() -> None:
    out, seen, d = validate("survey_fixed", keys("2", slots=IN_SURVEY, active_loop="survey_form"))
    assert out["survey_fixed"] is False
    assert seen == [("answers", {"conversation_id": "conv-test-1", "question": "fixed", "value": False})]
    assert responses(d) == ["utter_survey_redispatched"]


def test_a_symptom_said_at_is_it_fixed_is_a_no_with_the_words_kept() -> None:
    t = make_tracker("还是没有拨号音", "symptom_no_dial_tone", slots=IN_SURVEY, active_loop="survey_form")
    out, seen, _ = validate("survey_fixed", t)
    assert out["survey_fixed"] is False and seen[0][1]["text"] == "还是没有拨号音"


def test_ratings_by_key_and_by_words() -> None:
    out, seen, _ = validate("survey_attitude", keys("5", slots=IN_SURVEY, active_loop="survey_form"))
    assert out["survey_attitude"] == 5.0 and seen[0][1] == {"conversation_id": "conv-test-1",
                                                            "question": "attitude", "value": 5}
    t = make_tracker("不太满意", "rate_dissatisfied", slots=IN_SURVEY, active_loop="survey_form")
    out, seen, _ = validate("survey_quality", t)
    assert out["survey_quality"] == 2.0 and seen[0][1]["question"] == "quality"
    t = make_tracker("4分", "nlu_fallback", slots=IN_SURVEY, active_loop="survey_form")
    out, _, _ = validate("survey_quality", t)
    assert out["survey_quality"] == 4.0


def test_a_complaint_in_the_survey_is_an_answer_not_a_loop() -> None:
    """Issue 13 item 5: at "is it fixed?" a complaint is a no; as a rating it is 1."""
    t = make_tracker("你们怎么还没修好", "complain", slots=IN_SURVEY, active_loop="survey_form")
    out, _, _ = validate("survey_fixed", t)
    assert out["survey_fixed"] is False
    t = make_tracker("什么破服务", "complain", slots=IN_SURVEY, active_loop="survey_form")
    out, _, _ = validate("survey_attitude", t)
    assert out["survey_attitude"] == 1.0


def test_a_rating_outside_1_to_5_is_asked_again_and_counted() -> None:
    out, seen, d = validate("survey_attitude", keys("7", slots={**IN_SURVEY, "failure_count": 0},
                                                    active_loop="survey_form"))
    assert out == {"survey_attitude": None, "failure_count": 1} and seen == []
    assert responses(d) == ["utter_invalid_choice"]


def test_silence_at_the_limit_stops_the_survey_at_that_question() -> None:
    t = make_tracker("/no_input", "no_input", slots={**IN_SURVEY, "failure_count": 2}, active_loop="survey_form")
    out, seen, _ = validate("survey_quality", t)
    assert out["survey_end"] == "gave_up" and out["survey_stopped_at"] == "quality"
    assert out["requested_slot"] is None and seen == []


def test_dont_call_me_again_and_goodbye_end_the_questions() -> None:
    t = make_tracker("别再给我打电话了", "do_not_call", slots=IN_SURVEY, active_loop="survey_form")
    out, _, _ = validate("survey_attitude", t)
    assert out["survey_end"] == "opted_out" and out["requested_slot"] is None
    t = make_tracker("再见", "goodbye", slots=IN_SURVEY, active_loop="survey_form")
    out, _, _ = validate("survey_fixed", t)
    assert (out["survey_end"], out["survey_stopped_at"]) == ("goodbye", "fixed")


def test_a_comment_typed_or_recorded() -> None:
    t = make_tracker("师傅很耐心", "nlu_fallback", slots=IN_SURVEY, active_loop="survey_form")
    out, seen, _ = validate("survey_comment", t)
    assert out["survey_comment"] == "师傅很耐心" and seen[0][1]["text"] == "师傅很耐心"
    t = make_tracker('/recorded{"recording_id":"call-1-abc"}', "recorded",
                     [{"entity": "recording_id", "value": "call-1-abc"}], slots=IN_SURVEY, active_loop="survey_form")
    out, seen, _ = validate("survey_comment", t)
    assert out["survey_comment"] == "recording:call-1-abc" and seen[0][1]["recording_id"] == "call-1-abc"


def test_an_answer_the_bot_could_not_store_ends_the_questions_with_an_apology() -> None:
    out, _, d = validate("survey_attitude", keys("4", slots=IN_SURVEY, active_loop="survey_form"), status=503)
    assert out["survey_end"] == "error" and out["requested_slot"] is None
    assert responses(d) == ["utter_service_error"]


def test_no_comment_wanted_leaves_the_comment_out() -> None:
    form, d = ValidateSurveyForm(), CollectingDispatcher()
    slots_ = FORM_DOMAIN["forms"]["survey_form"]["required_slots"]
    t = make_tracker(slots={**IN_SURVEY, "survey_wants_comment": False})
    assert "survey_comment" not in asyncio.run(form.required_slots(slots_, d, t, FORM_DOMAIN))
    t = make_tracker(slots={**IN_SURVEY, "survey_end": "gave_up"})
    assert asyncio.run(form.required_slots(slots_, d, t, FORM_DOMAIN)) == []


def finish(**slot_values: Any) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    d = CollectingDispatcher()
    t = make_tracker(slots={**IN_SURVEY, **slot_values})
    _, seen = with_api(lambda: ActionFinishSurvey().run(d, t, {}))
    return responses(d), seen


def test_the_endings() -> None:
    said, seen = finish(survey_end="done")
    assert said == ["utter_survey_thanks"] and seen[0] == ("finish", {"conversation_id": "conv-test-1",
                                                                      "stopped_at": None, "reason": None})
    said, seen = finish(survey_end="gave_up", survey_stopped_at="quality")
    assert said == ["utter_survey_stopped"] and seen[0][1]["stopped_at"] == "quality"
    said, seen = finish(survey_end="opted_out")
    assert said == ["utter_survey_do_not_call"] and seen[0][0] == "opt-out"


def test_an_opt_out_the_bot_could_not_store_is_not_promised() -> None:
    d = CollectingDispatcher()
    t = make_tracker(slots={**IN_SURVEY, "survey_end": "opted_out"})
    with_api(lambda: ActionFinishSurvey().run(d, t, {}), status=503)
    assert responses(d) == ["utter_service_error", "utter_survey_stopped"]
