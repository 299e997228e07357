"""`python -m bot chat`: the line → request mapping, the rendering, and the loop with a
scripted transport; one round trip through urllib against the fake chat API.

Category: unit (the last two tests open local sockets only).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.console import (
    ChatError,
    Command,
    ConsoleChat,
    line_to_request,
    post_json,
    render_answer,
    render_error,
    render_expect,
    render_handoff,
    render_message,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.fakes.fake_chat_api import FakeChatState, make_app  # noqa: E402

DIGITS = {"kind": "digits", "min_digits": 7, "max_digits": 12, "terminator": "#", "keys": [],
          "choices": [], "no_input_timeout_ms": 10000, "inter_digit_timeout_ms": 5000,
          "barge_in": True}  # fmt: skip
CHOICE = {"kind": "choice", "keys": ["1", "2"], "choices": [
    {"key": "1", "label": "确认"}, {"key": "2", "label": "重新输入"}]}  # fmt: skip


# ---------------------------------------------------------------- line → request


@pytest.mark.parametrize(
    ("line", "expect", "payload"),
    [
        ("", DIGITS, {"event": "no_input"}),
        ("   ", None, {"event": "no_input"}),
        ("88123456", DIGITS, {"dtmf": "88123456#"}),
        ("88123456#", DIGITS, {"dtmf": "88123456#"}),
        ("0571 8812-3456", DIGITS, {"dtmf": "057188123456#"}),
        ("1", CHOICE, {"dtmf": "1"}),
        ("1", None, {"dtmf": "1"}),
        ("*#", CHOICE, {"dtmf": "*#"}),
        ("88123456", CHOICE, {"dtmf": "88123456"}),
        ("我家电话没有拨号音", DIGITS, {"text": "我家电话没有拨号音"}),
        ("  确认  ", CHOICE, {"text": "确认"}),
        ("call 1000", None, {"text": "call 1000"}),
        ("/quit", None, {"event": "end"}),
    ],
)
def test_line_to_request(line: str, expect: dict[str, Any] | None, payload: dict[str, Any]) -> None:
    assert line_to_request(line, expect).payload == payload


def test_quit_help_retry_and_too_long() -> None:
    assert line_to_request("/quit") == Command(payload={"event": "end"}, quit=True)
    assert line_to_request("/EXIT").quit
    assert line_to_request("/help") == Command(help=True)
    assert line_to_request("/retry") == Command(retry=True)
    too_long = line_to_request("长" * 2001)
    assert too_long.payload is None and too_long.error and "2000" in too_long.error
    assert line_to_request("长" * 2000).payload == {"text": "长" * 2000}


# ---------------------------------------------------------------- rendering


def test_render_expect() -> None:
    assert render_expect(DIGITS) == "(digits 7-12, end with #)"
    assert render_expect(CHOICE) == "(keys: 1 确认, 2 重新输入)"
    assert render_expect({"kind": "text", "keys": []}) == "(say it)"
    assert render_expect({"kind": "text", "keys": ["1", "2"]}) == "(say it, or keys: 1, 2)"
    assert render_expect({"kind": "recording"}) == "(your message for the repairman)"
    assert render_expect({"kind": "none"}) == ""
    assert render_expect(None) == ""


def test_render_message_uses_spec_then_prompt() -> None:
    assert render_message(
        {"prompt": "utter_confirm_fault_number", "spec": "V2", "text": "您的电话为：88123456"}
    ) == ("[V2] 您的电话为：88123456")
    assert (
        render_message({"prompt": "utter_main_menu", "spec": None, "text": "欢迎"})
        == "[utter_main_menu] 欢迎"
    )


def test_render_answer_puts_the_hint_on_the_last_message() -> None:
    answer = {
        "messages": [
            {"prompt": "utter_fault_number_invalid", "spec": "V3", "text": "号码有误", "expect": {"kind": "none"}},
            {"prompt": "utter_ask_fault_number", "spec": "V1", "text": "请输入", "expect": DIGITS},
        ],
        "expect": DIGITS, "ended": False, "handoff": None, "language": "zh",
    }  # fmt: skip
    assert render_answer(answer) == ["[V3] 号码有误", "[V1] 请输入  (digits 7-12, end with #)"]


def test_render_answer_handoff_and_end() -> None:
    handoff = {"handoff_id": "h1", "queue": "junior", "position": 3, "reason": "no_input"}
    answer = {
        "messages": [{"prompt": "utter_handoff", "spec": None, "text": "正在转接", "expect": {"kind": "none"}}],
        "expect": {"kind": "none"}, "ended": False, "handoff": handoff, "language": "zh",
    }  # fmt: skip
    lines = render_answer(answer)
    assert lines == ["[utter_handoff] 正在转接", "→ 正在为您转接人工服务…（junior 队列，第 3 位）"]
    assert (
        render_handoff(handoff, "en")
        == "→ Connecting you to an operator… (queue junior, position 3)"
    )
    ended = render_answer(
        {
            "messages": [{"spec": "V9", "text": "已受理", "expect": CHOICE}],
            "expect": CHOICE,
            "ended": True,
        }
    )
    assert ended == ["[V9] 已受理", "— the conversation has ended / 对话已结束 —"]


def test_render_error() -> None:
    refused = render_error(
        None, {"reason": "[Errno 111] Connection refused"}, "http://127.0.0.1:8080"
    )
    assert (
        "Cannot reach the bot at http://127.0.0.1:8080" in refused
        and "python -m bot serve" in refused
    )
    down = render_error(503, {"error": "dialogue_unavailable", "reason": "Rasa is starting."}, "u")
    assert "temporarily unavailable" in down and "Rasa is starting." in down and "/retry" in down
    assert "not accept" in render_error(
        400, {"error": "bad_request", "reason": "dtmf only 0-9*#"}, "u"
    )
    assert "HTTP 500" in render_error(500, None, "u")


# ---------------------------------------------------------------- the loop


class ScriptedTransport:
    def __init__(self, answers: list[dict[str, Any] | ChatError]) -> None:
        self.answers = answers
        self.sent: list[dict[str, Any]] = []

    def __call__(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(payload)
        answer = self.answers.pop(0)
        if isinstance(answer, ChatError):
            raise answer
        return answer


def answer(expect: dict[str, Any], text: str = "…", *, ended: bool = False) -> dict[str, Any]:
    return {"messages": [{"prompt": "p", "spec": "V1", "text": text, "expect": expect}],
            "expect": expect, "ended": ended, "handoff": None, "language": "zh"}  # fmt: skip


def test_console_loop_uses_the_current_expectation_and_retries() -> None:
    out: list[str] = []
    transport = ScriptedTransport([
        answer(DIGITS),
        ChatError(503, {"error": "dialogue_unavailable", "reason": "down"}),
        answer(CHOICE),
        answer({"kind": "none"}, "已受理", ended=True),
    ])  # fmt: skip
    chat = ConsoleChat("http://x", "c1", transport=transport, out=out.append)
    assert chat.url == "http://x/api/chat/c1"
    assert chat.send({"event": "start"})
    assert chat.handle("88123456") is True  # 503: still running
    assert any("temporarily unavailable" in line for line in out)
    assert chat.handle("/retry") is True
    assert chat.handle("1") is False  # ended
    assert transport.sent == [
        {"event": "start"}, {"dtmf": "88123456#"}, {"dtmf": "88123456#"}, {"dtmf": "1"},
    ]  # fmt: skip
    assert out[-1] == "— the conversation has ended / 对话已结束 —"


def test_console_quit_sends_end() -> None:
    transport = ScriptedTransport([answer(DIGITS), {"messages": [], "ended": True}])
    chat = ConsoleChat("http://x", "c1", transport=transport, out=lambda _: None)
    chat.send({"event": "start"})
    assert chat.handle("/quit") is False
    assert transport.sent[-1] == {"event": "end"}


# ---------------------------------------------------------------- over HTTP


async def test_post_json_against_the_fake(aiohttp_server: Any) -> None:
    state = FakeChatState()
    server = await aiohttp_server(make_app(state))
    url = str(server.make_url("/api/chat/c42"))
    started = await asyncio.to_thread(post_json, url, {"event": "start"})
    assert started["messages"][0]["prompt"] == "utter_main_menu"
    assert render_answer(started)[0].endswith("(keys: 1 故障申告, 0 人工服务, 9 English)")
    state.outage = True
    with pytest.raises(ChatError) as err:
        await asyncio.to_thread(post_json, url, {"dtmf": "1"})
    assert (
        err.value.status == 503
        and err.value.body
        and err.value.body["error"] == "dialogue_unavailable"
    )
    state.outage = False
    with pytest.raises(ChatError) as bad:
        await asyncio.to_thread(post_json, url, {"dtmf": "12a"})
    assert bad.value.status == 400


def test_post_json_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    with pytest.raises(ChatError) as err:
        post_json(f"http://127.0.0.1:{port}/api/chat/x", {"event": "start"}, timeout=5)
    assert err.value.status is None
    assert "Cannot reach" in render_error(err.value.status, err.value.body, "http://127.0.0.1")
