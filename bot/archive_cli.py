"""`python -m bot archive run` (D1) and `python -m bot kb reindex|tasks` (D2)."""

from __future__ import annotations

import json
from datetime import date, datetime

import typer

archive_app = typer.Typer(no_args_is_help=True, add_completion=False)
kb_app = typer.Typer(no_args_is_help=True, add_completion=False)


def _day(raw: str | None, timezone: str) -> date:
    from bot.store.archive import nightly_day
    from bot.store.models import utcnow

    if raw is None:
        return nightly_day(utcnow(), timezone)
    try:
        return date.fromisoformat(raw)
    except ValueError as e:
        typer.echo(f"error: --day is a date YYYY-MM-DD, not {raw!r}", err=True)
        raise typer.Exit(2) from e


@archive_app.command("run")
def run_command(day: str = typer.Option(None, "--day", help="The night to archive (local date); default: "
                                                              "yesterday.")) -> None:
    """Archive a night now: the day's finished reports, outcomes and texts (idempotent:
    a night run twice adds nothing; whatever was missed before is taken too)."""
    from bot.settings import get_settings
    from bot.store.archive import archive_day
    from bot.store.db import Database

    settings = get_settings()
    night = _day(day, settings.timezone)
    db = Database.from_settings(settings)
    try:
        db.upgrade()
        summary = archive_day(db, night, timezone=settings.timezone)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    finally:
        db.dispose()
    typer.echo(json.dumps(summary.as_dict(), ensure_ascii=False))


@kb_app.command("reindex")
def reindex_command() -> None:
    """Rebuild the knowledge base's search words (after nlu/jieba/userdict.txt changed)."""
    from bot.settings import get_settings
    from bot.store import kb_search
    from bot.store.db import Database

    db = Database.from_settings(get_settings())
    try:
        db.upgrade()
        n = db.call(kb_search.reindex)
    finally:
        db.dispose()
    typer.echo(f"{n} article versions indexed")


@kb_app.command("tasks")
def tasks_command(overdue: bool = typer.Option(False, help="Only the overdue ones (Q4).")) -> None:
    """The hard-case tasks of the data manager: due, overdue, done (late or in time)."""
    from bot.settings import get_settings
    from bot.store import knowledge
    from bot.store.db import Database
    from bot.store.models import utc, utcnow

    settings = get_settings()
    db = Database.from_settings(settings)
    try:
        db.upgrade()
        db.call(knowledge.ensure_hard_case_tasks, settings.timezone)
        tasks = db.call(knowledge.list_tasks, overdue=True if overdue else None)
    finally:
        db.dispose()
    now = utcnow()
    for t in tasks:
        due: datetime = utc(t.due_at)
        typer.echo(f"{t.id}\t{knowledge.task_status(t, now)}\tdue {due.isoformat(timespec='minutes')}\t"
                   f"ticket {t.ticket_id or '-'}\t{t.reason[:60]}")
