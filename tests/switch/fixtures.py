"""Fixtures of the real-switch tier, shared by ``tests/switch`` and the end-to-end tests
(which run the real switch in front of the real stack).

``freeswitch_build`` finds FreeSWITCH (or skips with how to get one; in CI, where
``.ci/run`` installs everything, a missing switch fails instead). ``start_switch`` starts
a FreeSWITCH with this repository's tree in front of a bot's ESL port, one per test, and
stops it afterwards; ``SwitchEvents`` watches its channels over the inbound event socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.ports import random_block
from tests.switch.freeswitch_process import (
    HOW_TO_GET_ONE,
    FreeswitchBuild,
    FreeswitchProcess,
    find_freeswitch,
)
from tests.switch.rtp import RtpSniffer
from tests.switch.sipp import SIPP
from voice.esl.inbound import EslInboundClient
from voice.esl.protocol import EslEvent


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the real-switch tier must run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def freeswitch_build() -> FreeswitchBuild:
    build = find_freeswitch()
    if build is None:
        _missing(HOW_TO_GET_ONE)
    if SIPP is None:
        _missing("sipp is not installed: apt-get install sip-tester")
    if not RtpSniffer.available():
        _missing("hearing the caller's RTP needs a packet socket on loopback (run as root, or give python CAP_NET_RAW)")
    assert build is not None
    return build


StartSwitch = Callable[..., FreeswitchProcess]


@pytest.fixture
def start_switch(freeswitch_build: FreeswitchBuild, tmp_path: Path) -> Iterator[StartSwitch]:
    started: list[FreeswitchProcess] = []

    def start(bot_esl_port: int, **extra_env: str) -> FreeswitchProcess:
        rtp = random_block(20000, 29000, 100)
        fs = FreeswitchProcess(freeswitch_build, tmp_path / f"freeswitch{len(started)}", bot_esl_port=bot_esl_port,
                               rtp_range=(rtp, rtp + 99), extra_env=extra_env)
        started.append(fs)
        fs.start()
        return fs

    yield start
    for fs in started:
        fs.stop()


class SwitchEvents:
    """Channel events of one switch, as its inbound event socket sends them."""

    NAMES = ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
             "CHANNEL_HANGUP_COMPLETE", "RECORD_START", "RECORD_STOP", "DTMF")

    def __init__(self, fs: FreeswitchProcess) -> None:
        self.fs = fs
        self.events: list[EslEvent] = []
        self._client = EslInboundClient(fs.ESL_PASSWORD, "127.0.0.1", fs.ports.esl)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._client.connect()
        await self._client.subscribe(*self.NAMES)
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for item in self._client.events():
            if isinstance(item, EslEvent):
                self.events.append(item)

    async def api(self, command: str) -> str:
        return (await self._client.api(command)).text.strip()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._client.close()

    # -- what a test asks, by the caller's SIP Call-ID --
    def of_call(self, sip_call_id: str) -> list[EslEvent]:
        uuids = {e.headers.get("Unique-ID") for e in self.events if e.headers.get("variable_sip_call_id") == sip_call_id}
        return [e for e in self.events if e.headers.get("Unique-ID") in uuids]

    def uuid_of(self, sip_call_id: str) -> str | None:
        return next((e.headers.get("Unique-ID") for e in self.events if e.headers.get("variable_sip_call_id") == sip_call_id), None)

    def executed(self, sip_call_id: str, app: str) -> list[EslEvent]:
        return [e for e in self.of_call(sip_call_id)
                if e.name == "CHANNEL_EXECUTE" and e.headers.get("Application") == app]

    def hangup_cause(self, sip_call_id: str) -> str | None:
        done = [e for e in self.of_call(sip_call_id) if e.name == "CHANNEL_HANGUP_COMPLETE"]
        return done[-1].headers.get("Hangup-Cause") if done else None


@contextlib.asynccontextmanager
async def switch_events(fs: FreeswitchProcess) -> AsyncIterator[SwitchEvents]:
    watch = SwitchEvents(fs)
    await watch.start()
    try:
        yield watch
    finally:
        await watch.close()
