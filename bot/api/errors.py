"""JSON errors for every API: bad input is a 4xx with a reason a person can read, never a 500.

Body shape: ``{"error": "<code>", "reason": "<human readable>"}`` (plus details where
useful, e.g. ``"detail": "too_short"`` for numbers).
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy.exc import DataError, OperationalError

from bot.boundary import (  # the APIs' one place for the boundary's helpers
    MAX_BODY_BYTES,
    ApiError,
    AsciiInt,
    Handler,
    internal_error,
    json_error,
    parse_body,
    path_id,
    query_params,
    read_json,
    request_id,
    validate,
)
from bot.store.service import ServiceError
from telnum import check_number

__all__ = ["MAX_BODY_BYTES", "ApiError", "AsciiInt", "canonical_number", "chat_json_object", "error_middleware",
           "json_error", "number_digits", "parse_body", "path_id", "query_params", "read_json", "validate"]

log = structlog.get_logger(__name__)

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
               413: "too_large", 415: "unsupported_media_type", 422: "unprocessable"}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return e.response()
    except ServiceError as e:
        return json_error(e.status, e.code, e.reason)
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "application/json":
            raise  # redirects, and errors that are JSON already
        reason = e.reason if e.status != 404 else f"no such resource: {request.method} {request.path}"
        if e.status == 405:
            reason = f"{request.method} is not allowed on {request.path}"
        if e.status == 413:
            reason = f"the body is larger than {MAX_BODY_BYTES} bytes"
        return json_error(e.status, _HTTP_CODES.get(e.status, f"http_{e.status}"), reason)
    except OperationalError:
        # The store is locked, restarting or out of connections: a moment's trouble, not the input's.
        log.exception("store_unavailable", method=request.method, path=request.path)
        return json_error(503, "store_unavailable", "the store is busy or unreachable just now; try again",
                          request_id=request_id(request))
    except DataError:
        log.warning("store_refused_value", method=request.method, path=request.path, exc_info=True)
        return json_error(400, "invalid_value", "a value is out of the range the store takes")
    except Exception:
        log.exception("unhandled_error", method=request.method, path=request.path, request_id=request_id(request))
        return internal_error(request)


async def chat_json_object(request: web.Request) -> dict[str, Any] | web.Response:
    """The web chat's body as a JSON object, or the 4xx to answer with (the chat's codes)."""
    try:
        return await read_json(request)
    except ApiError as e:
        if e.code == "malformed_json" and e.reason == "the body must be a JSON object":
            return json_error(400, "bad_body", e.reason)
        return e.response()


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
        words = {"too_short": "too short", "too_long": "too long", "empty": "empty",
                 "bad_prefix": "not a number any line has"}
        raise ApiError(400, "invalid_number",
                       f"{field}: the number is {words.get(check.error or '', 'not valid')}",
                       detail=check.error or "invalid")
    return check.canonical, check.kind
