"""The operator desk (issue 4): server-rendered pages for the people behind the bot —
junior and senior operators, measurement centres, the manager hotline, admins."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


def setup_routes(app: web.Application) -> None:
    # Imported here, so that using a piece of the desk (its word catalogue, in the
    # statistics' charts) does not load every page.
    from bot.desk.views import setup_routes as views_routes

    views_routes(app)


__all__ = ["setup_routes"]
