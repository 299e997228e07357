"""Signed survey links (U3 in web chat): ``/survey/<token>`` opens the survey in the chat
page. The token is the survey, a random nonce, the expiry and an HMAC-SHA256 over them
with the install's key; the store keeps the nonce of the one link that works (one use:
it is cleared when the link is opened, and a new link replaces it).

The key: ``HOTLINE_SURVEY_LINK_SECRET``, else one made per install and stored
(bot/store/survey_records.py InstallSecret), the same for every bot process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.settings import Settings
from bot.store import surveys
from bot.store.db import Database

SECRET_NAME = "survey_link"
_TOKEN = re.compile(r"^(\d{1,9})\.([A-Za-z0-9_-]{16,40})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class LinkClaim:
    survey_id: int
    nonce: str
    expires: datetime


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def _sign(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_token(key: bytes, survey_id: int, nonce: str, expires: datetime) -> str:
    message = f"{survey_id}.{nonce}.{int(expires.timestamp())}"
    return f"{message}.{_sign(key, message)}"


def read_token(key: bytes, token: str, now: datetime) -> LinkClaim | None:
    """The claim a well-signed, unexpired token makes; None for anything else."""
    m = _TOKEN.match(token or "")
    if m is None:
        return None
    survey_id, nonce, expires, signature = m.groups()
    if not hmac.compare_digest(signature, _sign(key, f"{survey_id}.{nonce}.{expires}")):
        return None
    when = datetime.fromtimestamp(int(expires), UTC)
    if when <= now:
        return None
    return LinkClaim(int(survey_id), nonce, when)


async def link_key(settings: Settings, db: Database) -> bytes:
    if settings.survey_link_secret is not None and settings.survey_link_secret.get_secret_value():
        return settings.survey_link_secret.get_secret_value().encode()
    return (await db.run(surveys.install_secret, SECRET_NAME, secrets.token_urlsafe(32))).encode()
