"""Our control connection to FreeSWITCH (its inbound event socket, port 8021).

The bot keeps one authenticated connection open with backoff (voice/esl/inbound.py) and
reports on ``/healthz`` whether FreeSWITCH is reachable and answers ``status`` with
``UP``: the one place an operator looks to see whether calls can reach the bot. It is
off while no ``HOTLINE_ESL_PASSWORD`` is set (never a default password: design.md §3.5).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from bot.settings import Settings
from voice.esl.inbound import EslInboundClient

log = structlog.get_logger(__name__)

HEALTH_TIMEOUT_S = 2.0  # /healthz must answer promptly even when FreeSWITCH hangs


class FreeswitchControl:
    def __init__(self, settings: Settings) -> None:
        secret = settings.esl_password.get_secret_value() if settings.esl_password else ""
        self.address = f"{settings.fs_esl_listen_ip}:{settings.fs_esl_listen_port}"
        self._client = (EslInboundClient(secret, settings.fs_esl_listen_ip, settings.fs_esl_listen_port,
                                         command_timeout_s=HEALTH_TIMEOUT_S) if secret else None)
        self._task: asyncio.Task[None] | None = None

    @property
    def configured(self) -> bool:
        return self._client is not None

    def start(self) -> None:
        if self._client is not None and self._task is None:
            self._task = asyncio.create_task(self._client.run(), name="freeswitch-control")
            log.info("freeswitch.control_started", address=self.address)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def status(self) -> dict[str, Any]:
        """For /healthz: configured, connected, and whether FreeSWITCH says it is UP."""
        if self._client is None:
            return {"configured": False}
        connected = self._client.connected.is_set()
        up = False
        if connected:
            try:
                up = await asyncio.wait_for(self._client.health(), HEALTH_TIMEOUT_S)
            except TimeoutError:
                up = False
        return {"configured": True, "address": self.address, "connected": connected, "up": up}
