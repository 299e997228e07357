"""Alembic environment, configured in code by :meth:`bot.store.db.Database.upgrade`.

No alembic.ini: the URL (and, from the app, an open connection) comes in through the
Config object. SQLite needs batch mode to alter tables, so it is always on there.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlmodel import SQLModel

import bot.jobs.models  # noqa: F401  (the scheduler's tables)
import bot.sla.models  # noqa: F401  (the deadline watch's tables)
import bot.store.archive  # noqa: F401  (D1)
import bot.store.calendar  # noqa: F401
import bot.store.knowledge  # noqa: F401  (D2)
import bot.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
import bot.store.quality  # noqa: F401  (Q1-Q8)
import bot.store.stats  # noqa: F401
import bot.store.survey_records  # noqa: F401  (the survey's tables, U3-U5)
from bot.store.db import include_object

config = context.config
target_metadata = SQLModel.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    engine = create_engine(url)
    with engine.begin() as conn:
        _configure(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
