"""JSON errors for every API: bad input is a 4xx with a reason a person can read, never a 500.

Body shape: ``{"error": "<code>", "reason": "<human readable>"}`` (plus details where
useful, e.g. ``"detail": "too_short"`` for numbers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from actions.numbers import check_number
from bot.store.service import ServiceError

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY_BYTES = 256 * 1024


def json_error(status: int, code: str, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "reason": reason, **extra}, status=status)


class ApiError(Exception):
    """Raised by handlers; the middleware turns it into :func:`json_error`."""

    def __init__(self, status: int, code: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.extra = extra


_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
               413: "too_large", 415: "unsupported_media_type", 422: "unprocessable"}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return json_error(e.status, e.code, e.reason, **e.extra)
    except ServiceError as e:
        return json_error(e.status, e.code, e.reason)
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "application/json":
            raise  # redirects, and errors that are JSON already
        reason = e.reason if e.status != 404 else f"no such resource: {request.method} {request.path}"
        if e.status == 405:
            reason = f"{request.method} is not allowed on {request.path}"
        return json_error(e.status, _HTTP_CODES.get(e.status, f"http_{e.status}"), reason)
    except Exception:
        log.exception("unhandled_error", method=request.method, path=request.path)
        return json_error(500, "internal_error", "something went wrong on our side; it has been logged")


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        raise ApiError(400, "malformed_json", "the request needs a JSON body")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return data


async def chat_json_object(request: web.Request) -> dict[str, Any] | web.Response:
    """The web chat's body as a JSON object, or the 400 to answer with (the chat's codes)."""
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return json_error(400, "malformed_json", "the body is not valid JSON")
    if not isinstance(raw, dict):
        return json_error(400, "bad_body", "the body must be a JSON object")
    return raw


def validate(model: type[M], data: Any) -> M:
    """Validate against a request model (unknown fields refused), or 400 with every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ApiError(400, "invalid_request", describe_validation_error(e)) from e


async def parse_body(request: web.Request, model: type[M]) -> M:
    return validate(model, await read_json(request))


def describe_validation_error(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"]) or "body"
        msg = "unknown field" if err["type"] == "extra_forbidden" else str(err["msg"])
        parts.append(f"{where}: {msg.removeprefix('Value error, ')}")
    return "; ".join(parts)


# Separators people put in numbers; anything else (letters…) is not a number.
_NUMBER_TEXT = re.compile(r"^[0-9\s\-().+]+$")


def number_digits(raw: str, *, field: str = "number") -> str:
    """The digits of a formatted number ("0571-8765 0001" → "057187650001"), or 400."""
    if not _NUMBER_TEXT.match(raw):
        raise ApiError(400, "invalid_number", f"{field}: {raw[:40]!r} is not a phone number (digits only)",
                       detail="not_digits")
    return re.sub(r"\D", "", raw)


def canonical_number(raw: str, local_area_code: str, *, field: str = "number") -> tuple[str, str]:
    """A2: any formatting of a phone number → (canonical digits, "fixed"|"mobile"), or 400."""
    check = check_number(number_digits(raw, field=field), local_area_code)
    if check.error is not None or check.canonical is None or check.kind is None:
        words = {"too_short": "too short", "too_long": "too long", "empty": "empty"}
        raise ApiError(400, "invalid_number",
                       f"{field}: the number is {words.get(check.error or '', 'not valid')}",
                       detail=check.error or "invalid")
    return check.canonical, check.kind
