"""The bot's control connection to FreeSWITCH's inbound event socket, against the
double of FreeSWITCH's listener: connected, `status` says UP, lost and found again, and
what /healthz reports. Off without a password (never a default one)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr

from bot.settings import Settings
from tests.conftest import AClient
from tests.fakes.freeswitch import FakeEslServer
from voice.control import FreeswitchControl

PASSWORD = "esl-test-secret"


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _settings(settings: Settings, port: int, password: str | None = PASSWORD) -> Settings:
    return settings.model_copy(update={"esl_password": SecretStr(password) if password else None,
                                       "fs_esl_listen_port": port,
                                       "fs_esl_listen_ip": "127.0.0.1"})


async def test_no_password_no_connection(settings: Settings) -> None:
    control = FreeswitchControl(_settings(settings, 1, None))
    control.start()
    assert not control.configured and await control.status() == {"configured": False}
    await control.close()


async def test_connects_reports_up_and_follows_a_restart(settings: Settings) -> None:
    server = FakeEslServer(PASSWORD)
    await server.start()
    control = FreeswitchControl(_settings(settings, server.port))
    control.start()
    try:
        async def up() -> bool:
            return (await control.status()).get("up") is True

        await until(up, "FreeSWITCH UP")
        status = await control.status()
        assert status == {"configured": True, "address": f"127.0.0.1:{server.port}", "connected": True, "up": True}
        assert any(c.command == f"auth {PASSWORD}" for c in server.commands)

        server.api_responses["status"] = "-ERR not ready\n"  # FreeSWITCH still starting up

        async def not_up() -> bool:
            s = await control.status()
            return s["connected"] is True and s["up"] is False

        await until(not_up, "connected but not UP")
        await server.drop_all()  # FreeSWITCH shuts down: a disconnect notice, then close

        async def down() -> bool:
            return (await control.status())["connected"] is False

        await until(down, "the loss noticed")
    finally:
        await control.close()
        await server.stop()


async def test_wrong_password_is_never_connected(settings: Settings) -> None:
    async with FakeEslServer(PASSWORD) as server:
        control = FreeswitchControl(_settings(settings, server.port, "not-the-password"))
        control.start()
        try:
            async def tried() -> bool:
                return server.connections >= 1

            await until(tried, "a connection attempt")
            await asyncio.sleep(0.2)
            assert await control.status() == {"configured": True, "address": f"127.0.0.1:{server.port}",
                                               "connected": False, "up": False}
        finally:
            await control.close()


async def test_healthz_says_whether_freeswitch_is_up(aiohttp_client: AClient, settings: Settings, db: Any) -> None:
    from bot.app import create_app

    async with FakeEslServer(PASSWORD) as server:
        app = create_app(_settings(settings, server.port).model_copy(update={
            "esl_port": 0, "keypad_only": True, "media_port_min": 45000, "media_port_max": 45009,
            "fs_media_port_min": 45010, "fs_media_port_max": 45019}), db)
        client = await aiohttp_client(app)

        async def up() -> bool:
            body = await (await client.get("/healthz")).json()
            return bool(body.get("freeswitch", {}).get("up"))

        await until(up, "/healthz to say FreeSWITCH is up", timeout=20)
        body = await (await client.get("/healthz")).json()
        assert body["freeswitch"]["connected"] is True and body["voice"]["running"] is True
