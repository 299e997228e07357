"""Q6: hand-offs between posts — no passing customers back and forth, nothing left waiting.

Two kinds of contact travel between posts:

* a **ticket**, whose sub-step says which post holds it (:data:`POST_OF_STEP`: a new
  report is the junior's, one awaiting review or returned is the senior's, a dispatched
  one the measurement centre's; an escalation hands it to the manager hotline). Each
  change of the post holding it is a pass; the time from a pass to a desk post until
  that post moved it on (or until now, if it still sits there) is a wait. The centre's
  own time is the repair, watched by the deadline watch (U1–U2), and is not counted.
* a **caller**, passed from the bot to a queue (J1), from a junior to a senior
  (J3/J5/J6) and back to the bot (J1's offer taken): each is a pass, and the time from
  the queue to the operator who took them (or who never did) is a wait.

A contact passed more than ``HOTLINE_QA_HANDOFF_MAX_PASSES`` times, or kept waiting
between posts longer than ``HOTLINE_QA_HANDOFF_MAX_WAIT_MIN`` minutes, is flagged once per
reason (``qa_handoff_flag``) for the inspectors. :func:`detect` runs with the daily draw.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.store.models import Handoff, TicketStatusChange, utc, utcnow
from bot.store.quality import QaHandoffFlag

log = structlog.get_logger(__name__)

POST_OF_STEP = {"new": "junior", "awaiting_review": "senior", "returned": "senior", "callback": "senior",
                "dispatched": "centre", "waiting": "centre", "on_hold": "centre"}
DESK_POSTS = frozenset({"junior", "senior", "manager"})  # posts whose waiting counts (not the centre's repair)
ESCALATE = "escalate"


@dataclass
class Path:
    """How one contact travelled: the posts in order, its passes and its longest wait."""

    subject: str
    first_at: datetime
    posts: list[str] = field(default_factory=list)
    passes: int = 0
    longest_wait_s: float = 0.0
    waited_at: str | None = None
    ticket_id: str | None = None
    conversation_id: str | None = None

    def visit(self, post: str) -> bool:
        """The contact reaches ``post``; True when it is a pass (another post than before)."""
        if self.posts and self.posts[-1] == post:
            return False
        if self.posts:
            self.passes += 1
        self.posts.append(post)
        return len(self.posts) > 1

    def waited(self, post: str, seconds: float) -> None:
        if seconds > self.longest_wait_s:
            self.longest_wait_s, self.waited_at = seconds, post


def ticket_path(ticket_id: str, changes: list[TicketStatusChange], now: datetime) -> Path | None:
    """The ticket's travel from its status history (in order)."""
    if not changes:
        return None
    path = Path(f"ticket:{ticket_id}", utc(changes[0].at), ticket_id=ticket_id)
    arrived: tuple[str, datetime] | None = None
    for c in changes:
        at = utc(c.at)
        if arrived is not None:
            path.waited(arrived[0], (at - arrived[1]).total_seconds())
            arrived = None
        post = "manager" if c.action == ESCALATE else POST_OF_STEP.get(c.to_sub_step or "")
        if post is None:
            continue  # answered, closed, withdrawn …: the contact left the posts
        if path.visit(post) and post in DESK_POSTS:
            arrived = (post, at)
    if arrived is not None:
        path.waited(arrived[0], (now - arrived[1]).total_seconds())
    return path


def caller_path(conversation_id: str, handoffs: list[Handoff], now: datetime) -> Path | None:
    """The caller's travel between the bot and the operators (J1, J3), from their handoffs."""
    if not handoffs:
        return None
    path = Path(f"conversation:{conversation_id}", utc(handoffs[0].created), conversation_id=conversation_id)
    path.visit("machine")
    for h in handoffs:
        if h.transferred_from and path.posts[-1] != "junior":
            path.visit("junior")
        path.visit(h.queue)
        end = h.taken_at or h.ended_at or now
        path.waited(h.queue, (utc(end) - utc(h.created)).total_seconds())
        if h.state == "returned":
            path.visit("machine")  # J1: back to the bot
        if path.ticket_id is None and h.ticket_id:
            path.ticket_id = h.ticket_id
    return path


