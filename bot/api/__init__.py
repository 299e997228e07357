"""The bot's HTTP APIs. Each module has ``setup_routes(app)``; handlers find the
database at ``app[DB_KEY]`` and the settings at ``app[SETTINGS_KEY]``."""

from __future__ import annotations

from aiohttp import web


def setup_routes(app: web.Application) -> None:
    """All of this package's routes: tickets (TMF621), inventory, records, the workflow."""
    from bot.api import inventory, records, tickets, workflow

    tickets.setup_routes(app)
    inventory.setup_routes(app)
    records.setup_routes(app)
    workflow.setup_routes(app)
