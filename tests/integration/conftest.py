"""The whole bot app in process (bot/app.py's create_app: every route, the middlewares),
on the test's database with the demo world, its dialogue a Rasa double (tests/fakes)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import create_app
from bot.settings import Settings
from bot.store.db import Database
from tests.fakes.rasa_double import RasaDouble


@pytest.fixture
async def rasa_double(aiohttp_server: Any) -> RasaDouble:
    double = RasaDouble()
    server = await aiohttp_server(double.app())
    double.port = server.port
    return double


@pytest.fixture
def app_settings(settings: Settings, rasa_double: RasaDouble) -> Settings:
    port = rasa_double.port
    return settings.model_copy(update={"rasa_url": f"http://127.0.0.1:{port}", "action_port": port,
                                       "voice_enabled": False, "rasa_timeout_s": 10.0})


@pytest.fixture
async def app_client(aiohttp_client: Any, demo_db: Database, app_settings: Settings) -> Any:
    """The bot's whole app; requests carry no token unless they send one."""
    return await aiohttp_client(create_app(app_settings, db=demo_db))
