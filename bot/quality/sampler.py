"""Q1: what each post did on a day, and the sample an inspector checks.

Every post's work, as the store recorded it (one *item* per piece of work):

=============  ==========  ==============================================================
post           kind        the item
=============  ==========  ==============================================================
junior/senior  contact     a caller an operator took and finished (Q2: its recording and
                           transcript), by the queue it came through
junior/senior  decision    a dispatch request, chase or return (withdraw) (J5/J6/S1)
senior         review      a junior's dispatch reviewed: dispatched or not needed (S2)
senior         grade       a junior's transfer graded (S3)
english        contact     a contact held in English (Q7), whichever queue it came through
surveyor       warning     a dispatch warned at 80 % of its deadline (U1)
surveyor       alarm       a dispatch alarmed at its deadline (U2)
surveyor       chase       the deadline watch's chase (U2)
surveyor       survey      a satisfaction survey finished (U3–U5)
datamanager    article     a knowledge-base article version written (D2, Q4)
datamanager    task        a hard case due that day or done that day, late or not (D2, Q4)
statistician   report      a statistics report submitted (T5, Q5)
machine        conversation the bot's own conversation, handled without a person (A1–A11)
=============  ==========  ==============================================================

The daily draw (a job, :func:`daily`) takes from each post and kind the share
``HOTLINE_QA_SAMPLE_RATE`` (5 %, rounded up, so at least one wherever there was work)
of the day before, with a random generator seeded by ``HOTLINE_QA_SEED``, the day, the
post and the kind: the same store gives the same sample. A post's draw for a day happens
once (``qa_batch.daily_key``), and an item is never sampled twice (``qa_sample``'s
unique (kind, ref)): a spot check (:func:`spot_check`) draws only from what was not
sampled yet.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import and_, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.sla.models import DeadlineWatch
from bot.stats.sqltime import day_start_utc, local_day
from bot.store.errors import Conflict, ServiceError
from bot.store.knowledge import KbArticleVersion, KbTask
from bot.store.models import (
    ConversationOutcome,
    DeskTask,
    DeskUser,
    Handoff,
    TicketStatusChange,
    utc,
    utcnow,
)
from bot.store.quality import BatchOrigin, QaBatch, QaSample
from bot.store.stats import StatsReport
from bot.store.survey_records import Survey

log = structlog.get_logger(__name__)

POSTS = ("junior", "senior", "english", "surveyor", "datamanager", "statistician", "machine")
MACHINE = "machine"  # the bot itself: every post includes the machine
SCHEDULER = "scheduler"
DECISIONS = ("request_dispatch", "chase", "withdraw")  # J5/J6/S1: dispatch, chase, return
REVIEWS = ("approve_dispatch", "no_dispatch_needed")  # S2
MAX_SPOT = 200  # a spot check draws at most this many
MAX_SPOT_DAYS = 31


@dataclass(frozen=True)
class Item:
    """One piece of work that may be sampled."""

    post: str
    kind: str
    ref: str
    at: datetime
    person: str | None = None
    ticket_id: str | None = None
    handoff_id: int | None = None
    conversation_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _iso(x: datetime | None) -> str | None:
    return utc(x).isoformat() if x is not None else None


def _roles(s: Session) -> dict[str, str]:
    return {u.username: u.role for u in s.exec(select(DeskUser))}


def work(s: Session, start: datetime, end: datetime) -> list[Item]:
    """Every post's work between ``start`` and ``end`` (UTC), in a fixed order."""
    roles = _roles(s)
    items: list[Item] = []
    items += _contacts(s, start, end)
    items += _decisions(s, start, end, roles)
    items += _grades(s, start, end)
    items += _watch(s, start, end)
    items += _surveys(s, start, end)
    items += _articles(s, start, end)
    items += _kb_tasks(s, start, end)
    items += _reports(s, start, end)
    items += _machine(s, start, end)
    return sorted(items, key=lambda i: (i.post, i.kind, i.at, i.ref))


def _contacts(s: Session, start: datetime, end: datetime) -> Iterator[Item]:
    rows = s.exec(select(Handoff).where(col(Handoff.taken_by).is_not(None), col(Handoff.ended_at) >= start,
                                        col(Handoff.ended_at) < end))
    for h in rows:
        assert h.ended_at is not None
        post = "english" if (h.language or "").startswith("en") else ("senior" if h.queue == "senior" else "junior")
        yield Item(post, "contact", f"handoff:{h.id}", utc(h.ended_at), h.taken_by, h.ticket_id, h.id,
                   h.conversation_id, {"channel": h.channel, "language": h.language, "reason": h.reason,
                                       "queue": h.queue, "taken_at": _iso(h.taken_at), "created": _iso(h.created),
                                       "transferred_from": h.transferred_from})


