"""A simulated line-test unit (design.md §3.9): its own small aiohttp service.

The bot reaches the unit only over HTTP (``settings.linetest_url``), so a real unit can
take the simulator's place. What the simulator answers comes from the world file: each
line's ``line_test`` says the result, how long the unit is busy before it can start
(A8 "wait for the test"), and how long the test takes.

Time is never slept on. Every state is computed from an injectable clock: a test's
timeline (queued → started → finished) is derived whenever someone looks, by replaying
the head scheduling up to "now". Tests drive a ``ManualClock`` and never wait for real
seconds; production uses the system clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import random
import secrets
import string
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bot.boundary import (
    ApiError,
    install_request_ids,
    internal_error,
    parse_json_bytes,
    read_body,
    request_id_middleware,
    require_json_type,
)
from bot.linetest.client import LineTest, LineTestState, Measurement
from bot.linetest.results import summary_for
from bot.settings import Settings
from bot.world.parse import WorldFileError, parse_world_file
from bot.world.schema import Bilingual, LineTestResultCode, World
from telnum import mask_number

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware (UTC)."""


def system_clock() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to, for tests (and for demos in slow motion)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2024, 1, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# --- realistic measurements -------------------------------------------------------------

OVER_RANGE_OHM = 100_000_000.0  # what the meter reads with no loop at all (open circuit)
_OHM_PER_KM = 280.0  # loop resistance of a 0.4 mm copper pair, both legs
_NF_PER_KM = 50.0  # tip-ring mutual capacitance of a typical twisted pair
_RINGER_NF = 470.0  # an on-hook telephone's ringer capacitor seen across the pair


def measurements_for(code: LineTestResultCode, number: str) -> dict[str, Measurement] | None:
    """What a metallic line test would read for a line with this result.

    Values vary a little from line to line (the loop length is drawn from the number, so
    one line always gives the same readings) and match the fault: an open circuit has no
    loop and little capacitance (only the cable up to the break), an earth fault has low
    insulation to ground on one leg, and so on. ``None`` when nothing was measured.
    """
    if code is LineTestResultCode.cannot_test:
        return None
    rng = random.Random(hashlib.sha256(f"{number}:{code.value}".encode()).digest())
    length_km = rng.uniform(0.8, 3.5)  # exchange to the customer's premises

    def good_insulation() -> float:
        return round(rng.uniform(50.0, 500.0), 1)  # healthy pairs read tens to hundreds of MΩ

    m: dict[str, Measurement] = {
        "loop_resistance_ohm": round(length_km * _OHM_PER_KM + rng.uniform(-15, 15)),
        "insulation_tip_ring_mohm": good_insulation(),
        "insulation_tip_ground_mohm": good_insulation(),
        "insulation_ring_ground_mohm": good_insulation(),
        "capacitance_nf": round(length_km * _NF_PER_KM + _RINGER_NF + rng.uniform(-20, 20)),
        "foreign_dc_v": round(rng.uniform(0.0, 0.5), 1),
        "foreign_ac_v": round(rng.uniform(0.0, 0.3), 1),
        "cpe": "on_hook",  # terminal equipment signature: on_hook | off_hook | faulty | not_detected
        "fault_distance_m": None,  # estimated distance from the exchange to the fault
    }
    if code is LineTestResultCode.open_circuit:
        # No DC loop; only the cable between the exchange and the break is charged, so
        # the capacitance gives the distance to the break, and no ringer is seen.
        break_km = length_km * rng.uniform(0.05, 0.6)
        m["loop_resistance_ohm"] = OVER_RANGE_OHM
        m["capacitance_nf"] = round(break_km * _NF_PER_KM, 1)
        m["cpe"] = "not_detected"
        m["fault_distance_m"] = round(break_km * 1000, -1)
    elif code is LineTestResultCode.short_circuit:
        # Tip and ring touch: the loop closes at the short, capacitance cannot be read.
        short_km = length_km * rng.uniform(0.05, 0.6)
        loop = short_km * _OHM_PER_KM
        m["loop_resistance_ohm"] = round(loop)
        m["insulation_tip_ring_mohm"] = round(loop / 1e6, 6)
        m["capacitance_nf"] = None
        m["cpe"] = "not_detected"
        m["fault_distance_m"] = round(short_km * 1000, -1)
    elif code is LineTestResultCode.earth_fault:
        leg = rng.choice(["insulation_tip_ground_mohm", "insulation_ring_ground_mohm"])
        m[leg] = round(rng.uniform(0.01, 0.3), 3)  # wet cable or damaged sheath
    elif code is LineTestResultCode.high_resistance:
        # A corroded joint or loose connection adds resistance in series with the loop.
        m["loop_resistance_ohm"] = round(length_km * _OHM_PER_KM + rng.uniform(1500, 6000))
    elif code is LineTestResultCode.foreign_voltage:
        # Contact with another pair (DC battery) or induction from power lines (AC).
        m["foreign_dc_v"] = round(rng.uniform(15.0, 55.0), 1)
        m["foreign_ac_v"] = round(rng.uniform(8.0, 60.0), 1)
        m["insulation_tip_ground_mohm"] = round(rng.uniform(1.0, 5.0), 2)
        m["insulation_ring_ground_mohm"] = round(rng.uniform(1.0, 5.0), 2)
    elif code is LineTestResultCode.cpe_fault:
        # The pair is sound to ground, but the equipment at the end leaks across the
        # pair and shows no proper ringer: the fault is in the customer's equipment.
        m["insulation_tip_ring_mohm"] = round(rng.uniform(0.02, 0.2), 3)
        m["capacitance_nf"] = round(length_km * _NF_PER_KM + rng.uniform(2500, 4000))
        m["cpe"] = "faulty"
    return m


