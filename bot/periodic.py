"""A background chore run every few seconds while a service lives, in every process.

Only for chores on one process's own memory (its web-chat conversations, which pages
still poll): work on the shared store is a job (bot/jobs/), run once by the leader."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def every(interval_s: float, chore: Callable[[], Awaitable[object]], failed_event: str) -> AsyncIterator[None]:
    """Run ``chore`` every ``interval_s`` until the block ends; a failing run is logged as
    ``failed_event`` and the next one still happens (a store hiccup must not stop it)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await chore()
            except Exception:  # noqa: BLE001 - the chore must outlive one failure
                log.exception(failed_event)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
