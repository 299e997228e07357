"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, worlds, a test app.

``db`` is parametrised: every test that uses it runs once on a fresh SQLite file and
once on PostgreSQL (marked ``postgres``; skipped with the reason when no server answers
at ``HOTLINE_TEST_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).
PostgreSQL gets one fresh database per test session (``hotline_test_<random>``), dropped
at the end; tables are emptied between tests.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import bot.jobs.models  # noqa: F401  (their tables are emptied between tests too)
import bot.sla.models  # noqa: F401
import bot.store.archive  # noqa: F401  (tables on SQLModel.metadata: emptied between tests)
import bot.store.calendar  # noqa: F401
import bot.store.knowledge  # noqa: F401
import bot.store.quality  # noqa: F401
from bot.api import inventory, records, tickets
from bot.api.errors import error_middleware
from bot.boundary import install_request_ids, request_id_middleware
from bot.settings import SETTINGS_KEY, Settings
from bot.store.db import DB_KEY, Database
from bot.world.loader import load_world
from bot.world.parse import parse_world_file
from bot.world.schema import World

# tests/actions run in Rasa's virtualenv (Python 3.10, rasa_sdk); `make test` runs them there.
collect_ignore = [] if importlib.util.find_spec("rasa_sdk") else ["actions"]

REPO_ROOT = Path(__file__).resolve().parent.parent
WORLDS = REPO_ROOT / "tests" / "fixtures" / "worlds"
DEMO_WORLD = REPO_ROOT / "bot" / "world" / "demo.yml"
PG_ADMIN_URL = os.environ.get("HOTLINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

AClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    admin_url = make_url(PG_ADMIN_URL)
    shown = admin_url.render_as_string(hide_password=True)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        conn = admin.connect()
    except Exception as e:  # any driver error means "not here"
        pytest.skip(f"PostgreSQL not reachable at {shown}: {type(e).__name__}: {str(e).strip()[:200]}")
    name = f"hotline_test_{uuid.uuid4().hex[:10]}"
    conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        db = Database(url)
        db.upgrade()
        db.dispose()
        yield url
    finally:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.close()
        admin.dispose()


def _empty_postgres(db: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'hotline.db'}")
        database.upgrade()
    else:
        database = Database(request.getfixturevalue("pg_url"))
        _empty_postgres(database)
    try:
        yield database
    finally:
        database.dispose()


INTERNAL_TOKEN = "internal-secret"
INTERNAL_AUTH = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",  # tests hand the app its `db`
        current_world_file=tmp_path / "var" / "world.yml",
        public_url="http://bot.test",
        local_area_code="0571",
        centre_open_hours="00:00-24:00",
        timezone="Asia/Shanghai",
        recordings_dir=tmp_path / "recordings",
        call_recordings_dir=tmp_path / "call-recordings",  # the retention sweep deletes there
        staff_api_token="staff-secret",
        internal_api_token=INTERNAL_TOKEN,
    )


@pytest.fixture(scope="session")
def demo_world() -> World:
    return parse_world_file(DEMO_WORLD)


@pytest.fixture
def demo_db(db: Database, demo_world: World, settings: Settings) -> Database:
    """``db`` with the demo world loaded."""
    load_world(db, demo_world, current_file=settings.current_world_file)
    return db


def make_test_app(db: Database, settings: Settings) -> web.Application:
    """What bot/app.py does for these APIs, without the chat, Rasa or start-up migration."""
    app = web.Application(middlewares=[request_id_middleware, error_middleware])
    install_request_ids(app)
    app[SETTINGS_KEY] = settings
    app[DB_KEY] = db
    tickets.setup_routes(app)
    inventory.setup_routes(app)
    records.setup_routes(app)
    return app


@pytest.fixture
async def client(aiohttp_client: AClient, demo_db: Database, settings: Settings) -> Any:
    """A test client on the APIs, with the demo world loaded, calling as the action
    server does (the internal token); a request can send its own Authorization."""
    return await aiohttp_client(make_test_app(demo_db, settings), headers=INTERNAL_AUTH)


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """A test that runs a CLI configures logging for the process; the next test starts
    from structlog's defaults again (so log capture sees every level)."""
    yield
    import structlog

    structlog.reset_defaults()


DESK_TEST_PASSWORD = "desk-password-1"


@pytest.fixture(scope="session")
def password_hash() -> str:
    """The desk tests' accounts' password, hashed once: argon2 is slow on purpose."""
    from bot.desk.users import hash_password

    return hash_password(DESK_TEST_PASSWORD)


# ---- the suite on two worker processes (pytest-xdist, `make test` runs -n 2 --dist loadgroup)
# The end-to-end tests share one worker, in order, as they ran before: one Rasa stack for all
# of them (and test_zz_outages last, which leaves Rasa stopped). The browser tests are one
# unit too (one Chromium at a time), and every other module is one, so a module's fixtures
# are built once.
WHOLE_DIRS = ("e2e", "browser")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        relative = item.path.relative_to(tests_dir) if item.path.is_relative_to(tests_dir) else item.path
        group = relative.parts[0] if relative.parts[0] in WHOLE_DIRS else str(relative)
        item.add_marker(pytest.mark.xdist_group(group))
