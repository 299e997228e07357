"""The HTTP input boundary: what every handler (the APIs, the web chat, the desk, the
line-test simulator) checks before any work, and the request id every answer carries.

- Bodies: JSON only where JSON is meant (``Content-Type`` ``application/json`` or
  ``…+json``; anything else is 415), at most :data:`MAX_BODY_BYTES` (413), nested at most
  :data:`MAX_JSON_DEPTH` levels (checked on the bytes *before* parsing, so ``[`` × 60,000
  never reaches the parser's recursion limit), no ``NaN``/``Infinity``, then a declared
  pydantic model (unknown fields refused).
- Path and query: declared too (:func:`query_params` with a model, :func:`path_id` for
  numeric ids): whole numbers are ASCII digits only (``²`` passes ``str.isdigit`` but is
  no number), within 64-bit signed; an id that cannot exist is simply not found (404).
- Every response carries ``X-Request-Id`` (the client's own, when it sent a sane one);
  logs of the request are bound to it, and a 500 that still happens says it in its body
  so a person can find the log line.

Kept free of the store and the dialogue: the line-test simulator uses it too.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ValidationError

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY_BYTES = 64 * 1024  # also the bot app's client_max_size
MAX_JSON_DEPTH = 32
INT64_MAX = 2**63 - 1
ROW_ID_MAX = 2**31 - 1  # the store's integer keys (PostgreSQL ``integer``): no row has a larger id
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_KEY = web.RequestKey("request_id", str)  # request[...]: the id of this request
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def json_error(status: int, code: str, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "reason": reason, **extra}, status=status)


class ApiError(Exception):
    """Raised by handlers; the error middleware turns it into :func:`json_error`."""

    def __init__(self, status: int, code: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.extra = extra

    def response(self) -> web.Response:
        return json_error(self.status, self.code, self.reason, **self.extra)


# ------------------------------------------------------------------ request id


def request_id(request: web.Request) -> str:
    rid: str = request.get(REQUEST_ID_KEY, "")
    return rid


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: one id per request, in the logs (structlog context) and on the answer."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    rid = offered if _CLIENT_REQUEST_ID.match(offered) else uuid.uuid4().hex
    request[REQUEST_ID_KEY] = rid
    with structlog.contextvars.bound_contextvars(request_id=rid):
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[REQUEST_ID_HEADER] = rid
            raise
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = rid
    return response


async def stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: also the answers a handler prepared itself (files, streams)."""
    rid = request_id(request)
    if rid and REQUEST_ID_HEADER not in response.headers:
        response.headers[REQUEST_ID_HEADER] = rid


def install_request_ids(app: web.Application) -> None:
    app.on_response_prepare.append(stamp_request_id)


def internal_error(request: web.Request) -> web.Response:
    """The one answer to a fault of ours: logged by the caller with the same id."""
    rid = request_id(request)
    return json_error(500, "internal_error",
                      f"something went wrong on our side; it has been logged under request id {rid}",
                      request_id=rid)


# ------------------------------------------------------------------ JSON bodies

_JSON_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays/objects nest deeper than ``limit``, read off the bytes in one pass
    (strings and their escapes skipped): cheap, and never recursive."""
    depth = 0
    in_string = False
    skip = -1
    for match in _JSON_STRUCTURE.finditer(raw):
        at = match.start()
        if at == skip:
            continue
        char = raw[at]
        if in_string:
            if char == 0x5C:  # backslash: the next byte is escaped
                skip = at + 1
            elif char == 0x22:
                in_string = False
        elif char == 0x22:
            in_string = True
        elif char in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif char in (0x5D, 0x7D):
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def is_json_type(content_type: str) -> bool:
    return content_type == "application/json" or (content_type.startswith("application/")
                                                   and content_type.endswith("+json"))


def require_json_type(request: web.Request) -> None:
    """415 for a body declared as something else (a form, text…). No Content-Type at
    all is taken as JSON: simple clients (and curl without -H) send none."""
    if "Content-Type" not in request.headers:
        return
    if not is_json_type(request.content_type):
        raise ApiError(415, "unsupported_media_type",
                       f"send the body as application/json, not {request.content_type[:60]}")


def parse_json_bytes(raw: bytes) -> Any:
    """Bytes → a JSON value, or an ApiError (400/413) saying what is wrong."""
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        raise ApiError(400, "malformed_json", "the request needs a JSON body")
    if json_too_deep(raw):
        raise ApiError(400, "too_deep", f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {str(e)[:200]}") from e
    except RecursionError as e:  # belt and braces: json_too_deep should have refused it
        raise ApiError(400, "too_deep", "the JSON nests too deeply") from e


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as e:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes") from e


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx that says what is wrong with it."""
    require_json_type(request)
    data = parse_json_bytes(await read_body(request))
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return data


def describe_validation_error(e: ValidationError) -> str:
    parts = []
    for err in e.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        msg = "unknown field" if err["type"] == "extra_forbidden" else str(err["msg"])
        parts.append(f"{where}: {msg.removeprefix('Value error, ')}")
    return "; ".join(parts)[:1000]


def validate(model: type[M], data: Any, *, code: str = "invalid_request") -> M:
    """Validate against a request model (unknown fields refused), or 400 with every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ApiError(400, code, describe_validation_error(e)) from e


async def parse_body(request: web.Request, model: type[M]) -> M:
    return validate(model, await read_json(request))


# ------------------------------------------------------------------ path and query


def ascii_int(value: Any) -> Any:
    """A whole number as a client writes it in a URL: ASCII digits only, 64-bit."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > INT64_MAX:
            raise ValueError(f"must be a whole number written with the digits 0-9, not {value[:20]!r}")
        return int(value)
    return value


AsciiInt = Annotated[int, BeforeValidator(ascii_int)]


def parse_id(raw: str, maximum: int = ROW_ID_MAX) -> int | None:
    """A numeric id from a URL, or None when it cannot be one (not ASCII digits, past
    ``maximum``: a row id of the store by default)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    value = int(raw)
    return value if value <= maximum else None


def path_id(request: web.Request, what: str, name: str = "id") -> int:
    """A numeric id in the path; one that cannot exist is not found (404), as any unknown id."""
    raw = request.match_info[name]
    value = parse_id(raw)
    if value is None:
        raise ApiError(404, "not_found", f"no {what} {raw[:40]!r}: {what} ids are whole numbers")
    return value


def query_params(request: web.Request, model: type[M]) -> M:
    """The query string against a declared model (unknown or repeated parameters refused)."""
    return validate_query(request.query, model)


def validate_query(query: Mapping[str, str], model: type[M]) -> M:
    getall = getattr(query, "getall", None)
    if getall is not None:
        repeated = sorted(k for k in set(query) if len(getall(k)) > 1)
        if repeated:
            raise ApiError(400, "invalid_parameter", f"give each parameter once: {', '.join(repeated)[:200]}")
    return validate(model, dict(query), code="invalid_parameter")
