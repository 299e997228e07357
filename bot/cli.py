"""The command-line tree: `python -m bot serve|run|chat|world|db|linetest|call`."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="hotline: fault-reporting bot")


def _register() -> None:
    # Imported here so `--help` stays fast and each area keeps its own commands.
    from bot.archive_cli import archive_app, kb_app
    from bot.console import chat_command
    from bot.desk.cli import users_app
    from bot.linetest.cli import linetest_app
    from bot.models_fetch import models_app
    from bot.outbound_cli import call_app
    from bot.serve import run_command, serve_command
    from bot.stats.cli import stats_app
    from bot.store.cli import db_app
    from bot.world.cli import world_app

    app.add_typer(world_app, name="world", help="Load and check world files.")
    app.add_typer(db_app, name="db", help="Database migrations.")
    app.add_typer(linetest_app, name="linetest", help="The line-test unit simulator.")
    app.add_typer(models_app, name="models", help="Download and list speech models (Vosk, Piper).")
    app.add_typer(users_app, name="users", help="Operator desk accounts.")
    app.add_typer(call_app, name="call", help="Calls the bot places (a test call).")
    app.add_typer(archive_app, name="archive", help="The nightly archive (D1): run a night now.")
    app.add_typer(kb_app, name="kb", help="The knowledge base (D2): search index, hard-case tasks.")
    app.add_typer(stats_app, name="stats", help="Statistics: a seeded year of data, the rollup, due reports.")
    app.command("chat", help="Talk to the bot in this terminal.")(chat_command)
    app.command("serve", help="Run the bot's HTTP server.")(serve_command)
    app.command("run", help="Start the whole stack (Rasa, actions, line-test unit, bot).")(run_command)
    app.command("train", help="Train the dialogue model if nlu/ changed.")(train_command)
    app.command("test-dialogue", help="Run the Rasa test stories (nlu/tests).")(test_dialogue_command)
    app.command("nlu-report", help="Summarise `rasa test nlu` and score the natural test sets.")(nlu_report_command)


def train_command(force: bool = typer.Option(False, help="Train even if nlu/ did not change.")) -> None:
    from bot.dialogue_model import ensure_trained
    from bot.settings import get_settings

    ensure_trained(get_settings(), force=force)


def test_dialogue_command() -> None:
    from bot.dialogue_model import test_dialogue
    from bot.settings import get_settings

    raise typer.Exit(test_dialogue(get_settings()))


def nlu_report_command(
    report: Path,
    natural: bool = typer.Option(True, help="Also score the trained model on tests/nlu/natural_*.yml."),
    folds: int = typer.Option(5, help="How many folds the cross-validation report was made with."),
) -> None:
    from bot.dialogue_model import natural_report, nlu_report
    from bot.settings import get_settings

    if report.exists():
        print(nlu_report(report))
    if natural:
        print("\nHeld-out natural test sets (tests/nlu/, issue 13 item 7):\n")
        print(natural_report(get_settings(), report.parent, report, folds))


_register()