def _decisions(s: Session, start: datetime, end: datetime, roles: dict[str, str]) -> Iterator[Item]:
    rows = s.exec(select(TicketStatusChange).where(col(TicketStatusChange.action).in_(DECISIONS + REVIEWS),
                                                   col(TicketStatusChange.at) >= start,
                                                   col(TicketStatusChange.at) < end))
    for c in rows:
        if c.action in REVIEWS:
            post, kind = "senior", "review"
        elif c.author == "system":
            post, kind = "surveyor", "chase"  # U2: the deadline watch chases for the surveyor
        else:
            post, kind = ("senior" if roles.get(c.author) == "senior" else "junior"), "decision"
        yield Item(post, kind, f"change:{c.id}", utc(c.at), None if c.author == "system" else c.author,
                   c.ticket_id, None, None, {"action": c.action, "reason": c.reason, "from": c.from_sub_step,
                                             "to": c.to_sub_step})


def _grades(s: Session, start: datetime, end: datetime) -> Iterator[Item]:
    rows = s.exec(select(DeskTask).where(col(DeskTask.graded_at) >= start, col(DeskTask.graded_at) < end))
    for t in rows:
        assert t.graded_at is not None
        yield Item("senior", "grade", f"task:{t.id}", utc(t.graded_at), t.graded_by, t.ticket_id, t.handoff_id,
                   None, {"grade": t.grade, "note": t.grade_note, "junior": t.created_by, "reason": t.reason})


def _watch(s: Session, start: datetime, end: datetime) -> Iterator[Item]:
    rows = s.exec(select(DeadlineWatch).where(or_(and_(col(DeadlineWatch.warned_at) >= start,
                                                       col(DeadlineWatch.warned_at) < end),
                                                  and_(col(DeadlineWatch.alarmed_at) >= start,
                                                       col(DeadlineWatch.alarmed_at) < end))))
    for w in rows:
        details = {"centre": w.centre_id, "branch": w.branch, "dispatched_at": _iso(w.dispatched_at),
                   "deadline_at": _iso(w.deadline_at)}
        for kind, when in (("warning", w.warned_at), ("alarm", w.alarmed_at)):
            if when is not None and start <= utc(when) < end:
                yield Item("surveyor", kind, f"watch:{w.id}", utc(when), None, w.ticket_id, None, None, details)


def _surveys(s: Session, start: datetime, end: datetime) -> Iterator[Item]:
    rows = s.exec(select(Survey).where(col(Survey.finished_at) >= start, col(Survey.finished_at) < end))
    for v in rows:
        assert v.finished_at is not None
        yield Item("surveyor", "survey", f"survey:{v.id}", utc(v.finished_at), v.cause_by, v.ticket_id, None,
                   v.conversation_id, {"state": v.state, "result": v.result, "attitude": v.attitude,
                                       "quality": v.quality, "asked_by": v.asked_by, "cause": v.cause,
                                       "comment": v.comment_text})


def _articles(s: Session, start: datetime, end: datetime) -> Iterator[Item]:
    rows = s.exec(select(KbArticleVersion).where(col(KbArticleVersion.at) >= start, col(KbArticleVersion.at) < end))
    for a in rows:
        yield Item("datamanager", "article", f"article:{a.article_id}:{a.version}", utc(a.at), a.author, None,
                   None, None, {"article_id": a.article_id, "version": a.version, "question": a.question,
                                "fault_class": a.fault_class, "reason": a.reason})


def _kb_tasks(s: Session, start: datetime, end: datetime) -> Iterator[Item]:
    """Q4: a hard case done that day, or due that day and not done by its deadline."""
    rows = s.exec(select(KbTask).where(or_(and_(col(KbTask.done_at) >= start, col(KbTask.done_at) < end),
                                           and_(col(KbTask.due_at) >= start, col(KbTask.due_at) < end,
                                                col(KbTask.done_at).is_(None)))))
    for k in rows:
        done = utc(k.done_at) if k.done_at is not None else None
        late = done > utc(k.due_at) if done is not None else True
        yield Item("datamanager", "task", f"kbtask:{k.id}", done or utc(k.due_at), k.done_by, k.ticket_id,
                   k.handoff_id, None, {"due_at": _iso(k.due_at), "done_at": _iso(k.done_at), "late": late,
                                        "outcome": k.outcome, "article_id": k.article_id, "reason": k.reason})


