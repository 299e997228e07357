"""A test double of the bot's chat API (`POST /api/chat/{conversation_id}`, design §4).

It speaks the same wire contract as the real bot but runs a tiny scripted dialogue
instead of Rasa, so the web-chat page and the console can be tested without the stack:

    start ──▶ main menu (1 fault report, 0 operator, 9 English/中文)
      1 ──▶ V1 ask fault number (digits 7–12, `#`)
              wrong length ──▶ V3 + V1 again
              number ──▶ V2 read back (1 confirm, 2 re-enter)
                          1 ──▶ V9 accepted, conversation ended
                          2 ──▶ V1 again
      0 / "人工" / "operator" anywhere ──▶ handoff (queue "junior"; the answer ends the
                                         dialogue, as the real bot's does)
      no_input ──▶ "did not hear you" + the same prompt; the third in a row ──▶ handoff

J1 once handed off, as bot/chat/handoff_api.py: `GET /api/chat-handoff/{id}` (the wait,
the offer after `handoff_offer_s`, the live messages after `since`), `POST …/messages`
(only once taken), `POST …/return` (back to V1 while still queued), `POST …/leave`. The
test plays the operator: `take(id, name)`, `operator_says(id, text)`, `finish(id)`.

Switches on `FakeChatState` (shared by reference, so a test in another thread can flip
them): `outage` (every request answers 503), `delay_s` (answers slowly, like a line
test), `no_input_timeout_ms` (short timeouts for timer tests), `reject_next` (the next
request answers 400 with this reason), `busy_next` (the next answers 409
turn_in_progress); `max_in_flight` is the most requests one conversation had at once.
Every request body is appended to `requests`.

It can also serve the web-chat page (`static_dir`) as the real app does: index.html at
`/`, the rest under `/static/`.

Run it by hand: `python tests/fakes/fake_chat_api.py [port]`.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

MAX_TEXT = 2000
DTMF_RE = re.compile(r"^[0-9*#]+$")

# prompt name -> (spec id, step, zh text, en text)
PROMPTS: dict[str, tuple[str | None, str, str, str]] = {
    "utter_main_menu": (
        None,
        "A1",
        "您好，欢迎致电1000客服热线。故障申告请按1，人工服务请按0，English service, press 9。",
        "Welcome to the 1000 service line. To report a fault press 1, "
        "for an operator press 0, 中文服务请按9.",
    ),
    "utter_ask_fault_number": (
        "V1",
        "A2",
        "您好，请输入您的故障电话号码，并按#号确认",
        "Please enter the number of the faulty line, then press #.",
    ),
    "utter_confirm_fault_number": (
        "V2",
        "A2",
        "您的电话为：{number}，确认请按1，重新输入请按2",
        "Your number is {number}. To confirm press 1, to enter it again press 2.",
    ),
    "utter_fault_number_invalid": (
        "V3",
        "A4",
        "您输入的电话号码有误，请重新输入。",
        "The number you entered is not valid. Please enter it again.",
    ),
    "utter_report_accepted": (
        "V9",
        "A11",
        "您的电话故障申告已被受理，我们会尽快予以解决。",
        "Your fault report has been accepted. We will fix it as soon as possible.",
    ),
    "utter_goodbye": (None, "A11", "感谢您的来电，再见。", "Thank you for calling. Goodbye."),
    "utter_no_input": (
        None,
        "A3",
        "对不起，没有听到您的输入。",
        "Sorry, I did not hear anything.",
    ),
    "utter_not_understood": (
        None,
        "A3",
        "对不起，我没有听懂。",
        "Sorry, I did not understand.",
    ),
    "utter_handoff": (
        None,
        "J1",
        "正在为您转接人工服务，请稍候。",
        "Connecting you to an operator, please hold.",
    ),
    "utter_back_to_bot": (
        None,
        "A2",
        "好的，已为您返回自动服务。",
        "OK, you are back with the automated service.",
    ),
}

CHOICE_LABELS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "utter_main_menu": {
        "zh": [("1", "故障申告"), ("0", "人工服务"), ("9", "English")],
        "en": [("1", "Report a fault"), ("0", "Operator"), ("9", "中文")],
    },
    "utter_confirm_fault_number": {
        "zh": [("1", "确认"), ("2", "重新输入")],
        "en": [("1", "Confirm"), ("2", "Enter again")],
    },
}

HANDOFF_WORDS = ("人工", "客服", "operator", "human", "agent")


@dataclass
class Conversation:
    conversation_id: str
    language: str = "zh"
    state: str = "menu"  # menu | ask_number | confirm | ended | handoff
    number: str = ""
    no_input_count: int = 0
    transcript: list[dict[str, Any]] = field(default_factory=list)
    left: bool = False  # the user sent event "end" (e.g. the page was closed)


@dataclass
class FakeHandoff:
    """One user waiting for (or talking to) an operator."""

    state: str = "queued"  # queued | taken | returned | abandoned | done
    created: float = field(default_factory=time.monotonic)
    taken_at: float | None = None
    operator: str | None = None
    return_offers: int = 0
    left: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeChatState:
    outage: bool = False
    outage_reason: str = "The dialogue engine is not reachable. Please try again in a minute."
    delay_s: float = 0.0
    no_input_timeout_ms: int = 10000
    inter_digit_timeout_ms: int = 5000
    reject_next: str | None = None
    busy_next: bool = False  # the next request answers 409 turn_in_progress, as the bot does
    in_flight: dict[str, int] = field(default_factory=dict)  # requests being answered, per conversation
    max_in_flight: int = 0  # the most at once for one conversation: the page must never exceed 1
    handoff_position: int = 2
    handoff_offer_s: float = 15.0
    conversations: dict[str, Conversation] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    handoffs: dict[str, FakeHandoff] = field(default_factory=dict)
    message_ids: int = 0

    def reset(self) -> None:
        self.handoffs.clear()
        self.handoff_offer_s = 15.0
        self.handoff_position = 2
        self.outage = False
        self.delay_s = 0.0
        self.no_input_timeout_ms = 10000
        self.inter_digit_timeout_ms = 5000
        self.reject_next = None
        self.busy_next = False
        self.in_flight.clear()
        self.max_in_flight = 0
        self.conversations.clear()
        self.requests.clear()

    def bodies(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        return [b for cid, b in self.requests if conversation_id in (None, cid)]

    # --- the operator's side, played by the test ---------------------------------

    def take(self, conversation_id: str, operator: str) -> None:
        h = self.handoffs[conversation_id]
        h.state, h.operator, h.taken_at = "taken", operator, time.monotonic()

    def add_message(self, conversation_id: str, sender: str, text: str) -> dict[str, Any]:
        h = self.handoffs[conversation_id]
        self.message_ids += 1
        message = {"id": self.message_ids, "sender": sender, "text": text,
                   "at": datetime.now(UTC).isoformat(), "name": h.operator if sender == "operator" else None}
        h.messages.append(message)
        return message

    def operator_says(self, conversation_id: str, text: str) -> None:
        self.add_message(conversation_id, "operator", text)

    def finish(self, conversation_id: str) -> None:
        self.handoffs[conversation_id].state = "done"
        self.add_message(conversation_id, "system", "The operator ended the conversation.")


STATE_KEY = web.AppKey("fake_chat_state", FakeChatState)


def _expect(
    state: FakeChatState, prompt: str, lang: str, kind: str | None = None
) -> dict[str, Any]:
    choices = [
        {"key": k, "label": label} for k, label in CHOICE_LABELS.get(prompt, {}).get(lang, [])
    ]
    if kind is None:
        kind = "choice" if choices else "digits" if prompt == "utter_ask_fault_number" else "none"
    digits = kind == "digits"
    return {
        "kind": kind,
        "min_digits": 7 if digits else 0,
        "max_digits": 12 if digits else 0,
        "terminator": "#" if digits else "",
        "keys": [c["key"] for c in choices],
        "choices": choices,
        "no_input_timeout_ms": state.no_input_timeout_ms if kind != "none" else 0,
        "inter_digit_timeout_ms": state.inter_digit_timeout_ms if digits else 0,
        "barge_in": kind != "none",
    }


def _message(
    state: FakeChatState, conv: Conversation, prompt: str, *, kind: str | None = None, **fmt: str
) -> dict[str, Any]:
    spec, step, zh, en = PROMPTS[prompt]
    text = (zh if conv.language == "zh" else en).format(**fmt)
    return {
        "prompt": prompt,
        "spec": spec,
        "step": step,
        "text": text,
        "expect": _expect(state, prompt, conv.language, kind),
    }


def _current_prompt(state: FakeChatState, conv: Conversation) -> dict[str, Any]:
    if conv.state == "ask_number":
        return _message(state, conv, "utter_ask_fault_number")
    if conv.state == "confirm":
        return _message(state, conv, "utter_confirm_fault_number", number=conv.number)
    return _message(state, conv, "utter_main_menu")


def _handoff(state: FakeChatState, conv: Conversation, reason: str) -> dict[str, Any]:
    conv.state = "handoff"
    state.handoffs[conv.conversation_id] = FakeHandoff()
    return {
        "handoff_id": f"h-{conv.conversation_id[:8]}",
        "queue": "junior",
        "position": state.handoff_position,
        "reason": reason,
        "conversation_id": conv.conversation_id,
        "fault_number": conv.number or None,
        "ticket_id": None,
        "line_test": None,
        "transcript": list(conv.transcript),
    }


def _key_of(body: dict[str, Any]) -> str | None:
    """What the user chose, from a key or a few words (the real bot uses NLU)."""
    if "dtmf" in body:
        return str(body["dtmf"]).rstrip("#")
    text = str(body.get("text", "")).strip().lower()
    words = {
        "1": ("确认", "对", "是", "故障", "报修", "申告", "yes", "confirm", "fault", "report"),
        "2": ("重新", "不对", "no", "again"),
        "9": ("english", "英文", "中文", "chinese"),
    }
    for key, options in words.items():
        if text == key or any(w in text for w in options):
            return key
    return None


def _step(
    state: FakeChatState, conv: Conversation, body: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One turn of the scripted dialogue: (messages, handoff)."""
    msgs: list[dict[str, Any]] = []
    if body.get("event") == "start":
        conv.state, conv.number, conv.no_input_count = "menu", "", 0
        return [_message(state, conv, "utter_main_menu")], None
    if body.get("event") == "no_input":
        conv.no_input_count += 1
        if conv.no_input_count >= 3:
            return [_message(state, conv, "utter_handoff")], _handoff(state, conv, "no_input")
        return [
            _message(state, conv, "utter_no_input", kind="none"),
            _current_prompt(state, conv),
        ], None
    conv.no_input_count = 0
    text = str(body.get("text", "")).lower()
    if any(w in text for w in HANDOFF_WORDS) or (conv.state == "menu" and body.get("dtmf") == "0"):
        return [_message(state, conv, "utter_handoff")], _handoff(state, conv, "caller_request")

    if conv.state == "menu":
        key = _key_of(body)
        if key == "1":
            conv.state = "ask_number"
            return [_message(state, conv, "utter_ask_fault_number")], None
        if key == "9":
            conv.language = "en" if conv.language == "zh" else "zh"
            return [_message(state, conv, "utter_main_menu")], None
    elif conv.state == "ask_number":
        raw = str(body.get("dtmf") or body.get("text") or "")
        digits = re.sub(r"\D", "", raw)
        if digits and not 7 <= len(digits) <= 12:
            return [
                _message(state, conv, "utter_fault_number_invalid", kind="none"),
                _message(state, conv, "utter_ask_fault_number"),
            ], None
        if digits:
            conv.number, conv.state = digits, "confirm"
            return [_current_prompt(state, conv)], None
    elif conv.state == "confirm":
        key = _key_of(body)
        if key == "1":
            conv.state = "ended"
            return [
                _message(state, conv, "utter_report_accepted", kind="none"),
                _message(state, conv, "utter_goodbye", kind="none"),
            ], None
        if key == "2":
            conv.state = "ask_number"
            return [_message(state, conv, "utter_ask_fault_number")], None
    msgs.append(_message(state, conv, "utter_not_understood", kind="none"))
    msgs.append(_current_prompt(state, conv))
    return msgs, None


