"""`python -m bot stats generate|refresh|due`: a seeded year of data, the rollup's recount,
and the reports that are due."""

from __future__ import annotations

from datetime import UTC, date, datetime

import typer

stats_app = typer.Typer(no_args_is_help=True, add_completion=False)


@stats_app.command("generate")
def generate_command(
    conversations: int = typer.Option(1_000_000, "--conversations", min=1, help="How many conversations."),
    seed: int = typer.Option(1, "--seed", help="The same seed writes the same rows."),
    start: str = typer.Option("2025-12-21", "--start", help="First day (UTC), YYYY-MM-DD."),
    days: int = typer.Option(365, "--days", min=1, help="Spread over this many days."),
    database: str = typer.Option(None, "--database", help="A database URL (default: HOTLINE_DATABASE_URL)."),
) -> None:
    """Fill a (fresh) store with a seeded year of conversations, for the benchmark."""
    from bot.settings import get_settings
    from bot.stats.generate import generate
    from bot.store.db import Database

    db = Database(database or get_settings().database_url)
    try:
        db.upgrade()
        first = datetime.combine(date.fromisoformat(start), datetime.min.time(), tzinfo=UTC)
        totals = generate(db, conversations=conversations, seed=seed, start=first, days=days)
    finally:
        db.dispose()
    typer.echo(f"{totals.conversations} conversations, {totals.tickets} tickets, {totals.repeat_reports} repeat "
               f"reports, {totals.handoffs} handoffs; rows: {dict(totals.rows)}")


@stats_app.command("refresh")
def refresh_command(
    first: str = typer.Argument(..., help="First local day, YYYY-MM-DD."),
    last: str = typer.Argument(..., help="Last local day, YYYY-MM-DD."),
) -> None:
    """Recount the rollup of these days from the store (after a correction of old data)."""
    from zoneinfo import ZoneInfo

    from bot.settings import get_settings
    from bot.stats.rollup import refresh
    from bot.store.db import Database

    settings = get_settings()
    db = Database.from_settings(settings)
    try:
        db.upgrade()
        days = db.call(refresh, date.fromisoformat(first), date.fromisoformat(last), ZoneInfo(settings.timezone))
    finally:
        db.dispose()
    typer.echo(f"rollup of {first} … {last}: {days} days recounted")


@stats_app.command("due")
def due_command() -> None:
    """Generate the reports that are due now (what the schedule does), and recount the last days."""
    from bot.settings import get_settings
    from bot.stats.scheduled import options_of, recount_recent, reports_due
    from bot.store.db import Database

    settings = get_settings()
    db = Database.from_settings(settings)
    try:
        db.upgrade()
        db.call(recount_recent, options_of(settings))
        made = db.call(reports_due, options_of(settings))
    finally:
        db.dispose()
    typer.echo(f"reports generated: {made or 'none'}")