def paths(s: Session, start: datetime, end: datetime, *, now: datetime | None = None) -> list[Path]:
    """The travel of every ticket and caller that moved between ``start`` and ``end``."""
    now = now or utcnow()
    tickets = set(s.exec(select(TicketStatusChange.ticket_id).where(col(TicketStatusChange.at) >= start,
                                                                    col(TicketStatusChange.at) < end)))
    changes: dict[str, list[TicketStatusChange]] = defaultdict(list)
    if tickets:
        for c in s.exec(select(TicketStatusChange).where(col(TicketStatusChange.ticket_id).in_(tickets))
                        .order_by(col(TicketStatusChange.at), col(TicketStatusChange.id))):
            changes[c.ticket_id].append(c)
    convs = set(s.exec(select(Handoff.conversation_id).where(col(Handoff.created) >= start,
                                                             col(Handoff.created) < end)))
    handoffs: dict[str, list[Handoff]] = defaultdict(list)
    if convs:
        for h in s.exec(select(Handoff).where(col(Handoff.conversation_id).in_(convs))
                        .order_by(col(Handoff.created), col(Handoff.id))):
            handoffs[h.conversation_id].append(h)
    out = [p for t in sorted(changes) if (p := ticket_path(t, changes[t], now)) is not None]
    out += [p for c in sorted(handoffs) if (p := caller_path(c, handoffs[c], now)) is not None]
    return out


def detect(s: Session, start: datetime, end: datetime, max_passes: int, max_wait_s: float, *,
           now: datetime | None = None) -> list[QaHandoffFlag]:
    """Flag what moved between ``start`` and ``end`` and went too often or waited too long;
    a subject already flagged for a reason is not flagged again. Returns the new flags."""
    now = now or utcnow()
    made = []
    for p in paths(s, start, end, now=now):
        reasons = []
        if p.passes > max_passes:
            reasons.append("passes")
        if p.longest_wait_s > max_wait_s:
            reasons.append("wait")
        for reason in reasons:
            if s.exec(select(QaHandoffFlag.id).where(QaHandoffFlag.subject == p.subject,
                                                     QaHandoffFlag.reason == reason)).first() is not None:
                continue
            flag = QaHandoffFlag(subject=p.subject, reason=reason, ticket_id=p.ticket_id,
                                 conversation_id=p.conversation_id, passes=p.passes,
                                 longest_wait_s=round(p.longest_wait_s, 1), waited_at=p.waited_at, path=p.posts,
                                 first_at=p.first_at, detected_at=now)
            try:
                with s.begin_nested():
                    s.add(flag)
                    s.flush()
            except IntegrityError:
                continue
            made.append(flag)
            log.info("qa.handoff_flagged", subject=p.subject, reason=reason, passes=p.passes,
                     wait_s=round(p.longest_wait_s))
    return made


def list_flags(s: Session, *, state: str | None = None, limit: int = 200) -> list[QaHandoffFlag]:
    q = select(QaHandoffFlag)
    if state is not None:
        q = q.where(QaHandoffFlag.state == state)
    return list(s.exec(q.order_by(col(QaHandoffFlag.detected_at).desc(), col(QaHandoffFlag.id).desc()).limit(limit)))


def review_flag(s: Session, flag_id: int, actor: str, note: str | None, *,
                now: datetime | None = None) -> QaHandoffFlag:
    """An inspector looked at the flag (and may say what they found)."""
    from bot.store.errors import NotFound

    flag = s.get(QaHandoffFlag, flag_id)
    if flag is None:
        raise NotFound(f"no hand-off flag {flag_id}", code="flag_not_found")
    flag.state, flag.reviewed_by, flag.note = "reviewed", actor, (note or "").strip()[:2000] or None
    s.add(flag)
    return flag
