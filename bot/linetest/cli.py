"""`python -m bot linetest …`: run the simulated line-test unit, or try a test against a unit."""

from __future__ import annotations

import asyncio
import json

import typer
from aiohttp import web

from bot.settings import get_settings

linetest_app = typer.Typer(no_args_is_help=True, add_completion=False)


@linetest_app.callback()
def _group() -> None:
    """The line-test unit simulator."""
    # A callback keeps `linetest` a group: with a lone command Typer would fold it away
    # and `python -m bot linetest serve` would stop working once a second command is gone.


@linetest_app.command()
def serve(
    host: str | None = typer.Option(
        None, help="Address to listen on [default: settings.linetest_host]"
    ),
    port: int | None = typer.Option(None, help="Port [default: settings.linetest_port]"),
) -> None:
    """Run the simulated line-test unit (HTTP API v1, see bot/linetest/API.md)."""
    from bot.linetest.simulator import create_app
    from bot.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    web.run_app(
        app, host=host or settings.linetest_host, port=port or settings.linetest_port, print=None
    )


@linetest_app.command("test")
def test_number(
    number: str = typer.Argument(..., help="Canonical digits, e.g. 057187654321"),
    url: str | None = typer.Option(None, help="The unit's URL [default: settings.linetest_url]"),
    max_wait_s: float = typer.Option(30.0, help="Stop waiting after this many seconds"),
) -> None:
    """Run one test against the unit and print what it reports."""
    from bot.linetest.client import LineTestClient, LineTestUnavailable

    settings = get_settings()

    async def run() -> str:
        async with LineTestClient(url or settings.linetest_url) as client:
            test = await client.run(number, max_wait_s=max_wait_s)
        return json.dumps(test.model_dump(mode="json"), ensure_ascii=False, indent=2)

    try:
        typer.echo(asyncio.run(run()))
    except LineTestUnavailable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