# --- the unit's core: queue, heads, results (no I/O) -----------------------------------


def is_mobile(number: str) -> bool:
    """Mobile numbers are 11 digits starting with 1; a copper line test does not apply."""
    return len(number) == 11 and number.startswith("1")


@dataclass
class _Test:
    id: str
    number: str
    seq: int
    queued_at: datetime
    ready_at: datetime  # when the unit is free of the line's other work (busy_s)
    duration: timedelta
    result: LineTestResultCode
    state: LineTestState = LineTestState.waiting
    started_at: datetime | None = None
    finished_at: datetime | None = None
    measurements: dict[str, Measurement] | None = field(default=None)

    def view(self) -> LineTest:
        finished = self.state.finished
        return LineTest(
            id=self.id,
            number=self.number,
            state=self.state,
            result=self.result if finished else None,
            summary=Bilingual.model_validate(summary_for(self.result.value)) if finished else None,
            measurements=self.measurements if finished else None,
            queued_at=self.queued_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
        )


class UnitOverloaded(Exception):
    """More tests waiting than the unit will queue."""


class LineTestUnit:
    """The simulated unit: a queue in front of ``heads`` test heads.

    A test waits until its line's ``busy_s`` has passed (the unit busy with other work on
    it) and a head is free, then runs for its duration. Waiting tests take free heads in
    the order they became ready. Finished tests are forgotten after ``retention_s``, or
    sooner when more than ``max_finished`` are kept, so memory stays bounded.
    """

    def __init__(
        self,
        *,
        heads: int,
        default_duration_s: float,
        clock: Clock = system_clock,
        retention_s: float = 3600.0,
        max_finished: int = 10_000,
        max_queued: int = 1_000,
    ) -> None:
        if heads < 1:
            raise ValueError("the unit needs at least one test head")
        self.heads = heads
        self.default_duration = timedelta(seconds=default_duration_s)
        self.clock = clock
        self.retention = timedelta(seconds=retention_s)
        self.max_finished = max_finished
        self.max_queued = max_queued
        self._seq = 0
        self._waiting: list[_Test] = []
        self._running: list[_Test] = []
        self._finished: OrderedDict[str, _Test] = OrderedDict()  # in finishing order
        self._by_id: dict[str, _Test] = {}
        # The replay has reached this instant; nothing before it can change any more.
        self._cursor = clock()

    # public -------------------------------------------------------------------------

    def submit(self, number: str, world: World | None) -> LineTest:
        now = self.advance()
        self._seq += 1
        test_id = _new_id()
        if is_mobile(number):
            # Nothing to put a head on: answered at once, no head or queue place used.
            test = _Test(
                test_id, number, self._seq, now, now, timedelta(0), LineTestResultCode.cannot_test
            )
            test.state, test.started_at, test.finished_at = LineTestState.done, now, now
            self._by_id[test_id] = test
            self._finished[test_id] = test
            log.info("linetest.mobile", test_id=test_id, number=mask_number(number))
            return test.view()
        if len(self._waiting) + len(self._running) >= self.max_queued:
            raise UnitOverloaded(f"{self.max_queued} tests already queued")
        line = world.line(number) if world is not None else None
        behaviour = line.line_test if line is not None else None
        result = behaviour.result if behaviour is not None else LineTestResultCode.ok
        busy = timedelta(seconds=behaviour.busy_s) if behaviour is not None else timedelta(0)
        duration = (
            timedelta(seconds=behaviour.duration_s)
            if behaviour is not None and behaviour.duration_s is not None
            else self.default_duration
        )
        test = _Test(test_id, number, self._seq, now, now + busy, duration, result)
        self._by_id[test_id] = test
        self._waiting.append(test)
        log.info(
            "linetest.queued",
            test_id=test_id,
            number=mask_number(number),
            in_world=line is not None,
            busy_s=busy.total_seconds(),
        )
        self.advance()  # a ready test with a free head starts right away
        return test.view()

    def get(self, test_id: str) -> LineTest | None:
        self.advance()
        test = self._by_id.get(test_id)
        return test.view() if test is not None else None

    def status(self) -> tuple[int, int]:
        """(busy heads, waiting tests) now."""
        self.advance()
        return len(self._running), len(self._waiting)

    def advance(self) -> datetime:
        """Replay heads and queue up to the clock's now, in time order. Returns now."""
        now = self.clock()
        while True:
            next_finish = min(self._running, key=_finish_time, default=None)
            next_start: _Test | None = None
            if len(self._running) < self.heads and self._waiting:
                next_start = min(self._waiting, key=lambda t: (t.ready_at, t.seq))
            finish_at = _finish_time(next_finish) if next_finish is not None else None
            start_at = max(next_start.ready_at, self._cursor) if next_start is not None else None
            # Finishing first at equal times frees the head for a test starting then.
            if (
                finish_at is not None
                and finish_at <= now
                and (start_at is None or finish_at <= start_at)
            ):
                assert next_finish is not None
                self._finish(next_finish, finish_at)
            elif start_at is not None and start_at <= now:
                assert next_start is not None
                self._start(next_start, start_at)
            else:
                break
        self._cursor = max(self._cursor, now)
        self._forget(now)
        return now

    # internals ------------------------------------------------------------------------

    def _start(self, test: _Test, at: datetime) -> None:
        self._cursor = at
        self._waiting.remove(test)
        self._running.append(test)
        test.state, test.started_at = LineTestState.running, at
        log.info(
            "linetest.running",
            test_id=test.id,
            number=mask_number(test.number),
            waited_s=(at - test.queued_at).total_seconds(),
        )

    def _finish(self, test: _Test, at: datetime) -> None:
        self._cursor = at
        self._running.remove(test)
        # ``cannot_test`` on a fixed line is the world's way of saying "the unit failed".
        failed = test.result is LineTestResultCode.cannot_test
        test.state = LineTestState.failed if failed else LineTestState.done
        test.finished_at = at
        test.measurements = measurements_for(test.result, test.number)
        self._finished[test.id] = test
        log.info(
            "linetest.finished",
            test_id=test.id,
            number=mask_number(test.number),
            state=test.state.value,
            result=test.result.value,
            ran_s=test.duration.total_seconds(),
        )

    def _forget(self, now: datetime) -> None:
        while self._finished:
            oldest = next(iter(self._finished.values()))
            assert oldest.finished_at is not None
            if (
                oldest.finished_at + self.retention > now
                and len(self._finished) <= self.max_finished
            ):
                break
            del self._finished[oldest.id]
            del self._by_id[oldest.id]