def _bad(reason: str) -> web.Response:
    return web.json_response({"error": "bad_request", "reason": reason}, status=400)


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The body must be a JSON object."
    kinds = [k for k in ("text", "dtmf", "event") if k in body]
    if len(kinds) != 1:
        return "Send exactly one of text, dtmf or event."
    value = body[kinds[0]]
    if not isinstance(value, str):
        return f"{kinds[0]} must be a string."
    if kinds[0] == "text" and not 0 < len(value) <= MAX_TEXT:
        return f"text must be 1 to {MAX_TEXT} characters."
    if kinds[0] == "dtmf" and not DTMF_RE.match(value):
        return "dtmf may contain only 0-9, * and #."
    if kinds[0] == "event" and value not in ("start", "no_input", "end"):
        return "event must be start, no_input or end."
    if "language" in body and body["language"] not in ("zh", "en"):
        return "language must be zh or en."
    # U3, as the bot checks them: the browser's id and a survey link's token go with start.
    if ("browser" in body or "survey_token" in body) and body.get("event") != "start":
        return "browser and survey_token go with the start event only."
    if "browser" in body and not re.fullmatch(r"[A-Za-z0-9-]{8,64}", str(body["browser"])):
        return "browser: 8-64 of A-Z a-z 0-9 -"
    return None


