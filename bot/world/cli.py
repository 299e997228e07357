"""`python -m bot world load|check FILE`."""

from __future__ import annotations

from pathlib import Path

import typer

world_app = typer.Typer(no_args_is_help=True, add_completion=False)

_FILE = typer.Argument(..., help="The world file (YAML).", show_default=False)


@world_app.command("check")
def check_command(file: Path = _FILE) -> None:
    """Validate a world file without loading it."""
    from bot.world.parse import WorldFileError, parse_world_file

    try:
        world = parse_world_file(file)
    except WorldFileError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e
    typer.echo(
        f"{file}: ok — {len(world.exchanges)} exchanges, {len(world.lines)} lines, "
        f"{len(world.engineering_works)} engineering works, {len(world.open_faults)} open faults"
    )


@world_app.command("load")
def load_command(
    file: Path = _FILE,
    reset: bool = typer.Option(False, "--reset", help="Also delete every ticket, report, outcome and handoff."),
) -> None:
    """Load a world file into the database (replacing the previous world)."""
    from bot.settings import get_settings
    from bot.world.loader import load_world_file
    from bot.world.parse import WorldFileError

    try:
        summary = load_world_file(file, reset, get_settings())
    except WorldFileError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e
    typer.echo(f"loaded {summary}")