def _new_id() -> str:
    # Letters only: the log masker takes any run of 7+ digits for a phone number, and
    # a test id must stay readable in the logs to follow one test.
    return "lt_" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(16))


def _finish_time(test: _Test) -> datetime:
    assert test.started_at is not None
    return test.started_at + test.duration


# --- following the world file -----------------------------------------------------------


class WorldFollower:
    """The world the simulator answers from, reloaded when its file changes.

    ``paths`` says which file is current (it may change: the bot writes the world it
    loaded to ``current_world_file``). A change is noticed by the file's path, mtime and
    size, checked once per call — a ``stat``, cheap enough for the event loop. Parsing
    runs in a thread. A broken file keeps the previous world, logs an error, and is not
    parsed again until it changes.
    """

    def __init__(
        self,
        paths: Callable[[], Path],
        parse: Callable[[Path], World] = parse_world_file,
    ) -> None:
        self._paths = paths
        self._parse = parse
        self._world: World | None = None
        self._seen: tuple[str, int, int] | None = None
        self._lock = asyncio.Lock()

    @property
    def world(self) -> World | None:
        return self._world

    async def current(self) -> World | None:
        path = self._paths()
        try:
            st = path.stat()
        except OSError:
            key = None
        else:
            key = (str(path), st.st_mtime_ns, st.st_size)
        if key is None or key == self._seen:
            if key is None and self._seen is not None:
                log.error("linetest.world_missing", path=str(path))
                self._seen = None
            return self._world
        async with self._lock:
            if key == self._seen:  # another request reloaded it while we waited
                return self._world
            try:
                world = await asyncio.to_thread(self._parse, path)
            except WorldFileError as exc:
                log.error(
                    "linetest.world_invalid",
                    path=str(path),
                    error=str(exc),
                    kept_previous=self._world is not None,
                )
            else:
                self._world = world
                log.info(
                    "linetest.world_loaded", path=str(path), name=world.name, lines=len(world.lines)
                )
            self._seen = key
        return self._world


