"""Complaints (issue 13 item 5) and progress questions (item 4), at any point of the dialogue.

- A complaint (我要投诉, swearing …) is apologised for and handed to the manager hotline's
  queue (M2) with reason ``complaint``; the desk shows it to the manager post.
- A progress question is J4's answer, automated: the fault number (from the sentence, or
  asked by ``progress_form``), then the open ticket's state in plain words — received;
  dispatched to the centre, with the expected completion time; repaired — and the
  repairman's message if there is one; then A7's offer of a human. No open ticket: said so,
  then the main menu (whose 1 is a new report). Counted as outcome ``progress_informed``.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.config import ActionConfig
from actions.flow import hand_off, record_outcome
from actions.forms import HotlineForm, _number_or_rejection, language, on_input
from actions.interpret import Rejection, read_input
from actions.services import NotFound, ServiceError, Services
from telnum import check_number, extract_digits, group_digits

logger = logging.getLogger(__name__)

MANAGER_QUEUE = "manager"
# Sub-steps of the ticket workflow (bot/store/workflow.py) said as "with the repair centre".
DISPATCHED = {"dispatched", "returned", "callback", "waiting", "on_hold"}


class ActionComplaint(Action):
    """Item 5: apology + the manager hotline's queue (M2), never a re-prompt."""

    def name(self) -> str:
        return "action_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        return await hand_off(dispatcher, tracker, "complaint", queue=MANAGER_QUEUE, response="utter_complaint")


def number_in(text: str) -> str | None:
    """A valid phone number said in the sentence itself ("查进度 0571 8765 0001"), canonical."""
    digits = extract_digits(text)
    if len(digits) < 7:
        return None
    return check_number(digits, ActionConfig.from_env().local_area_code).canonical


class ActionProgressStart(Action):
    """J4: take the number from the question, or from the conversation; else ask for it."""

    def name(self) -> str:
        return "action_progress_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        number = number_in(text) if not text.startswith("/") else None
        number = number or tracker.get_slot("fault_number")
        events: list[EventType] = [SlotSet("progress_message", None), SlotSet("progress_due", None)]
        if number:
            return events + [SlotSet("progress_number", number),
                             SlotSet("progress_number_display", group_digits(number)),
                             SlotSet("progress_state", "given")]
        return events + [SlotSet("progress_number", None), SlotSet("progress_state", "ask")]


class ValidateProgressForm(HotlineForm):
    """J4: the number asked about, by keys or words (no readback: the answer says it)."""

    FORM = "progress_form"

    @on_input
    def validate_progress_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        user_input = read_input(tracker.latest_message)
        if user_input.silent:
            return self.reject("progress_number", Rejection("utter_no_input"), dispatcher, tracker)
        number = _number_or_rejection(user_input)
        if isinstance(number, Rejection):
            return self.reject("progress_number", number, dispatcher, tracker)
        return self.accept({"progress_number": number, "progress_number_display": group_digits(number)},
                           result="done")


def local_due(iso: str | None, lang: str) -> str | None:
    """The expected completion in the centre's time zone, as people say it."""
    if not iso:
        return None
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    local = when.astimezone(ZoneInfo(os.environ.get("HOTLINE_TIMEZONE", "Asia/Shanghai")))
    if lang == "en":
        return local.strftime("%-d %B, %H:%M")
    return f"{local.month}月{local.day}日{local.hour}点" + (f"{local.minute}分" if local.minute else "")


class ActionTellProgress(Action):
    """J4 automated: the open ticket's state in plain words, the repairman's message."""

    def name(self) -> str:
        return "action_tell_progress"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = language(tracker)
        number = tracker.get_slot("progress_number")
        display = tracker.get_slot("progress_number_display") or group_digits(number or "")
        try:
            line = await Services().look_up_line(number)
        except NotFound:
            line = {"state": "unknown_prefix"}
        except ServiceError as exc:
            logger.error("progress look-up failed: %s", exc)
            return [SlotSet("progress_state", "error"), SlotSet("handoff_reason", "service_unavailable")]
        fault = line.get("open_fault") or {}
        events: list[EventType] = [SlotSet("fault_number", line.get("number", number))]
        if line.get("state") == "repaired":
            dispatcher.utter_message(response="utter_progress_repaired", progress_number_display=display)
            return events + [SlotSet("progress_state", "open")]
        if not fault:
            dispatcher.utter_message(response="utter_progress_no_ticket", progress_number_display=display)
            await record_outcome(tracker, "progress_informed", "J4", "no_open_ticket")
            return events + [SlotSet("progress_state", "none")]
        due = local_due(fault.get("expected_resolution"), lang)
        if fault.get("sub_step") in DISPATCHED:
            if due:
                dispatcher.utter_message(response="utter_progress_dispatched", progress_number_display=display,
                                         progress_due=due)
            else:
                dispatcher.utter_message(response="utter_progress_dispatched_no_due", progress_number_display=display)
        else:
            dispatcher.utter_message(response="utter_progress_received", progress_number_display=display)
        message = (fault.get("repairman_message") or {}).get(lang)
        if message:
            dispatcher.utter_message(response="utter_progress_message", progress_message=message)
        return events + [
            SlotSet("open_ticket_id", fault.get("ticket_id")),
            SlotSet("progress_due", due),
            SlotSet("progress_message", message),
            SlotSet("progress_state", "open"),
        ]
