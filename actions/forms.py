"""Form validation: what a key, a text or silence means at each prompt.

Every failure (silence, not understood, invalid key, bad number) is counted toward the
dialogue's limit (slot ``max_failures``, A3); at the limit the form ends with
``gave_up`` set and the rules decide what follows (transfer or goodbye).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.answers import (
    already_valid,
    is_hesitation,
    number_slots,
    numbers_said,
    roles_question,
    sort_out,
    symptom_said,
    which_of,
)
from actions.caller import OFFER_SLOT, offers_caller_number
from actions.config import ActionConfig
from actions.interpret import (
    NOT_UNDERSTOOD,
    OFFER_INTENTS,
    SYMPTOM_LABELS,
    YES_NO_INTENTS,
    YES_NO_KEYS,
    Rejection,
    UserInput,
    choose,
    read_input,
    symptom_from,
)
from telnum import (
    BAD_PREFIX,
    CONTACT,
    EMPTY,
    FAULT,
    TOO_LONG,
    TOO_SHORT,
    check_number,
    group_digits,
    parse_number,
)

SlotDict = dict[str, Any]


def language(tracker: Tracker) -> str:
    return "en" if tracker.get_slot("language") == "en" else "zh"


Validator = Callable[..., SlotDict]


def on_input(method: Validator) -> Validator:
    """Validate only what the caller just gave. A slot an action cleared (A4 clears the
    number, "2" clears the details) also reaches validation, with None: re-reading the
    caller's last key as an answer to the new question would be wrong."""

    @wraps(method)
    def wrapper(self: Any, value: Any, *args: Any) -> SlotDict:
        return {} if value is None else method(self, value, *args)

    return wrapper


