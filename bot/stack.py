"""Start and stop the whole stack: Rasa server, action server, line-test unit, bot.

Used by `make run` (python -m bot run) and by the end-to-end tests, so both run the
same processes the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bot.dialogue_model import ensure_trained, rasa_bin, rasa_env
from bot.settings import REPO_ROOT, Settings


@dataclass
class Service:
    name: str
    args: list[str]
    env: dict[str, str]
    health_url: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    warmed: bool = False  # Rasa: a first message went through since this start


@dataclass
class Stack:
    settings: Settings
    log_dir: Path
    services: list[Service] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, log_dir: Path) -> Stack:
        model = ensure_trained(settings)
        s = settings
        action_url = f"http://127.0.0.1:{s.action_port}"
        # The action server writes records through the bot's API with this token.
        internal_token = (s.internal_api_token.get_secret_value() if s.internal_api_token
                          else secrets.token_urlsafe(32))
        hotline_env = {
            **os.environ,
            "HOTLINE_DATABASE_URL": s.database_url,
            "HOTLINE_PORT": str(s.port),
            "HOTLINE_HOST": s.host,
            "HOTLINE_RASA_URL": s.rasa_url,
            "HOTLINE_ACTION_PORT": str(s.action_port),
            "HOTLINE_LINETEST_URL": s.linetest_url,
            "HOTLINE_LINETEST_PORT": str(s.linetest_port),
            "HOTLINE_LINETEST_DURATION_S": str(s.linetest_duration_s),
            "HOTLINE_WORLD_FILE": str(s.world_file),
            "HOTLINE_CURRENT_WORLD_FILE": str(s.current_world_file),
            "HOTLINE_LOCAL_AREA_CODE": s.local_area_code,
            "HOTLINE_CENTRE_OPEN_HOURS": s.centre_open_hours,
            "HOTLINE_DESK_LANGUAGE": s.desk_language,
            "HOTLINE_INTERNAL_API_TOKEN": internal_token,
            **_voice_env(s),
        }
        tracker_db = Path(s.tracker_db)
        tracker_db.parent.mkdir(parents=True, exist_ok=True)
        rasa_common = {
            **rasa_env(),
            "HOTLINE_ACTION_URL": f"{action_url}/webhook",
            "HOTLINE_TRACKER_DIALECT": "sqlite",
            "HOTLINE_TRACKER_DB": str(tracker_db),
        }
        actions_env = {
            **rasa_common,
            "SANIC_HOST": "127.0.0.1",  # rasa run actions binds 0.0.0.0 otherwise
            "HOTLINE_BOT_URL": s.bot_url,
            "HOTLINE_LINETEST_URL": s.linetest_url,
            "HOTLINE_LOCAL_AREA_CODE": s.local_area_code,
            "HOTLINE_LINE_TEST_MAX_WAIT_S": str(s.line_test_max_wait_s),
            "HOTLINE_INTERNAL_API_TOKEN": internal_token,
        }
        py = sys.executable
        services = [
            Service("linetest", [py, "-m", "bot", "linetest", "serve"], hotline_env,
                    f"{s.linetest_url}/healthz"),
            Service("actions", [str(rasa_bin()), "run", "actions", "--actions", "actions",
                                "--port", str(s.action_port)], actions_env, f"{action_url}/health"),
            Service("rasa", [str(rasa_bin()), "run", "--model", str(model),
                             "--endpoints", str(s.nlu_dir / "endpoints.yml"),
                             "--credentials", str(s.nlu_dir / "credentials.yml"),
                             "--interface", "127.0.0.1", "--port", str(s.rasa_port)],
                    rasa_common, f"{s.rasa_url}/webhooks/hotline/"),
            Service("bot", [py, "-m", "bot", "serve"], hotline_env, f"{s.bot_url}/healthz"),
        ]
        return cls(settings, log_dir, services)

    def start(self, only: set[str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for svc in self.services:
            if only is not None and svc.name not in only:
                continue
            svc.log_path = self.log_dir / f"{svc.name}.log"
            svc.warmed = False
            log = svc.log_path.open("ab")
            svc.process = subprocess.Popen(
                svc.args, cwd=REPO_ROOT, env=svc.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
            )

    def wait_ready(self, timeout_s: float = 240.0) -> None:
        deadline = time.monotonic() + timeout_s
        for svc in self.services:
            if svc.process is None:
                continue
            while not _answers(svc.health_url):
                if svc.process.poll() is not None:
                    raise RuntimeError(f"{svc.name} exited ({svc.process.returncode}); see {svc.log_path}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{svc.name} did not answer {svc.health_url}; see {svc.log_path}")
                time.sleep(0.5)
            if svc.name == "rasa" and not svc.warmed:
                _warm_up(self.settings.rasa_url)
                svc.warmed = True

    def stop(self, names: set[str] | None = None) -> None:
        running = [s for s in reversed(self.services) if s.process and s.process.poll() is None
                   and (names is None or s.name in names)]
        for svc in running:
            assert svc.process is not None
            os.killpg(svc.process.pid, signal.SIGTERM)
        for svc in running:
            assert svc.process is not None
            try:
                svc.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(svc.process.pid, signal.SIGKILL)
                svc.process.wait()

    def kill(self, name: str) -> None:
        """SIGKILL one service (and its children): a crash, no chance to clean up."""
        svc = next(s for s in self.services if s.name == name)
        if svc.process is not None and svc.process.poll() is None:
            os.killpg(svc.process.pid, signal.SIGKILL)
            svc.process.wait()

    def restart(self, name: str) -> None:
        self.stop({name})
        self.start({name})
        self.wait_ready()


@contextlib.contextmanager
def running(settings: Settings, log_dir: Path, world: Path | None = None, timeout_s: float = 400) -> Iterator[Stack]:
    """The whole stack, up (with ``world`` loaded afresh first) until the block ends."""
    if world is not None:
        from bot.world.loader import load_world_file

        load_world_file(world, reset=True, settings=settings)
    stack = Stack.build(settings, log_dir)
    stack.start()
    try:
        stack.wait_ready(timeout_s=timeout_s)
        yield stack
    finally:
        stack.stop()


def _warm_up(rasa_url: str) -> None:
    """A fresh Rasa takes seconds over its first message (the policies' graphs): one
    message of its own first, so a restart does not make the next users wait."""
    body = json.dumps({"sender": "hotline-warm-up", "message": "/start", "metadata": {"channel": "api"}}).encode()
    req = urllib.request.Request(f"{rasa_url}/webhooks/hotline/webhook", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()
    except (urllib.error.URLError, OSError):
        pass  # only a warm-up


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status < 500)
    except (urllib.error.URLError, OSError):
        return False


_VOICE_FIELDS = (
    "voice_enabled", "esl_host", "esl_port", "media_ip", "media_port_min", "media_port_max",
    "fs_media_ip", "fs_media_port_min", "fs_media_port_max", "speech_models_dir", "vosk_model_zh",
    "vosk_model_en", "piper_voice_zh", "piper_voice_en", "keypad_only", "tts_cache_dir", "recordings_dir",
    "staff_api_token", "esl_password", "fs_esl_listen_ip", "fs_esl_listen_port",
)


def _voice_env(s: Settings) -> dict[str, str]:
    """The phone channel's settings, for the bot process (it hosts the ESL server)."""
    env: dict[str, str] = {}
    for name in _VOICE_FIELDS:
        value = getattr(s, name)
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"HOTLINE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env
