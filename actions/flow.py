"""The actions between prompts: look up the line, run the line test, store the report,
hand over to a human, end the conversation. Thin: read the tracker, call a service,
return events. A failed call becomes a dialogue event (apology + human)."""

from __future__ import annotations

import logging
import time
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, AllSlotsReset, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.caller import caller_number_from, caller_slots
from actions.forms import language
from actions.services import ServiceError, Services
from telnum import mask_number

logger = logging.getLogger(__name__)

# The step a conversation is at, from the form that last asked something.
FORM_STEPS = {
    "main_menu_form": "A1",
    "fault_number_form": "A2",
    "offer_human_form": "A7",
    "report_details_form": "A9",
    "leave_message_form": "A11",
    "voice_message_form": "A11",
    "another_service_form": "A11",
}
UNAVAILABLE_SUMMARY = {"zh": "本次未能完成线路测试。", "en": "The line test could not be completed this time."}
SETTINGS_SLOTS = ("max_failures", "on_max_failures", "repeat_report_limit", "offer_caller_number")
# Kept across a restart of the flow: the call's own facts (issue 13 item 3: the caller's number).
CALL_SLOTS = ("caller_number", "caller_number_display")


def channel_of(tracker: Tracker) -> str:
    return tracker.get_latest_input_channel() or "api"


def current_step(tracker: Tracker) -> str:
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") in FORM_STEPS:
            return FORM_STEPS[event["name"]]
    return "A1"


def end_loop() -> list[EventType]:
    return [ActiveLoop(None), SlotSet("requested_slot", None)]


async def record_outcome(
    tracker: Tracker, outcome: str, step: str, reason: str | None = None
) -> None:
    """Outcomes feed the statistics (T3); losing one must not break the conversation."""
    try:
        await Services().record_outcome(
            {
                "conversation_id": tracker.sender_id,
                "channel": channel_of(tracker),
                "language": language(tracker),
                "outcome": outcome,
                "step": step,
                "reason": reason,
                "ticket_id": tracker.get_slot("ticket_id") or tracker.get_slot("open_ticket_id"),
                "fault_number": tracker.get_slot("fault_number"),
            }
        )
    except ServiceError as exc:
        logger.error("outcome not recorded: %s", exc)


def fresh_start(tracker: Tracker, lang: str | None = None) -> list[EventType]:
    """Clear the flow's slots, keep the language and the designer's settings."""
    keep = {name: tracker.get_slot(name) for name in SETTINGS_SLOTS + CALL_SLOTS}
    events: list[EventType] = [*end_loop(), AllSlotsReset()]
    events += [SlotSet(name, value) for name, value in keep.items() if value is not None]
    events.append(SlotSet("language", lang or language(tracker)))
    return events


class ActionStartConversation(Action):
    """A1: a new conversation (or a restart); the channel may pass the language."""

    def name(self) -> str:
        return "action_start_conversation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        metadata = tracker.latest_message.get("metadata") or {}
        requested = metadata.get("language")
        events = fresh_start(tracker, requested if requested in ("zh", "en") else None)
        if "caller_number" in metadata:
            # A8 (issue 13 item 3): a call's ANI, kept only when it is a valid number.
            events += [SlotSet(name, value) for name, value in caller_slots(caller_number_from(metadata)).items()]
        return events


class ActionBackToMenu(Action):
    """A5/V11: back to the main menu with a clean slate."""

    def name(self) -> str:
        return "action_back_to_menu"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        return fresh_start(tracker)


