"""U3 by phone: "place attempt N of survey S" (:meth:`SurveyCaller.place_attempt`), the
one function a due job calls, and what the end of each call means.

An attempt is placed only inside the calling hours (``HOTLINE_SURVEY_CALLING_HOURS``,
local time) and never on the reporter's quiet days; otherwise it is moved to the next
allowed time. A number on the do-not-call list is never called. Attempt N is claimed in
the store before the call (attempt N of a survey happens once, whichever process runs
the job). The call itself is the outbound mechanism's (voice/outbound.py, purpose
``survey``); when it has ended, :meth:`call_ended` settles the attempt: not reached
(no answer, busy, rejected, failed, or answered with nothing said: a voicemail box) →
the next attempt ``HOTLINE_SURVEY_RETRY_HOURS`` later, after the last
(``HOTLINE_SURVEY_ATTEMPTS``) → unreachable.

The next attempt is a due job (:class:`DueJobs`, the scheduler's ``schedule_once``);
:meth:`sweep` also places whatever is due and expires web-chat surveys nobody came
back for, for a periodic job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from bot.store import surveys
from bot.store.db import Database
from bot.store.errors import ServiceError
from bot.store.models import utcnow
from bot.store.survey_records import FIRST_CALL_JOB, SurveyChannel, SurveyState
from telnum import mask_number

log = structlog.get_logger(__name__)

ATTEMPT_JOB = FIRST_CALL_JOB  # due job "survey_call": {"survey_id", "attempt"}
SWEEP_JOB = "survey_sweep"  # periodic: what is due, and web-chat surveys to expire
REFUSED_RETRY = timedelta(minutes=10)  # the switch down, the line limit: try again this soon
SOON = timedelta(minutes=1)  # a start this close counts as now


class Placer(Protocol):
    """The outbound calls (voice.outbound.OutboundCalls)."""

    on_ended: dict[str, Callable[[dict[str, Any]], Awaitable[None]]]

    async def place(self, number: str, purpose: str, *, ref_id: str | None = None,
                    requested_by: str | None = None, language: Any = "zh") -> dict[str, Any]: ...


class DueJobs(Protocol):
    """The scheduler's due jobs: run ``kind`` with ``payload`` at ``run_at``, once per ``key``."""

    async def schedule_once(self, kind: str, key: str, run_at: datetime, payload: dict[str, Any]) -> object: ...


def attempt_key(survey_id: int, attempt: int, *, moved_to: datetime | None = None) -> str:
    """``survey-17-2``: the second attempt of survey 17. An attempt moved to a later time
    (outside the calling hours, the call refused) is a new job: its key names the time."""
    key = f"survey-{survey_id}-{attempt}"
    return key if moved_to is None else f"{key}-at-{int(moved_to.timestamp())}"


