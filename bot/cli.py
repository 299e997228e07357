"""The command-line tree: `python -m bot serve|run|chat|world|db|linetest`."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="hotline: fault-reporting bot")


def _register() -> None:
    # Imported here so `--help` stays fast and each area keeps its own commands.
    from bot.console import chat_command
    from bot.linetest.cli import linetest_app
    from bot.serve import run_command, serve_command
    from bot.store.cli import db_app
    from bot.world.cli import world_app

    app.add_typer(world_app, name="world", help="Load and check world files.")
    app.add_typer(db_app, name="db", help="Database migrations.")
    app.add_typer(linetest_app, name="linetest", help="The line-test unit simulator.")
    app.command("chat", help="Talk to the bot in this terminal.")(chat_command)
    app.command("serve", help="Run the bot's HTTP server.")(serve_command)
    app.command("run", help="Start the whole stack (Rasa, actions, line-test unit, bot).")(run_command)


_register()
