"""Fuzzing the HTTP boundary (issue 14): generated requests against the chat API, the
TMF621 ticket API (with its event hub), the workflow and task APIs, the handoff APIs and sign-in, on the
whole app (real SQLite store with the demo world; the dialogue is the Rasa double: the
boundary is before the dialogue). Every answer must be below 500, within 10 s, carry a
request id and, when it is an error, say why in JSON; after each API's run the app still
answers a health check and a chat turn.

The desk's pages and forms get the same treatment (paths, queries, form posts with and
without the session's CSRF token, as each post). Hypothesis with ``derandomize=True`` (a
fixed seed: the same cases every run) and a fixed budget per API, 2,550 cases in all. The generated requests mix well-formed ones (so the
handlers' own work runs: tickets made, patched, acted on) with every kind of bad input:
wrong types, unknown fields, huge and deep JSON, Unicode digits, ids past 64 bits, odd
content types, odd methods. Category: integration (in process, real TCP and store)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.boundary import REQUEST_ID_HEADER
from bot.desk.users import add_user
from bot.settings import Settings
from bot.store.db import Database
from bot.world.loader import load_world
from bot.world.parse import parse_world_file
from tests.conftest import DEMO_WORLD, INTERNAL_TOKEN
from tests.integration.served import Answer, ServedApp

STAFF_TOKEN = "staff-secret"
PASSWORD = "fuzz-password-1"
BASE_TMF = "/tmf-api/troubleTicket/v5"
TT = f"{BASE_TMF}/troubleTicket"
FUZZ = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    s = Settings(database_url=f"sqlite:///{tmp / 'hotline.db'}", current_world_file=tmp / "world.yml",
                 public_url="http://bot.test", local_area_code="0571", recordings_dir=tmp / "recordings",
                 call_recordings_dir=tmp / "call-recordings", staff_api_token=STAFF_TOKEN,
                 internal_api_token=INTERNAL_TOKEN, log_level="ERROR")
    db = Database(s.database_url)
    db.upgrade()
    load_world(db, parse_world_file(DEMO_WORLD), current_file=s.current_world_file)
    for name, role, branch in (("fuzz-junior", "junior", None), ("fuzz-senior", "senior", None),
                               ("fuzz-centre", "centre", "西湖分公司"), ("fuzz-manager", "manager", None)):
        db.call(lambda sess, n=name, r=role, b=branch: add_user(sess, n, r, PASSWORD, branch=b))
    with ServedApp(s, db) as served:
        served.db = db  # type: ignore[attr-defined]
        served.tokens = {"none": None, "staff": STAFF_TOKEN, "internal": INTERNAL_TOKEN,  # type: ignore[attr-defined]
                         "garbage": "x" * 30}
        for name in ("fuzz-junior", "fuzz-senior", "fuzz-centre", "fuzz-manager"):
            answer = served.request("POST", "/api/session", json.dumps({"username": name, "password": PASSWORD}).encode(),
                                    {"Content-Type": "application/json"})
            assert answer.status == 201, answer.body
            served.tokens[name] = answer.json()["token"]  # type: ignore[attr-defined]
        yield served
    db.dispose()


# ------------------------------------------------------------------ strategies

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False), st.text(max_size=30))
ANY_JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
ODD_TEXT = st.sampled_from(["", " ", "²", "٣", "１２", "-1", "0", "1e3", "9" * 30, "9223372036854775808",
                            "TT-W0001", "a/b", "..", "%", "\x00", "😀", "<script>", "' OR 1=1 --", "null"])
TEXTISH = st.one_of(st.text(max_size=40), ODD_TEXT)
DIGITS = st.from_regex(r"\A[0-9*#]{1,20}\Z")
NUMBERS = st.one_of(st.sampled_from(["057187650001", "0571 8765 0002", "87650004", "13800138000"]), DIGITS,
                    TEXTISH)


def deep(kind: str, n: int) -> bytes:
    return (("[" * n) if kind == "array" else ('{"a":' * n)).encode()


RAW_BODIES = st.one_of(
    st.binary(max_size=64),
    st.builds(deep, st.sampled_from(["array", "object"]), st.sampled_from([33, 1000, 60_000])),
    st.sampled_from([b"", b"null", b"[]", b"NaN", b'{"a": Infinity}', b"1" * 5000, b'"\\ud800"',
                     b"\xff\xfe{", b'{"text": "x"} extra', b"{" * 10 + b"}" * 10]),
)


def _dumps(o: Any) -> bytes:
    return json.dumps(o).encode()


def json_body(objects: st.SearchStrategy[Any], valid: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[bytes]:
    """Half valid requests (when given: so the handlers' own work runs), the rest
    schema-shaped with wrong values, any JSON, or raw bytes."""
    others = [objects.map(_dumps), ANY_JSON.map(_dumps), RAW_BODIES]
    return st.one_of(*([valid.map(_dumps)] * 3 if valid is not None else []), *others)


CONTENT_TYPES = st.sampled_from(["application/json"] * 6 + [
    None, "application/merge-patch+json", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=zz", "application/json; charset=latin-1", "application/xml"])
TOKENS = st.sampled_from(["none", "internal", "garbage"] + ["staff"] * 3 + ["fuzz-junior", "fuzz-senior",
                          "fuzz-centre", "fuzz-manager"] * 2)


def segment(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return strategy.map(lambda s: quote(s, safe="") or "x")


IDS = st.one_of(st.integers(min_value=0, max_value=50).map(str), st.integers(min_value=-5, max_value=2**80).map(str),
                ODD_TEXT, st.text(max_size=20))
TICKET_IDS = st.one_of(st.sampled_from(["TT-W0001", "TT-W0002", "TT-W0003", "TT-000001", "TT-000002"]), IDS)
CONVERSATION_IDS = st.one_of(st.sampled_from(["fuzz-1", "fuzz-2", "ok:1.2-3_4", "0"]),
                             st.from_regex(r"\A[A-Za-z0-9_.:-]{1,130}\Z"), IDS)


def query(pairs: st.SearchStrategy[list[tuple[str, str]]]) -> st.SearchStrategy[str]:
    return pairs.map(lambda ps: ("?" + "&".join(f"{quote(k, safe='.')}={quote(v, safe='')}" for k, v in ps))
                     if ps else "")


# ------------------------------------------------------------------ running one request


SEEN: Counter[tuple[str, int]] = Counter()  # (first path segment after /api or /tmf-api, status): what ran


def run(app: ServedApp, method: str, path: str, body: bytes | None, ctype: str | None, token: str | None,
        extra: dict[str, str] | None = None) -> Answer:
    headers: dict[str, str] = dict(extra or {})
    if ctype is not None and body is not None:
        headers["Content-Type"] = ctype
    who = app.tokens.get(token or "none")  # type: ignore[attr-defined]
    if who:
        headers["Authorization"] = f"Bearer {who}"
    started = time.monotonic()
    answer = app.request(method, path, body, headers)
    took = time.monotonic() - started
    SEEN[(path.split("?")[0].split("/")[2], answer.status)] += 1
    assert answer.status < 500, f"{method} {path} → {answer.status}: {answer.body[:300]!r}"
    assert took < 10, f"{method} {path} took {took:.1f} s"
    assert REQUEST_ID_HEADER.lower() in answer.headers, f"{method} {path}: no request id"
    if answer.status >= 400 and answer.headers.get("content-type", "").startswith("application/json"):
        error = answer.json()
        assert isinstance(error, dict) and error.get("reason"), f"{method} {path} → {answer.status}: {error}"
    return answer


def still_answers(app: ServedApp) -> None:
    print("cases so far by (API, status):", sorted(SEEN.items()))
    assert app.request("GET", "/healthz").status == 200
    turn = app.request("POST", "/api/chat/fuzz-after", b'{"event": "start"}', {"Content-Type": "application/json"})
    assert turn.status == 200 and turn.json()["messages"], turn.body
    assert app.rasa.overlaps == 0, "two turns of one conversation reached the dialogue at once"


# ------------------------------------------------------------------ the chat API

CHAT_OBJECTS = st.fixed_dictionaries({}, optional={
    "text": st.one_of(st.text(max_size=60), SCALARS), "dtmf": st.one_of(DIGITS, TEXTISH, SCALARS),
    "event": st.one_of(st.sampled_from(["start", "no_input", "end", "recorded", "return_to_bot"]), SCALARS),
    "language": st.one_of(st.sampled_from(["zh", "en"]), SCALARS, ANY_JSON), "extra": ANY_JSON})


VALID_CHAT = st.one_of(
    st.builds(lambda d: {"dtmf": d}, DIGITS),
    st.builds(lambda t: {"text": t}, st.text(min_size=1, max_size=50).filter(str.strip)),
    st.sampled_from([{"event": "start"}, {"event": "no_input"}, {"event": "end"}, {"event": "start", "language": "en"}]))


@settings(FUZZ, max_examples=600)
@given(cid=segment(CONVERSATION_IDS), body=json_body(CHAT_OBJECTS, VALID_CHAT), ctype=CONTENT_TYPES,
       method=st.sampled_from(["POST"] * 8 + ["GET", "PUT", "DELETE"]))
def test_chat_api(app: ServedApp, cid: str, body: bytes, ctype: str | None, method: str) -> None:
    run(app, method, f"/api/chat/{cid}", body, ctype, None)


def test_chat_api_after(app: ServedApp) -> None:
    still_answers(app)


# ------------------------------------------------------------------ TMF621

CHARACTERISTICS = st.lists(st.fixed_dictionaries({"name": st.sampled_from(
    ["contactNumber", "symptomCategory", "symptomText", "branch", "shoeSize"]), "value": st.one_of(NUMBERS, SCALARS)}),
    max_size=3)
TICKET_OBJECTS = st.fixed_dictionaries(
    {"description": st.one_of(st.text(min_size=1, max_size=40), SCALARS), "severity": st.sampled_from(["Major", "Minor"]),
     "ticketType": st.sampled_from(["fault", ""])},
    optional={"relatedEntity": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["faultyLine", "x"]),
                                                               "entity": st.fixed_dictionaries({"id": NUMBERS})}),
                                        max_size=2),
              "troubleTicketCharacteristic": CHARACTERISTICS, "note": st.lists(
                  st.fixed_dictionaries({"text": TEXTISH}), max_size=2),
              "channel": st.fixed_dictionaries({"name": TEXTISH}), "priority": TEXTISH, "@type": TEXTISH})
PATCH_OBJECTS = st.fixed_dictionaries({}, optional={
    "status": st.one_of(st.sampled_from(["acknowledged", "inProgress", "pending", "held", "resolved", "closed",
                                         "rejected", "cancelled"]), TEXTISH, SCALARS),
    "statusChangeReason": TEXTISH, "severity": TEXTISH, "priority": TEXTISH,
    "note": st.lists(st.fixed_dictionaries({"text": TEXTISH}), max_size=2)})
LIST_QUERY = query(st.lists(st.tuples(
    st.sampled_from(["relatedEntity.id", "status", "channel.name", "offset", "limit", "fields", "colour"]),
    st.one_of(TEXTISH, NUMBERS, st.sampled_from(["acknowledged,inProgress", "IVR", "1", "500", "501"]))),
    max_size=3))


VALID_TICKET = st.builds(lambda n, d: {
    "description": d, "severity": "Major", "ticketType": "fault",
    "relatedEntity": [{"role": "faultyLine", "entity": {"id": n}}],
    "troubleTicketCharacteristic": [{"name": "contactNumber", "value": "13800138000"}]},
    st.sampled_from(["057187650001", "0571 8765 0002", "87650005"]), st.text(min_size=1, max_size=30))
VALID_PATCH = st.one_of(st.builds(lambda t: {"note": [{"text": t}]}, st.text(min_size=1, max_size=30)),
                        st.sampled_from([{"status": "inProgress"}, {"status": "resolved", "statusChangeReason": "ok"},
                                         {"priority": "High"}, {"status": "cancelled"}]))


@st.composite
def tmf_requests(draw: st.DrawFn) -> tuple[str, str, bytes | None]:
    kind = draw(st.sampled_from(["list", "get", "create", "patch", "other", "hub", "events"]))
    tid = draw(segment(TICKET_IDS))
    if kind == "hub":  # TMF621's event subscriptions
        hub = draw(segment(IDS))
        method = draw(st.sampled_from(["POST", "GET", "DELETE"]))
        if method != "POST":
            return method, f"{BASE_TMF}/hub/{hub}", None
        return "POST", f"{BASE_TMF}/hub", draw(json_body(st.fixed_dictionaries({}, optional={
            "callback": st.one_of(st.sampled_from(["http://127.0.0.1:9/tmf", "ftp://x.y/z", "https://"]), TEXTISH),
            "query": TEXTISH, "x": SCALARS})))
    if kind == "events":
        return "GET", f"{TT}/{tid}/event", None
    if kind == "list":
        return "GET", TT + draw(LIST_QUERY), None
    if kind == "get":
        return "GET", f"{TT}/{tid}", None
    if kind == "create":
        return "POST", TT, draw(json_body(TICKET_OBJECTS, VALID_TICKET))
    if kind == "patch":
        return "PATCH", f"{TT}/{tid}", draw(json_body(PATCH_OBJECTS, VALID_PATCH))
    return draw(st.sampled_from(["DELETE", "PUT", "POST"])), f"{TT}/{tid}", draw(st.none() | RAW_BODIES)


@settings(FUZZ, max_examples=600)
@given(req=tmf_requests(), ctype=CONTENT_TYPES, token=TOKENS,
       if_match=st.none() | st.sampled_from(['W/"1"', '"²"', "9" * 30, 'W/"-1"', "*"]))
def test_tmf621_api(app: ServedApp, req: tuple[str, str, bytes | None], ctype: str | None, token: str,
                    if_match: str | None) -> None:
    run(app, *req, ctype, token, {"If-Match": if_match} if if_match else None)


def test_tmf621_api_after(app: ServedApp) -> None:
    still_answers(app)


# ------------------------------------------------------------------ workflow and tasks

ACTIONS = st.sampled_from(["dispatch_for_review", "answer_on_spot", "chase", "withdraw", "escalate", "note",
                           "reopen", "approve_dispatch", "no_dispatch", "callback_done", "close",
                           "completion_receipt", "return_to_review", "nonsense", "x" * 41, "²"])
ACTION_OBJECTS = st.fixed_dictionaries({}, optional={
    "version": st.one_of(st.integers(min_value=-3, max_value=2**70), SCALARS), "reason": TEXTISH,
    "params": st.one_of(st.dictionaries(st.sampled_from(["fault_class", "x"]), TEXTISH, max_size=2), ANY_JSON)})
TASK_OBJECTS = st.fixed_dictionaries({}, optional={
    "grade": st.one_of(st.sampled_from(["correct", "incorrect"]), SCALARS), "note": TEXTISH,
    "finding": st.one_of(st.sampled_from(["ours", "not_ours"]), SCALARS), "explanation": TEXTISH,
    "grantCompensation": st.one_of(st.booleans(), SCALARS)})


@st.composite
def workflow_requests(draw: st.DrawFn) -> tuple[str, str, bytes | None]:
    kind = draw(st.sampled_from(["table", "ticket", "action", "tasks", "task", "task_post"]))
    tid, task = draw(segment(TICKET_IDS)), draw(segment(IDS))
    if kind == "table":
        return "GET", "/api/workflow", None
    if kind == "ticket":
        return "GET", f"/api/tickets/{tid}/workflow", None
    if kind == "action":
        valid = st.builds(lambda v, r: {"version": v, "reason": r}, st.integers(1, 4), st.text(min_size=1, max_size=20))
        return "POST", f"/api/tickets/{tid}/actions/{draw(segment(ACTIONS))}", draw(json_body(ACTION_OBJECTS, valid))
    if kind == "tasks":
        return "GET", "/api/tasks" + draw(query(st.lists(st.tuples(st.sampled_from(["kind", "x"]), st.one_of(
            TEXTISH, st.sampled_from(["escalation", "callback", "senior_transfer", "branch_notice"]))), max_size=2))), None
    if kind == "task":
        return "GET", f"/api/tasks/{task}", None
    verb = draw(st.sampled_from(["grade", "decision", "ack"]))
    valid = st.sampled_from([{"grade": "correct"}, {"finding": "ours", "explanation": "late"}, {}])
    return "POST", f"/api/tasks/{task}/{verb}", draw(st.none() | json_body(TASK_OBJECTS, valid))


@settings(FUZZ, max_examples=500)
@given(req=workflow_requests(), ctype=CONTENT_TYPES, token=TOKENS)
def test_workflow_and_task_apis(app: ServedApp, req: tuple[str, str, bytes | None], ctype: str | None,
                                token: str) -> None:
    run(app, *req, ctype, token)


def test_workflow_and_task_apis_after(app: ServedApp) -> None:
    still_answers(app)


# ------------------------------------------------------------------ handoffs

HANDOFF_OBJECTS = st.fixed_dictionaries(
    {"conversation_id": st.one_of(st.sampled_from(["fuzz-1", "fuzz-2"]), TEXTISH), "channel": st.sampled_from(
        ["webchat", "voice", "X"]), "language": st.sampled_from(["zh", "en", "fr"]),
     "reason": st.one_of(st.sampled_from(["caller_request"]), TEXTISH)},
    optional={"fault_number": NUMBERS, "ticket_id": TEXTISH, "line_test": ANY_JSON, "queue": TEXTISH,
              "transcript": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "bot", "x"]),
                                                            "text": TEXTISH}), max_size=3)})


@st.composite
def handoff_requests(draw: st.DrawFn) -> tuple[str, str, bytes | None]:
    cid = draw(st.one_of(st.sampled_from(["fuzz-1", "fuzz-2", "fuzz-3"]), segment(CONVERSATION_IDS)))
    kind = draw(st.sampled_from(["queue", "list", "status", "message", "return", "leave"]))
    if kind == "queue":
        valid = st.builds(lambda c, r: {"conversation_id": c, "channel": "webchat", "language": "zh", "reason": r,
                                        "fault_number": "057187650001"},
                          st.sampled_from(["fuzz-1", "fuzz-2", "fuzz-3"]), st.sampled_from(["caller_request", "x"]))
        return "POST", "/api/handoffs", draw(json_body(HANDOFF_OBJECTS, valid))
    if kind == "list":
        return "GET", "/api/handoffs" + draw(query(st.lists(st.tuples(
            st.sampled_from(["state", "queue", "x"]), st.one_of(TEXTISH, st.sampled_from(["queued", "junior"]))),
            max_size=2))), None
    if kind == "status":
        return "GET", f"/api/chat-handoff/{cid}" + draw(query(st.lists(st.tuples(st.just("since"), st.one_of(
            TEXTISH, st.integers(min_value=-1, max_value=2**70).map(str))), max_size=2))), None
    if kind == "message":
        return "POST", f"/api/chat-handoff/{cid}/messages", draw(json_body(st.fixed_dictionaries(
            {}, optional={"text": st.one_of(TEXTISH, SCALARS), "x": SCALARS}), st.builds(lambda t: {"text": t}, TEXTISH)))
    return "POST", f"/api/chat-handoff/{cid}/{kind}", draw(st.none() | RAW_BODIES)


@settings(FUZZ, max_examples=400)
@given(req=handoff_requests(), ctype=CONTENT_TYPES, token=TOKENS)
def test_handoff_apis(app: ServedApp, req: tuple[str, str, bytes | None], ctype: str | None, token: str) -> None:
    run(app, *req, ctype, token)


def test_handoff_apis_after(app: ServedApp) -> None:
    still_answers(app)


# ------------------------------------------------------------------ sign-in

SESSION_OBJECTS = st.fixed_dictionaries({}, optional={
    "username": st.one_of(st.sampled_from(["fuzz-junior", "FUZZ-SENIOR", "nobody", ""]), TEXTISH, SCALARS),
    "password": st.one_of(st.sampled_from([PASSWORD, "wrong"]), TEXTISH, SCALARS, st.text(min_size=4097,
                                                                                         max_size=4100)),
    "extra": SCALARS})


@settings(FUZZ, max_examples=150)
@given(body=json_body(SESSION_OBJECTS, st.sampled_from([{"username": "fuzz-senior", "password": PASSWORD},
                                                        {"username": "nobody", "password": "wrong"}])), ctype=CONTENT_TYPES, method=st.sampled_from(["POST"] * 6 + ["DELETE", "GET"]),
       token=TOKENS)
def test_sign_in(app: ServedApp, body: bytes, ctype: str | None, method: str, token: str) -> None:
    if method == "DELETE" and token.startswith("fuzz-"):
        token = "garbage"  # keep the accounts' sessions for the other APIs' cases
    run(app, method, "/api/session", body, ctype, token)


def test_sign_in_after(app: ServedApp) -> None:
    still_answers(app)


# ------------------------------------------------------------------ the desk's forms, paths and queries

DESK_PATHS = st.sampled_from([
    "/desk/", "/desk/login", "/desk/review", "/desk/centre", "/desk/escalations", "/desk/admin", "/desk/recordings",
    "/desk/tickets", "/desk/tickets/{t}", "/desk/tasks/{n}", "/desk/handoffs/{n}", "/desk/handoffs/{n}/messages.json",
    "/desk/recordings/{n}/audio"])
DESK_POSTS = st.sampled_from([
    "/desk/login", "/desk/tickets/{t}/actions/{a}", "/desk/tasks/{n}/grade", "/desk/tasks/{n}/decision",
    "/desk/tasks/{n}/ack", "/desk/handoffs/{n}/take", "/desk/handoffs/{n}/owner-mismatch",
    "/desk/handoffs/{n}/to-senior", "/desk/handoffs/{n}/new-report", "/desk/handoffs/{n}/supplement",
    "/desk/handoffs/{n}/messages", "/desk/handoffs/{n}/finish"])
FORM_FIELDS = st.dictionaries(st.sampled_from(["csrf", "username", "password", "version", "reason", "fault_class",
                                                "grade", "note", "finding", "explanation", "text", "ticket_id",
                                                "contact_number", "symptom", "grant_compensation", "x"]),
                              st.one_of(TEXTISH, NUMBERS, st.integers(-5, 2**70).map(str)), max_size=6)


@st.composite
def desk_requests(draw: st.DrawFn) -> tuple[str, str, bytes | None, str | None]:
    fill = {"t": draw(segment(TICKET_IDS)), "n": draw(st.one_of(st.integers(1, 5).map(str), segment(IDS))),
            "a": draw(segment(ACTIONS))}
    if draw(st.booleans()):
        query = draw(query_of(["id", "since", "x"]))
        return "GET", draw(DESK_PATHS).format(**fill) + query, None, None
    form = draw(FORM_FIELDS)
    if draw(st.booleans()):
        form["csrf"] = "{csrf}"  # the session's own token: the handler's own checks run
    body = "&".join(f"{quote(k)}={quote(v)}" for k, v in form.items())
    ctype = draw(st.sampled_from(["application/x-www-form-urlencoded"] * 4 + ["application/json", "text/plain", None]))
    return "POST", draw(DESK_POSTS).format(**fill), body.encode(), ctype


def query_of(names: list[str]) -> st.SearchStrategy[str]:
    return query(st.lists(st.tuples(st.sampled_from(names), st.one_of(TEXTISH, st.integers(-2, 2**70).map(str))),
                          max_size=2))


@pytest.fixture(scope="module")
def desk_sessions(app: ServedApp) -> dict[str, tuple[str, str]]:
    """Desk sign-ins (cookie token, CSRF token) opened in the store, as the sign-in form does."""
    from bot.desk import auth
    from bot.store.models import DeskUser

    def open_for(s: Any, username: str) -> tuple[str, str]:
        from sqlmodel import select

        user = s.exec(select(DeskUser).where(DeskUser.username == username)).one()
        token = auth.open_session(s, user.id, 1)
        who = auth.session_identity(s, token)
        return token, who.csrf_token

    db = app.db  # type: ignore[attr-defined]
    return {name: db.call(open_for, name) for name in ("fuzz-junior", "fuzz-senior", "fuzz-centre", "fuzz-manager")}


@settings(FUZZ, max_examples=300)
@given(req=desk_requests(), who=st.sampled_from(["none", "fuzz-junior", "fuzz-senior", "fuzz-centre", "fuzz-manager"]))
def test_desk_forms_paths_and_queries(app: ServedApp, desk_sessions: dict[str, tuple[str, str]],
                                      req: tuple[str, str, bytes | None, str | None], who: str) -> None:
    method, path, body, ctype = req
    headers = {}
    if who != "none":
        token, csrf = desk_sessions[who]
        headers["Cookie"] = f"hotline_desk={token}"
        body = body.replace(b"%7Bcsrf%7D", csrf.encode()) if body is not None else None
    run(app, method, path, body, ctype, None, headers)


def test_desk_after(app: ServedApp) -> None:
    still_answers(app)
