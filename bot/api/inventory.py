"""What the dialogue's actions ask about a number (A4–A6): the inventory API.

``GET /api/inventory/lines/{digits}`` answers, in one call, everything the flow needs
to choose its branch: is the prefix known (A4), is the fault repaired or caused by
engineering works (A5), is there an open fault to add a repeat report to (A6).
"""

from __future__ import annotations

from aiohttp import web

from bot.api.auth import require_personal_reader
from bot.api.errors import canonical_number, number_digits
from bot.settings import SETTINGS_KEY
from bot.store import service
from bot.store.db import DB_KEY
from telnum import check_number


async def line(request: web.Request) -> web.Response:
    await require_personal_reader(request)  # the line's owner is personal data
    number, kind = canonical_number(request.match_info["digits"], request.app[SETTINGS_KEY].local_area_code)
    return web.json_response(await request.app[DB_KEY].run(service.lookup_number, number, kind))


async def prefix(request: web.Request) -> web.Response:
    """A4 alone: which exchange serves these digits, if any. Takes a full number or just
    leading digits (no length check), so a UI can check a prefix as it is typed."""
    raw = request.match_info["digits"]
    digits = number_digits(raw)
    # A whole local number gets its area code; a partial one is looked up as given.
    number = check_number(digits, request.app[SETTINGS_KEY].local_area_code).canonical or digits
    exchange = await request.app[DB_KEY].run(service.exchange_for, number)
    return web.json_response(
        {"digits": number, "known": exchange is not None, "exchange": service.exchange_dict(exchange)}
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/inventory/lines/{digits}", line)
    app.router.add_get("/api/inventory/prefixes/{digits}", prefix)
