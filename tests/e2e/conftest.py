"""The whole stack for end-to-end tests: the real Rasa server, action server, line-test
simulator and bot, on free ports, with a store and a world of their own."""

from __future__ import annotations

import contextlib
import json
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.settings import REPO_ROOT, Settings
from bot.stack import Stack, running
from tests.fakes.voice_doubles import ScriptedSpeechIn, ToneSpeech
from tests.ports import random_block
from tests.switch.fixtures import (  # noqa: F401 - the real-switch tier's fixtures
    StartSwitch,
    SwitchEvents,
    freeswitch_build,
    start_switch,
    switch_events,
)

WORLD = REPO_ROOT / "tests" / "fixtures" / "worlds" / "e2e.yml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Reply:
    status: int
    body: dict[str, Any]

    @property
    def prompts(self) -> list[str]:
        return [m["prompt"] for m in self.body.get("messages", [])]

    @property
    def specs(self) -> list[str | None]:
        return [m["spec"] for m in self.body.get("messages", [])]

    @property
    def text(self) -> str:
        return "\n".join(m["text"] for m in self.body.get("messages", []))


STAFF_TOKEN = "e2e-staff"


class Client:
    """Chat turns as a user, reads (tickets, outcomes) as a staff system with its token."""

    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {STAFF_TOKEN}"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return Reply(resp.status, json.loads(resp.read() or b"{}"))
        except urllib.error.HTTPError as err:
            return Reply(err.code, json.loads(err.read() or b"{}"))

    def tickets(self, **params: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k.replace('_', '.')}={v}" for k, v in params.items())
        return self.request("GET", f"/tmf-api/troubleTicket/v5/troubleTicket?{query}").body  # type: ignore[return-value]

    def outcomes(self, conversation_id: str) -> list[dict[str, Any]]:
        items = self.request("GET", f"/api/outcomes?conversation_id={conversation_id}").body
        return items if isinstance(items, list) else items.get("items", [])  # type: ignore[return-value]


class Conversation:
    """One chat, as a user would have it: start, then keys, text or silence."""

    def __init__(self, client: Client, language: str | None = None) -> None:
        self.client = client
        self.id = f"e2e-{uuid.uuid4().hex[:12]}"
        self.last = self.send({"event": "start", **({"language": language} if language else {})})

    def send(self, body: dict[str, Any]) -> Reply:
        self.last = self.client.request("POST", f"/api/chat/{self.id}", body)
        assert self.last.status == 200, self.last.body
        return self.last

    def keys(self, digits: str) -> Reply:
        return self.send({"dtmf": digits})

    def say(self, text: str) -> Reply:
        return self.send({"text": text})

    def silence(self) -> Reply:
        return self.send({"event": "no_input"})


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("stack")
    bot, rasa, actions, linetest, esl = (free_port() for _ in range(5))
    media = random_block(30000, 38000, 200)
    return Settings(
        esl_port=esl, media_port_min=media, media_port_max=media + 49,
        fs_media_port_min=media + 50, fs_media_port_max=media + 99,
        recordings_dir=tmp / "recordings", tts_cache_dir=tmp / "tts-cache", staff_api_token=STAFF_TOKEN,
        port=bot, rasa_port=rasa, rasa_url=f"http://127.0.0.1:{rasa}", action_port=actions,
        linetest_port=linetest, linetest_url=f"http://127.0.0.1:{linetest}",
        database_url=f"sqlite:///{tmp / 'hotline.db'}", tracker_db=tmp / "tracker.db",
        current_world_file=tmp / "world.yml", world_file=WORLD,
        linetest_duration_s=1.0, line_test_max_wait_s=4.0, local_area_code="0571",
    )


@pytest.fixture(scope="session")
def stack(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running(stack_settings, tmp_path_factory.mktemp("logs"), WORLD) as up:
        yield up


@pytest.fixture(scope="session")
def client(stack: Stack) -> Client:
    return Client(stack.settings.bot_url)


def log_of(stack: Stack, name: str) -> str:
    svc = next(s for s in stack.services if s.name == name)
    return Path(svc.log_path).read_text(errors="replace")[-4000:] if svc.log_path else ""


@contextlib.asynccontextmanager
async def voice_host(settings: Settings, speech_out: Any, speech_in: Any, ports_at: int) -> AsyncIterator[Any]:
    """The phone channel as the bot runs it (VoiceService), in the test process, with
    the given voice and recogniser, on the stack's dialogue and store."""
    import aiohttp

    from bot.app import build_chat_service
    from bot.store.db import Database
    from voice.service import SpeechEngines, VoiceService

    s = settings.model_copy(update={
        "esl_port": 0, "media_port_min": ports_at, "media_port_max": ports_at + 49,
        "fs_media_port_min": ports_at + 50, "fs_media_port_max": ports_at + 99, "recording_silence_ms": 1500,
        "handoff_offer_seconds": 3, "handoff_poll_seconds": 0.2,
    })
    session = aiohttp.ClientSession()
    db = Database.from_settings(s)
    service = VoiceService(s, build_chat_service(s, session, "voice", db),
                           SpeechEngines(speech_out=speech_out, recogniser_factory=lambda lang, rate: speech_in))
    await service.start(prewarm=False)
    try:
        yield service
    finally:
        await service.stop()
        await session.close()
        db.engine.dispose()


class SwitchHost:
    """A real FreeSWITCH in front of the phone channel hosted by the test (its voice is a
    tone per prompt, its text noted; its recogniser is scripted)."""

    def __init__(self, service: Any, speech_out: ToneSpeech, speech_in: ScriptedSpeechIn, events: SwitchEvents,
                 fs: Any) -> None:
        self.service, self.speech, self.speech_in, self.events, self.fs = service, speech_out, speech_in, events, fs
        self.sip_port: int = fs.ports.external_sip


@pytest.fixture
async def switch_host(stack: Stack, stack_settings: Settings, start_switch: StartSwitch,  # noqa: F811
                      ) -> AsyncIterator[SwitchHost]:
    speech_out, speech_in = ToneSpeech(ms=250), ScriptedSpeechIn([])
    async with voice_host(stack_settings, speech_out, speech_in, stack_settings.media_port_max + 300) as service:
        fs = start_switch(service.server.port)
        async with switch_events(fs) as events:
            yield SwitchHost(service, speech_out, speech_in, events, fs)
