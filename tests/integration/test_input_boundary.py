"""The HTTP input boundary (issue 14): every reproduction of a 500 in the issue, and the
rules behind them, against the whole app in process on SQLite and PostgreSQL. Nothing a
client sends gets a 5xx; each refusal says why; every answer carries a request id.
Category: integration (HTTP in process, real database, Rasa double)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.boundary import MAX_JSON_DEPTH, REQUEST_ID_HEADER, json_too_deep, parse_json_bytes
from tests.fakes.rasa_double import RasaDouble

TT = "/tmf-api/troubleTicket/v5/troubleTicket"
STAFF = {"Authorization": "Bearer staff-secret"}
JSON = {"Content-Type": "application/json"}


async def send(client: Any, method: str, path: str, body: str | bytes | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    resp = await client.request(method, path, data=body, headers={**JSON, **STAFF, **(headers or {})})
    assert REQUEST_ID_HEADER in resp.headers, f"{method} {path}: no request id"
    text = await resp.text()
    data = json.loads(text) if resp.content_type == "application/json" else {}
    return resp.status, data, resp


# The issue's list, each with the status it gets now and the error code.
ISSUE_CASES = [
    ("POST", "/api/chat/0", json.dumps({"text": ""}), 400, "bad_input"),
    ("POST", "/api/chat/x1", json.dumps({"language": ["x", 0.1], "dtmf": [{}]}), 400, "bad_input"),
    ("POST", "/api/chat/x1", "[" * 60_000, 400, "too_deep"),
    ("POST", "/api/chat/x1", '{"a":' * 10_000, 400, "too_deep"),
    ("POST", TT, "[" * 60_000, 400, "too_deep"),
    ("POST", TT, '{"a":' * 10_000, 400, "too_deep"),
    ("GET", f"{TT}?limit=²", None, 400, "invalid_parameter"),
    ("PATCH", f"{TT}/TT-W0001", "{}", 400, "invalid_patch"),
    ("GET", "/api/tasks/²", None, 404, "not_found"),
    ("POST", "/api/tasks/²/grade", json.dumps({"grade": "correct"}), 404, "not_found"),
    ("GET", "/api/attachments/999999999999999999999999999999/content", None, 404, "not_found"),
    ("GET", "/api/attachments/9223372036854775808/content", None, 404, "not_found"),  # 2**63
    ("GET", "/api/attachments/9223372036854775807/content", None, 404, "not_found"),
    ("GET", "/api/attachments/2147483647/content", None, 404, "attachment_not_found"),  # the store's largest id
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), ISSUE_CASES,
                         ids=[f"{c[0]} {c[1][:50]} {str(c[2])[:20]}" for c in ISSUE_CASES])
async def test_the_issues_reproductions_are_4xx_with_a_reason(
        app_client: Any, method: str, path: str, body: str | None, status: int, code: str) -> None:
    got, data, _ = await send(app_client, method, path, body)
    assert (got, data.get("error")) == (status, code), data
    assert data["reason"]


async def test_keys_on_a_conversation_never_started_reach_the_dialogue(app_client: Any,
                                                                       rasa_double: RasaDouble) -> None:
    """``{"dtmf": "#"}`` on an id of every allowed kind of character: the dialogue answers."""
    status, data, _ = await send(app_client, "POST", "/api/chat/ok:1.2-3_4", json.dumps({"dtmf": "#"}))
    assert status == 200 and data["messages"], data
    assert rasa_double.messages[-1] == ("ok:1.2-3_4", '/dtmf{"digits": "#"}')


@pytest.mark.parametrize("path", ["/api/chat/x1", TT, "/api/session", "/api/chat-handoff/x1/messages"])
@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
async def test_a_json_body_sent_as_something_else_is_415(app_client: Any, path: str, ctype: str) -> None:
    status, data, _ = await send(app_client, "POST", path, '{"text": "hi"}', {"Content-Type": ctype})
    assert status == 415 and data["error"] == "unsupported_media_type", data
    assert "application/json" in data["reason"]


async def test_a_body_past_the_limit_is_413(app_client: Any) -> None:
    status, data, _ = await send(app_client, "POST", "/api/chat/x1", json.dumps({"text": "字" * 40_000}))
    assert status == 413 and data["error"] == "too_large"


@pytest.mark.parametrize("body", ["NaN", '{"text": NaN}', '{"text": Infinity}', "1" * 5000, '{"text": "\\ud800"',
                                  "\xff\xfe", '{"dtmf": "1"} trailing'])
async def test_not_quite_json_is_400(app_client: Any, body: str) -> None:
    status, data, _ = await send(app_client, "POST", "/api/chat/x1", body.encode("utf-8", "surrogatepass"))
    assert status == 400 and data["error"] in ("malformed_json", "bad_body"), data


@pytest.mark.parametrize("value", ["²", "٣", "１", "-1", "0", "501", "1e3", " 5", "5 ", "99999999999999999999"])
async def test_limit_is_1_to_500_in_ascii_digits(app_client: Any, value: str) -> None:
    status, data, _ = await send(app_client, "GET", f"{TT}?limit={value}")
    assert status == 400 and data["error"] == "invalid_parameter" and "limit" in data["reason"], data


async def test_limit_in_range_and_repeated_parameters(app_client: Any) -> None:
    status, data, resp = await send(app_client, "GET", f"{TT}?limit=500&offset=0")
    assert status == 200 and resp.headers["X-Result-Count"] == "3"
    status, data, _ = await send(app_client, "GET", f"{TT}?limit=1&limit=2")
    assert status == 400 and "once" in data["reason"]


@pytest.mark.parametrize("path", ["/api/tasks/٣", "/api/tasks/１", "/api/tasks/-1", "/api/tasks/1e3",
                                  "/api/outbound-calls/²", "/api/outbound-calls/99999999999999999999",
                                  "/api/attachments/²/content", "/api/attachments/abc/content",
                                  "/api/tasks/9223372036854775807", f"{TT}/%F0%9F%98%80", f"{TT}/a%2Fb"])
async def test_ids_that_cannot_exist_are_not_found(app_client: Any, path: str) -> None:
    status, data, _ = await send(app_client, "GET", path)
    assert status == 404, data


async def test_unknown_task_kind_and_query_parameters_are_refused(app_client: Any) -> None:
    for path in ("/api/tasks?kind=nonsense", "/api/tasks?colour=red", "/api/outcomes?x=1",
                 "/api/handoffs?state=²", "/api/recordings?handoff_id=²"):
        status, data, _ = await send(app_client, "GET", path)
        assert status in (400, 403), (path, data)
        assert data["reason"], path


async def test_every_answer_carries_a_request_id_and_echoes_a_sane_one(app_client: Any) -> None:
    for method, path in (("GET", "/healthz"), ("GET", "/nowhere"), ("GET", "/"), ("GET", "/static/chat.js"),
                         ("GET", "/desk/"), ("GET", f"{TT}/TT-W0001"), ("DELETE", TT)):
        resp = await app_client.request(method, path, headers=STAFF, allow_redirects=False)
        assert len(resp.headers.get(REQUEST_ID_HEADER, "")) >= 8, (method, path)
    resp = await app_client.get("/healthz", headers={REQUEST_ID_HEADER: "trace-0123456789"})
    assert resp.headers[REQUEST_ID_HEADER] == "trace-0123456789"
    resp = await app_client.get("/healthz", headers={REQUEST_ID_HEADER: "bad id\twith spaces"})
    assert resp.headers[REQUEST_ID_HEADER] != "bad id\twith spaces"


async def test_a_500_that_still_happens_says_its_request_id(app_client: Any, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from bot.store import service

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a fault of ours")

    monkeypatch.setattr(service, "get_ticket", broken)
    resp = await app_client.get(f"{TT}/TT-W0001", headers=STAFF)
    body = await resp.json()
    rid = resp.headers[REQUEST_ID_HEADER]
    assert resp.status == 500 and body["error"] == "internal_error"
    assert body["request_id"] == rid and rid in body["reason"]
    logged = capsys.readouterr()
    assert rid in logged.out + logged.err, "the log line names the request id"


def test_depth_is_read_off_the_bytes_without_recursion() -> None:
    assert not json_too_deep(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert json_too_deep(b"[" * (MAX_JSON_DEPTH + 1))
    assert json_too_deep(b'{"a":' * 100_000)
    # Brackets inside strings (escaped quotes too) do not count.
    assert not json_too_deep(json.dumps({"t": "[[[[" * 100 + '\\"[[[' * 50}).encode())
    assert parse_json_bytes(json.dumps({"t": "[" * 1000}).encode()) == {"t": "[" * 1000}
