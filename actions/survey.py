"""U3: the satisfaction survey's actions. Thin: they read the reporter's answer, store it
through the bot's survey API (bot/api/surveys.py) as it is given, and say what the
designers wrote (nlu/domain/survey.yml).

- ``action_start_survey``: the channel opened the survey (``/start_survey{"survey_id"}``);
  the bot checks it is open in this conversation and gives the language and the line.
- ``validate_survey_form``: 1/2 "is it fixed?" (a second dispatch is made at once on
  "not fixed", U5), the two ratings 1–5 by key or words, a comment (typed in chat,
  recorded on the phone). "Don't call me again", "goodbye", and silence or wrong answers
  past the limit (slot ``max_failures``, as A3) end the questions.
- ``action_finish_survey``: the survey is finished or stopped where it stopped, then
  thanks / goodbye.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.flow import end_loop
from actions.forms import HotlineForm, SlotDict, on_input
from actions.interpret import INVALID_CHOICE, NOT_UNDERSTOOD, Choice, Rejection, UserInput, choose
from actions.services import ServiceError, Services
from telnum import group_digits

logger = logging.getLogger(__name__)

QUESTION_OF_SLOT = {"survey_fixed": "fixed", "survey_attitude": "attitude", "survey_quality": "quality",
                    "survey_wants_comment": "comment", "survey_comment": "comment"}
FIXED_KEYS: dict[str, Choice] = {"1": True, "2": False}
FIXED_INTENTS: dict[str, Choice] = {
    "fault_fixed": True, "affirm": True, "fault_not_fixed": False, "deny": False,
    # A symptom said at "is it fixed?" ("还是没有拨号音") is a no.
    **{f"symptom_{s}": False for s in ("no_dial_tone", "noise", "cannot_call_out", "cannot_receive",
                                      "broadband_down", "other")},
    # A complaint at "is it fixed?" ("你们怎么还没修好") is a no (issue 13 item 5).
    "complain": False,
}
RATING_KEYS: dict[str, Choice] = {str(n): str(n) for n in range(1, 6)}
RATING_INTENTS: dict[str, Choice] = {"rate_very_satisfied": "5", "rate_satisfied": "4", "rate_neutral": "3",
                                     "rate_dissatisfied": "2", "rate_very_dissatisfied": "1",
                                     "complain": "1"}  # a complaint as the rating: very dissatisfied (issue 13)
YES_NO_KEYS: dict[str, Choice] = {"1": True, "2": False}
COMMENT_INTENTS: dict[str, Choice] = {"affirm": True, "deny": False, "goodbye": False}
ENDINGS = {"opted_out": "utter_survey_do_not_call", "done": "utter_survey_thanks"}


class SurveyApi(Services):
    """The bot's survey API, with the internal token (actions/services.py)."""

    async def start(self, survey_id: str, conversation_id: str) -> dict[str, Any]:
        return await self._call("POST", self._url(survey_id, "start"), {"conversation_id": conversation_id})

    async def answer(self, survey_id: str, conversation_id: str, question: str, **answer: Any) -> dict[str, Any]:
        body = {"conversation_id": conversation_id, "question": question, **answer}
        return await self._call("POST", self._url(survey_id, "answers"), body)

    async def finish(self, survey_id: str, conversation_id: str, stopped_at: str | None,
                     reason: str | None) -> dict[str, Any]:
        body = {"conversation_id": conversation_id, "stopped_at": stopped_at, "reason": reason}
        return await self._call("POST", self._url(survey_id, "finish"), body)

    async def opt_out(self, survey_id: str, conversation_id: str) -> dict[str, Any]:
        return await self._call("POST", self._url(survey_id, "opt-out"), {"conversation_id": conversation_id})

    def _url(self, survey_id: str, tail: str) -> str:
        return f"{self.config.bot_url}/api/surveys/{survey_id}/{tail}"


def _survey_id_given(tracker: Tracker) -> str | None:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == "survey_id" and str(entity.get("value") or "").isdigit():
            return str(entity["value"])
    return None