class HotlineForm(FormValidationAction):
    """Shared failure counting for every prompt that waits for the caller."""

    FORM = ""
    # The fault number form keeps its count: A4's unknown prefixes count toward A3.
    reset_count_on_completion = True

    def name(self) -> str:
        return f"validate_{self.FORM}"

    async def next_requested_slot(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Any:
        # A3's limit ends the form (reject() set requested_slot None). A form whose
        # required_slots differ from the domain's (A8's offer of the caller's number) would
        # otherwise have the SDK request its next empty slot and undo that ending.
        if tracker.get_slot("form_result") == "gave_up" and tracker.get_slot("requested_slot") is None:
            return None
        return await super().next_requested_slot(dispatcher, tracker, domain)

    def user_input(self, tracker: Tracker) -> UserInput:
        user_input = read_input(tracker.latest_message)
        if is_hesitation(user_input):
            # "嗯", "等一下" are no answer, whatever intent the NLU saw in them (affirm,
            # a survey rating …): the prompt is said again, no failure (issue 13 item 2).
            return replace(user_input, intent="hesitate")
        return user_input

    def reject(
        self, slot: str, rejection: Rejection, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> SlotDict:
        if is_hesitation(self.user_input(tracker)):
            # Issue 13 item 2: "喂？", "等一下", "嗯" — the prompt again, no failure (A3).
            dispatcher.utter_message(response="utter_hesitation")
            return {slot: None}
        count = int(tracker.get_slot("failure_count") or 0) + 1
        limit = int(tracker.get_slot("max_failures") or 3)
        if count >= limit:
            # A3: the limit is reached; the rules run action_failure_limit or end acceptance.
            return {slot: None, "failure_count": 0, "form_result": "gave_up", "requested_slot": None}
        dispatcher.utter_message(response=rejection.response)
        return {slot: None, "failure_count": count}

    def yes_no(
        self, slot: str, dispatcher: CollectingDispatcher, tracker: Tracker, **more_intents: bool
    ) -> SlotDict:
        """A final 1/2 question (A7, V7, V11): key, typed key or yes/no words."""
        choice = choose(self.user_input(tracker), YES_NO_KEYS, {**OFFER_INTENTS, **more_intents})
        if isinstance(choice, Rejection):
            return self.reject(slot, choice, dispatcher, tracker)
        return self.accept({slot: bool(choice)}, result="yes" if choice else "no")

    def accept(self, values: SlotDict, result: str = "") -> SlotDict:
        """Take the values; ``result`` (the form is complete) is what the rules branch on."""
        if not result:
            return values
        values = {**values, "form_result": result}
        if self.reset_count_on_completion:
            values["failure_count"] = 0
        return values


class ValidateMainMenuForm(HotlineForm):
    """A1: 1 fault reporting, 2 other services, 9 English, 8 Mandarin."""

    FORM = "main_menu_form"

    @on_input
    def validate_menu_choice(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        user_input = self.user_input(tracker)
        area = ActionConfig.from_env().local_area_code
        said = numbers_said(tracker.latest_message, user_input, area)
        if said.any_valid(area):
            # "我家电话0571 8765 0001坏了": a fault report with its number (issue 13 item 1).
            return self.accept(
                {"menu_choice": "fault", **fault_step_answers(said, user_input, language(tracker), area, tracker)},
                result="fault",
            )
        whole = check_number(user_input.digits, area) if len(user_input.digits) >= 7 else None
        if whole is not None and whole.canonical:
            # A whole number keyed or typed at the menu: the fault number (issue 13 item 1).
            values = number_slots("fault_number", whole.canonical, area) or {}
            return self.accept({"menu_choice": "fault", **values}, result="fault")
        if said.any and not user_input.keys:
            # "我家电话12345678901坏了": a fault report; why the number cannot be (V3), then V1.
            number = said.fault or said.contact or said.unclear[0]
            refusal = _number_or_rejection(UserInput(user_input.intent, number, "", False))
            if isinstance(refusal, Rejection):
                dispatcher.utter_message(response=refusal.response)
            return self.accept({"menu_choice": "fault", **symptom_said(user_input, language(tracker))}, result="fault")
        choice = choose(
            user_input,
            {"1": "fault", "2": "other", "9": "en", "8": "zh"},
            {
                "report_fault": "fault",
                "symptom_no_dial_tone": "fault",
                "symptom_noise": "fault",
                "symptom_cannot_call_out": "fault",
                "symptom_cannot_receive": "fault",
                "symptom_broadband_down": "fault",
                "symptom_other": "fault",
                "other_services": "other",
                "choose_english": "en",
                "choose_chinese": "zh",
            },
        )
        if isinstance(choice, Rejection):
            return self.reject("menu_choice", choice, dispatcher, tracker)
        if choice in ("en", "zh"):
            # The menu is said again in the chosen language; no failure counted.
            return {"menu_choice": None, "language": choice}
        ahead = symptom_said(user_input, language(tracker)) if choice == "fault" else {}
        return self.accept({"menu_choice": choice, **ahead}, result=str(choice))


def fault_step_answers(said: Any, user_input: UserInput, lang: str, area: str, tracker: Tracker) -> SlotDict:
    """What an input at the main menu or the fault-number prompt says ahead: the fault
    number, the contact number, the symptom; two numbers without cues → which is which
    (asked once: after that, the first one said is the faulty line)."""
    fault, contact, unclear = sort_out(said, FAULT)
    values: SlotDict = {}
    if unclear and tracker.get_slot("number_roles") in (None, "none"):
        values.update(roles_question(unclear, lang))
    elif unclear:
        fault, contact = unclear
    if fault:
        values.update(number_slots("fault_number", fault, area) or {})
    if contact:
        values.update(number_slots("contact_number", contact, area) or {})
    values.update(symptom_said(user_input, lang))
    return values


class ValidateFaultNumberForm(HotlineForm):
    """A2: the fault number by keys or words, read back (V2), 1 confirms, 2 re-enters."""

    FORM = "fault_number_form"
    reset_count_on_completion = False

    @on_input
    def validate_number_roles(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        pair = str(tracker.get_slot("unclear_numbers") or "").split()
        if len(pair) != 2:
            return {"number_roles": "none", "unclear_numbers": None}
        user_input = self.user_input(tracker)
        area = ActionConfig.from_env().local_area_code
        index = which_of(user_input, pair, numbers_said(tracker.latest_message, user_input, area))
        if index is None:
            rejection = choose(user_input, {})
            return self.reject("number_roles", rejection if isinstance(rejection, Rejection) else Rejection(NOT_UNDERSTOOD), dispatcher, tracker)
        return {
            "number_roles": "first" if index == 0 else "second",
            "unclear_numbers": None,
            "unclear_numbers_display": None,
            **(number_slots("fault_number", pair[index], area) or {}),
            **(number_slots("contact_number", pair[1 - index], area) or {}),
        }

    @on_input
    def validate_fault_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        if already_valid(tracker.slots, "fault_number", value):
            return {}  # said ahead (at the main menu) and checked then; V2 reads it back
        user_input = self.user_input(tracker)
        if user_input.silent:
            return self.reject("fault_number", Rejection("utter_no_input"), dispatcher, tracker)
        area = ActionConfig.from_env().local_area_code
        said = numbers_said(tracker.latest_message, user_input, area)
        if said.any:
            ahead = fault_step_answers(said, user_input, language(tracker), area, tracker)
            if "fault_number" in ahead or "unclear_numbers" in ahead:
                return self.accept({"fault_number": None, **ahead})
            fault = sort_out(said, FAULT)[0]
            if fault is None:  # only the contact number: kept, and V1 asked again
                return {"fault_number": None, **ahead}
            rejection = _number_or_rejection(UserInput(user_input.intent, fault, "", False))
            if isinstance(rejection, Rejection):
                return {**ahead, **self.reject("fault_number", rejection, dispatcher, tracker)}
        rejected = _number_or_rejection(user_input)
        if isinstance(rejected, Rejection):
            return self.reject("fault_number", rejected, dispatcher, tracker)
        return self.accept(
            {"fault_number": rejected, "fault_number_display": group_digits(rejected)}
        )

    @on_input
    def validate_fault_number_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        user_input = self.user_input(tracker)
        area = ActionConfig.from_env().local_area_code
        said = numbers_said(tracker.latest_message, user_input, area)
        fault = sort_out(said, FAULT)[0] if said.any else None
        if fault is None and said.unclear:
            fault = said.unclear[0]
        if fault is not None:
            # Issue 13 item 2: "不对，是0571 8765 0002" replaces the number; V2 reads it again.
            corrected = number_slots("fault_number", fault, area)
            if corrected is None:
                rejection = _number_or_rejection(UserInput(user_input.intent, fault, "", False))
                if isinstance(rejection, Rejection):
                    return {"fault_number_confirmed": None, **self.reject("fault_number", rejection, dispatcher, tracker)}
            elif corrected["fault_number"] != tracker.get_slot("fault_number") or user_input.intent in ("deny", "retry"):
                contact = sort_out(said, FAULT)[1]
                extra = number_slots("contact_number", contact, area) if contact else None
                return {**corrected, **(extra or {}), "fault_number_confirmed": None}
            else:
                return self.accept({"fault_number_confirmed": True}, result="done")  # the same number: yes
        choice = choose(user_input, YES_NO_KEYS, YES_NO_INTENTS)
        if isinstance(choice, Rejection):
            return self.reject("fault_number_confirmed", choice, dispatcher, tracker)
        if choice is False:
            # 2: enter again (V1). Not a failure.
            return {"fault_number": None, "fault_number_confirmed": None}
        return self.accept({"fault_number_confirmed": True}, result="done")


NUMBER_REFUSALS = {  # A2 / A4 V3: why a number cannot be, said before asking again
    TOO_LONG: "utter_number_too_long",
    TOO_SHORT: "utter_number_too_short",
    BAD_PREFIX: "utter_number_bad_prefix",
}


def _number_or_rejection(user_input: UserInput) -> Any:
    """A canonical number, or the reason it is not one (spoken to the caller)."""
    area = ActionConfig.from_env().local_area_code
    if user_input.keys:
        digits = user_input.digits
        checked = check_number(digits, area) if digits else None
    else:
        checked = parse_number(user_input.text, area)
    if checked is None or checked.error == EMPTY:
        return Rejection(NOT_UNDERSTOOD)
    if checked.canonical:
        return checked.canonical
    error = checked.error or TOO_SHORT
    return Rejection(NUMBER_REFUSALS.get(error, "utter_number_too_short"), error)


class ValidateOfferHumanForm(HotlineForm):
    """A7: a repeat caller may talk to a human (1) or not (2)."""

    FORM = "offer_human_form"

    @on_input
    def validate_wants_human(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        return self.yes_no("wants_human", dispatcher, tracker)


class ValidateReportDetailsForm(HotlineForm):
    """A8–A9: contact number and symptom (V5), read back (V6), 1 confirms, 2 re-enters.
    On a call with a valid ANI, the caller's own number is offered first (issue 13 item 3)."""

    FORM = "report_details_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        slots = [s for s in domain_slots if s != OFFER_SLOT]
        if offers_caller_number(tracker) or tracker.get_slot("requested_slot") == OFFER_SLOT:
            return [OFFER_SLOT, *slots]
        return slots

    @on_input
    def validate_use_caller_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        """1 / yes: the number the caller is calling from is the contact; 2 / no: ask for it.
        Another whole number given straight away ("13912345678#", said or typed) is taken
        as the contact number without the detour."""
        user_input = self.user_input(tracker)
        if len(user_input.digits) >= 7:
            number = _number_or_rejection(user_input)
            if isinstance(number, Rejection):
                return self.reject(OFFER_SLOT, number, dispatcher, tracker)
            return {OFFER_SLOT: False, "contact_number": number, "contact_number_display": group_digits(number)}
        choice = choose(user_input, YES_NO_KEYS, YES_NO_INTENTS)
        if isinstance(choice, Rejection):
            return self.reject(OFFER_SLOT, choice, dispatcher, tracker)
        if choice is True:
            number = str(tracker.get_slot("caller_number"))
            return {OFFER_SLOT: True, "contact_number": number, "contact_number_display": group_digits(number)}
        return {OFFER_SLOT: False}

    @on_input
    def validate_contact_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        if already_valid(tracker.slots, "contact_number", value):
            return {}  # said ahead; V6 reads it back
        user_input = self.user_input(tracker)
        if user_input.silent:
            return self.reject("contact_number", Rejection("utter_no_input"), dispatcher, tracker)
        said = numbers_said(tracker.latest_message, user_input, ActionConfig.from_env().local_area_code)
        if said.any:
            fault, contact, unclear = sort_out(said, CONTACT)
            chosen = contact or (unclear[0] if unclear else None) or fault
            number = _number_or_rejection(UserInput(user_input.intent, chosen or "", "", False))
        else:
            number = _number_or_rejection(user_input)
        if isinstance(number, Rejection):
            return self.reject("contact_number", number, dispatcher, tracker)
        values: SlotDict = {"contact_number": number, "contact_number_display": group_digits(number)}
        # "13912345678 电话没有拨号音": number and symptom in one go.
        symptom = symptom_from(UserInput(user_input.intent, user_input.text, "", False))
        if not user_input.keys and not isinstance(symptom, Rejection) and user_input.intent.startswith("symptom_"):
            values.update(_symptom_slots(symptom, user_input.text, language(tracker)))
        return self.accept(values)

    @on_input
    def validate_symptom_category(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        if tracker.get_slot("symptom_label") and value in SYMPTOM_LABELS:
            return {"symptom_category": value}  # filled together with the contact number
        user_input = self.user_input(tracker)
        symptom = symptom_from(user_input)
        if isinstance(symptom, Rejection):
            return self.reject("symptom_category", symptom, dispatcher, tracker)
        return self.accept(_symptom_slots(symptom, user_input.text, language(tracker)))

    @on_input
    def validate_details_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        user_input = self.user_input(tracker)
        lang = language(tracker)
        area = ActionConfig.from_env().local_area_code
        said = numbers_said(tracker.latest_message, user_input, area)
        corrected: SlotDict = {}
        if said.any:
            # Issue 13 item 2: "不对，联系电话是…" replaces the contact number; V6 again.
            fault, contact, unclear = sort_out(said, CONTACT)
            chosen = contact or (unclear[0] if unclear else None) or fault
            slots = number_slots("contact_number", chosen or "", area)
            if slots is None:
                rejection = _number_or_rejection(UserInput(user_input.intent, chosen or "", "", False))
                if isinstance(rejection, Rejection):
                    return {"details_confirmed": None, **self.reject("contact_number", rejection, dispatcher, tracker)}
            elif slots["contact_number"] != tracker.get_slot("contact_number"):
                corrected.update(slots)
        symptom = symptom_said(user_input, lang)
        if symptom and symptom["symptom_category"] != tracker.get_slot("symptom_category"):
            corrected.update(symptom)  # "不对，是有杂音": the symptom replaced, V6 again
        if corrected:
            return {**corrected, "details_confirmed": None}
        choice = choose(user_input, YES_NO_KEYS, YES_NO_INTENTS)
        if isinstance(choice, Rejection):
            return self.reject("details_confirmed", choice, dispatcher, tracker)
        if choice is False:
            # A10 "2": enter again, from the contact number.
            return {
                OFFER_SLOT: None,  # the caller's own number is offered again (issue 13 item 3)
                "contact_number": None,
                "contact_number_display": None,
                "symptom_category": None,
                "symptom_text": None,
                "symptom_label": None,
                "details_confirmed": None,
            }
        return self.accept({"details_confirmed": True}, result="done")


def _symptom_slots(category: str, text: str, lang: str) -> SlotDict:
    label = SYMPTOM_LABELS[category][lang]
    if category == "other" and text:
        label += f"（{text}）" if lang == "zh" else f" ({text})"  # "other": the caller's words matter
    return {"symptom_category": category, "symptom_text": text, "symptom_label": label}


class ValidateLeaveMessageForm(HotlineForm):
    """A11 V7: 1 leaves a message for the repairman, 2 does not."""

    FORM = "leave_message_form"

    @on_input
    def validate_wants_message(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        return self.yes_no("wants_message", dispatcher, tracker, leave_message=True)


class ValidateVoiceMessageForm(HotlineForm):
    """A11 V8/V10: the message (typed in chat, recorded on the phone), then 1/2/3."""

    FORM = "voice_message_form"

    @on_input
    def validate_voice_message(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        user_input = self.user_input(tracker)
        if user_input.intent == "recorded":
            for entity in tracker.latest_message.get("entities") or []:
                if entity.get("entity") == "recording_id":
                    return self.accept({"voice_message": f"recording:{entity.get('value')}"})
        if user_input.silent or user_input.keys or not user_input.text.strip() or user_input.intent == "hesitate":
            # "等一下" is no message for the repairman: the prompt again (issue 13 item 2).
            return self.reject("voice_message", Rejection("utter_no_input"), dispatcher, tracker)
        return self.accept({"voice_message": user_input.text.strip()[:1000]})

    @on_input
    def validate_voice_message_decision(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        choice = choose(
            self.user_input(tracker),
            {"1": "confirm", "2": "again", "3": "quit"},
            {"affirm": "confirm", "retry": "again", "deny": "quit"},
        )
        if isinstance(choice, Rejection):
            return self.reject("voice_message_decision", choice, dispatcher, tracker)
        if choice == "again":
            return {"voice_message": None, "voice_message_decision": None}
        return self.accept({"voice_message_decision": choice}, result=str(choice))


class ValidateAnotherServiceForm(HotlineForm):
    """V11: 1 other services (main menu), 2 quit."""

    FORM = "another_service_form"

    @on_input
    def validate_another_service(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> SlotDict:
        return self.yes_no("another_service", dispatcher, tracker, other_services=True, report_fault=True)
