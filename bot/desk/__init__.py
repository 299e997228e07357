"""The operator desk (issue 4): server-rendered pages for the people behind the bot —
junior and senior operators, measurement centres, the manager hotline, admins."""

from __future__ import annotations

from bot.desk.views import setup_routes

__all__ = ["setup_routes"]