class ActionStartSurvey(Action):
    """U3: who we are and why we call comes next (utter_survey_intro), with the line and
    the date of the report; a survey that is not open here is said so."""

    def name(self) -> str:
        return "action_start_survey"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        survey_id = _survey_id_given(tracker)
        if survey_id is None:
            return [SlotSet("survey_status", "unavailable")]
        try:
            survey = await SurveyApi().start(survey_id, tracker.sender_id)
        except ServiceError as exc:
            logger.info("survey %s not open in %s: %s", survey_id, tracker.sender_id, exc)
            return [SlotSet("survey_id", survey_id), SlotSet("survey_status", "unavailable")]
        lang = survey.get("language") if survey.get("language") in ("zh", "en") else "zh"
        return [
            SlotSet("survey_id", survey_id), SlotSet("survey_status", "ready"), SlotSet("language", lang),
            SlotSet("ticket_id", survey.get("ticket_id")), SlotSet("failure_count", 0),
            SlotSet("survey_fault_number_display", group_digits(str(survey.get("fault_number") or ""))),
            SlotSet("survey_reported_on", survey.get("reported_on") or ""),
        ]


class ValidateSurveyForm(HotlineForm):
    """The survey's questions; each accepted answer is stored before the next question."""

    FORM = "survey_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> list[str]:
        if tracker.get_slot("survey_end"):
            return []  # ended early: no more questions (the form deactivates)
        if tracker.get_slot("survey_wants_comment") is False:
            return [s for s in domain_slots if s != "survey_comment"]
        return domain_slots

    def reject(self, slot: str, rejection: Rejection, dispatcher: CollectingDispatcher,
               tracker: Tracker) -> SlotDict:
        values = super().reject(slot, rejection, dispatcher, tracker)
        if values.get("form_result") == "gave_up":
            values.update({"survey_end": "gave_up", "survey_stopped_at": QUESTION_OF_SLOT[slot]})
        return values

    def _ends(self, slot: str, user_input: UserInput) -> SlotDict | None:
        """"Don't call me again" and "goodbye" end the questions at any of them."""
        if user_input.keys or user_input.silent:
            return None
        if user_input.intent == "do_not_call":
            return {slot: None, "survey_end": "opted_out", "requested_slot": None}
        if user_input.intent == "goodbye" and slot != "survey_wants_comment":
            return {slot: None, "survey_end": "goodbye", "survey_stopped_at": QUESTION_OF_SLOT[slot],
                    "requested_slot": None}
        return None

    async def _store(self, slot: str, tracker: Tracker, dispatcher: CollectingDispatcher, question: str,
                     values: SlotDict, **answer: Any) -> SlotDict:
        """Store the answer; the dialogue goes on only once it is stored."""
        try:
            await SurveyApi().answer(tracker.get_slot("survey_id"), tracker.sender_id, question, **answer)
        except ServiceError as exc:
            logger.error("survey answer %s not stored: %s", question, exc)
            dispatcher.utter_message(response="utter_service_error")
            return {slot: None, "survey_end": "error", "survey_stopped_at": QUESTION_OF_SLOT[slot],
                    "requested_slot": None}
        return self.accept(values)

    @on_input
    async def validate_survey_fixed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> SlotDict:
        user_input = self.user_input(tracker)
        if (ended := self._ends("survey_fixed", user_input)) is not None:
            return ended
        choice = choose(user_input, FIXED_KEYS, FIXED_INTENTS)
        if isinstance(choice, Rejection):
            return self.reject("survey_fixed", choice, dispatcher, tracker)
        words = {"text": user_input.text[:500]} if user_input.text and not user_input.keys else {}
        stored = await self._store("survey_fixed", tracker, dispatcher, "fixed", {"survey_fixed": bool(choice)},
                                   value=bool(choice), **words)
        if choice is False and "survey_end" not in stored:
            dispatcher.utter_message(response="utter_survey_redispatched")  # U5: made before this is said
        return stored

    async def _rating(self, slot: str, question: str, dispatcher: CollectingDispatcher,
                      tracker: Tracker) -> SlotDict:
        user_input = self.user_input(tracker)
        if (ended := self._ends(slot, user_input)) is not None:
            return ended
        choice = choose(user_input, RATING_KEYS, RATING_INTENTS)
        if isinstance(choice, Rejection) and choice.response == NOT_UNDERSTOOD:
            # "5分", "四" said or typed: a digit from 1 to 5 is the rating.
            digits = user_input.digits
            choice = digits if len(digits) == 1 and digits in RATING_KEYS else \
                Rejection(INVALID_CHOICE if digits else NOT_UNDERSTOOD)
        if isinstance(choice, Rejection):
            return self.reject(slot, choice, dispatcher, tracker)
        rating = int(str(choice))
        return await self._store(slot, tracker, dispatcher, question, {slot: float(rating)}, value=rating)

    @on_input
    async def validate_survey_attitude(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> SlotDict:
        return await self._rating("survey_attitude", "attitude", dispatcher, tracker)

    @on_input
    async def validate_survey_quality(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> SlotDict:
        return await self._rating("survey_quality", "quality", dispatcher, tracker)

    @on_input
    async def validate_survey_wants_comment(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                            domain: DomainDict) -> SlotDict:
        user_input = self.user_input(tracker)
        if (ended := self._ends("survey_wants_comment", user_input)) is not None:
            return ended
        choice = choose(user_input, YES_NO_KEYS, COMMENT_INTENTS)
        if isinstance(choice, Rejection):
            return self.reject("survey_wants_comment", choice, dispatcher, tracker)
        values: SlotDict = {"survey_wants_comment": bool(choice)}
        if not choice:
            values["survey_end"] = "done"
        return await self._store("survey_wants_comment", tracker, dispatcher, "wants_comment", values,
                                 value=bool(choice))

    @on_input
    async def validate_survey_comment(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> SlotDict:
        user_input = self.user_input(tracker)
        if user_input.intent == "recorded":
            for entity in tracker.latest_message.get("entities") or []:
                if entity.get("entity") == "recording_id" and entity.get("value"):
                    recording = str(entity["value"])
                    return await self._store("survey_comment", tracker, dispatcher, "comment",
                                             {"survey_comment": f"recording:{recording}", "survey_end": "done"},
                                             recording_id=recording)
        if (ended := self._ends("survey_comment", user_input)) is not None:
            return ended
        if user_input.silent or user_input.keys or not user_input.text.strip():
            return self.reject("survey_comment", Rejection("utter_no_input"), dispatcher, tracker)
        text = user_input.text.strip()[:1000]
        return await self._store("survey_comment", tracker, dispatcher, "comment",
                                 {"survey_comment": text, "survey_end": "done"}, text=text)


class ActionFinishSurvey(Action):
    """The questions ended: the survey is finished (or stopped where it stopped, or the
    number listed as do-not-call), then thanks or goodbye; the conversation ends."""

    def name(self) -> str:
        return "action_finish_survey"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        survey_id, end = tracker.get_slot("survey_id"), tracker.get_slot("survey_end") or "done"
        api = SurveyApi()
        try:
            if end == "opted_out":
                await api.opt_out(survey_id, tracker.sender_id)
            elif end != "error":
                stopped_at = tracker.get_slot("survey_stopped_at") if end != "done" else None
                await api.finish(survey_id, tracker.sender_id, stopped_at, None if end == "done" else end)
        except ServiceError as exc:
            # Not stored: nothing may say it was (the answers given so far are stored).
            logger.error("survey %s not finished (%s): %s", survey_id, end, exc)
            dispatcher.utter_message(response="utter_service_error")
            end = "error"
        dispatcher.utter_message(response=ENDINGS.get(end, "utter_survey_stopped"))
        return end_loop()


__all__ = ["ActionFinishSurvey", "ActionStartSurvey", "ValidateSurveyForm"]
