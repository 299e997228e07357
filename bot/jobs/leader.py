"""Who runs the scheduler: exactly one process per database, the *leader*.

APScheduler 3's job stores must not be shared by two running schedulers, so every bot
process tries to take the lead and only the one that holds it starts its scheduler:

* PostgreSQL: a session-level ``pg_try_advisory_lock`` held on a connection of its own.
  The server drops the lock with the session, so a leader that dies (even SIGKILL)
  frees it at once; TCP keepalives on that session make a vanished host free it within
  about half a minute rather than hours.
* SQLite: an exclusive ``flock`` on a file beside the database file
  (``hotline.db.jobs-leader``); the kernel drops it when the process dies.
* An in-memory SQLite database lives in one process: that process leads.

The methods block (a round trip to the database); the scheduler calls them in a
worker thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO, Protocol

import structlog
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

log = structlog.get_logger(__name__)

# One lock per database (PostgreSQL's advisory locks are per database): a fixed 64-bit key.
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"hotline.jobs.leader").digest()[:8], "big", signed=True)


class Leadership(Protocol):
    description: str

    def try_acquire(self) -> bool:
        """Take the lead if nobody holds it; True if this process holds it now."""

    def held(self) -> bool:
        """Whether this process still holds the lead it took."""

    def release(self) -> None:
        """Let go (stopping, or the lead was lost)."""


class PostgresLeadership:
    def __init__(self, url: str) -> None:
        self.description = "PostgreSQL advisory lock"
        # NullPool: the lock belongs to one connection, never handed back to a pool.
        self._engine = create_engine(url, poolclass=NullPool)
        self._conn: Connection | None = None
        self._holding = False

    def try_acquire(self) -> bool:
        if self._holding:
            return self.held()
        try:
            if self._conn is None:
                conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                for setting, value in (("tcp_keepalives_idle", 10), ("tcp_keepalives_interval", 5),
                                       ("tcp_keepalives_count", 3)):
                    conn.execute(text(f"SET {setting} = {value}"))
                self._conn = conn
            got = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                          {"key": ADVISORY_LOCK_KEY}).scalar())
        except Exception as exc:  # noqa: BLE001 - the database is away: try again later
            log.warning("jobs.leader_lock_unavailable", error=str(exc)[:300])
            self._close()
            return False
        self._holding = got
        return got

    def held(self) -> bool:
        if not self._holding or self._conn is None:
            return False
        try:
            # The session is alive, so its lock is still ours.
            self._conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:  # noqa: BLE001 - a dead session has lost its lock
            log.error("jobs.leader_session_lost", error=str(exc)[:300])
            self._close()
            return False

    def release(self) -> None:
        if self._holding and self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
        self._close()

    def _close(self) -> None:
        self._holding = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


class FileLeadership:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"file lock {path}"
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open while leading
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")  # for people: who leads
        f.flush()
        self._file = f
        return True

    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class SoleLeadership:
    """An in-memory database: nobody else can see it, so this process leads."""

    description = "in-memory database (one process)"

    def __init__(self) -> None:
        self._held = False

    def try_acquire(self) -> bool:
        self._held = True
        return True

    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        self._held = False


def leadership_for(url: str) -> Leadership:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresLeadership(url)
    database = parsed.database
    if not database or database == ":memory:":
        return SoleLeadership()
    return FileLeadership(Path(f"{database}.jobs-leader"))
