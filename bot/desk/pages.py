"""Server-rendered desk pages (Jinja2). Autoescape is on for every template: callers'
and chat users' words (symptoms, transcripts, reasons) are shown inert (issue 4 §8)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.desk import i18n
from bot.settings import SETTINGS_KEY

TEMPLATES_DIR = Path(__file__).parent / "templates"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,  # every template, whatever its file name
    undefined=StrictUndefined,  # a misspelt field fails the tests instead of showing nothing
    trim_blocks=True,
    lstrip_blocks=True,
)

# Scripts only from our own files (the live chat's poller, /static/desk-live.js), none
# inline; inline styles only (the base template's <style>); audio (call recordings) from us.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
        "img-src 'self'; media-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # pages carry callers' data and CSRF tokens
}


def local_time(value: Any, tz: str) -> str:
    """A stored time (aware datetime, ISO string or Rasa's epoch seconds) in the
    centre's local time."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


_env.filters["when"] = local_time
i18n.install(_env)


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    # The operators' language: English until the desk's catalogue covers every page (issue 14).
    context.setdefault("lang", "en")
    html = _env.get_template(template).render(tz=request.app[SETTINGS_KEY].timezone, **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS)


def error_page(request: web.Request, status: int, title: str, message: str, **context: Any) -> web.Response:
    context.setdefault("who", None)
    return render(request, "error.html", status=status, title=title, message=message, **context)


def redirect(location: str) -> web.Response:
    """303: after a POST the browser GETs the next page (no re-submit on reload)."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
