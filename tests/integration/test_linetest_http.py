"""The line-test unit over HTTP: the simulator's API (API.md) through aiohttp's test
client, and LineTestClient against the simulator and against misbehaving units.
Category: integration (local HTTP only; time from a ManualClock, no real waiting)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.linetest.client import LineTestClient, LineTestState, LineTestUnavailable
from bot.linetest.simulator import ManualClock, create_app
from bot.settings import Settings
from bot.world.schema import LineTestResultCode

FIXED = "057187654321"
BUSY = "057188880001"
QUICK = "057188880002"
AClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


def write_world(path: Path, lines: list[dict[str, Any]], mtime: float) -> None:
    doc = {"exchanges": [{"prefix": "0571", "name": "Hangzhou", "branch": "HZ"}], "lines": lines}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    os.utime(path, (mtime, mtime))


def break_world(path: Path, mtime: float) -> None:
    path.write_text("lines: [", encoding="utf-8")
    os.utime(path, (mtime, mtime))


WORLD_LINES = [
    {"number": FIXED, "owner": "A", "line_test": {"result": "open_circuit"}},
    {"number": BUSY, "owner": "B", "line_test": {"result": "earth_fault", "busy_s": 8}},
    {"number": QUICK, "owner": "C", "line_test": {"duration_s": 0}},
]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def world_file(tmp_path: Path) -> Path:
    path = tmp_path / "world.yml"
    write_world(path, WORLD_LINES, mtime=1_000_000)
    return path


@pytest.fixture
def settings(tmp_path: Path, world_file: Path) -> Settings:
    return Settings(
        world_file=world_file,
        current_world_file=tmp_path / "no-such" / "world.yml",
        linetest_heads=2,
        linetest_duration_s=3.0,
    )


@pytest.fixture
async def client(
    aiohttp_client: AClient, settings: Settings, clock: ManualClock
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(create_app(settings, clock, tick_s=None))


# --- the API --------------------------------------------------------------------------


async def test_a_test_runs_and_finishes(
    client: TestClient[web.Request, web.Application], clock: ManualClock
) -> None:
    resp = await client.post("/v1/tests", json={"number": FIXED})
    assert resp.status == 202
    body = await resp.json()
    assert set(body) >= {"id", "number", "state", "queued_at"}
    assert body["number"] == FIXED and body["state"] == "running"
    assert resp.headers["Location"] == f"/v1/tests/{body['id']}"

    clock.advance(3)
    resp = await client.get(f"/v1/tests/{body['id']}")
    assert resp.status == 200
    done = await resp.json()
    assert done["state"] == "done"
    assert done["result"] == "open_circuit"
    assert set(done["summary"]) == {"zh", "en"}
    assert done["measurements"]["loop_resistance_ohm"] >= 1e8
    assert done["queued_at"] and done["started_at"] and done["finished_at"]


async def test_busy_line_waits(
    client: TestClient[web.Request, web.Application], clock: ManualClock
) -> None:
    body = await (await client.post("/v1/tests", json={"number": BUSY})).json()
    assert body["state"] == "waiting"
    assert body["result"] is None and body["summary"] is None and body["measurements"] is None
    clock.advance(8)
    assert (await (await client.get(f"/v1/tests/{body['id']}")).json())["state"] == "running"
    clock.advance(3)
    done = await (await client.get(f"/v1/tests/{body['id']}")).json()
    assert (done["state"], done["result"]) == ("done", "earth_fault")


async def test_head_limit_and_healthz(
    client: TestClient[web.Request, web.Application], clock: ManualClock
) -> None:
    states = [
        (await (await client.post("/v1/tests", json={"number": FIXED})).json())["state"]
        for _ in range(3)
    ]
    assert states == ["running", "running", "waiting"]
    health = await (await client.get("/healthz")).json()
    assert health == {"status": "ok", "busy_heads": 2, "heads": 2, "waiting": 1}
    clock.advance(6)
    health = await (await client.get("/healthz")).json()
    assert (health["busy_heads"], health["waiting"]) == (0, 0)


async def test_mobile_is_done_at_once(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post("/v1/tests", json={"number": "13800138000"})
    assert resp.status == 202
    body = await resp.json()
    assert (body["state"], body["result"], body["measurements"]) == ("done", "cannot_test", None)


async def test_the_world_file_is_followed(
    client: TestClient[web.Request, web.Application], clock: ManualClock, world_file: Path
) -> None:
    async def result() -> str:
        body = await (await client.post("/v1/tests", json={"number": FIXED})).json()
        clock.advance(3)
        return str((await (await client.get(f"/v1/tests/{body['id']}")).json())["result"])

    assert await result() == "open_circuit"
    write_world(
        world_file,
        [{"number": FIXED, "owner": "A", "line_test": {"result": "cpe_fault"}}],
        mtime=1_000_010,
    )
    assert await result() == "cpe_fault"
    break_world(world_file, mtime=1_000_020)
    assert await result() == "cpe_fault"  # broken file: the previous world stays


@pytest.mark.parametrize(
    ("body", "reason_has"),
    [
        (b"{not json", "JSON"),
        (b"", "JSON"),
        (b'["057187654321"]', "object"),
        (b'{"number": "057187654321", "priority": 1}', "unknown field 'priority'"),
        (b"{}", "missing field 'number'"),
        (b'{"number": "0571-8765-4321"}', "digits"),
        (b'{"number": "\xef\xbc\x90571"}', "digits"),  # full-width digits are not canonical
        (b'{"number": 57187654321}', "number"),
        (b'{"number": ""}', "digits"),
    ],
)
async def test_bad_input_is_400_with_a_reason(
    client: TestClient[web.Request, web.Application], body: bytes, reason_has: str
) -> None:
    resp = await client.post("/v1/tests", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    err = await resp.json()
    assert err["error"] == "bad_request"
    assert reason_has in err["reason"]


async def test_unknown_test_is_404_with_a_reason(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/v1/tests/lt_nosuchtest")
    assert resp.status == 404
    err = await resp.json()
    assert err["error"] == "not_found" and "lt_nosuchtest" in err["reason"]


async def test_unknown_paths_and_methods_answer_json(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/v2/tests")
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await client.delete("/v1/tests")
    assert resp.status == 405 and "reason" in await resp.json()


async def test_forgotten_tests_are_404(
    aiohttp_client: AClient, settings: Settings, clock: ManualClock
) -> None:
    client = await aiohttp_client(create_app(settings, clock, retention_s=10, tick_s=None))
    body = await (await client.post("/v1/tests", json={"number": QUICK})).json()
    clock.advance(10)
    assert (await client.get(f"/v1/tests/{body['id']}")).status == 404


async def test_background_ticker_starts_and_stops(
    aiohttp_client: AClient, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(settings, tick_s=0.01))
    await asyncio.sleep(0.03)  # a few ticks; only checks they do no harm
    assert (await client.get("/healthz")).status == 200


# --- LineTestClient against the simulator ---------------------------------------------


def base_url(client: TestClient[web.Request, web.Application]) -> str:
    return str(client.make_url("/"))


async def test_client_start_and_get(
    client: TestClient[web.Request, web.Application], clock: ManualClock
) -> None:
    async with LineTestClient(base_url(client)) as ltc:
        started = await ltc.start(FIXED)
        assert started.state is LineTestState.running and not started.finished
        clock.advance(3)
        done = await ltc.get(started.id)
    assert done.finished and done.result is LineTestResultCode.open_circuit
    assert done.summary is not None and done.measurements is not None
    assert done.started_at is not None and done.finished_at is not None


async def test_client_run_returns_the_result(
    client: TestClient[web.Request, web.Application],
) -> None:
    async with LineTestClient(base_url(client)) as ltc:
        test = await ltc.run(QUICK, max_wait_s=1)
    assert test.state is LineTestState.done and test.result is LineTestResultCode.ok


async def test_client_run_gives_up_after_max_wait(
    client: TestClient[web.Request, web.Application],
) -> None:
    async with LineTestClient(base_url(client)) as ltc:  # the manual clock never moves
        test = await ltc.run(BUSY, max_wait_s=0.05, poll_interval_s=0.01)
    assert test.state is LineTestState.waiting and not test.finished


async def test_client_errors_from_the_simulator(
    client: TestClient[web.Request, web.Application],
) -> None:
    async with LineTestClient(base_url(client)) as ltc:
        with pytest.raises(LineTestUnavailable) as rejected:
            await ltc.start("not-a-number")
        assert rejected.value.reason == "rejected" and "digits" in rejected.value.detail
        with pytest.raises(LineTestUnavailable) as missing:
            await ltc.get("lt_nosuchtest")
        assert missing.value.reason == "not_found"
        assert (await ltc.health())["status"] == "ok"


async def test_client_keeps_a_session_it_was_given(
    client: TestClient[web.Request, web.Application],
) -> None:
    async with aiohttp.ClientSession() as session:
        async with LineTestClient(base_url(client), session=session) as ltc:
            await ltc.start(QUICK)
        assert not session.closed


# --- LineTestClient against units that misbehave --------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens here any more: connections are refused


async def test_unreachable_unit() -> None:
    async with LineTestClient(f"http://127.0.0.1:{closed_port()}", timeout_s=2) as ltc:
        with pytest.raises(LineTestUnavailable) as exc:
            await ltc.start(FIXED)
    assert exc.value.reason == "unreachable"


async def fake_unit(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_slow_unit_times_out() -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.json_response({})

    server = await fake_unit(hang)
    try:
        async with LineTestClient(str(server.make_url("/")), timeout_s=0.05) as ltc:
            with pytest.raises(LineTestUnavailable) as exc:
                await ltc.start(FIXED)
        assert exc.value.reason == "timeout"
    finally:
        never.set()
        await server.close()


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (
            lambda: web.json_response({"error": "boom", "reason": "head stuck"}, status=500),
            "server_error",
        ),
        (
            lambda: web.json_response({"error": "overloaded", "reason": "full"}, status=503),
            "server_error",
        ),
        (lambda: web.Response(text="<html>proxy error</html>", status=200), "bad_response"),
        (lambda: web.json_response(["not", "an", "object"]), "bad_response"),
        (lambda: web.json_response({"id": "x", "state": "exploded"}), "bad_response"),
    ],
    ids=["500", "503", "html", "array", "bad-shape"],
)
async def test_misbehaving_unit(response: Callable[[], web.Response], reason: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return response()

    server = await fake_unit(handler)
    try:
        async with LineTestClient(str(server.make_url("/"))) as ltc:
            with pytest.raises(LineTestUnavailable) as exc:
                await ltc.start(FIXED)
        assert exc.value.reason == reason
    finally:
        await server.close()