async def chat(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    cid = request.match_info["conversation_id"]
    try:
        body = await request.json()
    except ValueError:
        return _bad("The body is not valid JSON.")
    if isinstance(body, dict):
        state.requests.append((cid, body))
    state.in_flight[cid] = state.in_flight.get(cid, 0) + 1
    state.max_in_flight = max(state.max_in_flight, state.in_flight[cid])
    try:
        return await _chat_turn(state, cid, body)
    finally:
        state.in_flight[cid] = state.in_flight.get(cid, 1) - 1


async def _chat_turn(state: FakeChatState, cid: str, body: Any) -> web.Response:
    if state.delay_s:
        await asyncio.sleep(state.delay_s)
    if state.busy_next:
        state.busy_next = False
        return web.json_response({"error": "turn_in_progress", "reason": "a reply is still on its way"},
                                 status=409)
    if state.outage:
        return web.json_response(
            {"error": "dialogue_unavailable", "reason": state.outage_reason}, status=503
        )
    if state.reject_next is not None:
        reason, state.reject_next = state.reject_next, None
        return _bad(reason)
    problem = _validate(body)
    if problem:
        return _bad(problem)

    conv = state.conversations.get(cid)
    if body.get("event") == "start" or conv is None:
        # Like the real bot, an input on an unknown conversation opens it.
        conv = Conversation(cid, language=body.get("language", "zh"))
        state.conversations[cid] = conv
    if body.get("event") == "end":
        conv.left = True
        return web.json_response(_answer(conv, [], None, ended=True))
    conv.left = False
    if conv.state in ("ended",):
        return _bad("This conversation has ended. Start a new one.")
    conv.transcript.append({"from": "user", **body})
    messages, handoff = _step(state, conv, body)
    conv.transcript.extend(
        {"from": "bot", "prompt": m["prompt"], "text": m["text"]} for m in messages
    )
    return web.json_response(_answer(conv, messages, handoff, ended=conv.state == "ended" or handoff is not None))


# --- J1: waiting for an operator ---------------------------------------------------


def _handoff_status(state: FakeChatState, h: FakeHandoff, since: int = 0) -> dict[str, Any]:
    end = h.taken_at if h.taken_at is not None else time.monotonic()
    waited = end - h.created
    offer = h.state == "queued" and waited >= state.handoff_offer_s
    if offer and h.return_offers == 0:
        h.return_offers = 1
    return {
        "handoff_id": 1, "state": h.state, "queue": "junior",
        "position": state.handoff_position if h.state == "queued" else None,
        "waited_s": round(waited, 1), "return_offers": h.return_offers, "operator": h.operator,
        "messages": [m for m in h.messages if m["id"] > since], "offer_after_s": state.handoff_offer_s,
        "offer": offer, "ended": h.state in ("returned", "abandoned", "done"),
    }


def _no_handoff() -> web.Response:
    return web.json_response({"error": "no_handoff", "reason": "this conversation is not waiting for an operator"},
                             status=404)


async def handoff_status(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    raw = request.query.get("since", "0")
    if not raw.isdigit():
        return web.json_response({"error": "bad_since", "reason": "since: a whole number"}, status=400)
    h = state.handoffs.get(request.match_info["conversation_id"])
    if h is None:
        return _no_handoff()
    h.left = False
    return web.json_response(_handoff_status(state, h, int(raw)))


async def handoff_message(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    cid = request.match_info["conversation_id"]
    h = state.handoffs.get(cid)
    if h is None:
        return _no_handoff()
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "malformed_json", "reason": "The body is not valid JSON."}, status=400)
    if not isinstance(body, dict) or set(body) != {"text"} or not isinstance(body["text"], str):
        return web.json_response({"error": "bad_input", "reason": 'send {"text": "…"}'}, status=400)
    state.requests.append((cid, {"handoff_message": body["text"]}))
    text = body["text"].strip()
    if not text or len(body["text"]) > MAX_TEXT:
        return web.json_response({"error": "empty_message" if not text else "message_too_long",
                                  "reason": "The message is empty or too long."}, status=400)
    if h.state != "taken":
        return web.json_response({"error": "not_taken", "reason": "No operator has taken the chat yet."},
                                 status=409)
    return web.json_response({"message": state.add_message(cid, "caller", text)}, status=201)


async def handoff_return(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    cid = request.match_info["conversation_id"]
    h = state.handoffs.get(cid)
    conv = state.conversations.get(cid)
    if h is None or conv is None:
        return _no_handoff()
    state.requests.append((cid, {"handoff": "return"}))
    if h.state != "queued":
        code = "already_taken" if h.state == "taken" else f"handoff_{h.state}"
        return web.json_response({"error": code, "reason": f"The chat is {h.state}.",
                                  "handoff": _handoff_status(state, h)}, status=409)
    h.state = "returned"
    conv.state = "ask_number"
    messages = [_message(state, conv, "utter_back_to_bot", kind="none"),
                _message(state, conv, "utter_ask_fault_number")]
    return web.json_response(_answer(conv, messages, None, ended=False))


async def handoff_leave(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    cid = request.match_info["conversation_id"]
    h = state.handoffs.get(cid)
    if h is None:
        return _no_handoff()
    h.left = True
    state.requests.append((cid, {"handoff": "leave"}))
    return web.json_response({"state": h.state}, status=202)


def _answer(
    conv: Conversation,
    messages: list[dict[str, Any]],
    handoff: dict[str, Any] | None,
    *,
    ended: bool,
) -> dict[str, Any]:
    none = {
        "kind": "none", "min_digits": 0, "max_digits": 0, "terminator": "", "keys": [],
        "choices": [], "no_input_timeout_ms": 0, "inter_digit_timeout_ms": 0, "barge_in": False,
    }  # fmt: skip
    return {
        "conversation_id": conv.conversation_id,
        "messages": messages,
        "expect": messages[-1]["expect"] if messages and not handoff else none,
        "ended": ended,
        "handoff": handoff,
        "language": conv.language,
    }


def make_app(state: FakeChatState | None = None, static_dir: Path | None = None) -> web.Application:
    app = web.Application()
    app[STATE_KEY] = state or FakeChatState()
    app.router.add_post("/api/chat/{conversation_id}", chat)
    app.router.add_get("/api/chat-handoff/{conversation_id}", handoff_status)
    app.router.add_post("/api/chat-handoff/{conversation_id}/messages", handoff_message)
    app.router.add_post("/api/chat-handoff/{conversation_id}/return", handoff_return)
    app.router.add_post("/api/chat-handoff/{conversation_id}/leave", handoff_leave)
    if static_dir is not None:
        index = static_dir / "index.html"

        async def index_page(_: web.Request) -> web.FileResponse:
            return web.FileResponse(index)

        app.router.add_get("/", index_page)
        app.router.add_static("/static/", static_dir)
    return app


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    root = Path(__file__).resolve().parents[2]
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    web.run_app(make_app(static_dir=root / "bot" / "web" / "static"), host="127.0.0.1", port=port)
