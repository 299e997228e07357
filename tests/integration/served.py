"""The bot's whole app served on a real TCP port from a thread of its own, for tests that
drive it synchronously (the fuzz suite: hypothesis runs plain functions), with the Rasa
double beside it on the same event loop."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.app import create_app
from bot.settings import Settings
from bot.store.db import Database
from tests.fakes.rasa_double import RasaDouble


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ServedApp:
    """``with ServedApp(settings, db) as served: served.request("GET", "/healthz")``."""

    def __init__(self, settings: Settings, db: Database, *, rasa: RasaDouble | None = None) -> None:
        """``rasa``: another app's double (already served) to share, as processes share one Rasa."""
        self._own_rasa = rasa is None
        self.rasa = rasa or RasaDouble()
        self._settings = settings
        self._db = db
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="served-app")
        self._runners: list[web.AppRunner] = []
        self.port = 0
        self._conn: http.client.HTTPConnection | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        for runner in reversed(self._runners):
            self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    async def _start(self) -> None:
        if self._own_rasa:
            rasa_runner = web.AppRunner(self.rasa.app(), access_log=None)
            await rasa_runner.setup()
            await web.TCPSite(rasa_runner, "127.0.0.1", 0).start()
            self._runners.append(rasa_runner)
            self.rasa.port = int(rasa_runner.addresses[0][1])
        settings = self._settings.model_copy(update={
            "rasa_url": f"http://127.0.0.1:{self.rasa.port}", "action_port": self.rasa.port,
            "voice_enabled": False, "rasa_timeout_s": 10.0, "jobs_enabled": False})
        runner = web.AppRunner(create_app(settings, db=self._db), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runners.append(runner)
        self.port = int(runner.addresses[0][1])

    def __enter__(self) -> ServedApp:
        self._thread.start()
        self._ready.wait(60)
        return self

    def __exit__(self, *_: object) -> None:
        if self._conn is not None:
            self._conn.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout_s: float = 10.0) -> Answer:
        """One request on a kept-alive connection (a new one after the server closed it)."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                resp = self._conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self._conn.close()
                    self._conn = None
                return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@contextlib.contextmanager
def served(settings: Settings, db: Database) -> Iterator[ServedApp]:
    with ServedApp(settings, db) as app:
        yield app