def _reports(s: Session, start: datetime, end: datetime) -> Iterator[Item]:
    rows = s.exec(select(StatsReport).where(col(StatsReport.submitted_at) >= start,
                                            col(StatsReport.submitted_at) < end))
    for r in rows:
        assert r.submitted_at is not None
        yield Item("statistician", "report", f"report:{r.id}", utc(r.submitted_at), r.submitted_by, None, None,
                   None, {"report_id": r.id, "kind": r.kind, "period_start": r.period_start,
                          "version": r.version})


def _machine(s: Session, start: datetime, end: datetime) -> Iterator[Item]:
    """The bot's own conversations: one item per conversation that ended on the day and
    never reached a person (its outcomes: the steps it settled at)."""
    rows = s.exec(select(ConversationOutcome).where(col(ConversationOutcome.at) >= start,
                                                    col(ConversationOutcome.at) < end)
                  .order_by(col(ConversationOutcome.at), col(ConversationOutcome.id)))
    seen: dict[str, Item] = {}
    for o in rows:
        item = seen.get(o.conversation_id)
        outcome = {"outcome": o.outcome, "step": o.step, "ticket_id": o.ticket_id, "at": _iso(o.at)}
        if item is None:
            seen[o.conversation_id] = Item(MACHINE, "conversation", f"conversation:{o.conversation_id}", utc(o.at),
                                           None, o.ticket_id, None, o.conversation_id,
                                           {"channel": o.channel, "language": o.language, "outcomes": [outcome]})
        else:
            item.details["outcomes"].append(outcome)
    handed = {o.conversation_id for o in seen.values() if any(x["outcome"] == "handed_off"
                                                                for x in o.details["outcomes"])}
    return iter([i for i in seen.values() if i.conversation_id not in handed])


# ---------------------------------------------------------------- drawing


def size_for(population: int, rate: float) -> int:
    """The share ``rate`` of ``population``, rounded up: at least one where there is any."""
    if population <= 0:
        return 0
    return min(population, max(1, math.ceil(population * rate - 1e-9)))


def draw(items: list[Item], rate: float, seed: str) -> list[Item]:
    """From each kind of ``items`` the share ``rate`` (at least one), chosen by a random
    generator seeded with ``seed`` and the kind; ``items`` in a fixed order gives the same draw."""
    chosen: list[Item] = []
    for kind in sorted({i.kind for i in items}):
        pool = [i for i in items if i.kind == kind]
        rng = random.Random(f"{seed}:{kind}")
        chosen += rng.sample(pool, size_for(len(pool), rate))
    return sorted(chosen, key=lambda i: (i.kind, i.at, i.ref))


CHUNK = 500  # refs per query: a month's spot check stays under SQLite's limit on bound values


def _sampled_refs(s: Session, items: Iterable[Item]) -> set[tuple[str, str]]:
    """Which of ``items`` were sampled before (by any draw)."""
    by_kind: dict[str, list[str]] = {}
    for i in items:
        by_kind.setdefault(i.kind, []).append(i.ref)
    taken: set[tuple[str, str]] = set()
    for kind, refs in by_kind.items():
        for n in range(0, len(refs), CHUNK):
            rows = s.exec(select(QaSample.ref).where(QaSample.kind == kind,
                                                     col(QaSample.ref).in_(refs[n:n + CHUNK])))
            taken |= {(kind, r) for r in rows}
    return taken


def _store(s: Session, batch: QaBatch, items: list[Item], tz: ZoneInfo) -> list[QaSample]:
    assert batch.id is not None
    rows = []
    for i in items:
        row = QaSample(batch_id=batch.id, post=i.post, kind=i.kind, ref=i.ref, person=i.person, work_at=i.at,
                       day=local_day(i.at, tz).isoformat(), ticket_id=i.ticket_id, handoff_id=i.handoff_id,
                       conversation_id=i.conversation_id, details=i.details, created=batch.created)
        s.add(row)
        rows.append(row)
    s.flush()
    return rows


