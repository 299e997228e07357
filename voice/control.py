"""Our control connection to FreeSWITCH (its inbound event socket, port 8021).

The bot keeps one authenticated connection open with backoff (voice/esl/inbound.py) and
reports on ``/healthz`` whether FreeSWITCH is reachable and answers ``status`` with
``UP``: the one place an operator looks to see whether calls can reach the bot. It is
off while no ``HOTLINE_ESL_PASSWORD`` is set (never a default password: design.md §3.5).

Outbound calls go over it too (voice/outbound.py): ``bgapi`` commands whose result
comes back as a BACKGROUND_JOB event with the Job-UUID we chose, and the
CHANNEL_HANGUP_COMPLETE of a channel we placed (its hangup cause, even when the call
never reached the bot's ESL server).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import structlog

from bot.settings import Settings
from voice.esl import EslEvent
from voice.esl.inbound import EslInboundClient, EslNotConnected

log = structlog.get_logger(__name__)

HEALTH_TIMEOUT_S = 2.0  # /healthz must answer promptly even when FreeSWITCH hangs
EVENTS = ("BACKGROUND_JOB", "CHANNEL_HANGUP_COMPLETE")


class FreeswitchControl:
    def __init__(self, settings: Settings) -> None:
        secret = settings.esl_password.get_secret_value() if settings.esl_password else ""
        self.address = f"{settings.fs_esl_listen_ip}:{settings.fs_esl_listen_port}"
        self._client = (EslInboundClient(secret, settings.fs_esl_listen_ip, settings.fs_esl_listen_port,
                                         events=EVENTS, command_timeout_s=HEALTH_TIMEOUT_S) if secret else None)
        self._task: asyncio.Task[None] | None = None
        self._dispatch: asyncio.Task[None] | None = None
        self._jobs: dict[str, asyncio.Future[str]] = {}  # Job-UUID → the job's result text
        self._hangups: dict[str, asyncio.Future[str]] = {}  # channel UUID → its hangup cause

    @property
    def configured(self) -> bool:
        return self._client is not None

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected.is_set()

    def start(self) -> None:
        if self._client is not None and self._task is None:
            self._task = asyncio.create_task(self._client.run(), name="freeswitch-control")
            self._dispatch = asyncio.create_task(self._dispatch_events(self._client), name="freeswitch-events")
            log.info("freeswitch.control_started", address=self.address)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        for task in (self._task, self._dispatch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._dispatch = None

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

    # ---- background jobs and channels we placed -----------------------------------------

    async def background(self, command: str, timeout_s: float) -> str:
        """``bgapi <command>`` and its result (the BACKGROUND_JOB body: ``+OK …`` or
        ``-ERR …``). Raises EslNotConnected/EslError, or TimeoutError after ``timeout_s``."""
        client = self._require()
        job = str(uuid.uuid4())
        result: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._jobs[job] = result  # before sending: the event may come right after the reply
        try:
            await client.bgapi(command, job_uuid=job)
            async with asyncio.timeout(timeout_s):
                return await result
        finally:
            self._jobs.pop(job, None)

    async def api(self, command: str) -> str:
        reply = await self._require().api(command)
        return reply.text

    def watch_hangup(self, channel_uuid: str) -> asyncio.Future[str]:
        """Resolves with the channel's Hangup-Cause when CHANNEL_HANGUP_COMPLETE comes."""
        fut = self._hangups.get(channel_uuid)
        if fut is None:
            fut = self._hangups[channel_uuid] = asyncio.get_running_loop().create_future()
        return fut

    def unwatch_hangup(self, channel_uuid: str) -> None:
        self._hangups.pop(channel_uuid, None)

    def _require(self) -> EslInboundClient:
        if self._client is None:
            raise EslNotConnected("no HOTLINE_ESL_PASSWORD: the control connection is off")
        return self._client

    async def _dispatch_events(self, client: EslInboundClient) -> None:
        async for item in client.events():
            if not isinstance(item, EslEvent):
                continue
            if item.name == "BACKGROUND_JOB":
                fut = self._jobs.get(item.headers.get("Job-UUID", ""))
                if fut is not None and not fut.done():
                    fut.set_result(item.body)
            elif item.name == "CHANNEL_HANGUP_COMPLETE" and item.unique_id:
                waiting = self._hangups.get(item.unique_id)
                if waiting is not None and not waiting.done():
                    waiting.set_result(item.headers.get("Hangup-Cause") or item.headers.get("variable_hangup_cause")
                                       or "UNKNOWN")
