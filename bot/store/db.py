"""The database: engine, sessions, migrations, and a way to use it from asyncio.

SQLite (``var/hotline.db``) is the embedded default; PostgreSQL is chosen by
``HOTLINE_DATABASE_URL`` (design.md §3.8). SQLModel is synchronous, so request
handlers go through :meth:`Database.run`, which runs the work in a thread with its own
session and transaction: nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from aiohttp import web
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from bot.settings import Settings
from bot.store import stats as _stats_tables  # noqa: F401  (registers the statistics' tables)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """An engine plus sessions. ``url`` is any SQLAlchemy URL (``sqlite:///…`` or
    ``postgresql+psycopg://…``)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, parsed.database, echo)
        else:
            self.engine = create_engine(url, echo=echo, pool_pre_ping=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.database_url)

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"

    # ------------------------------------------------------------------ sessions

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        # expire_on_commit=False: results outlive the session (they cross threads).
        with Session(self.engine, expire_on_commit=False) as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def call(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(session, *args, **kwargs)`` in one transaction (synchronously)."""
        with self.session() as s:
            return fn(s, *args, **kwargs)

    async def run(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`call` in a worker thread, for use from the event loop."""
        return await asyncio.to_thread(functools.partial(self.call, fn, *args, **kwargs))

    # ---------------------------------------------------------------- migrations

    def alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (the app calls this at start-up)."""
        cfg = self.alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: str, database: str | None, echo: bool) -> Engine:
    memory = not database or database == ":memory:"
    if not memory:
        assert database is not None
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if memory:
        kwargs["poolclass"] = StaticPool  # one shared connection, or each would see an empty db
    engine = create_engine(url, echo=echo, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, issue BEGIN: pysqlite's own transaction handling
        # breaks SAVEPOINT, which the idempotent ticket create relies on.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE: take the write lock at the start, so two threads that both read
        # then write cannot deadlock on the lock upgrade (SQLite would fail one at once).
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """What Alembic compares with the models: not the knowledge base's search index kept
    outside them (migration 0008_i12d): SQLite's FTS5 tables (``kb_fts`` and its shadow
    tables), PostgreSQL's generated ``kb_search.tsv`` column and its index."""
    if type_ == "table" and name is not None and name.startswith("kb_fts"):
        return False
    table = getattr(getattr(obj, "table", None), "name", None)
    return not (table == "kb_search" and name in ("tsv", "ix_kb_search_tsv"))


DB_KEY = web.AppKey("db", Database)