@dataclass(frozen=True)
class Drawn:
    batch: QaBatch
    samples: list[QaSample]


def daily(s: Session, day: date, tz: ZoneInfo, rate: float, seed: str, *,
          now: datetime | None = None) -> list[Drawn]:
    """Q1: the sample of every post's work of ``day`` (local); a post already drawn for
    that day is left as it is. Returns the batches made now."""
    if not 0 < rate <= 1:
        raise ServiceError("the sample rate is a share between 0 and 1", code="invalid_rate")
    now = now or utcnow()
    start, end = day_start_utc(day, tz), day_start_utc(day + timedelta(days=1), tz)
    every = work(s, start, end)
    made = []
    for post in POSTS:
        key = f"{day.isoformat()}:{post}"
        if s.exec(select(QaBatch.id).where(QaBatch.daily_key == key)).first() is not None:
            continue
        items = [i for i in every if i.post == post]
        taken = _sampled_refs(s, items)
        items = [i for i in items if (i.kind, i.ref) not in taken]
        batch_seed = f"{seed}:{key}"
        chosen = draw(items, rate, batch_seed)
        batch = QaBatch(origin=BatchOrigin.daily.value, daily_key=key, post=post, period_start=start,
                        period_end=end, rate=rate, seed=batch_seed, population=len(items), size=len(chosen),
                        requested_by=SCHEDULER, created=now)
        try:
            with s.begin_nested():  # two leaders at once: one draw
                s.add(batch)
                s.flush()
                samples = _store(s, batch, chosen, tz)
        except IntegrityError:
            log.info("qa.daily_already_drawn", key=key)
            continue
        made.append(Drawn(batch, samples))
        log.info("qa.daily_sample", day=day.isoformat(), post=post, population=len(items), size=len(chosen))
    return made


def spot_check(s: Session, who: str, start: datetime, end: datetime, tz: ZoneInfo, *, post: str | None = None,
               person: str | None = None, rate: float = 1.0, limit: int = 20, seed: str | None = None,
               now: datetime | None = None) -> Drawn:
    """Q1: an unscheduled check of any post, person or period: up to ``limit`` items (or
    the share ``rate`` of what there is, whichever is fewer), not sampled before."""
    if post is not None and post not in POSTS:
        raise ServiceError(f"unknown post {post!r}; one of {', '.join(POSTS)}", code="invalid_post")
    if end <= start:
        raise ServiceError("the period's end must be after its start", code="invalid_period")
    if end - start > timedelta(days=MAX_SPOT_DAYS):
        raise ServiceError(f"a spot check covers at most {MAX_SPOT_DAYS} days", code="invalid_period")
    if not 0 < rate <= 1:
        raise ServiceError("the share is between 0 and 1", code="invalid_rate")
    if not 1 <= limit <= MAX_SPOT:
        raise ServiceError(f"a spot check draws 1 to {MAX_SPOT} items", code="invalid_limit")
    now = now or utcnow()
    items = [i for i in work(s, start, end)
             if (post is None or i.post == post) and (person is None or i.person == person)]
    taken = _sampled_refs(s, items)
    items = [i for i in items if (i.kind, i.ref) not in taken]
    seed = seed if seed is not None else f"spot:{who}:{now.isoformat()}"
    rng = random.Random(seed)
    size = min(limit, size_for(len(items), rate))
    chosen = sorted(rng.sample(items, size), key=lambda i: (i.post, i.kind, i.at, i.ref))
    batch = QaBatch(origin=BatchOrigin.spot.value, post=post, person=person, period_start=start, period_end=end,
                    rate=rate, seed=seed[:120], population=len(items), size=len(chosen), requested_by=who,
                    created=now)
    try:
        with s.begin_nested():
            s.add(batch)
            s.flush()
            samples = _store(s, batch, chosen, tz)
    except IntegrityError as e:  # another draw took one of them meanwhile
        raise Conflict("some of this work was sampled by another draw just now; draw again",
                       code="sampled_meanwhile") from e
    log.info("qa.spot_check", by=who, post=post, person=person, population=len(items), size=len(chosen))
    return Drawn(batch, samples)


def daily_for_yesterday(s: Session, tz: ZoneInfo, rate: float, seed: str, *,
                        now: datetime | None = None) -> list[Drawn]:
    now = now or utcnow()
    return daily(s, local_day(now, tz) - timedelta(days=1), tz, rate, seed, now=now)
