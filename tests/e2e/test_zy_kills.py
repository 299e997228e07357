"""Resuming after a crash (issue 14, item 4): the bot, the action server and Rasa are each
SIGKILLed in the middle of a scripted keypad report, restarted, and the conversations go
on. Afterwards: every conversation ended (goodbye), none has two tickets, and every
ticket's reporter was told its id in a reply they received.

How the budget is kept (each Rasa start takes ~40 s): the script's steps are not killed
one after another but side by side. A round starts one conversation per step of the
script, brings conversation *k* to step *k*, sends every conversation's step-*k* input at
once and SIGKILLs the process a moment later, so the one kill lands in the middle of
(or just before, or just after) every step's turn. Then the process is restarted and each
conversation continues as a user would: it retries an input that got no answer and
answers whatever prompt it was last shown. Each process gets one round (~2.5 min for the
three on a quiet machine; ~4 min on a loaded 2-core one, most of it Rasa's restart): the
bot and the action server are killed 0.2–0.3 s after the ten inputs went out, when the
turns are spread over every phase (waiting for Rasa, inside Rasa's prediction, inside a
custom action, the line test's polls, the reply on its way back); Rasa at 0.2 s, inside
most turns' handling — the one Rasa round covers every step, where a kill per step would
cost ~40 s each. The bot's in-process side of a lost reply, which a kill hits only by
luck, is tested exactly in tests/integration/test_chat_resume.py. Runs before test_zz_outages
(which leaves Rasa stopped)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.stack import Stack
from tests.e2e.conftest import STAFF_TOKEN, Client

pytestmark = pytest.mark.stack

# The prompt a user is shown → what the scripted keypad user answers.
ANSWERS: dict[str, dict[str, str]] = {
    "utter_ask_menu_choice": {"dtmf": "1"},
    "utter_ask_fault_number_confirmed": {"dtmf": "1"},
    "utter_ask_contact_number": {"dtmf": "13912345678#"},
    "utter_ask_symptom_category": {"dtmf": "1"},
    "utter_ask_details_confirmed": {"dtmf": "1"},
    "utter_ask_wants_message": {"dtmf": "1"},
    "utter_ask_voice_message": {"text": "请下午三点以后来"},
    "utter_ask_voice_message_decision": {"dtmf": "1"},
    "utter_ask_another_service": {"dtmf": "2"},
}
STEPS = 10  # start … V11: the scripted report has ten answers after the start
MAX_INPUTS = 40  # more than this and the conversation is stuck


@dataclass
class Talk:
    """One scripted user: the conversation, what it was told, how it went."""

    base: str
    number: str
    id: str = field(default_factory=lambda: f"kill-{uuid.uuid4().hex[:10]}")
    replies: list[dict[str, Any]] = field(default_factory=list)  # every 200 answer received
    expect_prompt: str | None = None  # the last prompt shown
    ended: bool = False
    inputs: int = 0
    failures: list[str] = field(default_factory=list)  # non-200 answers (a retry follows)
    slowest_s: float = 0.0
    slow: list[str] = field(default_factory=list)  # answers that took over 5 s, and what they were

    def next_input(self) -> dict[str, Any]:
        if self.expect_prompt is None:
            return {"event": "start"}
        if self.expect_prompt == "utter_ask_fault_number":
            return {"dtmf": f"{self.number}#"}
        return ANSWERS.get(self.expect_prompt, {"event": "no_input"})

    def send(self, body: dict[str, Any]) -> bool:
        """One request; True when answered (200). A failed one is retried by the caller."""
        self.inputs += 1
        req = urllib.request.Request(f"{self.base}/api/chat/{self.id}", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                reply = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            self.failures.append(f"{body} → {err.code} {err.read()[:200]!r}")
            return False
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            self.failures.append(f"{body} → {type(err).__name__}")
            return False
        finally:
            took = time.monotonic() - started
            self.slowest_s = max(self.slowest_s, took)
            if took > 5:
                self.slow.append(f"{body} at {self.expect_prompt}: {took:.1f} s")
        self.replies.append(reply)
        self.ended = bool(reply["ended"])
        prompts = [m["prompt"] for m in reply["messages"] if m["expect"]["kind"] != "none"]
        if prompts:
            self.expect_prompt = prompts[-1]
        return True

    def step(self) -> bool:
        return self.send(self.next_input())

    def finish(self, deadline: float) -> None:
        """Go on as a user would until goodbye: retry what failed, answer what is asked."""
        while not self.ended and self.inputs < MAX_INPUTS and time.monotonic() < deadline:
            if not self.step():
                time.sleep(0.5)

    @property
    def texts(self) -> str:
        return "\n".join(m["text"] for r in self.replies for m in r["messages"])


def _numbers(count: int) -> list[str]:
    base = int(time.time() * 1000) % 9000
    return [f"05716000{(base + i) % 9000 + 1000:04d}" for i in range(count)]


def kill_round(stack: Stack, name: str, delay_s: float) -> list[Talk]:
    """One conversation per step; all send their step's input; the process dies after ``delay_s``."""
    base = stack.settings.bot_url
    talks = [Talk(base, number) for number in _numbers(STEPS)]
    started = time.monotonic()

    def to_step(talk: Talk, k: int) -> None:
        while len(talk.replies) < k and not talk.ended and talk.inputs < MAX_INPUTS:
            talk.step()

    together([lambda t=talk, k=k: to_step(t, k) for k, talk in enumerate(talks)])
    assert all(len(t.replies) == k for k, t in enumerate(talks)), [t.failures for t in talks]
    prepared = time.monotonic()
    threads = [threading.Thread(target=talk.step) for talk in talks]
    for t in threads:
        t.start()
    time.sleep(delay_s)
    stack.kill(name)
    for t in threads:
        t.join(90)
    stack.start({name})
    stack.wait_ready()
    restarted = time.monotonic()
    deadline = time.monotonic() + 240
    together([lambda t=talk: t.finish(deadline) for talk in talks])
    print(f"{name}@{delay_s}s: prepared in {prepared - started:.0f} s, restarted in {restarted - prepared:.0f} s, "
          f"finished in {time.monotonic() - restarted:.0f} s; slowest answer "
          f"{max(t.slowest_s for t in talks):.1f} s {[s for t in talks for s in t.slow]}")
    return talks


