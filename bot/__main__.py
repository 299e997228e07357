"""`python -m bot …`: the command line. Each area owns its sub-commands."""

from __future__ import annotations

import typer

from bot.cli import app

if __name__ == "__main__":
    app()

__all__ = ["typer"]
