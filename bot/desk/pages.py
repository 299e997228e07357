"""Server-rendered desk pages (Jinja2). Autoescape is on for every template: callers'
and chat users' words (symptoms, transcripts, reasons) are shown inert (issue 4 §8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


local_time = i18n.local_time  # (value, tz, lang="en"): the centre's local time, in words of ``lang``
i18n.install(_env)


def language(request: web.Request, who: Any = None) -> str:
    """The page's language: the account's choice, else the desk's default (HOTLINE_DESK_LANGUAGE)."""
    chosen = getattr(who, "language", None)
    return i18n.language_of(chosen or request.app[SETTINGS_KEY].desk_language)


def refusal(request: web.Request, who: Any, code: str | None, reason: str) -> str:
    """Why the store refused, for the person: the words for its code (``error:<code>`` in
    the catalogue) in Mandarin, the store's own reason in English or for an unknown code."""
    lang = language(request, who)
    if lang != "en" and code:
        words = i18n.catalogue().get(f"error:{code}")
        if words is not None:
            return words
    return reason


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    # The operators' language (issue 14 item 5): Mandarin unless the account chose English.
    context.setdefault("lang", language(request, context.get("who")))
    html = _env.get_template(template).render(tz=request.app[SETTINGS_KEY].timezone, **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS)


def error_page(request: web.Request, status: int, title: str, message: str, **context: Any) -> web.Response:
    """``title`` and ``message`` are catalogue keys (English); ``message`` may hold
    ``{name}`` fields, filled from ``fields`` after translation (ids, names: never translated)."""
    context.setdefault("who", None)
    context.setdefault("fields", {})
    return render(request, "error.html", status=status, title=title, message=message, **context)


def redirect(location: str) -> web.Response:
    """303: after a POST the browser GETs the next page (no re-submit on reload)."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
