"""``POST /api/outbound-calls`` and ``GET /api/outbound-calls/{id}``: the bot's services
start a call, readers see how it went; bad input is a 4xx with a reason, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.api import outbound_calls as api
from bot.settings import Settings
from bot.store import service as store
from bot.store.db import Database
from tests.conftest import INTERNAL_AUTH, INTERNAL_TOKEN, AClient, make_test_app
from tests.fakes.freeswitch import FakeEslServer
from tests.fakes.voice_doubles import until
from voice.control import FreeswitchControl
from voice.outbound import OutboundCalls, OutboundSettings

PASSWORD = "esl-test-secret"
KNOWN = "057188001234"


@pytest.fixture
async def fs() -> AsyncIterator[FakeEslServer]:
    server = FakeEslServer(PASSWORD)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(aiohttp_client: AClient, tmp_path: Path, settings: Settings, fs: FakeEslServer) -> AsyncIterator[Any]:
    db = Database(f"sqlite:///{tmp_path / 'hotline.db'}")
    db.upgrade()
    db.call(store.record_outcome, store.OutcomeData("conv-1", "voice", "zh", "accepted", "A10", None, None, KNOWN))
    control = FreeswitchControl(settings.model_copy(update={
        "esl_password": SecretStr(PASSWORD), "fs_esl_listen_port": fs.port}))
    calls = OutboundCalls(control, db, OutboundSettings(dial_string="sofia/external/{number}@127.0.0.1:5099",
                                                        ring_timeout_s=1))
    app = make_test_app(db, settings)
    api.setup_routes(app)
    app[api.OUTBOUND_CALLS_KEY] = calls
    control.start()
    await until(lambda: control.connected, what="the control connection")
    yield await aiohttp_client(app, headers=INTERNAL_AUTH)
    await calls.stop()
    await control.close()
    db.dispose()


async def test_a_call_is_started_and_its_outcome_read(http: Any, fs: FakeEslServer) -> None:
    fs.callees[KNOWN] = "USER_BUSY"
    resp = await http.post("/api/outbound-calls", json={"number": "0571-8800 1234", "purpose": "test_call"})
    assert resp.status == 202, await resp.text()
    started = await resp.json()
    assert started["state"] == "dialing" and started["number"] == KNOWN
    for _ in range(100):
        row = await (await http.get(f"/api/outbound-calls/{started['id']}")).json()
        if row["state"] == "ended":
            break
        await asyncio.sleep(0.05)
    assert (row["result"], row["hangup_cause"]) == ("busy", "USER_BUSY")


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"number": "12", "purpose": "test_call"}, 400, "invalid_number"),
    ({"number": "call me", "purpose": "test_call"}, 400, "invalid_number"),
    ({"number": KNOWN, "purpose": "marketing"}, 400, None),
    ({"number": KNOWN, "purpose": "test_call", "dial_string": "sofia/gateway/x/1"}, 400, None),
    ({"number": KNOWN}, 400, None),
    ({"number": "057199999999", "purpose": "test_call"}, 422, "number_not_known"),
])
async def test_bad_requests_are_refused_with_a_reason(http: Any, fs: FakeEslServer, body: dict[str, Any],
                                                      status: int, error: str | None) -> None:
    resp = await http.post("/api/outbound-calls", json=body)
    assert resp.status == status, await resp.text()
    answer = await resp.json()
    assert answer["reason"]
    if error is not None:
        assert answer["error"] == error
    assert fs.originations == []


async def test_writing_takes_a_service_token_and_reading_a_reader(http: Any) -> None:
    resp = await http.post("/api/outbound-calls", json={"number": KNOWN, "purpose": "test_call"},
                           headers={"Authorization": "Bearer nope"})
    assert resp.status == 401
    assert (await http.get("/api/outbound-calls/1", headers={"Authorization": "Bearer nope"})).status == 401


async def test_reading_an_unknown_or_malformed_id(http: Any) -> None:
    assert (await http.get("/api/outbound-calls/999")).status == 404
    resp = await http.get("/api/outbound-calls/abc")  # an id that cannot exist is not found (issue 14)
    assert resp.status == 404 and "whole numbers" in (await resp.json())["reason"]


async def test_without_the_phone_the_api_says_why(aiohttp_client: AClient, tmp_path: Path, settings: Settings) -> None:
    db = Database(f"sqlite:///{tmp_path / 'off.db'}")
    db.upgrade()
    app: web.Application = make_test_app(db, settings)
    api.setup_routes(app)
    client = await aiohttp_client(app, headers=INTERNAL_AUTH)
    resp = await client.post("/api/outbound-calls", json={"number": KNOWN, "purpose": "test_call"})
    assert resp.status == 503 and "HOTLINE_ESL_PASSWORD" in (await resp.json())["reason"]
    db.dispose()


async def test_the_cli_places_a_call_and_waits_for_its_outcome(http: Any, fs: FakeEslServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m bot call test NUMBER` against the running bot's API."""
    from bot import outbound_cli

    monkeypatch.setattr(outbound_cli, "POLL_S", 0.05)
    fs.callees[KNOWN] = "CALL_REJECTED"
    url = str(http.make_url("/")).rstrip("/")
    code, row = await outbound_cli._place(url, INTERNAL_TOKEN, KNOWN, "zh", True, 10.0)
    assert code == 1 and (row["result"], row["hangup_cause"]) == ("rejected", "CALL_REJECTED")
    code, refused = await outbound_cli._place(url, INTERNAL_TOKEN, "057199999999", "zh", True, 10.0)
    assert code == 1 and refused["error"] == "number_not_known"
    code, unreachable = await outbound_cli._place("http://127.0.0.1:9", "x", KNOWN, "zh", True, 1.0)
    assert code == 2 and unreachable["error"] == "bot_unreachable"