def world_path_for(settings: Settings) -> Callable[[], Path]:
    """The world the bot last loaded if there is one, else the configured world file."""

    def current() -> Path:
        loaded = settings.current_world_file
        return loaded if loaded.exists() else settings.world_file

    return current


# --- HTTP -----------------------------------------------------------------------------


class _StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    number: str

    @field_validator("number")
    @classmethod
    def _canonical(cls, value: str) -> str:
        if not (value.isascii() and value.isdigit() and 3 <= len(value) <= 20):
            raise ValueError("must be 3-20 ASCII digits, canonical form (e.g. 057187654321)")
        return value


# Chinese summaries stay readable on the wire (UTF-8), not \u escapes.
_dumps = functools.partial(json.dumps, ensure_ascii=False)


def _error(status: int, error: str, reason: str) -> web.Response:
    return web.json_response({"error": error, "reason": reason}, status=status, dumps=_dumps)


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown field '{where}'")
        elif err["type"] == "missing":
            parts.append(f"missing field '{where}'")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{where}: {msg}")
    return "; ".join(parts)


UNIT_KEY = web.AppKey("linetest_unit", LineTestUnit)
WORLD_KEY = web.AppKey("linetest_world", WorldFollower)


def _dump(test: LineTest) -> dict[str, object]:
    return test.model_dump(mode="json")


async def start_test(request: web.Request) -> web.Response:
    try:
        require_json_type(request)
        body = parse_json_bytes(await read_body(request))
    except ApiError as exc:
        return _error(exc.status, "bad_request" if exc.status == 400 else exc.code, exc.reason)
    if not isinstance(body, dict):
        return _error(
            400, "bad_request", 'body must be a JSON object like {"number": "057187654321"}'
        )
    try:
        req = _StartRequest.model_validate(body)
    except ValidationError as exc:
        return _error(400, "bad_request", _validation_reason(exc))
    world = await request.app[WORLD_KEY].current()
    try:
        test = request.app[UNIT_KEY].submit(req.number, world)
    except UnitOverloaded as exc:
        return _error(503, "overloaded", str(exc))
    return web.json_response(
        _dump(test), status=202, headers={"Location": f"/v1/tests/{test.id}"}, dumps=_dumps
    )


async def get_test(request: web.Request) -> web.Response:
    test_id = request.match_info["test_id"]
    test = request.app[UNIT_KEY].get(test_id)
    if test is None:
        return _error(
            404, "not_found", f"no test '{test_id}': unknown, or finished long ago and forgotten"
        )
    return web.json_response(_dump(test), dumps=_dumps)


async def healthz(request: web.Request) -> web.Response:
    unit = request.app[UNIT_KEY]
    busy, waiting = unit.status()
    return web.json_response(
        {"status": "ok", "busy_heads": busy, "heads": unit.heads, "waiting": waiting}
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown paths and methods answer in the API's error shape, not aiohttp's HTML."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, "not_found" if exc.status == 404 else "bad_request", exc.reason)
    except Exception:
        log.exception("linetest.unhandled_error", method=request.method, path=request.path)
        return internal_error(request)


def _ticker(interval_s: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """Background task (aiohttp cleanup_ctx): moves the unit along between requests so
    its log lines appear when tests start and finish, and old tests are forgotten even
    when nobody asks."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def tick() -> None:
            while True:
                await asyncio.sleep(interval_s)
                app[UNIT_KEY].advance()

        task = asyncio.create_task(tick())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


def create_app(
    settings: Settings,
    clock: Clock | None = None,
    *,
    world_paths: Callable[[], Path] | None = None,
    retention_s: float = 3600.0,
    max_finished: int = 10_000,
    tick_s: float | None = 1.0,
) -> web.Application:
    """The simulator as an aiohttp app. ``clock`` and ``world_paths`` are for tests;
    ``tick_s=None`` turns off the background ticker."""
    app = web.Application(middlewares=[request_id_middleware, _json_errors])
    install_request_ids(app)
    app[UNIT_KEY] = LineTestUnit(
        heads=settings.linetest_heads,
        default_duration_s=settings.linetest_duration_s,
        clock=clock or system_clock,
        retention_s=retention_s,
        max_finished=max_finished,
    )
    app[WORLD_KEY] = WorldFollower(world_paths or world_path_for(settings))
    app.router.add_post("/v1/tests", start_test)
    app.router.add_get("/v1/tests/{test_id}", get_test)
    app.router.add_get("/healthz", healthz)
    if tick_s is not None:
        app.cleanup_ctx.append(_ticker(tick_s))
    return app