class SurveyCaller:
    def __init__(self, db: Database, rules: surveys.SurveyRules, calls: Placer | None,
                 jobs: DueJobs | None = None, now: Callable[[], datetime] = utcnow) -> None:
        self.db, self.rules, self.calls, self.jobs, self._now = db, rules, calls, jobs, now

    async def start(self, calls: Placer | None = None) -> None:
        """Follow survey calls' ends (on ``calls``, the phone's outbound calls, once it is
        up); settle the attempts whose calls ended while the bot was not running."""
        self.calls = calls or self.calls
        if self.calls is not None:
            self.calls.on_ended["survey"] = self.call_ended
        for survey_id, n, call in await self.db.run(surveys.unfinished_calls):
            await self._settle(survey_id, n, call)

    # ---- the due job -----------------------------------------------------------

    async def place_attempt(self, survey_id: int, attempt: int) -> str:
        """Attempt ``attempt`` of survey ``survey_id``, now if allowed. Returns what
        happened: placed, deferred, taken (not due for it: done, or another process),
        do_not_call, refused (the call could not be placed: due again soon)."""
        now = self._now()
        survey = await self.db.run(surveys.get, survey_id)
        if (survey.state != SurveyState.due.value or survey.attempts_made != attempt - 1
                or survey.channel != SurveyChannel.phone.value or survey.number is None):
            return "taken"
        if await self.db.run(surveys.refuse_do_not_call, survey_id):
            log.info("survey.do_not_call", survey_id=survey_id)
            return "do_not_call"
        allowed = self.rules.next_call_time(now, await self.db.run(surveys.quiet_days_of, survey.number))
        if allowed > now + SOON:
            await self.db.run(surveys.defer, survey_id, allowed, "outside the calling hours or a quiet day")
            await self._schedule(survey_id, attempt, allowed, moved=True)
            return "deferred"
        if self.calls is None:
            # No phone here (HOTLINE_ESL_PASSWORD unset): the survey stays due; the sweep
            # places it once the phone is there.
            log.warning("survey.no_outbound_calls", survey_id=survey_id)
            return "no_phone"
        claimed = await self.db.run(surveys.claim_attempt, survey_id, attempt, channel="phone",
                                    asked_by="bot (phone)", now=now)
        if claimed is None:
            return "taken"
        from voice.outbound import OutboundRefused  # voice/ loads only when the phone is on

        try:
            call = await self.calls.place(survey.number, "survey", ref_id=str(survey_id), requested_by="survey",
                                          language=survey.language)
        except (OutboundRefused, ServiceError) as exc:
            await self._refused(survey_id, attempt, now, str(exc))
            return "refused"
        await self.db.run(surveys.attach_call, survey_id, attempt, int(call["id"]), call.get("channel_uuid"))
        log.info("survey.calling", survey_id=survey_id, attempt=attempt, outbound_id=call["id"],
                 number=mask_number(survey.number))
        return "placed"

    async def _refused(self, survey_id: int, attempt: int, now: datetime, why: str) -> None:
        at = now + REFUSED_RETRY
        log.warning("survey.call_not_placed", survey_id=survey_id, attempt=attempt, reason=why)
        await self.db.run(surveys.release_attempt, survey_id, attempt, at, f"call not placed: {why}")
        await self._schedule(survey_id, attempt, at, moved=True)

    # ---- the end of a call -------------------------------------------------------

    async def call_ended(self, call: dict[str, Any]) -> None:
        """voice/outbound.py: a survey call ended and its outcome is stored."""
        found = await self.db.run(surveys.attempt_of_call, int(call["id"]))
        if found is None:
            return
        await self._settle(*found, call)

    async def _settle(self, survey_id: int, n: int, call: dict[str, Any]) -> None:
        after = await self.db.run(surveys.call_ended, survey_id, n, str(call.get("result") or "failed"),
                                  call.get("hangup_cause"), self.rules, now=self._now())
        log.info("survey.attempt_ended", survey_id=survey_id, attempt=n, result=call.get("result"),
                 hangup_cause=call.get("hangup_cause"), state=after.state, next_attempt=after.next_attempt)
        if after.next_attempt is not None and after.next_at is not None:
            await self._schedule(survey_id, after.next_attempt, after.next_at)

    # ---- periodic ----------------------------------------------------------------

    async def sweep(self) -> int:
        """Web-chat surveys nobody came back for go to the phone (or end unreachable);
        then every phone attempt that is due is placed. Returns how many were placed."""
        for survey_id, attempt, at in await self.db.run(surveys.expire_chat_surveys, self.rules, self._now()):
            await self._schedule(survey_id, attempt, at)
        due = await self.db.run(surveys.due_phone_surveys, self._now())
        if due and self.calls is None:
            log.warning("survey.calls_waiting_for_the_phone", due=len(due))  # once a sweep, not per survey
            return 0
        placed = 0
        for survey_id, attempt in due:
            placed += await self.place_attempt(survey_id, attempt) == "placed"
        return placed

    async def _schedule(self, survey_id: int, attempt: int, at: datetime, *, moved: bool = False) -> None:
        if self.jobs is not None:
            await self.jobs.schedule_once(ATTEMPT_JOB, attempt_key(survey_id, attempt, moved_to=at if moved else None),
                                          at, {"survey_id": survey_id, "attempt": attempt})

