"""The bot's client for the line-test unit (design.md §3.9, API in ``API.md``).

The unit is an external system reached only over HTTP, so that the simulator in
``simulator.py`` and a real unit (through an adapter speaking the same API) are
interchangeable. Everything the dialogue needs to know about a failure is one exception,
``LineTestUnavailable``, with a short reason code: the dialogue reacts the same way
(go on without a result) whatever went wrong, but the logs and metrics say what it was.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import Enum
from types import TracebackType
from typing import Any, Literal

import aiohttp
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.world.schema import Bilingual, LineTestResultCode
from telnum import mask_number

log = structlog.get_logger(__name__)

Measurement = float | str | None


class LineTestState(str, Enum):
    waiting = "waiting"  # queued: the unit is busy with other work or has no free head (A8)
    running = "running"  # a test head is on the line
    done = "done"  # finished with a result (which may be ``cannot_test``, e.g. a mobile)
    failed = "failed"  # the unit could not complete the test; result is ``cannot_test``

    @property
    def finished(self) -> bool:
        return self in (LineTestState.done, LineTestState.failed)


class LineTest(BaseModel):
    """One test as the unit reports it: the wire format of ``GET /v1/tests/{id}``.

    Extra fields are ignored so a real unit's adapter may send more than we read.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    number: str
    state: LineTestState
    result: LineTestResultCode | None = None
    summary: Bilingual | None = None
    measurements: dict[str, Measurement] | None = None
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.state.finished


UnavailableReason = Literal[
    "unreachable",  # connection refused, DNS, reset
    "timeout",  # no answer within the client's timeout
    "server_error",  # 5xx, including 503 when the unit's queue is full
    "rejected",  # 4xx on start: the unit refuses this number
    "not_found",  # 404 on get: the unit forgot the test (restart, or too old)
    "bad_response",  # an answer we cannot read
]


class LineTestUnavailable(Exception):
    """The unit gave no usable answer. ``reason`` is one of ``UnavailableReason``."""

    def __init__(self, reason: UnavailableReason, detail: str = "") -> None:
        super().__init__(
            f"line-test unit unavailable: {reason}" + (f" ({detail})" if detail else "")
        )
        self.reason: UnavailableReason = reason
        self.detail = detail


class LineTestClient:
    """Async client: ``start(number)``, ``get(test_id)``, and ``run`` to wait for a result.

    Pass an ``aiohttp.ClientSession`` to share the bot's connection pool; without one the
    client owns a session, created on first use and closed by ``close()`` / ``async with``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def __aenter__(self) -> LineTestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created lazily: a ClientSession must be made inside a running event loop.
            self._session = aiohttp.ClientSession()
        return self._session

    async def start(self, number: str) -> LineTest:
        """Ask the unit to test ``number`` (canonical digits). The test may be ``waiting``."""
        data = await self._request("POST", "/v1/tests", json={"number": number}, on_4xx="rejected")
        test = self._parse(data)
        log.info(
            "linetest.started", test_id=test.id, number=mask_number(number), state=test.state.value
        )
        return test

    async def get(self, test_id: str) -> LineTest:
        data = await self._request("GET", f"/v1/tests/{test_id}", on_4xx="not_found")
        return self._parse(data)

    async def health(self) -> dict[str, Any]:
        return await self._request("GET", "/healthz", on_4xx="bad_response")

    async def run(
        self, number: str, *, max_wait_s: float, poll_interval_s: float = 0.5
    ) -> LineTest:
        """A8: start a test and wait for it, up to ``max_wait_s``.

        Returns the last state seen, which is not finished if the wait ran out; the caller
        decides what to say then (the dialogue goes on and the ticket gets no result).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_s
        test = await self.start(number)
        while not test.finished:
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.info("linetest.wait_expired", test_id=test.id, state=test.state.value)
                break
            await asyncio.sleep(min(poll_interval_s, remaining))
            test = await self.get(test.id)
        return test

    async def _request(
        self,
        method: str,
        path: str,
        *,
        on_4xx: UnavailableReason,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = self._base + path
        try:
            async with self._get_session().request(
                method, url, json=json, timeout=self._timeout
            ) as resp:
                if resp.status >= 500:
                    raise LineTestUnavailable(
                        "server_error", f"HTTP {resp.status}{await _reason(resp)}"
                    )
                if resp.status >= 400:
                    raise LineTestUnavailable(on_4xx, f"HTTP {resp.status}{await _reason(resp)}")
                body = await resp.json(content_type=None)
        except LineTestUnavailable:
            raise
        except TimeoutError as exc:  # aiohttp raises asyncio.TimeoutError == TimeoutError on 3.11
            raise LineTestUnavailable("timeout", f"{method} {path}") from exc
        except aiohttp.ClientConnectionError as exc:
            raise LineTestUnavailable("unreachable", f"{type(exc).__name__}: {exc}") from exc
        except (aiohttp.ClientError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise LineTestUnavailable("bad_response", f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(body, dict):
            raise LineTestUnavailable("bad_response", "expected a JSON object")
        return body

    @staticmethod
    def _parse(data: dict[str, Any]) -> LineTest:
        try:
            return LineTest.model_validate(data)
        except ValidationError as exc:
            raise LineTestUnavailable("bad_response", str(exc.errors(include_url=False))) from exc


async def _reason(resp: aiohttp.ClientResponse) -> str:
    """The ``reason`` from an error body, if the unit sent one (for the logs)."""
    try:
        body = await resp.json(content_type=None)
    except (aiohttp.ClientError, ValueError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("reason"), str):
        return f": {body['reason']}"
    return ""
