"""The caller's own number (ANI) offered as the contact number (issue 13 item 3, A8/V5).

On a call, the phone channel passes the caller's number as metadata of the first message
(voice/call/conversation.py: ``{"caller_number": …}``). When it is a valid number, the
contact-number question first offers it ("联系电话是否为您现在使用的号码 139 1234 5678？是请按1，
输入其他号码请按2"), read back grouped like any number; 1 (or yes) takes it, 2 (or no) asks
the normal question. A withheld or invalid number → the normal question. Designers switch
the offer off with the slot ``offer_caller_number`` (nlu/domain/caller_number.yml).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker

from actions.config import ActionConfig
from telnum import check_number, extract_digits, group_digits

OFFER_SLOT = "use_caller_number"


def caller_number_from(metadata: Any) -> str | None:
    """The caller's number from the first message's metadata, canonical, or None when
    withheld ("anonymous", "", "0000000000") or not a valid number."""
    if not isinstance(metadata, dict):
        return None
    raw = str(metadata.get("caller_number") or "")
    digits = extract_digits(raw.replace("+", ""))
    if len(digits) < 7 or len(digits) > 16 or len(set(digits)) == 1:
        return None
    number = check_number(digits, ActionConfig.from_env().local_area_code).canonical
    if number is None or number.startswith("00"):
        return None  # "00…" is an international prefix, not a line here
    return number


def caller_slots(number: str | None) -> dict[str, Any]:
    return {"caller_number": number, "caller_number_display": group_digits(number) if number else None}


def offers_caller_number(tracker: Tracker) -> bool:
    """Ask A8's contact question with the caller's own number first?"""
    return (
        bool(tracker.get_slot("caller_number"))
        and tracker.get_slot("offer_caller_number") is not False
        and tracker.get_slot(OFFER_SLOT) is None
        and tracker.get_slot("contact_number") is None  # given ahead in a sentence (issue 13 item 1)
    )
