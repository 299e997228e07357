"""Which survey a web chat opens (U3): the one a signed link names, or the one due for a
reporter who used this browser before (the page keeps a random id in localStorage).
Opening it is the survey's next attempt, asked in this conversation."""

from __future__ import annotations

import structlog

from bot.settings import Settings
from bot.store import surveys
from bot.store.db import Database
from bot.store.errors import ServiceError
from bot.store.models import utcnow
from bot.survey import links

log = structlog.get_logger(__name__)

NO_SURVEY = 0  # a link that is not ours: the dialogue says the survey is not open


async def survey_to_open(settings: Settings, db: Database, conversation_id: str, *, browser: str | None,
                         token: str | None) -> int | None:
    """The survey to start in this new conversation, or None for the main menu."""
    if token is not None:
        claim = links.read_token(await links.link_key(settings, db), token, utcnow())
        if claim is None:
            log.warning("survey.link_refused", conversation_id=conversation_id)
            return NO_SURVEY
        try:
            await db.run(surveys.use_link, claim.survey_id, claim.nonce, conversation_id)
        except ServiceError as exc:
            log.info("survey.link_not_usable", survey_id=claim.survey_id, reason=exc.reason)
        return claim.survey_id  # not claimed: the dialogue says it is answered or closed
    if browser is None:
        return None
    await db.run(surveys.remember_browser, conversation_id, browser)
    survey_id = await db.run(surveys.pending_for_browser, browser)
    if survey_id is not None and await db.run(surveys.claim_chat, survey_id, conversation_id, "webchat"):
        log.info("survey.chat_opened", survey_id=survey_id, conversation_id=conversation_id)
        return survey_id
    return None
