"""`python -m bot db upgrade`."""

from __future__ import annotations

import typer

db_app = typer.Typer(no_args_is_help=True, add_completion=False)


@db_app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Run the database migrations (to the newest schema by default)."""
    from bot.settings import get_settings
    from bot.store.db import Database

    db = Database.from_settings(get_settings())
    try:
        db.upgrade(revision)
    finally:
        db.dispose()
    typer.echo(f"database at {revision}: {db!r}")


@db_app.command("current")
def current_command() -> None:
    """Show the schema revision the database is at."""
    from alembic.migration import MigrationContext

    from bot.settings import get_settings
    from bot.store.db import Database

    db = Database.from_settings(get_settings())
    try:
        with db.engine.connect() as conn:
            typer.echo(MigrationContext.configure(conn).get_current_revision() or "(empty)")
    finally:
        db.dispose()