class ActionCheckLine(Action):
    """A4–A6: exchange prefix, repaired or engineering works, repeat report or new."""

    def name(self) -> str:
        return "action_check_line"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        number = tracker.get_slot("fault_number")
        lang = language(tracker)
        services = Services()
        try:
            line = await services.look_up_line(number)
        except ServiceError as exc:
            logger.error("inventory look-up failed for %s: %s", mask_number(number or ""), exc)
            return [SlotSet("line_status", "service_error"), SlotSet("handoff_reason", "service_unavailable")]
        state = line.get("state")
        if state == "unknown_prefix":
            # A4 → V3, enter again; counts toward A3's limit.
            count = int(tracker.get_slot("failure_count") or 0) + 1
            gave_up = count >= int(tracker.get_slot("max_failures") or 3)
            return [
                SlotSet("line_status", "unknown_prefix_limit" if gave_up else "unknown_prefix"),
                SlotSet("failure_count", 0 if gave_up else count),
                SlotSet("fault_number", None),
                SlotSet("fault_number_confirmed", None),
                SlotSet("fault_number_display", None),
            ]
        events: list[EventType] = [SlotSet("failure_count", 0), SlotSet("fault_number", line.get("number", number))]
        if state == "repaired":
            await record_outcome(tracker, "informed_repaired", "A5")
            return events + [SlotSet("line_status", "repaired")]
        if state == "engineering":
            description = ((line.get("engineering") or {}).get("description") or {}).get(lang)
            await record_outcome(tracker, "informed_engineering", "A5")
            return events + [SlotSet("line_status", "engineering"), SlotSet("engineering_description", description)]
        if state == "open_fault":
            return events + await self._repeat(tracker, line, lang, services)
        return events + [SlotSet("line_status", "new")]

    async def _repeat(self, tracker: Tracker, line: dict[str, Any], lang: str, services: Services) -> list[EventType]:
        """A6: the report is counted on the open fault; the fourth and later go to a human."""
        fault = line.get("open_fault") or {}
        try:
            recorded = await services.submit_report(
                {
                    "conversation_id": tracker.sender_id,
                    "channel": channel_of(tracker),
                    "language": lang,
                    "kind": "repeat",
                    "fault_number": line["number"],
                }
            )
            count = int(recorded.get("report_count") or 0)
        except ServiceError as exc:
            logger.error("repeat report not recorded: %s", exc)
            count = int(fault.get("report_count") or 0) + 1
        events: list[EventType] = [SlotSet("open_ticket_id", fault.get("ticket_id"))]
        if count > int(tracker.get_slot("repeat_report_limit") or 3):
            return events + [SlotSet("line_status", "repeat_over_limit"), SlotSet("handoff_reason", "repeat_over_limit")]
        message = (fault.get("repairman_message") or {}).get(lang)
        last_test = ((fault.get("last_test") or {}).get("summary") or {}).get(lang)
        if message:
            status, info = "repeat_with_message", message
        elif last_test:
            status, info = "repeat_with_test", last_test
        else:
            status, info = "repeat", None
        return events + [
            SlotSet("line_status", status),
            SlotSet("repeat_info", info),
            SlotSet("outcome", "repeat_informed"),
        ]


def _test_slots(test: dict[str, Any], lang: str) -> list[EventType]:
    state = test.get("state")
    if state == "done":
        summary = (test.get("summary") or {}).get(lang) or UNAVAILABLE_SUMMARY[lang]
        return [
            SlotSet("line_test_state", "done"),
            SlotSet("line_test_result", test.get("result")),
            SlotSet("line_test_summary", summary),
        ]
    if state == "failed":
        return [SlotSet("line_test_state", "unavailable"), SlotSet("line_test_summary", UNAVAILABLE_SUMMARY[lang])]
    return [SlotSet("line_test_state", "running")]


class ActionStartLineTest(Action):
    """A8: start the line test; if the unit is busy the test waits for it."""

    def name(self) -> str:
        return "action_start_line_test"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = language(tracker)
        try:
            test = await Services().start_line_test(tracker.get_slot("fault_number"))
        except ServiceError as exc:
            logger.error("line test could not start: %s", exc)
            return [SlotSet("line_test_state", "unavailable"), SlotSet("line_test_summary", UNAVAILABLE_SUMMARY[lang])]
        return [SlotSet("line_test_id", test.get("id")), SlotSet("line_test_started_at", time.time())] + _test_slots(test, lang)


class ActionPollLineTest(Action):
    """A8: ask the unit again; past the configured wait, go on without a result."""

    def name(self) -> str:
        return "action_poll_line_test"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = language(tracker)
        test_id = tracker.get_slot("line_test_id")
        services = Services()
        waited = time.time() - float(tracker.get_slot("line_test_started_at") or 0)
        try:
            test = await services.get_line_test(test_id) if test_id else {"state": "failed"}
        except ServiceError as exc:
            logger.error("line test poll failed: %s", exc)
            test = {"state": "failed"}
        events = _test_slots(test, lang)
        if test.get("state") not in ("done", "failed") and waited > services.config.line_test_max_wait_s:
            return [SlotSet("line_test_state", "unavailable"), SlotSet("line_test_summary", UNAVAILABLE_SUMMARY[lang])]
        return events


class ActionSubmitReport(Action):
    """A10: store the ticket BEFORE anything tells the caller it was accepted."""

    def name(self) -> str:
        return "action_submit_report"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = language(tracker)
        line_test = None
        if tracker.get_slot("line_test_state") == "done":
            line_test = {"test_id": tracker.get_slot("line_test_id"), "result": tracker.get_slot("line_test_result")}
        try:
            stored = await Services().submit_report(
                {
                    "conversation_id": tracker.sender_id,
                    "channel": channel_of(tracker),
                    "language": lang,
                    "kind": "new",
                    "fault_number": tracker.get_slot("fault_number"),
                    "contact_number": tracker.get_slot("contact_number"),
                    "symptom_category": tracker.get_slot("symptom_category") or "other",
                    "symptom_text": tracker.get_slot("symptom_text") or "",
                    "line_test": line_test,
                }
            )
        except ServiceError as exc:
            logger.error("report not stored: %s", exc)
            return [SlotSet("report_stored", False), SlotSet("handoff_reason", "store_unavailable")]
        return [
            SlotSet("report_stored", True),
            SlotSet("ticket_id", stored.get("ticket_id")),
            SlotSet("outcome", "accepted"),
        ]


