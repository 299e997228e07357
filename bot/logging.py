"""Structured logs (structlog), bound to the conversation or call id, numbers masked."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from telnum import mask_number

# Any run of 7+ digits (optionally with spaces/dashes) looks like a phone number; the
# digits after a decimal point (a measured time such as 2.2390000031) do not.
_NUMBER_RE = re.compile(r"(?<![\d.-])(?!\d{4}-\d\d-\d\d)\d(?:[\s-]?\d){6,}(?!\d)")


def mask_numbers_in(text: str) -> str:
    return _NUMBER_RE.sub(lambda m: mask_number(re.sub(r"\D", "", m.group(0))), text)


# Ids are not numbers: a call's UUID may hold 7 digits in a row.
_NOT_NUMBERS = frozenset({"timestamp", "call_id", "conversation_id", "uuid", "recording_id"})


def _mask_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if isinstance(value, str) and key not in _NOT_NUMBERS:
            event_dict[key] = mask_numbers_in(value)
    return event_dict


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,  # uncached loggers cost the chat API ~25 % (bench)
    )
