"""`python -m bot chat`: talk to the bot from a terminal through the chat API (design §4).

Lines typed by the user become chat requests (`line_to_request`):
  - empty line            → {"event": "no_input"}  (as if the caller stayed silent)
  - only 0-9 * # (spaces and dashes are ignored)
                          → {"dtmf": "…"}; for a digits prompt "#" is appended if missing
  - /quit (or /exit, Ctrl-D) → {"event": "end"} and the console stops
  - /help                 → help, nothing sent
  - /retry                → send the last request again (after an outage)
  - anything else         → {"text": "…"}
Bot answers are rendered by `render_answer` (pure, so it is tested without a server).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer

MAX_TEXT = 2000
DTMF_RE = re.compile(r"^[0-9*#]+$")
SEPARATORS_RE = re.compile(r"[\s\-]+")
QUIT_COMMANDS = frozenset({"/quit", "/exit", "/q"})

HELP = """\
Type what you would say, then Enter.
  digits (e.g. 88123456 or 1)  keypad keys; for a number prompt # is added for you
  empty line                   say nothing (the bot's no-input timeout)
  /retry                       send the last input again
  /quit                        leave the conversation"""

JSONObject = dict[str, Any]


@dataclass(frozen=True)
class Command:
    """What one typed line asks for."""

    payload: JSONObject | None = None  # the request body to send, if any
    quit: bool = False
    help: bool = False
    retry: bool = False
    error: str | None = None  # shown to the user, nothing sent


def line_to_request(line: str, expect: JSONObject | None = None) -> Command:
    """Map one typed line to a chat request, given the bot's current expectation."""
    stripped = line.strip()
    if not stripped:
        return Command(payload={"event": "no_input"})
    lowered = stripped.lower()
    if lowered in QUIT_COMMANDS:
        return Command(payload={"event": "end"}, quit=True)
    if lowered in ("/help", "/?"):
        return Command(help=True)
    if lowered == "/retry":
        return Command(retry=True)
    compact = SEPARATORS_RE.sub("", stripped)
    if DTMF_RE.match(compact):
        kind = (expect or {}).get("kind")
        if kind == "digits" and not compact.endswith("#"):
            compact += "#"
        return Command(payload={"dtmf": compact})
    if len(stripped) > MAX_TEXT:
        return Command(error=f"Too long: at most {MAX_TEXT} characters ({len(stripped)} typed).")
    return Command(payload={"text": stripped})


def render_expect(expect: JSONObject | None) -> str:
    """A short hint of the input the bot waits for, e.g. `(keys: 1 确认, 2 重新输入)`."""
    if not expect:
        return ""
    kind = expect.get("kind")
    if kind == "digits":
        lo, hi = expect.get("min_digits") or 0, expect.get("max_digits") or 0
        size = f" {lo}-{hi}" if lo and hi and lo != hi else f" {hi}" if hi else ""
        end = expect.get("terminator") or "#"
        return f"(digits{size}, end with {end})"
    if kind == "choice":
        choices = expect.get("choices") or []
        listed = ", ".join(f"{c.get('key', '')} {c.get('label', '')}".strip() for c in choices)
        return f"(keys: {listed})" if listed else "(a key)"
    if kind == "text":
        keys = expect.get("keys") or []
        return f"(say it, or keys: {', '.join(keys)})" if keys else "(say it)"
    if kind == "recording":
        return "(your message for the repairman)"
    return ""


def render_message(message: JSONObject) -> str:
    """One bot message: `[V2] 您的电话为… (keys: 1 确认, 2 重新输入)`."""
    tag = message.get("spec") or message.get("prompt") or "bot"
    text = str(message.get("text") or "").strip()
    return f"[{tag}] {text}"


def render_handoff(handoff: JSONObject, language: str = "zh") -> str:
    position = handoff.get("position")
    queue = handoff.get("queue") or "operator"
    if language == "en":
        where = (
            f" (queue {queue}, position {position})"
            if position is not None
            else f" (queue {queue})"
        )
        return f"→ Connecting you to an operator…{where}"
    where = f"（{queue} 队列，第 {position} 位）" if position is not None else f"（{queue} 队列）"
    return f"→ 正在为您转接人工服务…{where}"


def render_answer(answer: JSONObject) -> list[str]:
    """The lines to print for one chat answer: messages, the input hint, handoff, end."""
    lines = [render_message(m) for m in answer.get("messages") or []]
    hint = "" if answer.get("ended") else render_expect(answer.get("expect"))
    if hint:
        if lines:
            lines[-1] = f"{lines[-1]}  {hint}"
        else:
            lines.append(hint)
    handoff = answer.get("handoff")
    if handoff:
        lines.append(render_handoff(handoff, str(answer.get("language") or "zh")))
    if answer.get("ended"):
        lines.append("— the conversation has ended / 对话已结束 —")
    return lines


def render_error(status: int | None, body: JSONObject | None, url: str) -> str:
    """A sentence for a failed request (no traceback)."""
    reason = str((body or {}).get("reason") or "").strip()
    if status is None:
        return (
            f"Cannot reach the bot at {url} ({reason or 'connection refused'}). "
            "Is it running? Start it with `python -m bot serve` or `python -m bot run`."
        )
    if status == 503:
        return (
            f"The service is temporarily unavailable: {reason or 'try again shortly'}. Type /retry."
        )
    if status == 400:
        return f"The bot did not accept that: {reason or 'bad request'}"
    return f"The bot answered HTTP {status}: {reason or 'unexpected error'}. Type /retry."


class ChatError(Exception):
    def __init__(self, status: int | None, body: JSONObject | None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def post_json(url: str, payload: JSONObject, timeout: float = 60.0) -> JSONObject:
    """POST a JSON body, return the JSON answer; raise ChatError on any failure."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read().decode("utf-8"))
        except (ValueError, OSError):
            body = None
        raise ChatError(exc.code, body if isinstance(body, dict) else None) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ChatError(None, {"reason": str(reason)}) from None
    except ValueError:
        raise ChatError(None, {"reason": "the answer was not JSON"}) from None
    if not isinstance(answer, dict):
        raise ChatError(None, {"reason": "the answer was not a JSON object"})
    return answer


Transport = Callable[[str, JSONObject], JSONObject]


class ConsoleChat:
    """The read-send-print loop, with the transport and I/O injectable for tests."""

    def __init__(
        self,
        base_url: str,
        conversation_id: str,
        transport: Transport = post_json,
        out: Callable[[str], None] = print,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/api/chat/{conversation_id}"
        self.base_url = base_url
        self.transport = transport
        self.out = out
        self.expect: JSONObject | None = None
        self.ended = False
        self.last: JSONObject | None = None

    def send(self, payload: JSONObject) -> bool:
        """Send one request and print the answer; False when it failed."""
        self.last = payload
        try:
            answer = self.transport(self.url, payload)
        except ChatError as exc:
            self.out(render_error(exc.status, exc.body, self.base_url))
            return False
        for line in render_answer(answer):
            self.out(line)
        self.expect = answer.get("expect")
        self.ended = bool(answer.get("ended"))
        return True

    def handle(self, line: str) -> bool:
        """Act on one typed line; False when the console should stop."""
        command = line_to_request(line, self.expect)
        if command.error:
            self.out(command.error)
        elif command.help:
            self.out(HELP)
        elif command.retry:
            if self.last is None:
                self.out("Nothing to retry.")
            else:
                self.send(self.last)
        elif command.payload is not None:
            if command.quit:
                self.leave()
                return False
            self.send(command.payload)
        return not self.ended

    def leave(self) -> None:
        if self.ended:
            return
        try:
            self.transport(self.url, {"event": "end"})
        except ChatError:
            pass  # leaving anyway
        self.ended = True


def chat_command(
    url: str = typer.Option("http://127.0.0.1:8080", help="The bot's base URL (its chat API)."),
    conversation: str | None = typer.Option(
        None, help="Conversation id to use (default: a new random one)."
    ),
) -> None:
    """Talk to the bot in this terminal: type text, keys (digits, * and #), or Enter for silence."""
    conversation_id = conversation or str(uuid.uuid4())
    chat = ConsoleChat(url, conversation_id, out=lambda s: typer.echo(s))
    typer.echo(f"hotline chat — conversation {conversation_id} — /help for help, /quit to leave")
    if not chat.send({"event": "start"}):
        raise typer.Exit(code=1)
    try:
        while not chat.ended:
            try:
                line = input("> ")
            except EOFError:
                typer.echo("")
                chat.leave()
                break
            if not chat.handle(line):
                break
    except KeyboardInterrupt:
        typer.echo("")
        chat.leave()
    if chat.ended:
        typer.echo("bye")
