"""One turn at a time per conversation (issue 14).

A second input for a conversation whose turn is still running waits for it, at most
``HOTLINE_CHAT_TURN_WAIT_S``; past that it is refused (:class:`TurnInProgress`, the chat
API's 409 "a reply is still on its way"). Without this, concurrent inputs queued on
Rasa's own per-conversation lock until the bot's timeout fired (503s, 10-s stalls), and
the inputs' order was whatever the network made of it.

Two levels:

- in this process, an ``asyncio.Lock`` per conversation id: the fast path, and all there
  is with SQLite (one bot process);
- across bot processes sharing PostgreSQL, a session-level advisory lock per
  conversation, all taken on one connection of this process's own
  (:class:`PostgresTurnLocks`). A process that dies drops its connection and PostgreSQL
  frees its locks at once: a conversation is never left locked by a dead bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from bot.chat.dialogue import DialogueUnavailable

log = structlog.get_logger(__name__)

TURN_IN_PROGRESS_REASON = "a reply is still on its way"


class TurnInProgress(DialogueUnavailable):
    """Another turn of this conversation is still running (and did not end in time)."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"{TURN_IN_PROGRESS_REASON} (conversation {conversation_id})")
        self.conversation_id = conversation_id


BUSY_REASON = "many conversations at once just now; try again in a moment"


class DialogueBusy(DialogueUnavailable):
    """Every dialogue slot of this bot process stayed taken for the whole turn wait."""

    def __init__(self) -> None:
        super().__init__(BUSY_REASON)


class DialogueCapacity:
    """At most ``max_turns`` inputs of this process in the dialogue at once. Rasa handles
    a turn at a time per core; more at once only queue inside it until the bot's timeout
    (the 503s and 20-s waits of an overload). An input that finds no slot within the turn
    wait is refused at once (the chat API's 429, "try again in a moment")."""

    def __init__(self, max_turns: int, wait_s: float) -> None:
        self._slots = asyncio.Semaphore(max_turns)
        self.wait_s = wait_s

    @contextlib.asynccontextmanager
    async def slot(self, *, bounded: bool = True) -> AsyncIterator[None]:
        """``bounded=False``: a turn already under way (A8's polls) waits as long as it takes."""
        if bounded:
            try:
                await asyncio.wait_for(self._slots.acquire(), timeout=self.wait_s)
            except TimeoutError:
                raise DialogueBusy() from None
        else:
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()


class SharedLocks(Protocol):
    """The cross-process part: try to take, and give back, one conversation's lock."""

    async def try_acquire(self, conversation_id: str) -> bool: ...

    async def release(self, conversation_id: str) -> None: ...

    async def close(self) -> None: ...


@dataclass
class _Local:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class TurnLocks:
    """``async with locks.turn(conversation_id): …`` — one at a time, waiting at most ``wait_s``."""

    POLL_S = (0.01, 0.02, 0.05, 0.1)  # backoff while another process holds the shared lock

    def __init__(self, wait_s: float, shared: SharedLocks | None = None) -> None:
        self.wait_s = wait_s
        self.shared = shared
        self._local: dict[str, _Local] = {}

    def busy(self, conversation_id: str) -> bool:
        entry = self._local.get(conversation_id)
        return entry is not None and entry.lock.locked()

    @contextlib.asynccontextmanager
    async def turn(self, conversation_id: str) -> AsyncIterator[None]:
        deadline = time.monotonic() + self.wait_s
        entry = self._local.setdefault(conversation_id, _Local())
        entry.users += 1
        try:
            try:
                await asyncio.wait_for(entry.lock.acquire(), timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise TurnInProgress(conversation_id) from None
            try:
                shared = await self._take_shared(conversation_id, deadline)
                try:
                    yield
                finally:
                    if shared and self.shared is not None:
                        await self.shared.release(conversation_id)
            finally:
                entry.lock.release()
        finally:
            entry.users -= 1
            if entry.users == 0:
                self._local.pop(conversation_id, None)

    async def _take_shared(self, conversation_id: str, deadline: float) -> bool:
        if self.shared is None:
            return False
        attempt = 0
        while True:
            try:
                if await self.shared.try_acquire(conversation_id):
                    return True
            except Exception as exc:  # noqa: BLE001 - the store's trouble must not stop the chat
                # Without PostgreSQL the store is down too; this process's own lock still holds.
                log.warning("chat.turn_lock_unavailable", conversation_id=conversation_id, error=str(exc)[:200])
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                raise TurnInProgress(conversation_id)
            await asyncio.sleep(min(left, self.POLL_S[min(attempt, len(self.POLL_S) - 1)]))
            attempt += 1

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()


def advisory_key(conversation_id: str) -> int:
    """A conversation's advisory lock key: 63 bits of its SHA-256 (collisions: two
    conversations would merely take turns with each other)."""
    digest = hashlib.sha256(b"hotline.chat.turn:" + conversation_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class PostgresTurnLocks:
    """Session-level advisory locks on one connection of this process (autocommit), so a
    lock is held for the whole turn without holding a pool connection per conversation."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: Any = None
        self._use = asyncio.Lock()  # one statement at a time on the connection

    async def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True, connect_timeout=5)
        return self._conn

    async def _scalar(self, sql: str, key: int) -> Any:
        async with self._use:
            for attempt in (1, 2):
                conn = await self._connection()
                try:
                    cur = await conn.execute(sql, (key,))
                    row = await cur.fetchone()
                    return row[0] if row else None
                except Exception:
                    # A dropped connection took its locks with it; reconnect once.
                    with contextlib.suppress(Exception):
                        await conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
        return None

    async def try_acquire(self, conversation_id: str) -> bool:
        return bool(await self._scalar("SELECT pg_try_advisory_lock(%s)", advisory_key(conversation_id)))

    async def release(self, conversation_id: str) -> None:
        try:
            await self._scalar("SELECT pg_advisory_unlock(%s)", advisory_key(conversation_id))
        except Exception as exc:  # noqa: BLE001 - a lost connection released it already
            log.warning("chat.turn_unlock_failed", conversation_id=conversation_id, error=str(exc)[:200])

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None


def turn_locks_for(database_url: str, wait_s: float) -> TurnLocks:
    """Local locks always; with PostgreSQL (several bot processes may share it) also the
    advisory locks."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return TurnLocks(wait_s)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return TurnLocks(wait_s, PostgresTurnLocks(conninfo))