def together(jobs: list[Any]) -> None:
    threads = [threading.Thread(target=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)


def check(client: Client, talks: list[Talk], where: str) -> list[str]:
    problems: list[str] = []
    for talk in talks:
        tag = f"{where} {talk.id} ({talk.number})"
        if not talk.ended:
            problems.append(f"{tag}: stuck at {talk.expect_prompt} after {talk.inputs} inputs; {talk.failures[-3:]}")
        tickets = [t for t in client.tickets(relatedEntity_id=talk.number)
                   if any(e["id"] == talk.id for e in t["externalIdentifier"])]
        if len(tickets) != 1:
            problems.append(f"{tag}: {len(tickets)} tickets")
        for t in tickets:
            if t["id"] not in talk.texts:
                problems.append(f"{tag}: never told ticket {t['id']}")
    return problems


@pytest.mark.parametrize(("name", "delays"), [("bot", (0.2,)), ("actions", (0.3,)), ("rasa", (0.2,))])
def test_kills_at_every_step_then_every_conversation_ends_told_once(
        stack: Stack, client: Client, name: str, delays: tuple[float, ...]) -> None:
    assert client.request("GET", "/healthz").status == 200, STAFF_TOKEN
    problems: list[str] = []
    for delay in delays:
        problems += check(client, kill_round(stack, name, delay), f"{name}@{delay}s")
    assert not problems, "\n".join(problems)