class ActionSaveVoiceMessage(Action):
    """A11: keep the confirmed message on the ticket (typed in chat; a recording by phone)."""

    def name(self) -> str:
        return "action_save_voice_message"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        message = tracker.get_slot("voice_message") or ""
        body: dict[str, Any] = {"conversation_id": tracker.sender_id}
        if message.startswith("recording:"):
            body["recording_id"] = message.split(":", 1)[1]
        else:
            body["text"] = message
        try:
            await Services().save_voice_message(tracker.get_slot("ticket_id"), body)
        except ServiceError as exc:
            logger.error("voice message not stored: %s", exc)
            dispatcher.utter_message(response="utter_service_error")
            return []
        dispatcher.utter_message(response="utter_message_saved")
        return []


def _transcript(tracker: Tracker) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for event in tracker.events:
        kind = event.get("event")
        if kind == "user":
            text = event.get("text") or ""
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if text.startswith("/"):
                if intent == "dtmf":
                    digits = next((e.get("value") for e in (event.get("parse_data") or {}).get("entities", []) if e.get("entity") == "digits"), "")
                    text = f"[keys {digits}]"
                else:
                    text = f"[{intent}]"
            lines.append({"role": "user", "text": text, "at": event.get("timestamp")})
        elif kind == "bot" and event.get("text"):
            lines.append({"role": "bot", "text": event.get("text"), "at": event.get("timestamp")})
    return lines[-200:]


def _handoff_reason(tracker: Tracker) -> str:
    if (tracker.latest_message.get("intent") or {}).get("name") == "request_human":
        return "caller_request"
    explicit = tracker.get_slot("handoff_reason")
    if explicit:
        return str(explicit)
    if tracker.get_slot("menu_choice") == "other":
        return "other_services"
    if tracker.get_slot("wants_human"):
        return "repeat_caller_request"
    return "caller_request"


async def hand_off(
    dispatcher: CollectingDispatcher, tracker: Tracker, reason: str,
    queue: str | None = None, response: str = "utter_handoff",
) -> list[EventType]:
    """Queue the conversation for a human with everything the bot learned; ``queue`` picks
    the post (None: the junior queue, or a senior for big customers, J3; "manager": the
    manager hotline, M2, for complaints)."""
    lang = language(tracker)
    context: dict[str, Any] = {
        "conversation_id": tracker.sender_id,
        "channel": channel_of(tracker),
        "language": lang,
        "reason": reason,
        "fault_number": tracker.get_slot("fault_number"),
        "ticket_id": tracker.get_slot("ticket_id") or tracker.get_slot("open_ticket_id"),
        "line_test": (
            {"result": tracker.get_slot("line_test_result"), "summary": tracker.get_slot("line_test_summary")}
            if tracker.get_slot("line_test_state") else None
        ),
        "transcript": _transcript(tracker),
    }
    if queue:
        context["queue"] = queue
    step = current_step(tracker)
    try:
        queued = await Services().queue_handoff(context)
        context.update({k: queued.get(k) for k in ("handoff_id", "queue", "position")})
    except ServiceError as exc:
        logger.error("handoff not queued: %s", exc)
        context.update({"handoff_id": None, "queue": None, "position": None})
    await record_outcome(tracker, "handed_off", step, reason)
    dispatcher.utter_message(response=response)
    dispatcher.utter_message(json_message={"handoff": context})
    return end_loop() + [SlotSet("handoff_reason", reason)]


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        return await hand_off(dispatcher, tracker, _handoff_reason(tracker))


class ActionFailureLimit(Action):
    """A3 at the limit: what slot on_max_failures says (process.md note 1)."""

    def name(self) -> str:
        return "action_failure_limit"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        policy = tracker.get_slot("on_max_failures") or "handoff_if_open"
        dispatcher.utter_message(response="utter_too_many_failures")
        transfer = policy == "handoff"
        if policy == "handoff_if_open":
            try:
                transfer = await Services().operators_open()
            except ServiceError:
                transfer = True  # better a queue than a dropped caller
            if not transfer:
                dispatcher.utter_message(response="utter_centre_closed")
        if transfer:
            return await hand_off(dispatcher, tracker, "failure_limit")
        await record_outcome(tracker, "no_input", current_step(tracker), "failure_limit")
        dispatcher.utter_message(response="utter_goodbye")
        return end_loop()


class ActionEndConversation(Action):
    """Goodbye, with the outcome: accepted, repeat informed, ended at a step."""

    def name(self) -> str:
        return "action_end_conversation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        step = current_step(tracker)
        if tracker.get_slot("report_stored"):
            outcome = "accepted"
        elif str(tracker.get_slot("line_status") or "").startswith("repeat"):
            outcome = "repeat_informed"
        elif tracker.get_slot("progress_state") == "open":
            outcome, step = "progress_informed", "J4"  # issue 13 item 4: J4's answer, automated
        elif tracker.get_slot("form_result") == "gave_up":
            outcome = "no_input"
        else:
            outcome = "ended"
        await record_outcome(tracker, outcome, step)
        dispatcher.utter_message(response="utter_goodbye")
        return end_loop()
